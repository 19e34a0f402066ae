"""Review endpoints: live events, regenerate one scene, approve, cancel, exports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Path, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ..db import FINAL_STATUSES, get_job_row
from ..errors import JobNotFoundError
from ..jobs.review import approve_job, cancel_job, request_regeneration
from ..schemas import MAX_PROMPT_LENGTH, JobResponse
from .deps import EngineDep, JobId, SettingsDep
from .views import job_response

__all__ = ["router"]

router = APIRouter(prefix="/api/v2/jobs", tags=["review"])


class RegenerateRequest(BaseModel):
    """Optional new text for the scene; both empty means "same scene, new image"."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_LENGTH)
    image_prompt: str | None = Field(default=None, min_length=1, max_length=MAX_PROMPT_LENGTH)


@router.get("/{job_id}/events", summary="Server-Sent Events: progress changes, then done",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(job_id: JobId, engine: EngineDep, settings: SettingsDep) -> StreamingResponse:
    if get_job_row(engine, job_id) is None:
        raise JobNotFoundError(job_id)

    async def stream() -> AsyncIterator[str]:
        last = None
        while True:
            row = get_job_row(engine, job_id)
            if row is None:
                return
            body = job_response(row).model_dump_json()
            final = row.status in FINAL_STATUSES
            if body != last:
                last = body
                yield f"event: {'done' if final else 'progress'}\ndata: {body}\n\n"
            if final:
                return
            await asyncio.sleep(settings.events_interval)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/{job_id}/scenes/{scene_number}/regenerate", status_code=202,
             response_model=JobResponse, summary="Make a new image for one scene")
async def regenerate(
    job_id: JobId,
    scene_number: Annotated[int, Path(ge=1, le=10)],
    request: Request,
    background_tasks: BackgroundTasks,
    engine: EngineDep,
    body: Annotated[RegenerateRequest | None, Body()] = None,
) -> JobResponse:
    body = body or RegenerateRequest()
    row = request_regeneration(engine, job_id, scene_number, description=body.description,
                               image_prompt=body.image_prompt)
    request.app.state.dispatch(job_id, background_tasks)
    return job_response(row)


@router.post("/{job_id}/approve", response_model=JobResponse,
             summary="Approve a ready storyboard", responses={409: {"description": "Not ready"}})
async def approve(job_id: JobId, engine: EngineDep) -> JobResponse:
    return job_response(approve_job(engine, job_id))


@router.post("/{job_id}/cancel", response_model=JobResponse, summary="Stop a running job",
             responses={409: {"description": "Already final"}})
async def cancel(job_id: JobId, engine: EngineDep) -> JobResponse:
    return job_response(cancel_job(engine, job_id))


def _job(engine: EngineDep, job_id: int) -> JobResponse:
    row = get_job_row(engine, job_id)
    if row is None:
        raise JobNotFoundError(job_id)
    return job_response(row)


@router.get("/{job_id}/export.pdf", summary="The storyboard as a PDF sheet",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def export_pdf(job_id: JobId, engine: EngineDep, settings: SettingsDep) -> Response:
    from ..exports import build_pdf

    data = await asyncio.to_thread(build_pdf, _job(engine, job_id), settings.media_dir)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="storyboard-{job_id}.pdf"'})


@router.get("/{job_id}/export.zip", summary="The images and storyboard JSON as a ZIP",
            response_class=Response, responses={200: {"content": {"application/zip": {}}}})
async def export_zip(job_id: JobId, engine: EngineDep, settings: SettingsDep) -> Response:
    from ..exports import build_zip

    data = await asyncio.to_thread(build_zip, _job(engine, job_id), settings.media_dir)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="storyboard-{job_id}.zip"'})


