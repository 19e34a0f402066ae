"""The ``rules`` planner: the spec's ``parse_prompt_to_scenes``, given a shot per beat. Pure.

Descriptions and image prompts stay the spec's, word for word; what the rules add is the shot
grammar a storyboard artist would start from: an establishing wide that fades in, a medium
setup, varied coverage in the middle (the same shots the spec's middle-scene prompts name), and
a closing wide that pulls back and fades out. So the offline sketch frames differ from each
other even though their prompt is the same. The rules know no characters or places: the bible
is empty but for the request's style, and the title and logline are the prompt.
"""

from __future__ import annotations

from ..plan import LIMITS, Plan, PlannedScene, PlannerInfo, PlanStyle
from ..scenes import SceneBeat, beat_for, parse_prompt_to_scenes
from ..schemas import Scene
from ..shots import CameraAngle, CameraMovement, ShotSize, Transition

__all__ = ["RULES_SHOTS", "clip_words", "plan_by_rules", "rules_shot"]

Shot = tuple[ShotSize, CameraAngle, CameraMovement]

_OPENING: Shot = (ShotSize.WIDE, CameraAngle.EYE_LEVEL, CameraMovement.PAN)
_CONTEXT: Shot = (ShotSize.MEDIUM, CameraAngle.EYE_LEVEL, CameraMovement.STATIC)
_CLOSING: Shot = (ShotSize.WIDE, CameraAngle.HIGH, CameraMovement.DOLLY_OUT)
# The middle scenes' coverage, in the order of the spec's middle-scene shots: "Medium shot",
# "Detail close-up", "Dynamic action shot", "Over-the-shoulder shot", "Low-angle hero shot",
# "Tracking shot".
RULES_SHOTS: tuple[Shot, ...] = (
    (ShotSize.MEDIUM, CameraAngle.EYE_LEVEL, CameraMovement.DOLLY_IN),
    (ShotSize.INSERT, CameraAngle.HIGH, CameraMovement.STATIC),
    (ShotSize.FULL, CameraAngle.DUTCH, CameraMovement.HANDHELD),
    (ShotSize.MEDIUM_CLOSE_UP, CameraAngle.OVER_THE_SHOULDER, CameraMovement.STATIC),
    (ShotSize.FULL, CameraAngle.LOW, CameraMovement.TILT),
    (ShotSize.MEDIUM, CameraAngle.EYE_LEVEL, CameraMovement.TRUCK),
)


def rules_shot(scene_number: int, total: int) -> tuple[Shot, Transition]:
    """The rules' shot and transition for scene ``scene_number`` of ``total``."""
    beat = beat_for(scene_number, total)
    if beat is SceneBeat.OPENING:
        return _OPENING, Transition.FADE_IN
    if beat is SceneBeat.CLOSING:
        return _CLOSING, Transition.FADE_OUT
    if beat is SceneBeat.CONTEXT:
        return _CONTEXT, Transition.CUT
    return RULES_SHOTS[(scene_number - 3) % len(RULES_SHOTS)], Transition.CUT


def clip_words(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, at a word when one is near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit - 1)
    end = space if space > limit // 2 else limit - 1
    return text[:end].rstrip(" ,.;:") + "\u2026"


def plan_by_rules(prompt: str, duration: int, style: str) -> tuple[Plan, list[Scene]]:
    """The rules' plan and the storyboard's scenes for it (the spec's text, with the shot).

    Raises ``InvalidRequestError`` as ``parse_prompt_to_scenes`` does."""
    scenes = parse_prompt_to_scenes(prompt, duration, style)
    total = len(scenes)
    planned: list[PlannedScene] = []
    for scene in scenes:
        (size, angle, movement), transition = rules_shot(scene.scene_number, total)
        beat = beat_for(scene.scene_number, total).value
        scene.beat, scene.visual = beat, clip_words(prompt, LIMITS["visual"])
        scene.shot_size, scene.camera_angle, scene.camera_movement = size, angle, movement
        scene.lighting, scene.characters, scene.location = "", [], None
        scene.dialogue, scene.transition = None, transition
        planned.append(PlannedScene(
            scene_number=scene.scene_number, beat=beat, duration=scene.duration,
            description=clip_words(scene.description, LIMITS["description"]),
            visual=scene.visual, shot_size=size, camera_angle=angle, camera_movement=movement,
            lighting="", characters=[], location=None, dialogue=None, transition=transition))
    plan = Plan(
        title=clip_words(prompt, LIMITS["title"]),
        logline=clip_words(prompt, LIMITS["logline"]),
        style=PlanStyle(look="", palette="", lighting=""),
        scenes=planned,
        planner=PlannerInfo(kind="rules"),
    )
    return plan, scenes
