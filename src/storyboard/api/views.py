"""Turning job rows into the API's response models."""

from __future__ import annotations

import json
from typing import Any

from ..db import FINAL_STATUSES
from ..db.models import GeneratedVideo
from ..jobs.plans import load_plan, plan_with_scenes
from ..jobs.progress import mark_undrawn
from ..schemas import JobResponse, StoryboardEntry, VideoProgress

__all__ = ["job_response", "load_storyboard"]


def load_storyboard(row: GeneratedVideo) -> list[StoryboardEntry] | None:
    if not row.storyboard_data:
        return None
    data = json.loads(row.storyboard_data)
    if not data:
        return None
    entries = [StoryboardEntry.model_validate(e) for e in data]
    if row.status in FINAL_STATUSES:
        # Runs store their in-flight scenes as not drawn when they stop; a run that died
        # (SIGKILL) before its job was cancelled could not, so a finished job says it here.
        mark_undrawn(entries)
    return entries


def job_response(row: GeneratedVideo) -> JobResponse:
    """The spec's JobResponse for a row (plus prompt, parameters, actual cost and the plan)."""
    progress: dict[str, Any] = json.loads(row.progress or "{}")
    try:
        parameters = json.loads(row.parameters or "{}")
    except json.JSONDecodeError:
        parameters = {}
    storyboard = load_storyboard(row)
    plan = load_plan(row)
    return JobResponse(
        job_id=row.id,
        status=row.status,
        progress=VideoProgress(**progress),
        storyboard=storyboard,
        video_url=row.video_url,  # as stored: the spec creates jobs with ""
        estimated_cost=row.estimated_cost or 0.0,
        actual_cost=row.actual_cost,
        cost_uncertain=bool(row.possible_cost),
        cost_upper_bound=(round((row.actual_cost or 0.0) + row.possible_cost, 6)
                          if row.possible_cost else None),
        created_at=row.created_at,
        updated_at=row.updated_at or row.created_at,
        approved=bool(row.approved),
        approved_at=row.approved_at,
        error_message=row.error_message,
        prompt=row.prompt,
        parameters=parameters if isinstance(parameters, dict) else None,
        plan=None if plan is None else plan_with_scenes(plan, storyboard or []),
        owner=row.owner,
        approved_by=row.approved_by,
    )
