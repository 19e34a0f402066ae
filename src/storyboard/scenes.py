"""Breaking a prompt into scenes: pure rules, no I/O.

One scene per 5 seconds (at least 3, at most 10), durations spread evenly so they sum to the
requested length, and a fixed beat per position: the opening hooks, the second scene sets up the
context, the middle scenes carry the content, the last one closes with a call to action.
"""

from __future__ import annotations

import enum

from .errors import InvalidRequestError
from .schemas import MAX_DURATION, MAX_PROMPT_LENGTH, MIN_DURATION, Scene

__all__ = [
    "DEFAULT_SCENE_DURATION",
    "MAX_SCENES",
    "MIN_SCENES",
    "SceneBeat",
    "beat_for",
    "beat_label",
    "parse_prompt_to_scenes",
    "scene_count_for",
]

DEFAULT_SCENE_DURATION = 5.0
MIN_SCENES = 3
MAX_SCENES = 10


class SceneBeat(enum.StrEnum):
    """The narrative role of a scene, which also decides its framing."""

    OPENING = "Opening/Hook"
    CONTEXT = "Context/Setup"
    CONTENT = "Content/Product showcase"
    CLOSING = "Closing/CTA"


# Middle scenes vary their framing so a long storyboard does not repeat one shot.
_CONTENT_SHOTS = (
    "Medium shot",
    "Detail close-up",
    "Dynamic action shot",
    "Over-the-shoulder shot",
    "Low-angle hero shot",
    "Tracking shot",
)


def scene_count_for(duration: int) -> int:
    """Scenes for a video of ``duration`` seconds: one per 5 s, clamped to 3..10."""
    return max(MIN_SCENES, min(MAX_SCENES, int(duration // DEFAULT_SCENE_DURATION)))


def beat_for(scene_number: int, total: int) -> SceneBeat:
    """The beat of scene ``scene_number`` (1-based) in a storyboard of ``total`` scenes."""
    if scene_number == 1:
        return SceneBeat.OPENING
    if scene_number == total:
        return SceneBeat.CLOSING
    if scene_number == 2:
        return SceneBeat.CONTEXT
    return SceneBeat.CONTENT


def beat_label(scene: Scene, total: int) -> str:
    """What to call a scene's beat: the plan's words, else the spec's beat for its place."""
    return scene.beat or beat_for(scene.scene_number, total).value


def _durations(duration: int, count: int) -> list[float]:
    # Round to centiseconds, then give the rounding remainder to the last scene so the sum is
    # exactly the requested length.
    each = round(duration / count, 2)
    spread = [each] * (count - 1)
    spread.append(round(duration - sum(spread), 2))
    return spread


def _describe(beat: SceneBeat, number: int, prompt: str, style: str) -> tuple[str, str]:
    quality = f"{style} style, high quality"
    if beat is SceneBeat.OPENING:
        return f"Opening scene: {prompt}", f"Opening establishing shot, {prompt}, {quality}"
    if beat is SceneBeat.CONTEXT:
        return (
            f"Setting up context for: {prompt}",
            f"Context establishing shot, {prompt}, {quality}",
        )
    if beat is SceneBeat.CLOSING:
        return (
            f"Closing scene: {prompt}",
            f"Closing call-to-action shot, {prompt}, {quality}",
        )
    shot = _CONTENT_SHOTS[(number - 3) % len(_CONTENT_SHOTS)]
    return f"Showcasing: {prompt}", f"{shot} showcasing {prompt}, {quality}"


def parse_prompt_to_scenes(prompt: str, duration: int, style: str = "cinematic") -> list[Scene]:
    """Break ``prompt`` into the scenes of a ``duration``-second video drawn in ``style``.

    Raises InvalidRequestError naming the field and its limit when an input is out of range.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequestError("prompt", "must not be empty")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise InvalidRequestError(
            "prompt", f"must be at most {MAX_PROMPT_LENGTH} characters (got {len(prompt)})"
        )
    if (isinstance(duration, bool) or not isinstance(duration, int | float)
            or (isinstance(duration, float) and not duration.is_integer())):
        # 30.5 would quietly become 30: say so instead.
        raise InvalidRequestError("duration", "must be a whole number of seconds")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise InvalidRequestError(
            "duration",
            f"must be between {MIN_DURATION} and {MAX_DURATION} seconds (got {duration})",
        )
    if not isinstance(style, str) or not style.strip():
        raise InvalidRequestError("style", "must not be empty")

    prompt, style = prompt.strip(), style.strip()
    count = scene_count_for(int(duration))
    scenes = []
    for number, length in enumerate(_durations(int(duration), count), start=1):
        description, image_prompt = _describe(beat_for(number, count), number, prompt, style)
        scenes.append(
            Scene(
                scene_number=number,
                description=description,
                duration=length,
                image_prompt=image_prompt,
            )
        )
    return scenes
