"""``storyboard export``: a job's board as a file (PDF sheet, ZIP, CSV shot list, MP4)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from ..db import get_engine
from ..errors import StoryboardError
from .common import fail, load_settings, out

__all__ = ["export"]


def export(
    job_id: Annotated[int, typer.Argument(help="The job's id.", min=1)],
    kind: Annotated[str, typer.Option(
        "--format", "-f", help="pdf (the sheet), zip (images, JSON, shot list, animatic), "
                               "csv (the shot list) or mp4 (the animatic).")] = "pdf",
    destination: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", "-o", help="Where to write it (default: storyboard-<id>.<format> here).")
    ] = None,
) -> None:
    """Write a job's storyboard as a file: PDF sheet, ZIP, CSV shot list or MP4 animatic."""
    from ..api.views import job_response
    from ..db import require_job_row

    kinds = ("pdf", "zip", "csv", "mp4")
    if kind not in kinds:
        raise fail(f"--format: {kind!r} is not one of {', '.join(kinds)}", 2)
    settings = load_settings()
    try:
        job = job_response(require_job_row(get_engine(settings), job_id))
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    if not job.storyboard:
        raise fail(f"job {job_id} has no storyboard yet ({job.status})")
    target = destination or Path(f"storyboard-{job_id}.{kind}")
    if kind == "mp4":
        from ..renders import ensure_animatic

        with out.status(escape(f"Rendering the animatic of job {job_id}")):
            shutil.copyfile(ensure_animatic(job, settings.media_dir), target)
    else:
        from ..exports import build_pdf, build_zip
        from ..jobs.comments import list_comments
        from ..shotlist import build_shot_list

        if kind == "pdf":  # with the reviewers' notes
            data: bytes | str = build_pdf(job, settings.media_dir,
                                          list_comments(get_engine(settings), job_id))
        else:
            data = {"zip": build_zip, "csv": build_shot_list}[kind](job, settings.media_dir)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    out.print(f"Wrote [bold]{escape(str(target))}[/] ({target.stat().st_size:,} bytes)",
              highlight=False)
