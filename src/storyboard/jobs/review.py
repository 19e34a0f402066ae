"""The review loop on a job row: regenerate one scene, re-render several, render a reviewed
plan, approve, cancel.

Each action is one conditional UPDATE, so two people (or a person and a worker) acting at once
cannot leave the row half-changed: the loser gets a JobStateError saying why.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from ..config import Settings
from ..db import FINAL_STATUSES, RUNNABLE_STATUSES, require_job_row, update_job
from ..db.models import GeneratedVideo, utcnow
from ..errors import InvalidRequestError, JobStateError
from ..plan import LIMITS
from ..planning.edits import ShotEdit, apply_shot_edit, empty_plan
from ..planning.rules import clip_words
from ..schemas import ImageVersion, JobStatus, StoryboardEntry, VideoProgress
from ..webhooks import event_hooks
from .budget import check_redraw
from .plans import draw_sketches, job_style, load_plan
from .records import job_parameters, saved_entries
from .runner import storyboard_json

__all__ = [
    "approve_job",
    "cancel_job",
    "request_regeneration",
    "request_render",
    "request_rerender",
    "run_holds",
]

_NOT_DRAWN = "Not drawn: the job was cancelled before this frame was made"


def run_holds(row: GeneratedVideo) -> bool:
    """Whether a run still holds the job (a live lease), so may write to its row again: a
    cancelled run until it notices, a finished one until it lets go."""
    return bool(row.lease_owner and row.lease_expires_at and row.lease_expires_at > utcnow())


def approve_job(engine: Engine, job_id: int, *, approved_by: str | None = None) -> GeneratedVideo:
    """Mark a ready storyboard approved (for the video stage), by ``approved_by``."""
    row = require_job_row(engine, job_id)
    if row.status != JobStatus.STORYBOARD_READY.value:
        raise JobStateError(
            f"Job {job_id} is {row.status}; only a storyboard_ready job can be approved"
        )
    if row.approved:
        return row  # approving twice keeps the first approval's time
    if not update_job(engine, job_id, only_status=[JobStatus.STORYBOARD_READY.value],
                      approved=True, approved_at=utcnow(), approved_by=approved_by):
        raise JobStateError(f"Job {job_id} changed while approving; reload and try again")
    return require_job_row(engine, job_id)


def cancel_job(engine: Engine, job_id: int) -> GeneratedVideo:
    """Stop a pending or running job (its worker notices and stops making images), or drop a
    plan waiting for review."""
    row = require_job_row(engine, job_id)
    if row.status in FINAL_STATUSES:
        raise JobStateError(f"Job {job_id} is already {row.status}; only a running job (or a "
                            "plan waiting for review) can be cancelled")
    progress = VideoProgress.model_validate_json(row.progress or "{}")
    progress.current_stage, progress.message = JobStatus.CANCELLED.value, "Cancelled"
    progress.estimated_completion_seconds = None
    extra: dict[str, str] = {}
    if row.status == JobStatus.PLAN_READY.value:
        # Its frames were free sketches of the plan, never the images: none was drawn.
        entries = saved_entries(row)
        for entry in entries:
            entry.image_url, entry.generation_status = None, "pending"
        extra["storyboard_data"] = storyboard_json(entries)
    if not update_job(engine, job_id,
                      only_status=(*RUNNABLE_STATUSES, JobStatus.PLAN_READY.value),
                      status=JobStatus.CANCELLED.value, error_message="Cancelled on request",
                      progress=progress.model_dump_json(),
                      after=event_hooks(job_parameters(row), job_id=job_id, event="completed"),
                      **extra):
        raise JobStateError(f"Job {job_id} finished before it could be cancelled")
    return require_job_row(engine, job_id)


def _keep_version(entry: StoryboardEntry) -> None:
    """The scene's current image becomes an earlier version before it is drawn again."""
    if entry.image_url or entry.generation_status == "completed":
        entry.versions.append(ImageVersion(
            image_url=entry.image_url, source_url=entry.source_url,
            description=entry.scene.description, image_prompt=entry.scene.image_prompt,
            replaced_at=utcnow(),
        ))


