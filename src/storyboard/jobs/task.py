"""``generate_storyboard_task``: one job from ``pending`` to ``storyboard_ready`` or ``failed``.

    pending -> parsing -> generating_storyboard -> storyboard_ready | failed   (| cancelled)
    (with review_plan: parsing -> plan_ready, and later -> generating_storyboard)

The job's lease is claimed, the prompt planned (``planning``), the scenes drawn (``runner.py``)
and the outcome written. A job that was interrupted resumes: finished scenes are kept, and a
scene whose prediction was started polls that prediction instead of paying for a new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .. import eventloop
from ..config import Settings, get_settings
from ..db import (
    IDLE_STATUSES,
    claim_statement,
    get_engine,
    get_job_row,
    release_lease,
    release_statement,
    update_job,
)
from ..db.ledger import cost_columns, job_costs
from ..db.models import GeneratedVideo, utcnow
from ..errors import (
    AccountError,
    JobBusyError,
    StoryboardError,
)
from ..images import ImageProvider, LostSearch
from ..plan import Plan
from ..planning import PlanRequest, Usage, plan_job
from ..schemas import GenerationRequest, JobStatus, StoryboardEntry, VideoProgress
from ..webhooks import enqueue_job_event, event_hooks
from .accounting import RunLedger
from .plans import draw_sketches, load_plan, stored_plan
from .progress import mark_undrawn, ready_message
from .records import job_parameters, saved_entries
from .runner import ACTIVE, JobStopped, SceneRunner, choose_seeds, storyboard_json, watch_job
from .runtime import JobRuntime

__all__ = ["generate_storyboard_task", "plan_request", "run_storyboard_job"]

log = logging.getLogger("storyboard.jobs")
T = TypeVar("T")

RUNNABLE = (JobStatus.PENDING.value, *ACTIVE)


def _concurrency(rt: JobRuntime, scenes: int) -> int:
    wanted = rt.settings.scene_concurrency
    return scenes if wanted <= 0 else min(wanted, scenes)


async def run_storyboard_job(
    job_id: int, rt: JobRuntime, *, raise_if_busy: bool = False
) -> str | None:
    """Run job ``job_id`` to a final status and return it (None if there is no such job).

    When another live worker holds the job, return its status, or with ``raise_if_busy`` raise
    JobBusyError so a queue can try again after the lease may have lapsed."""
    log.info("Starting storyboard generation for job %s", job_id)
    row = get_job_row(rt.engine, job_id)
    if row is None:
        log.error("Job %s not found", job_id)
        return None
    if row.status in IDLE_STATUSES:
        log.info("Job %s: already %s, nothing to do", job_id, row.status)
        return row.status
    if job_id in rt.running:
        # A second message for a job this process is running (a redelivery, a re-dispatch):
        # the run under way finishes it; a second run would pay for every scene again.
        if raise_if_busy:  # a queue tries again later (and says so): the message may be a
            raise JobBusyError("already running in this process")  # regeneration's
        log.info("Job %s: already running in this process", job_id)
        return row.status
    rt.running.add(job_id)
    try:
        return await _claim_and_run(job_id, row, rt, raise_if_busy=raise_if_busy)
    finally:
        rt.running.discard(job_id)


async def _claim_and_run(
    job_id: int, row: GeneratedVideo, rt: JobRuntime, *, raise_if_busy: bool
) -> str | None:
    claim = claim_statement(job_id, owner=rt.owner, lease_seconds=rt.settings.lease_seconds)
    try:
        claimed = await rt.writer.execute(job_id, claim)
    except BaseException:
        # Cancelled (or failed) with the claim perhaps committed: give it back now rather than
        # leave the job to wait out a lease nobody renews.
        release_lease(rt.engine, job_id, owner=rt.owner)
        raise
    if not claimed:
        if raise_if_busy:  # the queue tries again later, and says so
            raise JobBusyError("held by another worker")
        log.info("Job %s: held by another worker, leaving it", job_id)
        return row.status
    # Read again now that the job is ours: scenes its last holder finished after the first
    # read must not be drawn (and paid for) again.
    row = get_job_row(rt.engine, job_id) or row
    started = rt.clock()
    released = False
    try:
        status = await _run(job_id, row, rt, started)
        # Its final write freed the lease.
        released = status in (JobStatus.STORYBOARD_READY.value, JobStatus.PLAN_READY.value)
        return status
    except JobStopped:
        final = get_job_row(rt.engine, job_id)
        status = final.status if final else None
        log.info("Job %s: stopped (%s)", job_id, status)
        return status
    except Exception as exc:  # never leave a job in a non-final status
        log.exception("Job %s: unexpected error", job_id)
        _fail_row(rt.engine, job_id, f"Unexpected error: {type(exc).__name__}: {exc}")
        return JobStatus.FAILED.value
    finally:
        if not released:
            await _release(rt, job_id)


async def _release(rt: JobRuntime, job_id: int) -> None:
    try:
        await rt.writer.execute(job_id, release_statement(job_id, owner=rt.owner))
    except (SQLAlchemyError, RuntimeError):
        # The write failed: release directly (the job's outcome stands; this is clean-up).
        log.warning("Job %s: releasing its lease through the writer failed; releasing directly",
                    job_id)
        release_lease(rt.engine, job_id, owner=rt.owner)
    except BaseException:
        release_lease(rt.engine, job_id, owner=rt.owner)  # cancelled: release before leaving
        raise


async def _fail(rt: JobRuntime, job_id: int, message: str, books: RunLedger,
                **extra: Any) -> None:
    """The job failed with ``message``: its row says so (while its lease is this run's), and
    the ledger statements owed are written, with the cost columns, either way."""
    progress = VideoProgress(current_stage=JobStatus.FAILED.value, message=message)
    await rt.writer.update(job_id, touch=False, ledger=books.take(), **cost_columns())
    await rt.writer.update(job_id, unless_status=IDLE_STATUSES, held_by=rt.owner,
                           status=JobStatus.FAILED.value, error_message=message,
                           progress=progress.model_dump_json(), after=_completed(job_id),
                           **extra)


def _completed(job_id: int) -> list[Any]:
    """The ``completed`` webhook (when the job asked for one: the hook reads its row), for a
    write that makes the job final."""
    return [partial(enqueue_job_event, job_id=job_id, event="completed")]


def _fail_row(engine: Engine, job_id: int, message: str) -> None:
    progress = VideoProgress(current_stage=JobStatus.FAILED.value, message=message)
    update_job(engine, job_id, unless_status=IDLE_STATUSES, status=JobStatus.FAILED.value,
               error_message=message, progress=progress.model_dump_json(),
               after=_completed(job_id))


def plan_request(row: GeneratedVideo) -> PlanRequest:
    """What to plan for the job in ``row``: its prompt and parameters (the spec's defaults
    where a parameter is missing)."""
    params = job_parameters(row)
    defaults = GenerationRequest.model_fields
    return PlanRequest(
        prompt=row.prompt,
        duration=params.get("duration", defaults["duration"].default),
        style=params.get("style", defaults["style"].default),
        aspect_ratio=str(params.get("aspect_ratio") or defaults["aspect_ratio"].default),
    )


def _planned_message(plan: Plan, scenes: int) -> str:
    info = plan.planner
    if info.fallback_reason:
        return f"Planned {scenes} scenes with the rules ({info.fallback_reason})"
    who = info.kind if info.model is None else f"{info.kind} ({info.model})"
    return f"Planned {scenes} scenes with {who}"


async def _watched(rt: JobRuntime, job_id: int, work: Awaitable[T]) -> T:
    """``work``'s result, with the job's lease kept alive meanwhile; ``JobStopped`` (and
    ``work`` cancelled) as soon as the job is cancelled or taken over."""
    try:
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(watch_job(rt, job_id))
            task = group.create_task(work)  # type: ignore[arg-type]
            result = await task
            watcher.cancel()
        return result
    except* JobStopped:
        raise JobStopped from None
    except* Exception as failed:  # noqa: BLE001 - the work's own error, unwrapped
        raise failed.exceptions[0] from None


async def _plan(job_id: int, row: GeneratedVideo, rt: JobRuntime,
                books: RunLedger) -> tuple[list[StoryboardEntry], Plan | None] | None:
    """The scenes to work on, and the plan when it was just made: an interrupted run's or a
    regeneration's saved storyboard, or a fresh plan of the prompt. None when planning failed
    (the job is then failed). The language model's calls go into ``books``."""
    entries = saved_entries(row)
    if entries:
        mark_undrawn(entries)  # in flight when interrupted: start again, resuming predictions
        log.info("Job %s: resuming with %d of %d scenes done", job_id,
                 sum(e.generation_status == "completed" for e in entries), len(entries))
        return entries, None
    parsing = VideoProgress(current_stage="parsing", message="Parsing prompt into scenes")
    start_event = event_hooks(job_parameters(row), job_id=job_id, event="start", once=True)
    if not await rt.writer.update(job_id, only_status=RUNNABLE, held_by=rt.owner, status="parsing",
                                  progress=parsing.model_dump_json(), after=start_event):
        raise JobStopped
    log.info("Job %s: Parsing prompt into scenes", job_id)
    asked = str(job_parameters(row).get("planner") or "auto")
    planner = rt.planners.for_request(asked)

    async def created(prediction_id: str) -> None:
        # A language model's prediction is in the ledger before anything waits on it.
        assert planner is not None
        await rt.writer.update(job_id, touch=False, ledger=[books.plan_created(planner,
                                                                               prediction_id)],
                               **cost_columns())

    usage = Usage(on_created=created)
    try:
        # The planning stage bounds itself by PARSING_TIMEOUT and falls back to the rules; what
        # fails here is input the rules refuse. The lease is kept and a cancel heard meanwhile.
        plan, scenes = await _watched(rt, job_id, plan_job(plan_request(row), planner,
                                                           rt.settings, usage))
    except JobStopped:
        # What the model was paid for is the job's, stopped or not.
        books.planned(usage, planner)
        await rt.writer.update(job_id, touch=False, ledger=books.take(), **cost_columns())
        raise
    except Exception as exc:  # noqa: BLE001 - the spec: any parse failure fails the job with it
        message = f"Failed to parse prompt: {exc}"
        log.error("Job %s: %s", job_id, message)
        books.planned(usage, planner)
        await _fail(rt, job_id, message, books)
        return None
    books.planned(usage, planner)
    if asked == "llm" and planner is None:
        plan.planner.fallback_reason = "no language model is configured on the worker that " \
                                       "planned this job"
    log.info("Job %s: Parsed into %d scenes", job_id, len(scenes))
    info = plan.planner
    log.info("Job %s: %s - %d+%d tokens, $%.4f", job_id, _planned_message(plan, len(scenes)),
             info.input_tokens, info.output_tokens, info.cost)
    return [StoryboardEntry(scene=s) for s in scenes], plan


def _fallback_note(plan: Plan | None) -> str:
    """Why the plan is not the language model's, for the progress message ("" if it is)."""
    reason = plan.planner.fallback_reason if plan is not None else None
    return f" - planned with the rules ({reason})" if reason else ""


async def _run(job_id: int, row: GeneratedVideo, rt: JobRuntime, started: float) -> str:
    books = RunLedger(rt, job_id)
    planned = await _plan(job_id, row, rt, books)
    if planned is None:
        return JobStatus.FAILED.value
    entries, plan = planned
    params = job_parameters(row)
    if plan is not None and params.get("review_plan"):
        return await _stop_for_review(job_id, rt, entries, plan, params, books)
    job_plan = plan if plan is not None else load_plan(row)
    runner = SceneRunner(rt, job_id, params, entries, _concurrency(rt, len(entries)), job_plan,
                         books=books)
    # Only a seed we drew at random tells this scene's requests from any other job's (two jobs
    # given the same seed and prompt would ask for identical images).
    findable = (bool(getattr(rt.provider, "finds_lost_predictions", False))
                and runner.params.get("seed") is None)
    if findable:
        # A scene still to draw that already has its seed was perhaps being created when the
        # last run died, without its prediction id ever arriving: the provider may have it.
        runner.unique_seeds = True
        runner.may_be_lost = {e.scene.scene_number for e in entries
                              if e.seed is not None and e.generation_status == "pending"}
        runner.lost_search = LostSearch(since=row.created_at, listed_after=utcnow())
    choose_seeds(entries, runner.params)  # written below, before any request
    todo = sum(1 for e in entries if e.generation_status == "pending")
    progress = runner.progress()
    extra: dict[str, Any] = {}
    if plan is not None:  # just planned: the plan, and who made it
        extra = {"plan": stored_plan(plan)}
        progress.message += _fallback_note(plan)  # say why the plan is not the model's
    # What is billed so far (planning, images of earlier runs) and what is still to pay.
    # A job that did not plan here (a regeneration, a reviewed plan, a resumed run) starts
    # here: ``once`` keeps it to one ``start`` per job.
    start_event = event_hooks(params, job_id=job_id, event="start", once=True)
    if not await rt.writer.update(
            job_id, only_status=RUNNABLE, held_by=rt.owner, ledger=books.take(),
            after=start_event,
            status=JobStatus.GENERATING_STORYBOARD.value,
            progress=progress.model_dump_json(), storyboard_data=runner.storyboard_json(),
            **cost_columns(still_to_pay=todo * rt.provider.price_per_image), **extra):
        await rt.writer.update(job_id, touch=False, **cost_columns())
        raise JobStopped

    try:
        await runner.run_all()
    except AccountError as exc:
        message = str(exc)
        log.error("Job %s: %s", job_id, message)
        for entry in entries:  # no scene is still "generating" in a failed job
            if entry.generation_status in ("generating", "pending"):
                entry.generation_status, entry.error = "failed", message
        await books.settle()
        await _fail(rt, job_id, message, books, storyboard_data=runner.storyboard_json())
        return JobStatus.FAILED.value
    except JobStopped:
        # Which frames were not drawn; and, for a job cancelled (not one another worker took
        # over: its predictions are the new run's), how its predictions ended.
        mark_undrawn(entries)
        current = get_job_row(rt.engine, job_id)
        if current is not None and current.status == JobStatus.CANCELLED.value:
            await books.settle()
        await rt.writer.update(job_id, touch=False, ledger=books.take(), **cost_columns())
        # Only while the lease is still ours: a run stopped because another took the job
        # over must not write its stale storyboard over the new run's.
        await rt.writer.update(job_id, held_by=rt.owner, storyboard_data=runner.storyboard_json())
        raise
    note = _fallback_note(job_plan)
    if runner.budget is not None and runner.budget.reached:
        note += f" - stopped: {runner.budget.reached}"
    return await _finish(rt, job_id, runner, started, note)


async def _stop_for_review(job_id: int, rt: JobRuntime, entries: list[StoryboardEntry],
                           plan: Plan, params: dict[str, Any], books: RunLedger) -> str:
    """Plan first, pay later: draw every frame with the free sketch renderer and stop in
    ``plan_ready``; the images are made when the user asks (``POST .../render``)."""
    # A few milliseconds a frame: off the loop all the same.
    await asyncio.to_thread(draw_sketches, job_id, params, plan, entries, rt.settings.media_dir)
    todo = len(entries) * rt.provider.price_per_image
    progress = VideoProgress(
        current_stage=JobStatus.PLAN_READY.value, scenes_total=len(entries),
        scenes_completed=0, current_scene=0, estimated_completion_seconds=None,
        message=f"Plan ready for review - {_planned_message(plan, len(entries))}")
    if not await rt.writer.update(
            job_id, only_status=RUNNABLE, held_by=rt.owner, ledger=books.take(),
            status=JobStatus.PLAN_READY.value, plan=stored_plan(plan),
            storyboard_data=storyboard_json(entries), progress=progress.model_dump_json(),
            lease_owner=None, lease_expires_at=None,
            **cost_columns(still_to_pay=todo)):
        await rt.writer.update(job_id, touch=False, **cost_columns())
        raise JobStopped
    log.info("Job %s: plan ready for review (%d scenes)", job_id, len(entries))
    return JobStatus.PLAN_READY.value


async def _finish(rt: JobRuntime, job_id: int, runner: SceneRunner, started: float,
                  note: str = "") -> str:
    entries = runner.entries
    failed = sum(1 for e in entries if e.generation_status == "failed")
    done = len(entries) - failed
    await runner.books.settle()  # how every prediction still open ended, and what it cost
    if done == 0:
        message = "All scene images failed to generate"
        log.error("Job %s: %s", job_id, message)
        await _fail(rt, job_id, message, runner.books, storyboard_data=runner.storyboard_json())
        status = JobStatus.FAILED.value
    else:
        # The spec's words, and why the plan is not the language model's when it fell back.
        message = ready_message(failed) + note
        progress = VideoProgress(current_stage=JobStatus.STORYBOARD_READY.value,
                                 scenes_total=len(entries), scenes_completed=len(entries),
                                 current_scene=len(entries), estimated_completion_seconds=0,
                                 message=message)
        if not await rt.writer.update(job_id, only_status=ACTIVE, held_by=rt.owner,
                                      ledger=runner.books.take(),
                                      status=JobStatus.STORYBOARD_READY.value,
                                      progress=progress.model_dump_json(),
                                      storyboard_data=runner.storyboard_json(),
                                      error_message=None, lease_owner=None,
                                      lease_expires_at=None,
                                      after=event_hooks(runner.params, job_id=job_id,
                                                        event="completed"),
                                      **cost_columns()):
            await rt.writer.update(job_id, touch=False, **cost_columns())
            raise JobStopped
        status = JobStatus.STORYBOARD_READY.value
    billed, possible = await asyncio.to_thread(job_costs, rt.engine, job_id)
    log.info("Job %s: %s in %.1fs - %d/%d scenes, %d images made, cost $%.3f%s", job_id, status,
             rt.clock() - started, done, len(entries), runner.produced, billed,
             f" (and up to ${possible:.3f} more, not known)" if possible else "")
    return status


def generate_storyboard_task(
    job_id: int, *, settings: Settings | None = None, provider: ImageProvider | None = None
) -> None:
    """The spec's entry point: run job ``job_id`` to the end in this thread (own event loop).

    Settings come from the environment unless given; the provider from the settings unless given.
    """
    eventloop.run(_run_with_own_runtime(job_id, settings, provider))


async def _run_with_own_runtime(
    job_id: int, settings: Settings | None, provider: ImageProvider | None
) -> None:
    settings = settings or get_settings()
    try:
        rt = JobRuntime.create(settings, provider)
    except StoryboardError as exc:  # e.g. a bad key or model setting: say so on the job
        message = f"Cannot start: {exc}"
        log.error("Job %s: %s", job_id, message)
        _fail_row(get_engine(settings), job_id, message)
        return
    try:
        await run_storyboard_job(job_id, rt)
    finally:
        await rt.aclose()
