"""Storyboard: turn a video prompt into scenes with images, ready for review.

The public API is the spec's names; everything else lives in submodules.
"""

from .config import Settings, get_settings
from .errors import StoryboardError
from .images.replicate import ReplicateClient
from .jobs import generate_storyboard_task, get_job, save_generated_video
from .scenes import DEFAULT_SCENE_DURATION, parse_prompt_to_scenes
from .schemas import (
    GenerationRequest,
    JobResponse,
    JobStatus,
    Scene,
    StoryboardEntry,
    VideoProgress,
)

__all__ = [
    "DEFAULT_SCENE_DURATION",
    "IMAGE_GENERATION_TIMEOUT",
    "MAX_RETRIES",
    "PARSING_TIMEOUT",
    "GenerationRequest",
    "JobResponse",
    "JobStatus",
    "ReplicateClient",
    "Scene",
    "Settings",
    "StoryboardEntry",
    "StoryboardError",
    "VideoProgress",
    "generate_storyboard_task",
    "get_job",
    "get_settings",
    "parse_prompt_to_scenes",
    "save_generated_video",
]

# The spec's constants. They are the defaults of the settings of the same meaning
# (STORYBOARD_MAX_RETRIES, STORYBOARD_PARSING_TIMEOUT, STORYBOARD_IMAGE_TIMEOUT), which is what
# the running code reads, so deployments and tests can change them without editing code.
MAX_RETRIES = 3
PARSING_TIMEOUT = 30
IMAGE_GENERATION_TIMEOUT = 120

__version__ = "0.1.0"