def _queue_redraw(engine: Engine, row: GeneratedVideo, entries: list[StoryboardEntry],
                  numbers: list[int], *, message: str, versions_kept: bool = False,
                  settings: Settings | None = None) -> GeneratedVideo:
    """Send the job back to generating_storyboard (approval cleared) with only the scenes
    ``numbers`` to draw; each one's image is kept as an earlier version. The other scenes
    stay as they are, but on a cancelled job, whose unfinished scenes the task would draw
    too: those say why they have no image (each can be redrawn in turn). With ``settings``,
    a redraw the job's budget or the day's cannot pay for is refused first (the run would
    stop at the cap anyway; this says so before anything changes)."""
    chosen = [e for e in entries if e.scene.scene_number in numbers]
    if settings is not None:
        check_redraw(engine, settings, row.id, job_parameters(row), len(chosen))
    if row.status == JobStatus.CANCELLED.value:
        for other in entries:
            if other not in chosen and other.generation_status in ("pending", "generating"):
                other.generation_status, other.error = "failed", _NOT_DRAWN
    for entry in chosen:
        if not versions_kept:
            _keep_version(entry)
        entry.image_url = entry.source_url = entry.error = entry.prediction_id = None
        entry.generation_status, entry.stale = "pending", False
    progress = VideoProgress(
        current_stage=JobStatus.GENERATING_STORYBOARD.value, scenes_total=len(entries),
        scenes_completed=len(entries) - len(chosen), current_scene=min(numbers),
        message=message,
    )
    # The lease goes too: the run that made this status is over, though it may not have
    # released its lease yet, and a stale lease would keep the new run from claiming the job.
    if not update_job(engine, row.id, only_status=[row.status], unchanged_since=row.updated_at,
                      status=JobStatus.GENERATING_STORYBOARD.value, approved=False,
                      approved_at=None, approved_by=None, error_message=None,
                      storyboard_data=storyboard_json(entries),
                      progress=progress.model_dump_json(), lease_owner=None,
                      lease_expires_at=None):
        raise JobStateError(f"Job {row.id} changed meanwhile; reload and try again")
    return require_job_row(engine, row.id)


def _finished_storyboard(row: GeneratedVideo, action: str) -> list[StoryboardEntry]:
    """The storyboard of a finished job whose run has let go; ``JobStateError`` otherwise."""
    if row.status not in FINAL_STATUSES:
        raise JobStateError(f"Job {row.id} is {row.status}; {action} once the job has "
                            "finished (ready, failed or cancelled)")
    entries = saved_entries(row)
    if not entries:
        raise JobStateError(f"Job {row.id} has no storyboard to redraw")
    if row.status == JobStatus.CANCELLED.value and run_holds(row):
        # Its run has not noticed the cancel yet and may still write; let it stop first.
        raise JobStateError(f"Job {row.id} is still stopping; try again in a moment")
    return entries


def request_regeneration(
    engine: Engine,
    job_id: int,
    scene_number: int,
    *,
    description: str | None = None,
    image_prompt: str | None = None,
    shot: ShotEdit | None = None,
    media_dir: Path | None = None,
    settings: Settings | None = None,
) -> GeneratedVideo:
    """Queue one scene for a new image, optionally with new text or shot fields (the image
    prompt is then composed again from the plan, unless one is given): its current image
    becomes an earlier version, the job goes back to generating_storyboard (approval cleared)
    and runs only that scene, with a new seed.

    Any finished job qualifies, a cancelled one too, so that cancelling a redraw does not leave
    a storyboard that can be neither fixed nor approved. On a job whose plan waits for review,
    the edit is made and the scene's free sketch drawn again at once (``media_dir``). An edit
    that leaves the picture as it is (only the dialogue or the transition) is saved without a
    redraw: nothing is spent."""
    row = require_job_row(engine, job_id)
    reviewing = row.status == JobStatus.PLAN_READY.value
    entries = saved_entries(row) if reviewing else _finished_storyboard(
        row, "a scene can be regenerated")
    if not 1 <= scene_number <= len(entries):
        raise InvalidRequestError("scene_number", f"must be between 1 and {len(entries)}")
    entry = entries[scene_number - 1]
    scene = entry.scene
    plan = load_plan(row)
    style = job_style(row)
    shot = shot or ShotEdit()
    redraw = not (shot.model_fields_set and not shot.changes_the_picture
                  and description is None and image_prompt is None)
    if not reviewing and redraw:
        _keep_version(entry)  # what the scene was before this edit
    if description is not None:
        scene.description = description
    if description is not None and "visual" not in shot.model_fields_set and plan is not None:
        # A new description alone should change the picture too: draw what it now says.
        shot = shot.model_copy(update={"visual": clip_words(description, LIMITS["visual"])})
        shot.model_fields_set.add("visual")
    if shot.model_fields_set:
        if plan is None and (shot.characters or shot.location):
            raise InvalidRequestError("characters" if shot.characters else "location",
                                      f"Job {job_id} has no plan (it was made before plans)")
        apply_shot_edit(scene, shot, plan or empty_plan(), style)
    elif description is not None:  # a storyboard made before plans: the old rule
        scene.image_prompt = f"{description}, {style} style, high quality"
    if image_prompt is not None:
        scene.image_prompt = image_prompt  # a person's own words: plan edits leave them be
        entry.prompt_overridden = True
    elif shot.changes_the_picture or description is not None:
        entry.prompt_overridden = False  # composed again from the plan
    if reviewing or not redraw:
        if reviewing and plan is not None and media_dir is not None:
            draw_sketches(job_id, job_parameters(row), plan, [entry], media_dir)
        # The board changed (its words, if not its pictures): a finished one is reviewed again.
        approval = {} if reviewing else {"approved": False, "approved_at": None,
                                         "approved_by": None}
        if not update_job(engine, job_id, only_status=[row.status],
                          unchanged_since=row.updated_at,
                          storyboard_data=storyboard_json(entries), **approval):
            raise JobStateError(f"Job {job_id} changed meanwhile; reload and try again")
        return require_job_row(engine, job_id)
    # A new picture wants a new seed (a job's own seed gives the same again).
    entry.seed = None
    return _queue_redraw(engine, row, entries, [scene_number], versions_kept=True,
                         message=f"Regenerating scene {scene_number}/{len(entries)}",
                         settings=settings)


