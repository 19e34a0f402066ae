"""The contact sheet: a static ``index.html`` beside a job's images, frames in scene order."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from .scenes import beat_label
from .schemas import StoryboardEntry
from .shots import shot_line
from .storage import path_for_url, save_file

__all__ = ["render_contact_sheet", "write_contact_sheet"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f2ee;
color:#1f1f24}
header{padding:24px 32px;background:#1f1f24;color:#f4f2ee}header h1{margin:0;font-size:20px}
header p{margin:6px 0 0;opacity:.75}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:20px;padding:24px 32px}
figure{margin:0;background:#fff;border-radius:10px;overflow:hidden;box-shadow:0 1px 3px #0002}
figure img{width:100%;display:block;background:#ddd}
.missing{aspect-ratio:16/9;display:flex;align-items:center;justify-content:center;color:#b33;
padding:12px;text-align:center;background:#fbeaea}
figcaption{padding:12px 14px;font-size:14px;line-height:1.4}
.meta{display:flex;justify-content:space-between;font-weight:600;margin-bottom:4px}
.beat{color:#d65a31;font-size:12px;text-transform:uppercase;letter-spacing:.04em;
display:flex;justify-content:space-between;gap:8px}.shot{color:#6b6862}
.dialogue{margin-top:6px;font-style:italic;color:#3d3b38}
"""


def render_contact_sheet(
    title: str, entries: Sequence[StoryboardEntry], image_src: Sequence[str | None]
) -> str:
    """HTML for the frames in order; ``image_src[i]`` is where entry i's image is found."""
    total = len(entries)
    figures = []
    for entry, src in zip(entries, image_src, strict=True):
        scene = entry.scene
        if src:
            picture = f'<img src="{html.escape(src)}" alt="Scene {scene.scene_number}">'
        else:
            reason = html.escape(entry.error or ("image file not found" if entry.image_url
                                                 else entry.generation_status))
            picture = f'<div class="missing">No image: {reason}</div>'
        shot = shot_line(scene.shot_size, scene.camera_angle, scene.camera_movement)
        dialogue = (f'<div class="dialogue">\u201c{html.escape(scene.dialogue)}\u201d</div>'
                    if scene.dialogue else "")
        figures.append(
            f"<figure>{picture}<figcaption>"
            f'<div class="meta"><span>Scene {scene.scene_number}</span>'
            f"<span>{scene.duration:g}s</span></div>"
            f'<div class="beat"><span>{html.escape(beat_label(scene, total))}</span>'
            f'<span class="shot">{html.escape(shot)}</span></div>'
            f"<div>{html.escape(scene.description)}</div>{dialogue}</figcaption></figure>"
        )
    seconds = sum(e.scene.duration for e in entries)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{total} scenes, {seconds:g} seconds</p></header>"
        f"<main>{''.join(figures)}</main></body></html>"
    )


def write_contact_sheet(
    media_dir: Path, job_id: int, title: str, entries: Sequence[StoryboardEntry]
) -> Path:
    """Write ``index.html`` in the job's image folder, linking the images relatively."""
    sources: list[str | None] = []
    for entry in entries:
        path = path_for_url(media_dir, entry.image_url) if entry.image_url else None
        sources.append(path.name if path else None)
    page = render_contact_sheet(title, entries, sources)
    return save_file(media_dir, job_id, "index.html", page.encode())
