"""Export endpoints: the storyboard as a PDF sheet, a ZIP, a CSV shot list and an animatic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from ..errors import JobStateError
from ..schemas import JobResponse
from .access import Caller, CallerDep
from .deps import JobId, SettingsDep
from .views import job_response

__all__ = ["router"]

router = APIRouter(prefix="/api/v2/jobs", tags=["exports"])

# An export's URL stays the same while the board changes under it (a redraw, an edit): a
# browser may keep a copy, but must ask again before using it. Private: behind a token.
_REVALIDATE = {"Cache-Control": "private, no-cache"}


async def _job(caller: Caller, job_id: int) -> JobResponse:
    """The job, as the files are made from it (stored paths, no signed links)."""
    return await asyncio.to_thread(lambda: job_response(caller.job(job_id)))


async def _download(job_id: int, caller: Caller, settings: SettingsDep,
                    build: Callable[[JobResponse, Path], bytes | str], kind: str,
                    media_type: str) -> Response:
    job = await _job(caller, job_id)
    data = await asyncio.to_thread(build, job, settings.media_dir)
    return Response(data, media_type=media_type, headers={
        **_REVALIDATE,
        "Content-Disposition": f'attachment; filename="storyboard-{job_id}.{kind}"'})


@router.get("/{job_id}/export.pdf", summary="The storyboard as a PDF sheet",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def export_pdf(job_id: JobId, caller: CallerDep, settings: SettingsDep) -> Response:
    """Frames in a grid with their shot, description and dialogue, then the reviewers' notes
    (comments and change requests) by frame."""
    from ..exports import build_pdf
    from ..jobs.comments import list_comments

    notes = await asyncio.to_thread(list_comments, caller.engine, job_id)
    return await _download(job_id, caller, settings,
                           lambda job, media: build_pdf(job, media, notes), "pdf",
                           "application/pdf")


@router.get("/{job_id}/export.zip", summary="Images, JSON, contact sheet, shot list, animatic",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
async def export_zip(job_id: JobId, caller: CallerDep, settings: SettingsDep) -> Response:
    from ..exports import build_zip

    return await _download(job_id, caller, settings, build_zip, "zip", "application/zip")


@router.get("/{job_id}/export.csv", summary="The shot list (CSV, one row per scene)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def export_csv(job_id: JobId, caller: CallerDep, settings: SettingsDep) -> Response:
    """Scene, start and end timecode, duration, beat, shot size, angle, movement, lighting,
    characters, location, description, dialogue, transition, image prompt, image file, status.
    RFC 4180, UTF-8 with a byte-order mark, a header row; formula-like cells neutralised."""
    from ..shotlist import build_shot_list

    return await _download(job_id, caller, settings, build_shot_list, "csv",
                           "text/csv; charset=utf-8")


@router.get("/{job_id}/export.mp4", summary="The animatic (H.264 MP4)",
            response_class=FileResponse, responses={
                200: {"content": {"video/mp4": {}}},
                409: {"description": "The job has no storyboard yet"}})
async def export_mp4(job_id: JobId, caller: CallerDep, settings: SettingsDep) -> FileResponse:
    """Each frame held for its scene's duration, the camera's move played on the still, the
    transitions, a caption strip and a title card. Rendered once per version of the board and
    kept; a changed board renders anew. Supports range requests (the studio's player seeks)."""
    from ..renders import ensure_animatic

    job = await _job(caller, job_id)
    if not job.storyboard:
        raise JobStateError(f"Job {job_id} has no storyboard to render yet")
    path = await asyncio.to_thread(ensure_animatic, job, settings.media_dir)
    return FileResponse(path, media_type="video/mp4", filename=f"storyboard-{job_id}.mp4",
                        content_disposition_type="inline", headers=_REVALIDATE)
