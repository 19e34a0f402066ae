"""Rendered animatics, kept: one file per version of a storyboard, made once.

An animatic takes seconds to render, and a board is exported again and again (the studio's
player, the ZIP, the CLI). Its file is named by a hash of everything it is drawn from (each
scene's text, shot, duration and image, the title, the frame shape), so a changed board renders
anew and an unchanged one is served from disk. Two requests for the same version render it
once in a process (a lock per file); across processes the rename is atomic, so the worst case
is one render too many, never a broken file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from .schemas import JobResponse
from .storage import job_dir, path_for_url

__all__ = ["animatic_path", "ensure_animatic", "rendered_animatic"]

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _version(job: JobResponse, media_dir: Path) -> str:
    """A hash of what the animatic shows: changes with any scene, image, title or shape."""
    scenes = []
    for entry in sorted(job.storyboard or [], key=lambda e: e.scene.scene_number):
        path = path_for_url(media_dir, entry.image_url) if entry.image_url else None
        stamp = path.stat().st_mtime_ns if path is not None else None
        scenes.append([entry.scene.model_dump(mode="json"), entry.image_url, stamp,
                       entry.generation_status, entry.error])
    title = [job.plan.title, job.plan.logline] if job.plan is not None else [job.prompt]
    shape = (job.parameters or {}).get("aspect_ratio")
    text = json.dumps([scenes, title, shape], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def animatic_path(job: JobResponse, media_dir: Path) -> Path:
    """Where this version of the job's animatic is (or will be) kept."""
    return job_dir(media_dir, job.job_id) / f"animatic-{_version(job, media_dir)}.mp4"


def rendered_animatic(job: JobResponse, media_dir: Path) -> Path | None:
    """This version's animatic if it was rendered already, else None."""
    path = animatic_path(job, media_dir)
    return path if path.is_file() else None


def ensure_animatic(job: JobResponse, media_dir: Path) -> Path:
    """This version's animatic, rendered now if it was not yet (blocking: call in a thread).
    Earlier versions' files are removed once the new one is in place."""
    from .animatic import write_animatic

    path = animatic_path(job, media_dir)
    with _locks_guard:
        lock = _locks.setdefault(path, threading.Lock())
    with lock:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            # A hidden name (never served) that still ends in .mp4 (the container's format).
            partial = path.with_name(f".{path.stem}.{threading.get_ident()}.mp4")
            try:
                write_animatic(job, media_dir, partial)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
            for older in path.parent.glob("animatic-*.mp4"):
                if older != path:
                    older.unlink(missing_ok=True)
    return path
