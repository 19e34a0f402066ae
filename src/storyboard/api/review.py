"""Review endpoints: live events, regenerate one scene, re-render, edit the plan, render a
reviewed plan, approve, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Body, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..access import Action
from ..db import IDLE_STATUSES, RUNNABLE_STATUSES, get_job_row
from ..jobs.plans import edit_plan
from ..jobs.review import (
    approve_job,
    cancel_job,
    request_regeneration,
    request_render,
    request_rerender,
    run_holds,
)
from ..planning.edits import PlanEdit, ShotEdit
from ..schemas import (
    MAX_DESCRIPTION_LENGTH,
    MAX_IMAGE_PROMPT_LENGTH,
    JobResponse,
    JobStatus,
    clean_text,
)
from .access import Caller, CallerDep
from .deps import EngineDep, JobId, PlainNumber, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v2/jobs", tags=["review"])

_KEEPALIVE_SECONDS = 15.0


class RegenerateRequest(ShotEdit):
    """Optional new text or shot fields for the scene; none means "same scene, new image".
    Changed shot fields compose the image prompt again from the plan (unless one is given)."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, min_length=1, max_length=MAX_DESCRIPTION_LENGTH)
    # Room for what the parser makes of a full-length prompt and style (a scene's own text can
    # be posted back as it is).
    image_prompt: str | None = Field(default=None, min_length=1, max_length=MAX_IMAGE_PROMPT_LENGTH)

    @field_validator("description", "image_prompt")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)


class ApproveRequest(BaseModel):
    """Who approves, when a reviewer approves through a share link (a token's owner is known)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("name")
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)


def _who(caller: Caller, body: ApproveRequest | None) -> str:
    """Who is acting: a token's owner, a reviewer's own name (through a share link), or the
    local user."""
    principal = caller.principal
    if principal.kind == "share":
        name = body.name if body is not None and body.name else principal.name
        return f"{name} (share link)"
    return principal.name


def _may_redraw(request: Request, caller: Caller, job_id: int) -> None:
    """A redraw sets the job running again: the caller must own it, within its running limit."""
    row = caller.job(job_id, Action.WRITE)
    if row.status not in RUNNABLE_STATUSES:
        request.app.state.limits.check_running(row.owner)


@router.get("/{job_id}/events", summary="Server-Sent Events: progress changes, then done",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(job_id: JobId, engine: EngineDep, settings: SettingsDep,
                 caller: CallerDep) -> StreamingResponse:
    """``progress`` events carry the JobResponse each time it changes; a ``done`` event carries
    the final one, then the stream ends (a finished job gets only its ``done`` event).
    EventSource cannot send a token: pass the job's ``access`` value as ``?access=``."""
    await asyncio.to_thread(caller.job, job_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        last, quiet = None, 0.0
        # Tells EventSource how long to wait before reconnecting if the connection drops.
        yield "retry: 2000\n\n"
        while True:
            # In a thread: one stream per watching browser must not stall the event loop.
            row = await asyncio.to_thread(get_job_row, engine, job_id)
            if row is None:
                return
            body = (await asyncio.to_thread(caller.show, row)).model_dump_json()
            # Done means nothing more will change: a cancelled run may still be landing the
            # frames it had in flight (and their cost) until it lets go of the job.
            final = row.status in IDLE_STATUSES and not run_holds(row)
            if body != last or final:  # the final event always goes out, changed or not
                last, quiet = body, 0.0
                yield f"event: {'done' if final else 'progress'}\ndata: {body}\n\n"
            elif quiet >= _KEEPALIVE_SECONDS:
                # A comment line: keeps proxies from closing a stream that is quiet for a while
                # (a job waiting for a worker); clients ignore it.
                quiet = 0.0
                yield ": keep-alive\n\n"
            if final:
                return
            await asyncio.sleep(settings.events_interval)
            quiet += settings.events_interval

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/{job_id}/scenes/{scene_number}/regenerate", status_code=202,
             response_model=JobResponse, summary="Make a new image for one scene",
             responses={409: {"description": "The job is still running (or still stopping), "
                                             "or its budget cannot pay for the image"},
                        429: {"description": "Today's budget is spent"}})
