"""Composing a scene's image prompt from its plan, in code: continuity by construction.

A language model writes the plan, never the image prompt. The prompt is put together here from
parts in a fixed order: framing words for the shot size, angle and movement; what the camera
sees; the name and exact ``look`` of every character in frame; the location's; the request's
style; the lighting; the plan's style look and palette. So a character is described by the
same words in every frame it appears in, and an edit of the bible changes every frame it
touches the same way.

When the parts run past the limit, whole parts go from the least important up (palette first,
characters last); only if framing and visual alone are too long is the visual cut, at a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..plan import Plan, PlannedScene
from ..schemas import Scene
from ..shots import FRAMING, CameraAngle, CameraMovement, ShotSize, Transition

__all__ = [
    "IMAGE_PROMPT_LIMIT",
    "ShotLike",
    "compose_image_prompt",
    "compose_scenes",
    "framing_words",
    "planned_scene",
]

# The spec's limit on an image prompt (Troubleshooting: "max 2000 chars").
IMAGE_PROMPT_LIMIT = 2000


class ShotLike(Protocol):
    """What composition reads of a scene: a planned scene or a storyboard ``Scene``."""

    @property
    def visual(self) -> str | None: ...
    @property
    def shot_size(self) -> ShotSize | None: ...
    @property
    def camera_angle(self) -> CameraAngle | None: ...
    @property
    def camera_movement(self) -> CameraMovement | None: ...
    @property
    def lighting(self) -> str | None: ...
    @property
    def characters(self) -> Sequence[str] | None: ...
    @property
    def location(self) -> str | None: ...


def framing_words(scene: ShotLike) -> str:
    """"medium close-up, chest up, low angle looking up, camera pushing in"."""
    fields = (scene.shot_size, scene.camera_angle, scene.camera_movement)
    return ", ".join(FRAMING[f] for f in fields if f is not None)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cut(text: str, room: int) -> str:
    if len(text) <= room:
        return text
    space = text.rfind(" ", 0, room)
    return text[: space if space > room // 2 else room].rstrip(" ,.;")


def compose_image_prompt(scene: ShotLike, plan: Plan, style: str,
                         limit: int = IMAGE_PROMPT_LIMIT) -> str:
    """The image prompt for ``scene`` of ``plan``, drawn in the request's ``style``."""
    framing = framing_words(scene)
    visual = (scene.visual or "").strip()
    # (priority, text): lower numbers are kept longer. Characters keep their order in frame.
    parts: list[tuple[int, str]] = []
    for index, character_id in enumerate(scene.characters or ()):
        character = plan.character(character_id)
        if character is not None and character.look.strip():
            parts.append((10 + index, f"{character.name}: {character.look.strip()}"))
    location = plan.location(scene.location)
    if location is not None and location.look.strip():
        parts.append((30, f"{location.name}: {location.look.strip()}"))
    if style.strip():
        parts.append((40, f"{style.strip()} style"))
    lighting = (scene.lighting or "").strip() or plan.style.lighting.strip()
    if lighting:
        parts.append((50, f"lighting: {lighting}"))
    if plan.style.look.strip():
        parts.append((60, plan.style.look.strip()))
    if plan.style.palette.strip():
        parts.append((70, f"palette: {plan.style.palette.strip()}"))

    def joined(kept: list[tuple[int, str]], head: str) -> str:
        return ". ".join(t for t in [head, *(_capital(text) for _, text in kept)] if t)

    head = ". ".join(_capital(t) for t in (framing, visual) if t)
    kept = list(parts)
    while kept and len(joined(kept, head)) > limit:
        kept.remove(max(kept))  # the least important part goes first
    prompt = joined(kept, head)
    if len(prompt) > limit:  # framing and visual alone: cut the visual at a word
        room = limit - len(framing) - 2
        head = ". ".join(_capital(t) for t in (framing, _cut(visual, room)) if t)
        prompt = head[:limit]
    return prompt


def compose_scenes(plan: Plan, style: str) -> list[Scene]:
    """The storyboard's scenes for ``plan``: each with its shot and its composed prompt."""
    return [
        Scene(scene_number=s.scene_number, description=s.description, duration=s.duration,
              image_prompt=compose_image_prompt(s, plan, style), beat=s.beat, visual=s.visual,
              shot_size=s.shot_size, camera_angle=s.camera_angle,
              camera_movement=s.camera_movement, lighting=s.lighting,
              characters=list(s.characters), location=s.location, dialogue=s.dialogue,
              transition=s.transition)
        for s in plan.scenes
    ]


def planned_scene(scene: Scene) -> PlannedScene | None:
    """The plan's view of a storyboard scene; None for a scene stored before plans existed."""
    if None in (scene.shot_size, scene.camera_angle, scene.camera_movement):
        return None
    return PlannedScene(
        scene_number=scene.scene_number, beat=scene.beat or "", duration=scene.duration,
        description=scene.description, visual=scene.visual or "",
        shot_size=scene.shot_size, camera_angle=scene.camera_angle,  # type: ignore[arg-type]
        camera_movement=scene.camera_movement,  # type: ignore[arg-type]
        lighting=scene.lighting or "", characters=list(scene.characters or []),
        location=scene.location, dialogue=scene.dialogue,
        transition=scene.transition or Transition.CUT)
