"""Reading a job's state from the database in tests: status, progress, files, waiting."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from storyboard import get_job
from storyboard.config import Settings


def wait(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def status(job_id: int) -> str:
    job = get_job(job_id)
    assert job is not None
    return str(job["status"])


def scenes_done(job_id: int) -> int:
    job = get_job(job_id)
    assert job is not None
    return int(json.loads(job.get("progress", "{}")).get("scenes_completed", 0))


def scene_files(settings: Settings, job_id: int) -> dict[str, int]:
    """A job's scene images and their modification times (unchanged = not generated again)."""
    folder = settings.media_dir / "jobs" / str(job_id)
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("scene-*"))}
