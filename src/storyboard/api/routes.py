"""The job endpoints: create, read, list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request

from ..access import Action
from ..db import count_jobs, ledger, list_jobs
from ..errors import InvalidRequestError, PermissionDeniedError
from ..jobs.records import create_storyboard_job
from ..planning import LLM_SETTINGS_HINT, llm_kind, planner_kind
from ..planning.llm import DEFAULT_MODELS
from ..schemas import GenerationRequest, JobResponse, JobStatus
from ..webhooks import check_webhook_request
from .access import CallerDep
from .deps import EngineDep, JobId, SettingsDep

__all__ = ["router"]

router = APIRouter(prefix="/api/v2", tags=["jobs"])

# Plain ``def`` handlers: their database calls block, so FastAPI runs them in its thread pool
# rather than on the event loop that also carries every open event stream.


@router.post("/generate", status_code=200, summary="Start a storyboard job",
             responses={422: {"description": "Invalid, or its estimate is over max_cost"},
                        429: {"description": "Today's budget is spent (Retry-After says when "
                                              "it resets)"}})
def generate(
    body: GenerationRequest, background_tasks: BackgroundTasks, request: Request,
    settings: SettingsDep, caller: CallerDep,
) -> dict[str, Any]:
    """Save the job (the caller's) and start it in the background; returns at once with its
    id."""
    if caller.principal.kind in ("share", "link"):
        raise PermissionDeniedError("Not allowed: a share link cannot start jobs")
    if body.planner == "llm" and llm_kind(settings) is None:
        raise InvalidRequestError("planner", f"'llm' cannot be used: {LLM_SETTINGS_HINT}")
    check_webhook_request(settings, url=body.webhook_url)
    request.app.state.limits.check_submission(caller.owner)
    job_id = create_storyboard_job(body, settings=settings, owner=caller.owner)
    request.app.state.dispatch(job_id, background_tasks)
    return {"job_id": job_id, "status": JobStatus.PENDING.value}


@router.get("/jobs/{job_id}", response_model=JobResponse, summary="A job's status and storyboard")
def get_job_status(job_id: JobId, caller: CallerDep) -> JobResponse:
    return caller.show(caller.job(job_id))


@router.get("/jobs", summary="Jobs, newest first (the caller's; an admin's: everyone's)")
def jobs(
    engine: EngineDep,
    caller: CallerDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    value = status.value if status else None
    if caller.principal.kind in ("share", "link"):  # a reviewer's list: the one shared board
        shared = caller.job(caller.principal.job_id or 0)
        rows = [shared] if value in (None, shared.status) else []
        return {"jobs": [caller.show(r).model_dump(mode="json") for r in rows[offset:][:limit]],
                "total": len(rows), "limit": limit, "offset": offset}
    owner = None if caller.lists_all else caller.owner
    rows = list_jobs(engine, status=value, limit=limit, offset=offset, owner=owner)
    return {
        "jobs": [caller.show(r).model_dump(mode="json") for r in rows],
        "total": count_jobs(engine, status=value, owner=owner),
        "limit": limit,
        "offset": offset,
    }


@router.get("/jobs/{job_id}/costs", summary="A job's prediction ledger")
def job_costs(job_id: JobId, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    """Every prediction the job made or adopted (images, and its plan's language-model calls),
    with what each was billed (``billed_cost``) or may have been (``possible_cost``: an outcome
    not known, a create whose answer was lost and could not be found again). ``actual_cost`` is
    the sum of ``billed_cost``; ``cost_uncertain`` says some cost is not known."""
    row = caller.job(job_id, Action.COSTS)
    rows = ledger.job_ledger(engine, job_id)
    possible = round(sum(r.possible_cost for r in rows), 6)
    return {
        "job_id": job_id,
        "actual_cost": round(sum(r.billed_cost for r in rows), 6),
        "possible_cost": possible,
        "cost_uncertain": possible > 0,
        "estimated_cost": row.estimated_cost,
        "predictions": [
            {"scene_number": r.scene_number, "version": r.version, "kind": r.kind,
             "provider": r.provider, "model": r.model, "prediction_id": r.prediction_id,
             "status": r.status, "billed_cost": r.billed_cost, "possible_cost": r.possible_cost,
             "created_at": r.created_at, "finished_at": r.finished_at}
            for r in rows
        ],
    }


@router.get("/whoami", summary="Who the caller is, and what it may do")
def whoami(caller: CallerDep) -> dict[str, Any]:
    """``kind``: ``local`` (single-user mode: no token needed), ``token`` (an owner; ``admin``
    sees every job) or ``share`` (a reviewer through a share link: ``job_id``, and whether it
    may comment and approve). The studio shapes itself by it."""
    p = caller.principal
    return {"kind": p.kind, "name": p.name, "admin": p.admin, "job_id": p.job_id,
            "can_comment": p.kind != "share" or p.can_comment,
            "can_approve": p.kind != "share" or p.can_approve,
            "can_edit": p.kind in ("local", "token")}


@router.get("/planning", summary="Which planners this server can use")
def planning(settings: SettingsDep, caller: CallerDep) -> dict[str, Any]:
    """``default``: what ``planner: auto`` plans with (rules, openai or replicate); ``llm``:
    the language model ``planner: llm`` uses, or null when none is configured (then ``llm``
    is refused with a 422)."""
    kind = llm_kind(settings)
    model = (settings.llm_model or DEFAULT_MODELS[kind]).strip() if kind else None
    return {"default": planner_kind(settings),
            "llm": None if kind is None else {"kind": kind, "model": model}}
