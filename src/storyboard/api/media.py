"""Stored images and the studio's static files."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from ..errors import JobNotFoundError, StoryboardError
from ..storage import MEDIA_PREFIX, path_for_url
from .access import CallerDep
from .deps import SettingsDep

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
# Explicit types: the platform's mimetypes table does not always know webp.
_TYPES = {".png": "image/png", ".webp": "image/webp", ".jpg": "image/jpeg",
          ".jpeg": "image/jpeg", ".html": "text/html; charset=utf-8"}

router = APIRouter(include_in_schema=False)


class MediaNotFound(StoryboardError):
    """No stored file at that path (or the path tried to leave the media folder)."""


@router.get("/media/{path:path}")
async def media(path: str, settings: SettingsDep, caller: CallerDep) -> FileResponse:
    file = path_for_url(settings.media_dir, MEDIA_PREFIX + path)
    shown = path if len(path) <= 200 else f"{path[:200]}..."
    if file is None or file.name.startswith(".") or file.suffix.lower() not in _TYPES:
        raise MediaNotFound(f"No such file: {MEDIA_PREFIX}{shown}")
    cache = "public, max-age=3600"
    if caller.principal.kind != "local":
        # Once the server has tokens, a file is its job's: served to whoever may read the job
        # (a token, a share link, or the job's signed link), and kept out of shared caches.
        job = _job_of(path)
        if job is None:
            raise MediaNotFound(f"No such file: {MEDIA_PREFIX}{shown}")
        try:
            await asyncio.to_thread(caller.job, job)
        except JobNotFoundError:
            raise MediaNotFound(f"No such file: {MEDIA_PREFIX}{shown}") from None
        cache = "private, max-age=3600"
    return FileResponse(file, media_type=_TYPES[file.suffix.lower()],
                        headers={"Cache-Control": cache})


def _job_of(path: str) -> int | None:
    """The job a media path belongs to (``jobs/<id>/...``), or None."""
    match = re.fullmatch(r"jobs/([1-9][0-9]{0,9})/[^/].*", path)
    return int(match.group(1)) if match and int(match.group(1)) <= 2**31 - 1 else None


@router.get("/", response_class=HTMLResponse)
@router.get("/s", response_class=HTMLResponse)  # a share link: /s#<token>, read by the studio
async def studio() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
