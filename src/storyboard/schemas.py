"""The data shapes of the spec: requests, scenes, storyboard entries, progress, job responses."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .plan import Plan
from .shots import CameraAngle, CameraMovement, ShotSize, Transition

__all__ = [
    "ASPECT_RATIOS",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_DURATION",
    "MAX_IMAGE_PROMPT_LENGTH",
    "MAX_PROMPT_LENGTH",
    "MIN_DURATION",
    "GenerationRequest",
    "ImageVersion",
    "JobResponse",
    "JobStatus",
    "Scene",
    "SceneStatus",
    "StoryboardEntry",
    "VideoProgress",
    "clean_text",
    "plain_message",
]

MAX_PROMPT_LENGTH = 2000
MIN_DURATION = 5
MAX_DURATION = 300
MAX_STYLE_LENGTH = 200
# A scene's description and image prompt: the prompt (and style) with the parser's framing
# words around them.
MAX_DESCRIPTION_LENGTH = MAX_PROMPT_LENGTH + 100
MAX_IMAGE_PROMPT_LENGTH = MAX_PROMPT_LENGTH + MAX_STYLE_LENGTH + 100
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3"]


def plain_message(msg: str) -> str:
    """A validation message for a person: pydantic prefixes our own checks' words with
    "Value error, ", which says nothing to someone fixing their input."""
    return msg.removeprefix("Value error, ")


def clean_text(value: str) -> str:
    """Text a person typed, trimmed; refused when blank or holding a NUL character (which
    PostgreSQL cannot store: the job would fail at the database instead of at the edge)."""
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be empty or only whitespace")
    if "\x00" in stripped:
        raise ValueError("must not contain NUL characters (\\x00)")
    return stripped
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:3")


class JobStatus(enum.StrEnum):
    """Where a job is in its life. Final: storyboard_ready, failed, cancelled. ``plan_ready``
    is not final but idle: no run works on it until the user asks for the images."""

    PENDING = "pending"  # saved, waiting for a worker
    PARSING = "parsing"  # breaking the prompt into scenes
    PLAN_READY = "plan_ready"  # planned, with free sketch frames; waiting for the user to render
    GENERATING_STORYBOARD = "generating_storyboard"  # making the scene images
    STORYBOARD_READY = "storyboard_ready"  # at least one image made; awaiting review
    FAILED = "failed"  # nothing usable; error_message says why
    CANCELLED = "cancelled"  # stopped on request; no further images

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.STORYBOARD_READY, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def is_idle(self) -> bool:
        """No run works on the job: it is final, or its plan waits for the user."""
        return self.is_final or self is JobStatus.PLAN_READY



SceneStatus = Literal["pending", "generating", "completed", "failed"]


class GenerationRequest(BaseModel):
    """What a user asks for. Limits are checked here, at the edge, before any row is written."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_LENGTH,
        description=f"What the video is about (1-{MAX_PROMPT_LENGTH} characters).",
    )
    # Strict: "30" is not a duration and true is not a seed (lax parsing would read both).
    duration: int = Field(
        default=30,
        ge=MIN_DURATION,
        le=MAX_DURATION,
        strict=True,
        description=f"Video length in seconds ({MIN_DURATION}-{MAX_DURATION}).",
    )
    style: str = Field(
        default="cinematic",
        min_length=1,
        max_length=MAX_STYLE_LENGTH,
        description="Visual style applied to every image prompt.",
    )
    aspect_ratio: AspectRatio = Field(default="16:9", description="Frame shape of every image.")
    seed: int | None = Field(
        default=None, ge=0, le=2**31 - 1, strict=True,
        description="Fixes the images for repeatable runs.",
    )
    planner: Literal["auto", "rules", "llm"] = Field(
        default="auto",
        description="Who plans the shots: 'auto' (the server's setting), 'rules' (the fixed "
        "beats, offline) or 'llm' (the configured language model; 422 when none is).",
    )
    webhook_url: str | None = Field(
        default=None, max_length=2000,
        description="An http(s) URL to POST the JobResponse to on the events asked for "
        "(signed as Standard Webhooks do, retried for at least an hour).",
    )
    webhook_events: list[Literal["start", "scene", "completed"]] = Field(
        default_factory=lambda: ["completed"], max_length=3,
        description="Which events to send: start, scene (each finished scene), completed.",
    )
    max_cost: float | None = Field(
        default=None, gt=0, le=1000, strict=True,
        description="The most this job may spend, in USD (default STORYBOARD_MAX_JOB_COST): "
        "refused with 422 when its estimate is higher, stopped when a run would pass it.",
    )
    cache: bool = Field(
        default=True, strict=True,
        description="Reuse the stored image of an identical request made before (free). "
        "false: always pay for fresh images.",
    )
    review_plan: bool = Field(
        default=False,
        strict=True,
        description="Stop after planning (status plan_ready, free sketch frames) so the plan "
        "can be edited; POST /api/v2/jobs/{id}/render then makes the images.",
    )

    @field_validator("prompt", "style")
    @classmethod
    def _clean(cls, value: str) -> str:
        return clean_text(value)