def regenerate(
    job_id: JobId,
    scene_number: Annotated[int, PlainNumber, Path(ge=1, le=10)],
    request: Request,
    background_tasks: BackgroundTasks,
    engine: EngineDep,
    settings: SettingsDep,
    caller: CallerDep,
    body: Annotated[RegenerateRequest | None, Body()] = None,
) -> JobResponse:
    """Redraw one scene in the background (same retries, progress and cost accounting as a
    job), optionally with a new description, image prompt or shot fields (which compose the
    image prompt again from the plan). The scene's current image is kept in its ``versions``;
    the other scenes are left as they are; approval is cleared. A change of ``dialogue`` or
    ``transition`` alone is saved without a redraw; on a plan under review (``plan_ready``) the
    scene's sketch is drawn again at once."""
    _may_redraw(request, caller, job_id)
    body = body or RegenerateRequest()
    shot = ShotEdit.model_validate(body.model_dump(include=set(ShotEdit.model_fields),
                                                   exclude_unset=True))
    row = request_regeneration(engine, job_id, scene_number, description=body.description,
                               image_prompt=body.image_prompt, shot=shot,
                               media_dir=settings.media_dir, settings=settings)
    if row.status == JobStatus.GENERATING_STORYBOARD.value:  # else nothing is left to draw:
        request.app.state.dispatch(job_id, background_tasks)  # a sketch, or words only
    return caller.show(row)


class RerenderRequest(BaseModel):
    """Which frames to draw again: scene numbers, or "stale" for every frame the plan changed
    under."""

    model_config = ConfigDict(extra="forbid")

    scenes: list[Annotated[int, Field(ge=1, le=10, strict=True)]] | Literal["stale"] = Field(
        min_length=1, max_length=10)


@router.patch("/{job_id}/plan", response_model=JobResponse, summary="Edit the story bible",
              responses={409: {"description": "The job is running"}})
def patch_plan(job_id: JobId, body: PlanEdit, engine: EngineDep,
               settings: SettingsDep, caller: CallerDep) -> JobResponse:
    """Change characters' or locations' names and looks, the style, the title or logline.
    Every frame whose composed image prompt changed is marked ``stale`` (nothing is drawn or
    spent); under review (``plan_ready``) the free sketches are drawn again instead."""
    caller.job(job_id, Action.WRITE)
    return caller.show(edit_plan(engine, job_id, body, settings.media_dir))


@router.post("/{job_id}/rerender", status_code=202, response_model=JobResponse,
             summary="Redraw frames with their current prompts",
             responses={409: {"description": "Running, under review, nothing stale, or over "
                                             "the job's budget"},
                        429: {"description": "Today's budget is spent"}})
def rerender(job_id: JobId, body: RerenderRequest, request: Request,
             background_tasks: BackgroundTasks, engine: EngineDep,
             settings: SettingsDep, caller: CallerDep) -> JobResponse:
    """Redraw the given frames (``{"scenes": [1, 3]}``) or every stale one
    (``{"scenes": "stale"}``), each with its own seed; earlier images are kept as versions."""
    _may_redraw(request, caller, job_id)
    row = request_rerender(engine, job_id, body.scenes, settings=settings)
    request.app.state.dispatch(job_id, background_tasks)
    return caller.show(row)


@router.post("/{job_id}/render", status_code=202, response_model=JobResponse,
             summary="Make the images of a reviewed plan",
             responses={409: {"description": "The plan is not waiting for review, or the "
                                             "frames are over the job's budget"},
                        429: {"description": "Today's budget is spent"}})
def render(job_id: JobId, request: Request, background_tasks: BackgroundTasks,
           engine: EngineDep, settings: SettingsDep, caller: CallerDep) -> JobResponse:
    """A job created with ``review_plan`` stops in ``plan_ready``; this draws its frames."""
    _may_redraw(request, caller, job_id)
    row = request_render(engine, job_id, settings=settings)
    request.app.state.dispatch(job_id, background_tasks)
    return caller.show(row)


@router.post("/{job_id}/approve", response_model=JobResponse,
             summary="Approve a ready storyboard", responses={409: {"description": "Not ready"}})
def approve(job_id: JobId, engine: EngineDep, caller: CallerDep,
            body: Annotated[ApproveRequest | None, Body()] = None) -> JobResponse:
    """Set ``approved``, ``approved_at`` and ``approved_by``; only a ``storyboard_ready`` job
    (409 otherwise). Through a share link that allows it, the reviewer's ``name`` is who."""
    caller.job(job_id, Action.APPROVE)
    return caller.show(approve_job(engine, job_id, approved_by=_who(caller, body)))


@router.post("/{job_id}/cancel", response_model=JobResponse, summary="Stop a running job",
             responses={409: {"description": "Already final"}})
def cancel(job_id: JobId, engine: EngineDep, request: Request,
           caller: CallerDep) -> JobResponse:
    """Stop a pending or running job: no further images, the ones in flight cancelled where the
    provider allows; the status becomes ``cancelled`` (409 if the job has already finished)."""
    caller.job(job_id, Action.WRITE)
    row = cancel_job(engine, job_id)
    request.app.state.cancelled(job_id)
    return caller.show(row)
