"""What a language model is asked: the instructions, the answer's JSON schema, the repair turn.

The schema is strict-compatible (OpenAI's structured outputs with ``strict: true``): every field
required, nullable instead of optional, no defaults, ``additionalProperties: false`` on every
object, two levels of objects. Servers that ignore it (some local ones) still see the format,
spelled out in the prompt; every answer is checked in ``answers.py`` all the same.
"""

from __future__ import annotations

import json
from typing import Any

from ..plan import LIMITS, MAX_CHARACTERS, MAX_LOCATIONS
from ..scenes import scene_count_for
from ..shots import CameraAngle, CameraMovement, ShotSize, Transition
from .base import PlanRequest

__all__ = ["PLAN_SCHEMA", "SCHEMA_NAME", "SYSTEM_PROMPT", "plan_prompt", "repair_prompt"]

SCHEMA_NAME = "storyboard_plan"


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "required": list(properties), "properties": properties}


def _enum(values: type[Any], description: str) -> dict[str, Any]:
    return {"type": "string", "enum": [v.value for v in values], "description": description}


_BIBLE_ENTRY = _object({
    "id": _string("short lowercase id, e.g. 'mara'"),
    "name": _string("name as people say it"),
    "look": _string("fixed visual description, repeated in every shot it is in"),
})

PLAN_SCHEMA: dict[str, Any] = _object({
    "title": _string("short working title"),
    "logline": _string("the story in one sentence"),
    "style": _object({
        "look": _string("the film's look, e.g. 'moody 35mm film, soft grain'"),
        "palette": _string("main colours"),
        "lighting": _string("the story's overall light"),
    }),
    "characters": {"type": "array", "items": _BIBLE_ENTRY},
    "locations": {"type": "array", "items": _BIBLE_ENTRY},
    "scenes": {"type": "array", "items": _object({
        "scene_number": {"type": "integer", "description": "1, 2, 3 ... in story order"},
        "beat": _string("the story beat in a few words"),
        "duration": {"type": "number", "description": "seconds on screen"},
        "description": _string("what happens, for the people reading the board"),
        "visual": _string("only what the camera sees, present tense"),
        "shot_size": _enum(ShotSize, "how much of the subject the frame holds"),
        "camera_angle": _enum(CameraAngle, "where the camera looks from"),
        "camera_movement": _enum(CameraMovement, "exactly one move per shot"),
        "lighting": _string("this shot's light"),
        "characters": {"type": "array", "items": {"type": "string"},
                       "description": "ids of the characters in frame"},
        "location": {"type": ["string", "null"], "description": "id of the location"},
        "dialogue": {"type": ["string", "null"], "description": "spoken words, else null"},
        "transition": _enum(Transition, "how the shot hands over to the next"),
    })},
})

SYSTEM_PROMPT = (
    "You are a film director and storyboard artist. You turn a video idea into a shot-by-shot "
    "storyboard plan with a small story bible, and you answer with one JSON object only."
)


def _choices(values: type[Any]) -> str:
    return "|".join(v.value for v in values)


_SHAPE = {
    "title": "...", "logline": "...",
    "style": {"look": "...", "palette": "...", "lighting": "..."},
    "characters": [{"id": "mara", "name": "Mara", "look": "..."}],
    "locations": [{"id": "lighthouse", "name": "The lighthouse", "look": "..."}],
    "scenes": [{
        "scene_number": 1, "beat": "...", "duration": 5.0, "description": "...",
        "visual": "...", "shot_size": _choices(ShotSize), "camera_angle": _choices(CameraAngle),
        "camera_movement": _choices(CameraMovement), "lighting": "...",
        "characters": ["mara"], "location": "lighthouse", "dialogue": None,
        "transition": _choices(Transition),
    }],
}


def plan_prompt(request: PlanRequest) -> str:
    """The user turn: the idea, the numbers, the rules of a good board, the answer's shape."""
    count = scene_count_for(request.duration)
    each = request.duration / count
    return f"""[Task]
Plan a storyboard of exactly {count} shots for a {request.duration}-second video.

[Idea]
{request.prompt}

[Style]
{request.style}; frame {request.aspect_ratio}

[Rules]
- Exactly {count} scenes, numbered 1 to {count} in story order. Durations in seconds add up to {request.duration} (about {each:.3g} each; longer for slow beats, shorter for quick ones).
- One distinct story beat per scene; no beat repeats. Something visibly happens in every shot.
- "visual" is only what the camera sees, in the present tense and concrete: who does what, where, in what composition. No camera words, no style words, and no text, captions, logos or title cards in the picture.
- "description" tells the team what happens, in one or two sentences.
- Every person or creature who appears gets a character with a short lowercase id and a fixed "look" (age, build, face, hair, clothes and their colours) exact enough to draw the same one in every shot. Scenes list the ids of who is in frame; "visual" never repeats a look. At most {MAX_CHARACTERS} characters.
- Every place gets a location with an id and a fixed "look"; each scene names its location id (null only for an abstract shot). At most {MAX_LOCATIONS} locations.
- Pick shot_size, camera_angle and exactly one camera_movement per shot. Open on a wide or extreme wide that sets the place, vary the coverage, go closer for emotion, end on a shot that resolves.
- transition: cut unless there is a reason; dissolve for time passing, match_cut for a visual rhyme; fade_in on the first shot, fade_out on the last.
- dialogue: words spoken or voice-over in the shot, else null.
- Keep every text short: a look under {LIMITS["look"] // 2} characters, a visual under {LIMITS["visual"] // 2}.

[Format]
Answer with the JSON object only, in exactly this shape (the lists show the allowed words):
{json.dumps(_SHAPE, indent=1)}
"""


def repair_prompt(problems: list[str]) -> str:
    """The one repair turn: what was wrong, and the same format again."""
    listed = "\n".join(f"- {p}" for p in problems[:12])
    return (f"That plan cannot be used:\n{listed}\n"
            "Answer again with the whole corrected JSON object only, in the same format.")
