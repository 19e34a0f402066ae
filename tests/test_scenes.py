"""Prompt parsing: scene counts, durations, beats, style, the spec's example, input limits."""

from __future__ import annotations

import math

import pytest

from storyboard import DEFAULT_SCENE_DURATION, parse_prompt_to_scenes
from storyboard.errors import InvalidRequestError
from storyboard.scenes import SceneBeat, beat_for
from storyboard.schemas import (
    MAX_DESCRIPTION_LENGTH,
    MAX_IMAGE_PROMPT_LENGTH,
    MAX_PROMPT_LENGTH,
    MAX_STYLE_LENGTH,
)


def test_spec_example_matches_word_for_word() -> None:
    scenes = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    assert len(scenes) == 6
    assert all(s.duration == 5.0 for s in scenes)
    first, second = scenes[0], scenes[1]
    assert first.model_dump() == {
        "scene_number": 1,
        "description": "Opening scene: A robot exploring Mars",
        "duration": 5.0,
        "image_prompt": "Opening establishing shot, A robot exploring Mars, cinematic style, "
        "high quality",
    }
    assert second.model_dump() == {
        "scene_number": 2,
        "description": "Setting up context for: A robot exploring Mars",
        "duration": 5.0,
        "image_prompt": "Context establishing shot, A robot exploring Mars, cinematic style, "
        "high quality",
    }


@pytest.mark.parametrize(
    ("duration", "count"),
    [(5, 3), (10, 3), (14, 3), (15, 3), (20, 4), (29, 5), (30, 6), (45, 9), (50, 10),
     (51, 10), (120, 10), (300, 10)],
)
def test_scene_count_is_one_per_five_seconds_clamped(duration: int, count: int) -> None:
    assert len(parse_prompt_to_scenes("x", duration)) == count


@pytest.mark.parametrize("duration", [5, 7, 11, 13, 29, 31, 97, 299, 300])
def test_durations_are_even_and_sum_to_the_request(duration: int) -> None:
    scenes = parse_prompt_to_scenes("A cat", duration)
    lengths = [s.duration for s in scenes]
    assert math.isclose(sum(lengths), duration, abs_tol=1e-9)
    assert max(lengths) - min(lengths) <= 0.02 + 1e-9
    assert [s.scene_number for s in scenes] == list(range(1, len(scenes) + 1))


def test_default_scene_duration_constant() -> None:
    assert DEFAULT_SCENE_DURATION == 5.0


@pytest.mark.parametrize("count_duration", [15, 20, 50])
def test_beats_by_position(count_duration: int) -> None:
    scenes = parse_prompt_to_scenes("A launch", count_duration)
    total = len(scenes)
    beats = [beat_for(s.scene_number, total) for s in scenes]
    assert beats[0] is SceneBeat.OPENING and beats[-1] is SceneBeat.CLOSING
    assert beats[1] is SceneBeat.CONTEXT
    assert all(b is SceneBeat.CONTENT for b in beats[2:-1])
    assert scenes[-1].description.startswith("Closing scene:")
    assert all(s.description.startswith("Showcasing:") for s in scenes[2:-1])


def test_style_applied_to_every_image_prompt() -> None:
    for style in ("cyberpunk", "watercolor", "anime noir"):
        scenes = parse_prompt_to_scenes("A futuristic city with flying cars", 40, style)
        assert all(f"{style} style, high quality" in s.image_prompt for s in scenes)
        assert all("A futuristic city with flying cars" in s.image_prompt for s in scenes)


def test_middle_scenes_vary_their_framing() -> None:
    scenes = parse_prompt_to_scenes("A product demo", 50)
    middles = {s.image_prompt for s in scenes[2:-1]}
    assert len(middles) > 1


@pytest.mark.parametrize(
    ("prompt", "duration", "field", "fragment"),
    [
        ("", 30, "prompt", "must not be empty"),
        ("   ", 30, "prompt", "must not be empty"),
        ("x" * 2001, 30, "prompt", "at most 2000 characters"),
        ("ok", 4, "duration", "between 5 and 300"),
        ("ok", 301, "duration", "between 5 and 300"),
        ("ok", -5, "duration", "between 5 and 300"),
        ("ok", 30.5, "duration", "whole number"),  # not quietly cut to 30
    ],
)
def test_invalid_input_names_field_and_limit(
    prompt: str, duration: int, field: str, fragment: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_prompt_to_scenes(prompt, duration)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_limits_are_inclusive() -> None:
    assert len(parse_prompt_to_scenes("x" * 2000, 5)) == 3
    assert len(parse_prompt_to_scenes("ok", 300)) == 10
    assert len(parse_prompt_to_scenes("ok", 30.0)) == 6  # a whole number, as a float


def test_the_longest_image_prompts_fit_what_regenerate_accepts() -> None:
    """A scene's own image prompt can be posted back to regenerate as it is."""
    scenes = parse_prompt_to_scenes("x" * MAX_PROMPT_LENGTH, 300, "s" * MAX_STYLE_LENGTH)
    assert max(len(s.image_prompt) for s in scenes) <= MAX_IMAGE_PROMPT_LENGTH
    assert max(len(s.description) for s in scenes) <= MAX_DESCRIPTION_LENGTH
