"""Running storyboard jobs: the task itself, its records, and what runs it."""

from .records import create_storyboard_job, get_job, save_generated_video
from .runtime import JobRuntime
from .task import generate_storyboard_task, run_storyboard_job

__all__ = [
    "JobRuntime",
    "create_storyboard_job",
    "generate_storyboard_task",
    "get_job",
    "run_storyboard_job",
    "save_generated_video",
]
