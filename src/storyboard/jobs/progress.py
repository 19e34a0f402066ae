"""Progress of a running job: counts, the current scene, the ETA and the spec's message. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..schemas import StoryboardEntry, VideoProgress

__all__ = ["estimate_remaining_seconds", "generating_progress", "mark_undrawn", "ready_message"]


def estimate_remaining_seconds(
    image_seconds: Sequence[float], remaining: int, concurrency: int
) -> float | None:
    """The spec's ETA (average time of finished images x remaining scenes), divided among the
    scenes that run at once: with ``concurrency`` slots the rest take ceil(remaining / c) rounds.
    None until one image has finished, since there is nothing to average yet."""
    if remaining <= 0:
        return 0.0
    if not image_seconds:
        return None
    average = sum(image_seconds) / len(image_seconds)
    rounds = math.ceil(remaining / max(1, min(concurrency, remaining)))
    return round(average * rounds, 2)


def generating_progress(
    entries: Sequence[StoryboardEntry],
    in_flight: Iterable[int],
    image_seconds: Sequence[float],
    concurrency: int,
) -> VideoProgress:
    """Progress while images are being made. ``scenes_completed`` counts finished scenes
    (succeeded or failed) whatever order they finished in."""
    total = len(entries)
    done = sum(1 for e in entries if e.generation_status in ("completed", "failed"))
    flying = sorted(in_flight)
    if flying:
        current = flying[0]
    else:
        waiting = [e.scene.scene_number for e in entries if e.generation_status == "pending"]
        current = waiting[0] if waiting else total
    return VideoProgress(
        current_stage="generating_storyboard",
        scenes_total=total,
        scenes_completed=done,
        current_scene=current,
        estimated_completion_seconds=estimate_remaining_seconds(
            image_seconds, total - done, concurrency
        ),
        message=f"Generating image for scene {current}/{total}",
    )


def ready_message(failed: int) -> str:
    return "Storyboard ready" if failed == 0 else f"Storyboard ready ({failed} scenes failed)"


def mark_undrawn(entries: Iterable[StoryboardEntry]) -> None:
    """Scenes left "generating" by a run that is no longer drawing them (stopped, crashed,
    resumed) go back to "pending": they were not drawn, and a resume or regeneration starts
    them again. Finished scenes, succeeded or failed, stay as they are."""
    for entry in entries:
        if entry.generation_status == "generating":
            entry.generation_status = "pending"
