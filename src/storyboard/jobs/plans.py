"""A job's plan in the database: stored, read, and its bible edited.

The ``plan`` column keeps the bible and who planned it; the scenes live in ``storyboard_data``
(a plan read back gets them from there), so a shot edited on the storyboard is never out of
step with the plan. Editing the bible composes every prompt again and marks the frames whose
prompt changed ``stale``: nothing is drawn or spent until they are re-rendered. On a job whose
plan waits for review (``plan_ready``) the free sketch frames are drawn again at once instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine

from ..db import FINAL_STATUSES, require_job_row, update_job
from ..db.models import GeneratedVideo
from ..errors import JobStateError
from ..images.sketch import render_sketch
from ..plan import Plan
from ..planning.compose import planned_scene
from ..planning.edits import PlanEdit, apply_plan_edit, recompose
from ..schemas import JobStatus, StoryboardEntry
from ..storage import path_for_url, save_file, url_for
from .records import job_parameters, saved_entries
from .runner import scene_request, storyboard_json

__all__ = [
    "draw_sketches",
    "edit_plan",
    "job_style",
    "load_plan",
    "plan_with_scenes",
    "sketch_name",
    "stored_plan",
]


def stored_plan(plan: Plan) -> str:
    """The plan as the ``plan`` column keeps it: without its scenes (the storyboard has them)."""
    return plan.model_copy(update={"scenes": []}).model_dump_json()


def load_plan(row: GeneratedVideo) -> Plan | None:
    """The job's plan (without scenes), or None for a job made before plans existed."""
    if not row.plan:
        return None
    try:
        return Plan.model_validate_json(row.plan)
    except ValidationError:
        return None


def plan_with_scenes(plan: Plan, entries: list[StoryboardEntry]) -> Plan:
    """``plan`` with its scenes read off the storyboard, as the API shows it."""
    scenes = [s for s in (planned_scene(e.scene) for e in entries) if s is not None]
    return plan.model_copy(update={"scenes": scenes})


def job_style(row: GeneratedVideo) -> str:
    """The style the job's images are drawn in (the request's)."""
    return str(job_parameters(row).get("style") or "cinematic")


def sketch_name(scene_number: int, data: bytes) -> str:
    """The file of a scene's free sketch frame while its plan waits for review. Named by its
    content: an edited shot's new sketch gets a new URL, never one a browser has cached."""
    return f"scene-{scene_number:02d}-plan-{hashlib.sha256(data).hexdigest()[:10]}.png"


def draw_sketches(job_id: int, params: dict[str, Any], plan: Plan,
                  entries: list[StoryboardEntry], media_dir: Path) -> None:
    """Draw the free sketch frames of a plan under review (a few ms each)."""
    for entry in entries:
        request = scene_request(entry, params, len(entries), "png", plan=plan)
        data = render_sketch(request)
        path = save_file(media_dir, job_id, sketch_name(entry.scene.scene_number, data), data)
        earlier = path_for_url(media_dir, entry.image_url) if entry.image_url else None
        if earlier is not None and earlier != path and "-plan-" in earlier.name:
            earlier.unlink(missing_ok=True)  # the sketch this one replaces
        entry.image_url = url_for(media_dir, path)
        entry.generation_status = "completed"


def editable(row: GeneratedVideo, action: str) -> None:
    """Raise ``JobStateError`` unless no run works on the job (final, or plan_ready)."""
    from .review import run_holds

    if row.status not in (*FINAL_STATUSES, JobStatus.PLAN_READY.value):
        raise JobStateError(f"Job {row.id} is {row.status}; {action} once the job has finished "
                            "(or while its plan waits for review)")
    if run_holds(row):
        raise JobStateError(f"Job {row.id} is still stopping; try again in a moment")


def edit_plan(engine: Engine, job_id: int, edit: PlanEdit, media_dir: Path) -> GeneratedVideo:
    """Apply ``edit`` to the job's bible: prompts composed again, changed frames marked stale
    (or, under review, their sketches drawn again). Nothing is spent."""
    row = require_job_row(engine, job_id)
    editable(row, "its plan can be edited")
    plan = load_plan(row)
    if plan is None:
        raise JobStateError(f"Job {job_id} has no plan to edit (it was made before plans)")
    entries = saved_entries(row)
    new = apply_plan_edit(plan, edit)
    changed = recompose(entries, plan, new, job_style(row))
    approval: dict[str, Any] = {}
    if row.status == JobStatus.PLAN_READY.value:
        # Sketches are free: drawn again at once, so nothing is stale under review.
        for entry in entries:
            entry.stale, entry.drawn_prompt = False, None
        draw_sketches(job_id, job_parameters(row), new, entries, media_dir)
    elif changed:  # the board no longer matches what was approved: review it again
        approval = {"approved": False, "approved_at": None, "approved_by": None}
    if not update_job(engine, job_id, only_status=[row.status], unchanged_since=row.updated_at,
                      plan=stored_plan(new), storyboard_data=storyboard_json(entries),
                      **approval):
        raise JobStateError(f"Job {job_id} changed meanwhile; reload and try again")
    return require_job_row(engine, job_id)
