"""The animatic MP4: format, length, moves, transitions, captions, title card, placeholders.

Each test builds a job by hand with stills drawn into a temporary media folder, renders it (small
frames, to stay quick) and decodes the video with PyAV to look at its pixels.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from storyboard.animatic import caption_text, frame_size, write_animatic
from storyboard.animatic.stills import read_still
from storyboard.animatic.text import wrap
from storyboard.images.base import ImageRequest
from storyboard.images.sketch import render_sketch
from storyboard.plan import Plan, PlannerInfo, PlanStyle
from storyboard.schemas import JobResponse, Scene, StoryboardEntry, VideoProgress
from storyboard.shots import CameraMovement, Transition

FPS = 24
SMALL = 144  # the short side of most test videos: 256x144 at 16:9
RED, GREEN, BLUE = (220, 30, 30), (30, 200, 40), (30, 40, 220)


# --- building jobs ---------------------------------------------------------------------------


@pytest.fixture
def media(tmp_path: Path) -> Path:
    path = tmp_path / "media"
    (path / "jobs" / "1").mkdir(parents=True)
    return path


def save(media: Path, name: str, image: Image.Image) -> str:
    """Stores ``image`` as the job's file ``name``; returns its /media URL."""
    image.save(media / "jobs" / "1" / name)
    return f"/media/jobs/1/{name}"


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (640, 360)) -> Image.Image:
    return Image.new("RGB", size, colour)


def target(size: tuple[int, int] = (640, 360)) -> Image.Image:
    """Black, with a white square in the middle: its width and place show the camera move."""
    image = Image.new("RGB", size, (0, 0, 0))
    width, height = size
    ImageDraw.Draw(image).rectangle(
        (width * 0.4, height * 0.3, width * 0.6, height * 0.7), fill=(255, 255, 255))
    return image


def entry(number: int, url: str | None, duration: float = 1.0, *,
          movement: CameraMovement | None = None, transition: Transition | None = None,
          dialogue: str | None = None, description: str | None = None,
          status: str = "completed", error: str | None = None) -> StoryboardEntry:
    scene = Scene(scene_number=number, description=description or f"Scene {number} happens.",
                  duration=duration, image_prompt="", camera_movement=movement,
                  transition=transition, dialogue=dialogue)
    return StoryboardEntry(scene=scene, image_url=url, generation_status=status,  # type: ignore[arg-type]
                           error=error)


def job(entries: list[StoryboardEntry] | None, *, aspect_ratio: str = "16:9",
        prompt: str = "A robot exploring Mars", title: str | None = None,
        logline: str = "") -> JobResponse:
    plan = None
    if title is not None:
        plan = Plan(title=title, logline=logline, planner=PlannerInfo(kind="rules"),
                    style=PlanStyle(look="pencil", palette="grey", lighting="flat"))
    now = datetime.now(UTC)
    total = sum(e.scene.duration for e in entries or [])
    return JobResponse(job_id=1, status="storyboard_ready", progress=VideoProgress(),
                       storyboard=entries, created_at=now, updated_at=now, prompt=prompt,
                       parameters={"duration": total, "aspect_ratio": aspect_ratio}, plan=plan)


def render(tmp_path: Path, media: Path, the_job: JobResponse, **options: int) -> Path:
    options.setdefault("height", SMALL)
    out = write_animatic(the_job, media, tmp_path / "out" / "animatic.mp4", **options)
    assert out == tmp_path / "out" / "animatic.mp4"
    return out


# --- reading videos -------------------------------------------------------------------------


def frames(path: Path) -> list[Image.Image]:
    """Every frame of the video, as RGB images."""
    with av.open(str(path)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def mean(image: Image.Image, box: tuple[float, float, float, float] = (0, 0, 1, 0.6)
         ) -> tuple[float, ...]:
    """The mean colour of a part of ``image`` (``box`` in fractions of its size; by default the
    upper part, above the caption band)."""
    width, height = image.size
    left, top, right, bottom = box
    part = image.crop((round(left * width), round(top * height),
                       round(right * width), round(bottom * height)))
    return tuple(ImageStat.Stat(part).mean)


def brightness(image: Image.Image) -> float:
    return ImageStat.Stat(image.convert("L")).mean[0]


def near(colour: tuple[float, ...], expected: tuple[int, int, int], tolerance: float = 30) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, expected, strict=True))