def request_rerender(engine: Engine, job_id: int, scenes: list[int] | str, *,
                     settings: Settings | None = None) -> GeneratedVideo:
    """Redraw ``scenes`` (numbers, or ``"stale"``: every frame the plan changed under) with
    their current prompts and their own seeds; earlier images are kept as versions."""
    row = require_job_row(engine, job_id)
    if row.status == JobStatus.PLAN_READY.value:
        raise JobStateError(f"Job {job_id}'s plan is waiting for review: render it first "
                            f"(POST /api/v2/jobs/{job_id}/render)")
    entries = _finished_storyboard(row, "frames can be re-rendered")
    if scenes == "stale":
        numbers = [e.scene.scene_number for e in entries if e.stale]
        if not numbers:
            raise JobStateError(f"Job {job_id} has no stale frames to re-render")
    else:
        numbers = sorted(set(scenes))
        for number in numbers:
            if not 1 <= number <= len(entries):
                raise InvalidRequestError("scenes", f"scene numbers must be between 1 and "
                                          f"{len(entries)} (got {number})")
    return _queue_redraw(engine, row, entries, numbers, settings=settings,
                         message=f"Re-rendering {len(numbers)} of {len(entries)} frames")


def request_render(engine: Engine, job_id: int, *,
                   settings: Settings | None = None) -> GeneratedVideo:
    """Make the images of a plan that waited for review: every scene drawn by the job's image
    provider (the free sketches go; the estimate made at planning stands)."""
    row = require_job_row(engine, job_id)
    if row.status != JobStatus.PLAN_READY.value:
        raise JobStateError(f"Job {job_id} is {row.status}; only a job whose plan waits for "
                            "review (plan_ready) can be rendered")
    entries = saved_entries(row)
    if settings is not None:
        check_redraw(engine, settings, job_id, job_parameters(row), len(entries))
    for entry in entries:
        entry.image_url = entry.source_url = entry.error = entry.prediction_id = None
        entry.generation_status, entry.stale = "pending", False
    progress = VideoProgress(
        current_stage=JobStatus.GENERATING_STORYBOARD.value, scenes_total=len(entries),
        scenes_completed=0, current_scene=1,
        message=f"Rendering {len(entries)} frames from the reviewed plan")
    if not update_job(engine, job_id, only_status=[row.status], unchanged_since=row.updated_at,
                      status=JobStatus.GENERATING_STORYBOARD.value,
                      storyboard_data=storyboard_json(entries),
                      progress=progress.model_dump_json()):
        raise JobStateError(f"Job {job_id} changed meanwhile; reload and try again")
    return require_job_row(engine, job_id)
