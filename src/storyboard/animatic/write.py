"""``write_animatic``, the entry point: checks the job, lays out its timeline, streams the
frames into the encoder, and puts the finished file in place atomically.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..schemas import JobResponse
from .encoder import Encoder
from .frames import WORKERS, Frames
from .planes import frame_size
from .timeline import Timeline

__all__ = ["write_animatic"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The video gets the mode any file written here would get (a temporary file is made 0600), so
# a web server running as another user can serve it. Read once: os.umask is process-wide.
_FILE_MODE = 0o666 & ~_umask()


def write_animatic(job: JobResponse, media_dir: Path, out: Path, *, height: int = 720,
                   fps: int = 24) -> Path:
    """Render ``job``'s storyboard as an animatic MP4 at ``out``; returns ``out``.

    H.264 (``yuv420p``, moov first) in the job's aspect ratio with the short side ``height``
    pixels, at ``fps`` frames a second; each scene lasts its duration, with its camera move,
    its transition, a caption band, and a title card over the start of scene 1. Scene images
    are read from the files behind the job's ``/media/...`` URLs under ``media_dir``; a scene
    without one gets a placeholder saying why. The file is written beside ``out`` and moved
    into place when complete, so ``out`` never holds half a video.

    Raises ValueError for a job without scenes (nothing to play) or a bad ``height``/``fps``.
    """
    out = Path(out)
    entries = sorted(job.storyboard or [], key=lambda e: e.scene.scene_number)
    if not entries:
        raise ValueError(f"job {job.job_id} has no storyboard: there are no scenes to play")
    if height < 16 or fps < 1:
        raise ValueError(f"height must be >= 16 and fps >= 1 (got {height}, {fps})")
    params = job.parameters or {}
    size = frame_size(str(params.get("aspect_ratio") or "16:9"), height)
    timeline = Timeline.of(entries, fps)
    if timeline.total < 1:
        raise ValueError(f"job {job.job_id}'s scenes last less than one frame at {fps} fps")

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=".tmp-animatic-", suffix=".mp4")
    os.close(fd)
    tmp = Path(name)
    try:
        frames = Frames(job, entries, media_dir, size, timeline)
        with Encoder(tmp, size, fps) as encoder, \
                ThreadPoolExecutor(WORKERS, thread_name_prefix="animatic") as pool:
            for frame, starts_scene in frames.frames(pool):
                encoder.send(frame, keyframe=starts_scene)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
