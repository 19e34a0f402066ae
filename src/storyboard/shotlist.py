"""The shot list: one row per scene, as an editor or a first AD reads a board. Pure.

CSV by RFC 4180 (every field quoted where needed, CRLF line ends) in UTF-8 with a byte-order
mark (so a spreadsheet opens it as UTF-8, not as the machine's code page), with a header row.
Timecodes are SMPTE ``HH:MM:SS:FF`` at 24 frames a second, each scene starting where the
previous one ended. A cell a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-`` or ``@``, or a tab or carriage return) is neutralised with a leading apostrophe: a prompt
is text a stranger typed, never a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from .plan import Plan, cast_names
from .scenes import beat_label
from .schemas import JobResponse, StoryboardEntry
from .storage import path_for_url

__all__ = ["COLUMNS", "FPS", "build_shot_list", "timecode"]

FPS = 24
COLUMNS = (
    "scene", "start", "end", "duration", "beat", "shot size", "angle", "movement", "lighting",
    "characters", "location", "description", "dialogue", "transition", "image prompt",
    "image file", "status",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def timecode(seconds: float, fps: int = FPS) -> str:
    """``seconds`` as SMPTE ``HH:MM:SS:FF`` (frames rounded to the nearest)."""
    frames = round(seconds * fps)
    whole, frame = divmod(frames, fps)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{frame:02d}"


def _safe(value: object) -> str:
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA) else text


def _words(value: str | None) -> str:
    return (value or "").replace("_", " ")


def _names(ids: Sequence[str] | None, plan: Plan | None) -> str:
    return ", ".join(cast_names(ids, plan))


def _place(location_id: str | None, plan: Plan | None) -> str:
    location = plan.location(location_id) if plan is not None else None
    return location.name if location is not None else (location_id or "")


def _image_file(entry: StoryboardEntry, media_dir: Path | None) -> str:
    """The image's name as the ZIP export holds it (``scene-01.webp``), if there is one."""
    if not entry.image_url:
        return ""
    path = path_for_url(media_dir, entry.image_url) if media_dir is not None else None
    suffix = path.suffix.lower() if path is not None else Path(entry.image_url).suffix.lower()
    return f"scene-{entry.scene.scene_number:02d}{suffix}"


def build_shot_list(job: JobResponse, media_dir: Path | None = None) -> str:
    """The job's shot list as CSV text (with its byte-order mark)."""
    entries = sorted(job.storyboard or [], key=lambda e: e.scene.scene_number)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    start = 0.0
    for entry in entries:
        scene = entry.scene
        end = start + scene.duration
        writer.writerow(_safe(cell) for cell in (
            scene.scene_number, timecode(start), timecode(end), f"{scene.duration:g}",
            beat_label(scene, len(entries)), _words(scene.shot_size), _words(scene.camera_angle),
            _words(scene.camera_movement), scene.lighting, _names(scene.characters, job.plan),
            _place(scene.location, job.plan), scene.description, scene.dialogue,
            _words(scene.transition), scene.image_prompt, _image_file(entry, media_dir),
            entry.generation_status,
        ))
        start = end
    return "\ufeff" + out.getvalue()
