"""The spec's job-record functions: ``save_generated_video`` and ``get_job``."""

from __future__ import annotations

import json
from typing import Any

from ..config import Settings, get_settings
from ..db import create_job, get_engine, get_job_row, job_as_dict
from ..db.models import GeneratedVideo
from ..schemas import GenerationRequest, StoryboardEntry, VideoProgress
from .budget import check_new_job

__all__ = [
    "create_storyboard_job",
    "get_job",
    "job_parameters",
    "save_generated_video",
    "saved_entries",
]


def save_generated_video(
    prompt: str,
    video_url: str = "",
    model_id: str = "v2",
    parameters: dict[str, Any] | None = None,
    status: str = "pending",
    *,
    settings: Settings | None = None,
    owner: str | None = None,
) -> int:
    """Insert a job row and return its id (the spec's signature; ``owner``: whose it is)."""
    queued = VideoProgress(current_stage=status, message="Waiting to start")
    return create_job(
        get_engine(settings or get_settings()),
        prompt=prompt,
        video_url=video_url,
        model_id=model_id,
        parameters=parameters,
        status=status,
        progress=queued.model_dump_json(),
        owner=owner,
    )


def get_job(job_id: int, *, settings: Settings | None = None) -> dict[str, Any] | None:
    """The job row as a dict (JSON columns as text, unset ones left out), or None."""
    row = get_job_row(get_engine(settings or get_settings()), job_id)
    return None if row is None else job_as_dict(row)


def create_storyboard_job(request: GenerationRequest, *, settings: Settings | None = None,
                          owner: str | None = None) -> int:
    """Save a validated request as a pending job (what the CLI and the API do), once its
    estimate is within its cap and the day's budget (nothing is written otherwise)."""
    settings = settings or get_settings()
    check_new_job(get_engine(settings), settings, request)
    return save_generated_video(
        prompt=request.prompt,
        video_url="",
        model_id="v2",
        parameters=request.model_dump(),
        status="pending",
        settings=settings,
        owner=owner,
    )


def job_parameters(row: GeneratedVideo) -> dict[str, Any]:
    try:
        params = json.loads(row.parameters or "{}")
    except json.JSONDecodeError:
        return {}
    return params if isinstance(params, dict) else {}


def saved_entries(row: GeneratedVideo) -> list[StoryboardEntry]:
    """The storyboard an earlier run (or a regeneration request) left in the row."""
    if not row.storyboard_data:
        return []
    try:
        data = json.loads(row.storyboard_data)
        return [StoryboardEntry.model_validate(e) for e in data or []]
    except (ValueError, TypeError):
        return []
