"""Where images and exports are kept: files under ``$DATA/media``, served at ``/media/...``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["MEDIA_PREFIX", "job_dir", "path_for_url", "save_file", "save_image", "url_for"]

MEDIA_PREFIX = "/media/"


def job_dir(media_dir: Path, job_id: int) -> Path:
    return media_dir / "jobs" / str(job_id)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # read once: os.umask is process-wide, not thread-safe


def _write_atomically(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a crash never leaves half an image behind a URL.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file 0600: give it the mode any file written here would have, so
        # a web server running as another user can serve the images.
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_image(
    media_dir: Path, job_id: int, scene_number: int, data: bytes, extension: str, version: int = 1
) -> Path:
    """Store one scene image; returns its path. Versions keep earlier images of a scene."""
    path = job_dir(media_dir, job_id) / f"scene-{scene_number:02d}-v{version}.{extension}"
    _write_atomically(path, data)
    return path


def save_file(media_dir: Path, job_id: int, name: str, data: bytes) -> Path:
    path = job_dir(media_dir, job_id) / name
    _write_atomically(path, data)
    return path


def url_for(media_dir: Path, path: Path) -> str:
    """The URL the service serves ``path`` at."""
    try:  # paths made by save_image/save_file sit under media_dir as given: no disk lookups
        relative = path.relative_to(media_dir)
    except ValueError:
        relative = path.resolve().relative_to(media_dir.resolve())
    return MEDIA_PREFIX + relative.as_posix()


def path_for_url(media_dir: Path, url: str) -> Path | None:
    """The file behind a ``/media/...`` URL, or None if it is not one of ours (or escapes)."""
    if not url.startswith(MEDIA_PREFIX) or "\x00" in url:  # no file name holds a NUL
        return None
    root = media_dir.resolve()
    try:
        candidate = (root / url[len(MEDIA_PREFIX):]).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            return None
    except (OSError, ValueError):
        # A name the file system refuses (too long, undecodable bytes): no file of ours.
        return None
    return candidate
