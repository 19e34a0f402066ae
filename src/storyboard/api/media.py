"""Stored images and the studio's static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from ..errors import StoryboardError
from ..storage import MEDIA_PREFIX, path_for_url
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
async def media(path: str, settings: SettingsDep) -> FileResponse:
    file = path_for_url(settings.media_dir, MEDIA_PREFIX + path)
    if file is None or file.name.startswith(".") or file.suffix.lower() not in _TYPES:
        shown = path if len(path) <= 200 else f"{path[:200]}..."
        raise MediaNotFound(f"No such file: {MEDIA_PREFIX}{shown}")
    return FileResponse(file, media_type=_TYPES[file.suffix.lower()],
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get("/", response_class=HTMLResponse)
async def studio() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})