def white_run(image: Image.Image, row: float = 0.4) -> tuple[int, int]:
    """Where the white square crosses the row at ``row`` of the height: first x and width."""
    grey = image.convert("L")
    y = round(row * grey.height)
    xs = [x for x in range(grey.width) if grey.getpixel((x, y)) > 128]  # type: ignore[operator]
    return (xs[0], len(xs)) if xs else (-1, 0)


def firsts(durations: list[float], fps: int = FPS) -> list[int]:
    """Each scene's first frame, as the animatic cuts them."""
    total, starts = 0.0, []
    for duration in durations:
        starts.append(round(total * fps))
        total += duration
    return starts


def top_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types, in file order."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


# --- format and length ----------------------------------------------------------------------


def test_frame_size_keeps_the_short_side() -> None:
    assert frame_size("16:9") == (1280, 720)
    assert frame_size("9:16") == (720, 1280)
    assert frame_size("1:1") == (720, 720)
    assert frame_size("4:3") == (960, 720)
    assert frame_size("16:9", 480) == (854, 480)  # both sides even, for 4:2:0 video
    assert frame_size("nonsense") == frame_size("16:9") == frame_size("4:0")


def test_writes_browser_ready_h264_as_long_as_the_board(tmp_path: Path, media: Path) -> None:
    durations = [2.0, 1.5, 1.25]
    entries = [entry(n, save(media, f"s{n}.png", solid(c)), d) for n, c, d in
               zip((1, 2, 3), (RED, GREEN, BLUE), durations, strict=True)]
    out = render(tmp_path, media, job(entries))

    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (256, 144)
        count = sum(1 for _ in container.decode(video=0))
        seconds = container.duration / av.time_base  # type: ignore[operator]
    total = sum(durations)
    assert abs(count - round(total * FPS)) <= 1
    assert abs(seconds - total) <= 1 / FPS
    # moov before mdat: a browser can start playing before the whole file has arrived.
    boxes = top_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")
    assert [p.name for p in out.parent.iterdir()] == ["animatic.mp4"]  # no temporary file left


@pytest.mark.parametrize(("aspect_ratio", "size"), [
    ("16:9", (1280, 720)), ("9:16", (720, 1280)), ("1:1", (720, 720)), ("4:3", (960, 720))])
def test_frame_follows_the_aspect_ratio(tmp_path: Path, media: Path, aspect_ratio: str,
                                        size: tuple[int, int]) -> None:
    still = render_sketch(ImageRequest(prompt="A lighthouse", aspect_ratio=aspect_ratio))
    (media / "jobs" / "1" / "s1.png").write_bytes(still)
    the_job = job([entry(1, "/media/jobs/1/s1.png", 0.25, dialogue="Hello")],
                  aspect_ratio=aspect_ratio)
    out = render(tmp_path, media, the_job, height=720)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == size
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_each_scene_is_held_for_its_duration(tmp_path: Path, media: Path) -> None:
    durations = [2.0, 1.0, 1.5]
    entries = [entry(n, save(media, f"s{n}.png", solid(c)), d) for n, c, d in
               zip((1, 2, 3), (RED, GREEN, BLUE), durations, strict=True)]
    video = frames(render(tmp_path, media, job(entries)))

    starts = [*firsts(durations), round(sum(durations) * FPS)]
    assert len(video) == starts[-1]
    for colour, first, end in zip((RED, GREEN, BLUE), starts, starts[1:], strict=False):
        # Hard cuts: the scene's colour from its first frame to its last (scene 1 once its
        # title card is gone).
        shown = range(first if first else round(0.9 * end), end)
        assert all(near(mean(video[i]), colour) for i in shown), colour


# --- moves ------------------------------------------------------------------------------------


def test_static_holds_and_a_push_in_grows(tmp_path: Path, media: Path) -> None:
    url = save(media, "target.png", target())
    entries = [entry(1, url, 2.0, movement=CameraMovement.STATIC),
               entry(2, url, 2.0, movement=CameraMovement.DOLLY_IN),
               entry(3, url, 2.0, movement=CameraMovement.DOLLY_OUT)]
    video = frames(render(tmp_path, media, job(entries)))

    held = video[30:48]  # scene 1 after its title card
    assert all(ImageChops.difference(held[0], f).getbbox() is None or
               max(hi for _, hi in ImageChops.difference(held[0], f).getextrema()) <= 8
               for f in held)
    pushing = [white_run(video[i])[1] for i in range(49, 96, 6)]
    assert pushing == sorted(pushing) and pushing[-1] >= pushing[0] * 1.05
    pulling = [white_run(video[i])[1] for i in range(97, 144, 6)]
    assert pulling == sorted(pulling, reverse=True) and pulling[0] >= pulling[-1] * 1.05
    # The move is gentle: at most the 8% of MOVE_SCALE (and a pixel of rounding).
    assert pushing[-1] <= pushing[0] * 1.08 + 2


