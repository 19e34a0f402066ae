"""Benchmark: rendering a storyboard as an animatic MP4 (``storyboard.animatic``).

A 10-scene, 60 s board at 16:9 (1280x720, 24 fps) with Flux-sized 1344x768 WebP frames that
hold real detail (shapes, gradients, grain: they do not compress to nothing), varied camera
moves (push in, pull out, pans, a truck, a tilt, a handheld drift, held frames), a fade in,
dissolves, cuts and a fade out, dialogue on some scenes. Target: the render takes at most
0.15 x the video's running time (9 s) with a peak RSS of at most 300 MB.

The machine is shared and noisy, so the same run also measures its floor: the same number of
1280x720 frames at 24 fps, with a keyframe at the same cuts, pushed through the same encoder
(``storyboard.animatic.encoder.Encoder``: the same x264 options, the same MP4 with the index
moved to the front) with no drawing at all. Each scene's still is fitted to the frame and
converted to ``yuv420p`` once, before the clock starts, then the one frame object is sent for
every frame of its scene (a static board); the same with scene 1's still for every frame is
reported beside it. The animatic's time is then also read as a multiple of that floor. What
lies between the two is the drawing and the extra work the moves, dissolves and fades give
the encoder (moving pictures cost x264 more than held ones).

Each render and each floor runs in a child process (one after the other, alternating), so a
child's peak RSS (``ru_maxrss``) is its own: the interpreter, the imports and the work, nothing
of this process. The animatic's time is the ``write_animatic`` call alone; the floor's is the
encoder from opening the file to closing it. Run as ``python -m bench.animatic``.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from storyboard.plan import Plan, PlannerInfo, PlanStyle
from storyboard.schemas import JobResponse, Scene, StoryboardEntry, VideoProgress
from storyboard.shots import CameraMovement, Transition

__all__ = ["bench_animatic", "bench_job"]

TARGET_RATIO = 0.15
TARGET_RSS_MB = 300
IMAGE_SIZE = (1344, 768)  # what Flux returns for 16:9

# (movement, transition, dialogue): roughly the rules planner's mix, seven of ten moving.
SHOTS: list[tuple[CameraMovement, Transition, str | None]] = [
    (CameraMovement.DOLLY_IN, Transition.FADE_IN, None),
    (CameraMovement.PAN, Transition.CUT, "Another bottle. Third one this month."),
    (CameraMovement.STATIC, Transition.DISSOLVE, None),
    (CameraMovement.ZOOM_OUT, Transition.CUT, "Whoever wrote this is still out there."),
    (CameraMovement.TRUCK, Transition.DISSOLVE, None),
    (CameraMovement.STATIC, Transition.CUT, "Get the boat ready."),
    (CameraMovement.HANDHELD, Transition.CUT, None),
    (CameraMovement.TILT, Transition.DISSOLVE, "There - the light on the cliffs!"),
    (CameraMovement.STATIC, Transition.CUT, None),
    (CameraMovement.DOLLY_IN, Transition.FADE_OUT, "You came."),
]

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from storyboard.animatic import write_animatic
from storyboard.schemas import JobResponse
job = JobResponse.model_validate_json(Path(sys.argv[1]).read_text())
started = time.perf_counter()
write_animatic(job, Path(sys.argv[2]), Path(sys.argv[3]))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

# The floor: the board's frames (count, cuts) through the same encoder, no drawing. Prints the
# seconds of the static board, of one still throughout, and the child's peak RSS.
_FLOOR_CHILD = """
import json, resource, sys, time
from pathlib import Path
from PIL import Image, ImageOps
from storyboard.animatic import frame_size
from storyboard.animatic.encoder import Encoder
from storyboard.animatic.planes import to_frame, to_planes
from storyboard.animatic.timeline import Timeline
from storyboard.schemas import JobResponse
from storyboard.storage import path_for_url
job = JobResponse.model_validate_json(Path(sys.argv[1]).read_text())
media_dir, out, fps = Path(sys.argv[2]), Path(sys.argv[3]), 24
entries = sorted(job.storyboard or [], key=lambda e: e.scene.scene_number)
size = frame_size(str((job.parameters or {}).get("aspect_ratio") or "16:9"))
timeline = Timeline.of(entries, fps)
starts = timeline.firsts[:-1]

def still(url):
    with Image.open(path_for_url(media_dir, url)) as image:
        return to_frame(to_planes(ImageOps.fit(image.convert("RGB"), size)))

def encode(pictures):
    started = time.perf_counter()
    with Encoder(out, size, fps) as encoder:
        for index in range(timeline.total):
            encoder.send(pictures[timeline.shot_at(index)], keyframe=index in starts)
    return time.perf_counter() - started