def _shot_field() -> object:
    # Left out of the JSON when unset: a scene without a plan serialises as the spec's.
    return Field(default=None, exclude_if=lambda value: value is None)


class Scene(BaseModel):
    """One beat of the video: what happens, how long, and what to draw.

    The first four fields are the spec's. The rest say the shot (see ``storyboard.plan``): a
    planned scene carries them, a scene stored before planning existed has none of them."""

    scene_number: int = Field(ge=1)
    description: str
    duration: float = Field(gt=0)
    image_prompt: str
    beat: str | None = _shot_field()
    visual: str | None = _shot_field()  # what the camera sees (``description`` is for people)
    shot_size: ShotSize | None = _shot_field()
    camera_angle: CameraAngle | None = _shot_field()
    camera_movement: CameraMovement | None = _shot_field()
    lighting: str | None = _shot_field()
    characters: list[str] | None = _shot_field()  # ids of the plan's characters in frame
    location: str | None = _shot_field()  # id of the plan's location
    dialogue: str | None = _shot_field()
    transition: Transition | None = _shot_field()


class ImageVersion(BaseModel):
    """An earlier image of a scene, kept when the scene is regenerated."""

    image_url: str | None = None
    source_url: str | None = None
    description: str | None = None
    image_prompt: str | None = None
    replaced_at: datetime | None = None


class StoryboardEntry(BaseModel):
    """A scene with its image (``image_url``) or the reason it has none (``error``)."""

    scene: Scene
    image_url: str | None = None
    generation_status: SceneStatus = "pending"
    error: str | None = None
    # Beyond the spec: where the provider served the image before we stored it (its URLs expire),
    # the prediction to resume after a crash, the seed the image is made with (chosen before
    # the provider is asked, so a prediction whose id a crash lost can be found by its inputs),
    # and earlier versions after a regeneration.
    source_url: str | None = None
    prediction_id: str | None = None
    seed: int | None = None
    versions: list[ImageVersion] = Field(default_factory=list)
    # The plan changed under this frame (a character's look, the style ...): its image prompt
    # is no longer the one its image was drawn from (``drawn_prompt``). Cleared when the frame
    # is redrawn. A prompt a person wrote themselves (``prompt_overridden``) is left as it is
    # by edits of the plan.
    stale: bool = False
    drawn_prompt: str | None = Field(default=None, exclude_if=lambda value: value is None)
    prompt_overridden: bool = Field(default=False, exclude_if=lambda value: value is False)
    # The image is an identical earlier request's, reused at no cost (``cache_source`` says
    # which job and scene made it).
    cached: bool = Field(default=False, exclude_if=lambda value: value is False)
    cache_source: dict[str, int | None] | None = Field(
        default=None, exclude_if=lambda value: value is None)


class VideoProgress(BaseModel):
    """Live progress of a job, written after every scene."""

    current_stage: str = "pending"
    scenes_total: int = 0
    scenes_completed: int = 0
    current_scene: int = 0
    estimated_completion_seconds: float | None = None
    message: str = ""


class JobResponse(BaseModel):
    """What ``GET /api/v2/jobs/{job_id}`` returns."""

    job_id: int
    status: str
    progress: VideoProgress
    storyboard: list[StoryboardEntry] | None = None
    video_url: str | None = None
    estimated_cost: float = 0.0
    actual_cost: float | None = None
    # True when some predictions may have been billed though we cannot tell (a create whose
    # answer was lost and could not be found again): ``cost_upper_bound`` is then the most
    # the job can have cost (see GET /api/v2/jobs/{id}/costs).
    cost_uncertain: bool = False
    cost_upper_bound: float | None = None
    created_at: datetime
    updated_at: datetime
    approved: bool = False
    approved_at: datetime | None = None
    error_message: str | None = None
    prompt: str | None = None
    parameters: dict[str, object] | None = None
    plan: Plan | None = None
    # Whose job it is (an API token's name; none in single-user mode), who approved it, and,
    # once the server has tokens, a signed value that opens the job's files, exports and event
    # stream for an hour or two (``?access=...``; its image URLs carry it already).
    owner: str | None = None
    approved_by: str | None = None
    access: str | None = None
