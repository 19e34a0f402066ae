"""Progress and ETA: the spec's arithmetic (average finished-image time x remaining scenes)."""

from __future__ import annotations

import pytest

from storyboard.jobs.progress import estimate_remaining_seconds, generating_progress
from storyboard.scenes import parse_prompt_to_scenes
from storyboard.schemas import StoryboardEntry


def test_eta_is_the_average_image_time_times_the_remaining_scenes() -> None:
    # The spec, one scene at a time: 2 images took 10 s and 20 s, 4 scenes remain -> 60 s.
    assert estimate_remaining_seconds([10.0, 20.0], remaining=4, concurrency=1) == 60.0


@pytest.mark.parametrize(("concurrency", "expected"), [(2, 30.0), (3, 30.0), (4, 15.0), (10, 15.0)])
def test_eta_counts_rounds_when_scenes_run_at_once(concurrency: int, expected: float) -> None:
    # 4 remaining at 15 s each: 2 at once -> 2 rounds; 3 at once -> still 2; 4 or more -> 1.
    assert estimate_remaining_seconds([15.0], remaining=4, concurrency=concurrency) == expected


def test_eta_is_unknown_before_the_first_image_and_zero_at_the_end() -> None:
    assert estimate_remaining_seconds([], remaining=6, concurrency=1) is None
    assert estimate_remaining_seconds([3.0], remaining=0, concurrency=1) == 0.0


def test_progress_counts_finished_scenes_in_any_order() -> None:
    entries = [StoryboardEntry(scene=s)
               for s in parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")]
    entries[4].generation_status = "completed"  # scene 5 finished first
    entries[1].generation_status = "failed"  # scene 2 failed
    progress = generating_progress(entries, in_flight=[1, 3], image_seconds=[4.0],
                                   concurrency=6)
    assert progress.scenes_total == 6 and progress.scenes_completed == 2
    assert progress.current_scene == 1  # the lowest scene still being drawn
    assert progress.message == "Generating image for scene 1/6"
    assert progress.estimated_completion_seconds == 4.0  # 4 left, all at once: one round