stills = [still(e.image_url) for e in entries]
board = encode(stills)
one = encode([stills[0]] * len(stills))
print(json.dumps({"seconds": board, "one_still": one, "frames": timeline.total,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _picture(seed: int) -> Image.Image:
    """A frame with the detail of a generated image: a graded sky, hills, many shapes, grain."""
    rng = random.Random(seed)
    width, height = IMAGE_SIZE
    top = tuple(rng.randrange(20, 120) for _ in range(3))
    bottom = tuple(rng.randrange(120, 240) for _ in range(3))
    gradient = Image.linear_gradient("L").resize(IMAGE_SIZE)
    image = Image.composite(Image.new("RGB", IMAGE_SIZE, bottom), Image.new("RGB", IMAGE_SIZE, top),
                            gradient)
    draw = ImageDraw.Draw(image)
    for layer in range(3):  # hills
        base = height * (0.55 + 0.12 * layer)
        points = [(x, base - rng.uniform(0, 120)) for x in range(0, width + 96, 96)]
        colour = tuple(rng.randrange(30, 160) for _ in range(3))
        draw.polygon([(0, height), *points, (width, height)], fill=colour)
    for _ in range(260):  # things: windows, rocks, leaves, figures
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = rng.randrange(4, 90), rng.randrange(4, 90)
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        else:
            draw.rectangle((x, y, x + w, y + h), outline=colour, width=rng.randrange(1, 4))
    image = image.filter(ImageFilter.GaussianBlur(0.8))
    grain = Image.effect_noise(IMAGE_SIZE, 24).convert("RGB")
    return Image.blend(image, grain, 0.12)


def bench_job(media_dir: Path, job_id: int = 1) -> JobResponse:
    """The benchmark's job, its images written as WebP under ``media_dir``."""
    folder = media_dir / "jobs" / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for number, (movement, transition, dialogue) in enumerate(SHOTS, start=1):
        name = f"scene-{number:02d}-v1.webp"
        _picture(number).save(folder / name, "WEBP", quality=90)
        scene = Scene(scene_number=number, description=f"Scene {number} of the lighthouse "
                      "story: Mara climbs the tower, reads the message and sails into the storm.",
                      duration=6.0, image_prompt="", camera_movement=movement,
                      transition=transition, dialogue=dialogue)
        entries.append(StoryboardEntry(scene=scene, image_url=f"/media/jobs/{job_id}/{name}",
                                       generation_status="completed"))
    plan = Plan(title="The Keeper's Message",
                logline="A lighthouse keeper follows a message in a bottle through a storm.",
                style=PlanStyle(look="moody 35mm film", palette="slate blue, sodium orange",
                                lighting="low winter light"),
                planner=PlannerInfo(kind="rules"))
    now = datetime.now(UTC)
    return JobResponse(job_id=job_id, status="storyboard_ready", progress=VideoProgress(),
                       storyboard=entries, created_at=now, updated_at=now,
                       prompt="A lighthouse keeper finds a message in a bottle",
                       parameters={"duration": 60, "aspect_ratio": "16:9"}, plan=plan)


def _run_child(script: str, *args: Path) -> dict[str, float]:
    """Runs ``script`` in a fresh interpreter; returns the JSON its last line prints."""
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the benchmark's child failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _render_in_child(job_file: Path, media_dir: Path, out: Path) -> tuple[float, float]:
    """Seconds of the render and the child's peak RSS in MB."""
    result = _run_child(_CHILD, job_file, media_dir, out)
    return result["seconds"], result["rss_kb"] / 1024


def _floor_in_child(job_file: Path, media_dir: Path, out: Path) -> dict[str, float]:
    """Seconds of the encoder alone on the board's frames (a static board, and one still
    throughout), the frame count, and the child's peak RSS in MB."""
    result = _run_child(_FLOOR_CHILD, job_file, media_dir, out)
    return {**result, "rss_mb": result["rss_kb"] / 1024}


def _spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f} s"


def bench_animatic(runs: int = 3) -> list[tuple[str, str, str]]:
    """Two rows: the median render time of ``runs`` renders against the target, with the
    largest peak RSS; and this machine's floor, the median time of the encoder alone on as many
    frames (measured in the same run, alternating with the renders), with the render as a
    multiple of it."""
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    with tempfile.TemporaryDirectory() as tmp:
        media_dir = Path(tmp) / "media"
        job = bench_job(media_dir)
        job_file = Path(tmp) / "job.json"
        job_file.write_text(job.model_dump_json())
        length = sum(e.scene.duration for e in job.storyboard or [])
        out, floor_out = Path(tmp) / "animatic.mp4", Path(tmp) / "floor.mp4"
        results, floors = [], []
        for _ in range(runs):  # alternating, so both see the same moods of a shared machine
            results.append(_render_in_child(job_file, media_dir, out))
            floors.append(_floor_in_child(job_file, media_dir, floor_out))
        size_mb = out.stat().st_size / 1e6
    seconds = statistics.median(s for s, _ in results)
    rss = max(r for _, r in results)
    ratio = seconds / length
    floor = statistics.median(f["seconds"] for f in floors)
    one_still = statistics.median(f["one_still"] for f in floors)
    frames = int(floors[0]["frames"])
    return [(f"animatic, {len(SHOTS)} scenes, {length:g} s, 1280x720",
             (f"rendered in {seconds:.1f} s = {ratio:.3f} x running time (median of {runs}: "
              f"{_spread([s for s, _ in results])}; {size_mb:.1f} MB; load {load:.1f}) "
              f"(target <= {TARGET_RATIO})"),
             f"peak RSS {rss:.0f} MB (target <= {TARGET_RSS_MB} MB)"),
            (f"  same {frames} frames, encoder alone, no drawing",
             (f"{floor:.1f} s = {floor / length:.3f} x running time (median of {runs}: "
              f"{_spread([f['seconds'] for f in floors])}; each scene's still held; "
              f"one still throughout: {one_still:.1f} s) (this machine's floor)"),
             (f"animatic = {seconds / floor:.2f} x the floor "
              f"(peak RSS {max(f['rss_mb'] for f in floors):.0f} MB)"))]


if __name__ == "__main__":
    for row in bench_animatic():
        print(" | ".join(row))
