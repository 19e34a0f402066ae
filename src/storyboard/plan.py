"""The plan format: what a planner makes of a prompt before any image is drawn. Pure data.

A plan is a small story bible (title, logline, style, the characters and locations with a fixed
visual description each) and one shot per scene (beat, what happens, what the camera sees, shot
size, angle, movement, lighting, who is in frame, where, dialogue, transition), plus which
planner made it and what that cost. The API returns it as ``JobResponse.plan``; each scene's
shot fields are also copied onto the storyboard's ``Scene`` so the storyboard alone tells a
reader the shot.

Limits (``LIMITS``) bound the texts that come in at the edges: the API refuses longer edits,
and a language model's longer answer is cut at a word before it is checked. (The shape itself
does not enforce them: a rules plan's scenes keep the spec's text, as long as the prompt.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .shots import CameraAngle, CameraMovement, ShotSize, Transition

__all__ = [
    "LIMITS",
    "MAX_CHARACTERS",
    "MAX_LOCATIONS",
    "Character",
    "Location",
    "Plan",
    "PlanStyle",
    "PlannedScene",
    "PlannerInfo",
    "PlannerKind",
    "cast_names",
]

# Characters per text field.
LIMITS: dict[str, int] = {
    "id": 40,
    "title": 120,
    "logline": 400,
    "name": 60,
    "look": 400,
    "palette": 200,
    "lighting": 200,
    "beat": 80,
    "description": 600,
    "visual": 600,
    "dialogue": 300,
}
MAX_CHARACTERS = 8
MAX_LOCATIONS = 8

PlannerKind = Literal["rules", "openai", "replicate"]


class PlanStyle(BaseModel):
    """The look every frame shares."""

    look: str = Field(description="Overall visual style, e.g. 'moody 35mm film, soft grain'.")
    palette: str = Field(description="Colours, e.g. 'slate blue, sodium orange, bone white'.")
    lighting: str = Field(description="The story's lighting, e.g. 'low winter sun'.")


class Character(BaseModel):
    """Someone who appears in frames; ``look`` is repeated word for word in each of them."""

    id: str = Field(min_length=1, description="Short id scenes use.")
    name: str = Field(description="How people call the character.")
    look: str = Field(description="Fixed visual description: age, build, hair, clothes.")


class Location(BaseModel):
    """A place frames are set in; ``look`` is repeated word for word in each of them."""

    id: str = Field(min_length=1, description="Short id scenes use.")
    name: str = Field(description="The place's name.")
    look: str = Field(description="Fixed visual description of the place.")


class PlannedScene(BaseModel):
    """One shot of the plan."""

    scene_number: int = Field(ge=1)
    beat: str = Field(description="The story beat, a few words.")
    duration: float = Field(gt=0, description="Seconds on screen.")
    description: str = Field(description="What happens, for people.")
    visual: str = Field(description="What the camera sees.")
    shot_size: ShotSize
    camera_angle: CameraAngle
    camera_movement: CameraMovement
    lighting: str = Field(description="This shot's lighting.")
    characters: list[str] = Field(default_factory=list, description="Ids of characters in frame.")
    location: str | None = Field(default=None, description="Id of the location, if any.")
    dialogue: str | None = Field(default=None, description="Spoken words or voice-over, if any.")
    transition: Transition = Transition.CUT


class PlannerInfo(BaseModel):
    """Which planner made the plan, and what it cost."""

    kind: PlannerKind
    model: str | None = None
    # Set when a language model was asked but the plan came from the rules: says why.
    fallback_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0  # USD


class Plan(BaseModel):
    """A storyboard's plan: the bible and one shot per scene."""

    model_config = ConfigDict(extra="ignore")

    title: str = Field(description="A short working title.")
    logline: str = Field(description="The story in one sentence.")
    style: PlanStyle
    characters: list[Character] = Field(default_factory=list)
    locations: list[Location] = Field(default_factory=list)
    scenes: list[PlannedScene] = Field(default_factory=list)
    planner: PlannerInfo

    def character(self, character_id: str) -> Character | None:
        return next((c for c in self.characters if c.id == character_id), None)

    def location(self, location_id: str | None) -> Location | None:
        return next((loc for loc in self.locations if loc.id == location_id), None)


def cast_names(ids: Sequence[str] | None, plan: Plan | None) -> list[str]:
    """The names of the characters ``ids`` (a scene's cast), their ids where the plan (or a
    board made before plans) has none."""
    names = []
    for character_id in ids or ():
        character = plan.character(character_id) if plan is not None else None
        names.append(character.name if character is not None else character_id)
    return names
