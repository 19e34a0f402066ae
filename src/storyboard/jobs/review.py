"""The review loop on a job row: regenerate one scene, approve, cancel.

Each action is one conditional UPDATE, so two people (or a person and a worker) acting at once
cannot leave the row half-changed: the loser gets a JobStateError saying why.
"""

from __future__ import annotations

from sqlalchemy import Engine

from ..db import FINAL_STATUSES, RUNNABLE_STATUSES, require_job_row, update_job
from ..db.models import GeneratedVideo, utcnow
from ..errors import InvalidRequestError, JobStateError
from ..schemas import ImageVersion, JobStatus, VideoProgress
from .task import saved_entries

__all__ = ["approve_job", "cancel_job", "request_regeneration", "run_holds"]

_NOT_DRAWN = "Not drawn: the job was cancelled before this frame was made"


def run_holds(row: GeneratedVideo) -> bool:
    """Whether a run still holds the job (a live lease), so may write to its row again: a
    cancelled run until it notices, a finished one until it lets go."""
    return bool(row.lease_owner and row.lease_expires_at and row.lease_expires_at > utcnow())


def approve_job(engine: Engine, job_id: int) -> GeneratedVideo:
    """Mark a ready storyboard approved (for the video stage)."""
    row = require_job_row(engine, job_id)
    if row.status != JobStatus.STORYBOARD_READY.value:
        raise JobStateError(
            f"Job {job_id} is {row.status}; only a storyboard_ready job can be approved"
        )
    if row.approved:
        return row  # approving twice keeps the first approval's time
    if not update_job(engine, job_id, only_status=[JobStatus.STORYBOARD_READY.value],
                      approved=True, approved_at=utcnow()):
        raise JobStateError(f"Job {job_id} changed while approving; reload and try again")
    return require_job_row(engine, job_id)


def cancel_job(engine: Engine, job_id: int) -> GeneratedVideo:
    """Stop a pending or running job; its worker notices and stops making images."""
    row = require_job_row(engine, job_id)
    if row.status in FINAL_STATUSES:
        raise JobStateError(f"Job {job_id} is already {row.status}; only a running job can be "
                            "cancelled")
    progress = VideoProgress.model_validate_json(row.progress or "{}")
    progress.current_stage, progress.message = JobStatus.CANCELLED.value, "Cancelled"
    progress.estimated_completion_seconds = None
    if not update_job(engine, job_id, only_status=RUNNABLE_STATUSES,
                      status=JobStatus.CANCELLED.value, error_message="Cancelled on request",
                      progress=progress.model_dump_json()):
        raise JobStateError(f"Job {job_id} finished before it could be cancelled")
    return require_job_row(engine, job_id)


def request_regeneration(
    engine: Engine,
    job_id: int,
    scene_number: int,
    *,
    description: str | None = None,
    image_prompt: str | None = None,
) -> GeneratedVideo:
    """Queue one scene for a new image: its current image becomes an earlier version, the job
    goes back to generating_storyboard (approval cleared) and runs only that scene.

    Any finished job qualifies, a cancelled one too, so that cancelling a redraw does not leave
    a storyboard that can be neither fixed nor approved."""
    row = require_job_row(engine, job_id)
    if row.status not in FINAL_STATUSES:
        raise JobStateError(f"Job {job_id} is {row.status}; a scene can be regenerated once the "
                            "job has finished (ready, failed or cancelled)")
    entries = saved_entries(row)
    if not entries:
        raise JobStateError(f"Job {job_id} has no storyboard to regenerate")
    if not 1 <= scene_number <= len(entries):
        raise InvalidRequestError("scene_number", f"must be between 1 and {len(entries)}")
    entry = entries[scene_number - 1]
    if row.status == JobStatus.CANCELLED.value:
        if run_holds(row):
            # Its run has not noticed the cancel yet and may still write; let it stop first.
            raise JobStateError(f"Job {job_id} is still stopping; try again in a moment")
        # The task draws every unfinished scene; after a cancel only the one asked for may be
        # drawn, so the others say why they have no image (each can be regenerated in turn).
        for other in entries:
            if other is not entry and other.generation_status in ("pending", "generating"):
                other.generation_status, other.error = "failed", _NOT_DRAWN
    if entry.image_url or entry.generation_status == "completed":
        entry.versions.append(ImageVersion(
            image_url=entry.image_url, source_url=entry.source_url,
            description=entry.scene.description, image_prompt=entry.scene.image_prompt,
            replaced_at=utcnow(),
        ))
    if description is not None:
        entry.scene.description = description
    if image_prompt is not None:
        entry.scene.image_prompt = image_prompt
    elif description is not None:
        # A new description alone should change the picture too: draw what it now says.
        style = _style(row)
        entry.scene.image_prompt = f"{description}, {style} style, high quality"
    entry.image_url = entry.source_url = entry.error = entry.prediction_id = None
    entry.seed = None  # a new picture wants a new seed (a job's own seed gives the same again)
    entry.generation_status = "pending"
    progress = VideoProgress(
        current_stage=JobStatus.GENERATING_STORYBOARD.value, scenes_total=len(entries),
        scenes_completed=len(entries) - 1, current_scene=scene_number,
        message=f"Regenerating scene {scene_number}/{len(entries)}",
    )
    storyboard = "[" + ",".join(e.model_dump_json() for e in entries) + "]"
    # The lease goes too: the run that made this status is over, though it may not have
    # released its lease yet, and a stale lease would keep the new run from claiming the job.
    if not update_job(engine, job_id, only_status=[row.status],
                      status=JobStatus.GENERATING_STORYBOARD.value, approved=False,
                      approved_at=None, error_message=None, storyboard_data=storyboard,
                      progress=progress.model_dump_json(), lease_owner=None,
                      lease_expires_at=None):
        raise JobStateError(f"Job {job_id} changed meanwhile; reload and try again")
    return require_job_row(engine, job_id)


def _style(row: GeneratedVideo) -> str:
    from .task import job_parameters

    return str(job_parameters(row).get("style") or "cinematic")