def test_pan_slides_across_and_handheld_drifts(tmp_path: Path, media: Path) -> None:
    url = save(media, "target.png", target())
    entries = [entry(1, url, 0.5), entry(2, url, 2.0, movement=CameraMovement.PAN),
               entry(3, url, 2.0, movement=CameraMovement.TILT),
               entry(4, url, 2.0, movement=CameraMovement.HANDHELD)]
    video = frames(render(tmp_path, media, job(entries)))

    # Panning right: the square moves left, keeping its size.
    lefts = [white_run(video[i]) for i in range(13, 60, 6)]
    assert [x for x, _ in lefts] == sorted((x for x, _ in lefts), reverse=True)
    assert lefts[0][0] - lefts[-1][0] >= 10
    assert max(w for _, w in lefts) - min(w for _, w in lefts) <= 2
    # Tilting down: the square moves up (its top edge in the middle column).
    def top_edge(image: Image.Image) -> int:
        grey = image.convert("L")
        return next(y for y in range(grey.height) if grey.getpixel((grey.width // 2, y)) > 128)  # type: ignore[operator]
    tops = [top_edge(video[i]) for i in range(61, 108, 6)]
    assert tops == sorted(tops, reverse=True) and tops[0] - tops[-1] >= 4
    # Handheld: the frame moves, but only a little.
    drift = [white_run(video[i])[0] for i in range(109, 156, 4)]
    assert len(set(drift)) > 1 and max(drift) - min(drift) <= 12


# --- transitions ------------------------------------------------------------------------------


def test_fade_in_opens_from_black_and_fade_out_ends_on_black(tmp_path: Path,
                                                            media: Path) -> None:
    bright = save(media, "bright.png", solid((230, 230, 230)))
    entries = [entry(1, bright, 2.0, transition=Transition.FADE_IN),
               entry(2, bright, 2.0, transition=Transition.FADE_OUT)]
    video = frames(render(tmp_path, media, job(entries)))

    assert brightness(video[0]) < 8
    assert brightness(video[1]) < brightness(video[6]) < brightness(video[12])
    assert brightness(video[-1]) < 8
    assert brightness(video[-12]) > brightness(video[-6]) > brightness(video[-2])
    assert brightness(video[60]) > 150  # between the fades, the still at full brightness
    assert len(video) == 96

    plain = [entry(1, bright, 2.0), entry(2, bright, 2.0)]
    unfaded = frames(render(tmp_path, media, job(plain)))
    assert brightness(unfaded[0]) > 40 and brightness(unfaded[-1]) > 150


def test_dissolve_mixes_the_two_stills_without_lengthening(tmp_path: Path,
                                                          media: Path) -> None:
    red, blue = save(media, "red.png", solid(RED)), save(media, "blue.png", solid(BLUE))
    dissolving = [entry(1, red, 2.0, transition=Transition.DISSOLVE), entry(2, blue, 2.0)]
    video = frames(render(tmp_path, media, job(dissolving)))

    assert len(video) == 96
    cut = 48
    r, _, b = mean(video[cut])
    assert 60 < r < 190 and 60 < b < 190  # half red, half blue
    reds = [mean(video[i])[0] for i in range(cut - 6, cut + 6)]
    assert reds == sorted(reds, reverse=True)  # red gives way to blue over ~0.5 s
    assert near(mean(video[cut - 8]), RED) and near(mean(video[cut + 8]), BLUE)

    cutting = [entry(1, red, 2.0, transition=Transition.CUT), entry(2, blue, 2.0)]
    video = frames(render(tmp_path, media, job(cutting)))
    assert near(mean(video[cut - 1]), RED) and near(mean(video[cut]), BLUE)


# --- caption and title ----------------------------------------------------------------------


def test_caption_text_is_the_dialogue_or_the_description() -> None:
    spoken = entry(1, None, dialogue="  Where is\nshe?  ", description="Mara waits.")
    assert caption_text(spoken) == "\u201cWhere is she?\u201d"
    assert caption_text(entry(1, None, description="Mara   waits.")) == "Mara waits."


def test_caption_is_cut_to_two_lines() -> None:
    from PIL import ImageFont

    font = ImageFont.load_default(size=20)
    lines = wrap("word " * 200, font, 300, 2)
    assert len(lines) == 2 and lines[-1].endswith("\u2026")
    assert all(font.getlength(line) <= 300 for line in lines)
    assert wrap("short words", font, 300, 2) == ["short words"]
    unbroken = wrap("x" * 500, font, 300, 2)  # a word longer than a line is cut mid-word
    assert len(unbroken) == 2 and all(font.getlength(line) <= 300 for line in unbroken)


def test_caption_band_shows_the_dialogue(tmp_path: Path, media: Path) -> None:
    grey = save(media, "grey.png", solid((128, 128, 128)))
    entries = [entry(1, grey, 2.0, dialogue="We have to go back for her, now!"),
               entry(2, grey, 2.0, description="Quiet.")]
    video = frames(render(tmp_path, media, job(entries), height=288))

    band = (0, 0.82, 1, 1)
    with_dialogue, without = video[40], video[80]
    assert mean(with_dialogue, (0, 0, 1, 0.6)) == pytest.approx(mean(without, (0, 0, 1, 0.6)),
                                                                abs=2)  # same picture above
    assert brightness(with_dialogue.crop((0, 250, 512, 288))) < 100  # a dark band at the foot
    difference = ImageChops.difference(with_dialogue.crop((0, 240, 512, 288)),
                                       without.crop((0, 240, 512, 288)))
    assert max(hi for _, hi in difference.getextrema()) > 100  # different words
    assert mean(with_dialogue, band) != mean(without, band)


def test_title_card_opens_without_lengthening(tmp_path: Path, media: Path) -> None:
    bright = save(media, "bright.png", solid((200, 200, 200)))
    entries = [entry(1, bright, 4.0)]
    titled = frames(render(tmp_path, media, job(entries, title="The Keeper",
                                                 logline="A keeper follows a message.")))
    assert len(titled) == 96
    card, scene = titled[12], titled[72]  # 0.5 s in; 3 s in
    assert brightness(card) < brightness(scene) - 60  # scene 1 darkened under the title
    lightest = card.convert("L").getextrema()[1]
    assert lightest > brightness(card) + 60  # light letters on the darkened still
    # Another title, another card; the same scene after it.
    other = frames(render(tmp_path, media, job(entries, title="Something else entirely")))
    assert ImageChops.difference(card, other[12]).getbbox() is not None
    assert ImageChops.difference(scene, other[72]).getbbox() is None
    # Without a plan, the prompt is the title.
    untitled = frames(render(tmp_path, media, job(entries, prompt="A robot on Mars")))
    assert brightness(untitled[12]) < brightness(untitled[72]) - 60


# --- placeholders and errors ------------------------------------------------------------------


def test_scenes_without_an_image_get_a_placeholder(tmp_path: Path, media: Path) -> None:
    (media / "jobs" / "1" / "broken.png").write_bytes(b"not an image at all")
    entries = [
        entry(1, save(media, "ok.png", solid(GREEN))),
        entry(2, None, status="failed", error="content filter"),
        entry(3, "/media/jobs/1/gone.png"),
        entry(4, "/media/jobs/1/broken.png", movement=CameraMovement.DOLLY_IN),
        entry(5, None, status="pending"),
    ]
    video = frames(render(tmp_path, media, job(entries)))

    assert len(video) == 120
    corner = (0.15, 0.15, 0.35, 0.3)  # inside the dashed frame, away from the words
    assert near(mean(video[36], corner), (74, 30, 30), 12)  # failed: red
    for first in (48, 72, 96):  # gone, unreadable, not drawn: grey
        assert near(mean(video[first + 12], corner), (38, 40, 46), 12)
    assert near(mean(video[20]), GREEN)

    reasons = [read_still(e, media, (256, 144))[1] for e in entries]
    assert reasons == ["", "image failed: content filter", "image file not found",
                       "image unreadable (UnidentifiedImageError)", "not drawn"]


@pytest.mark.parametrize("storyboard", [None, []])
def test_a_job_without_scenes_is_refused(tmp_path: Path, media: Path,
                                          storyboard: list[StoryboardEntry] | None) -> None:
    out = tmp_path / "animatic.mp4"
    with pytest.raises(ValueError, match="no storyboard"):
        write_animatic(job(storyboard), media, out)
    assert list(tmp_path.glob("*.mp4")) == []


def test_bad_sizes_are_refused(tmp_path: Path, media: Path) -> None:
    the_job = job([entry(1, None)])
    for options in ({"fps": 0}, {"height": 8}):
        with pytest.raises(ValueError, match="height must be"):
            write_animatic(the_job, media, tmp_path / "animatic.mp4", **options)
    assert list(tmp_path.glob("*.mp4")) == []
