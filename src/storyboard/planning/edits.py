"""Editing a plan: the bible (looks, names, style) and one shot's fields. Pure.

An edit is checked against the plan (only its own character and location ids), applied, and
every scene's image prompt is composed again: the scenes whose prompt changed are returned, so
the caller marks them stale (nothing is drawn, nothing is spent, until a re-render).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import InvalidRequestError
from ..plan import LIMITS, Plan, PlannerInfo, PlanStyle
from ..schemas import Scene, StoryboardEntry, clean_text
from ..shots import CameraAngle, CameraMovement, ShotSize, Transition
from .compose import compose_image_prompt
from .rules import clip_words

__all__ = [
    "BibleEntryEdit",
    "PlanEdit",
    "ShotEdit",
    "StyleEdit",
    "apply_plan_edit",
    "apply_shot_edit",
    "empty_plan",
    "recompose",
]


def _text(name: str, *, blank: bool = False) -> object:
    return Field(default=None, min_length=0 if blank else 1, max_length=LIMITS[name])


def _clean(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _no_nul(value: str | None) -> str | None:
    # May be blank (it clears the field), but never hold what PostgreSQL cannot store.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters (\\x00)")
    return None if value is None else value.strip()


class BibleEntryEdit(BaseModel):
    """New words for one character or location, found by its id."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=LIMITS["id"])
    name: str | None = _text("name")  # type: ignore[assignment]
    look: str | None = _text("look")  # type: ignore[assignment]

    _checked = field_validator("name", "look")(_clean)


class StyleEdit(BaseModel):
    """New words for the plan's style; an empty string clears a field."""

    model_config = ConfigDict(extra="forbid")

    look: str | None = _text("look", blank=True)  # type: ignore[assignment]
    palette: str | None = _text("palette", blank=True)  # type: ignore[assignment]
    lighting: str | None = _text("lighting", blank=True)  # type: ignore[assignment]

    _checked = field_validator("look", "palette", "lighting")(_no_nul)


class PlanEdit(BaseModel):
    """``PATCH /api/v2/jobs/{id}/plan``: the bible's changes (all optional)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = _text("title")  # type: ignore[assignment]
    logline: str | None = _text("logline")  # type: ignore[assignment]
    characters: list[BibleEntryEdit] = Field(default_factory=list, max_length=20)
    locations: list[BibleEntryEdit] = Field(default_factory=list, max_length=20)
    style: StyleEdit | None = None

    _checked = field_validator("title", "logline")(_clean)


class ShotEdit(BaseModel):
    """A scene's shot fields, as the regenerate endpoint takes them (all optional)."""

    model_config = ConfigDict(extra="forbid")

    visual: str | None = _text("visual")  # type: ignore[assignment]
    shot_size: ShotSize | None = None
    camera_angle: CameraAngle | None = None
    camera_movement: CameraMovement | None = None
    lighting: str | None = _text("lighting", blank=True)  # type: ignore[assignment]
    characters: list[str] | None = Field(default=None, max_length=20)
    location: str | None = Field(default=None, max_length=LIMITS["id"])
    dialogue: str | None = _text("dialogue", blank=True)  # type: ignore[assignment]
    transition: Transition | None = None

    _checked = field_validator("visual")(_clean)
    _blank_ok = field_validator("lighting", "dialogue", "location")(_no_nul)

    @property
    def changes_the_picture(self) -> bool:
        """Whether the edit touches what the image prompt is composed from."""
        return bool(self.model_fields_set - {"dialogue", "transition"})


def empty_plan() -> Plan:
    """The plan of a storyboard made before plans existed: no bible, nothing to add."""
    return Plan(title="", logline="", style=PlanStyle(look="", palette="", lighting=""),
                planner=PlannerInfo(kind="rules"))


def _entry(entries: list, entry_id: str, kind: str, field: str) -> object:  # type: ignore[type-arg]
    found = next((e for e in entries if e.id == entry_id), None)
    if found is None:
        known = ", ".join(e.id for e in entries) or "none"
        raise InvalidRequestError(field, f"no {kind} {entry_id!r} in the plan (ids: {known})")
    return found


def apply_plan_edit(plan: Plan, edit: PlanEdit) -> Plan:
    """A copy of ``plan`` with ``edit`` applied; ``InvalidRequestError`` for an unknown id."""
    new = plan.model_copy(deep=True)
    for index, change in enumerate(edit.characters):
        character = _entry(new.characters, change.id, "character", f"characters[{index}].id")
        for name in ("name", "look"):
            if getattr(change, name) is not None:
                setattr(character, name, getattr(change, name))
    for index, change in enumerate(edit.locations):
        location = _entry(new.locations, change.id, "location", f"locations[{index}].id")
        for name in ("name", "look"):
            if getattr(change, name) is not None:
                setattr(location, name, getattr(change, name))
    if edit.style is not None:
        for name in ("look", "palette", "lighting"):
            value = getattr(edit.style, name)
            if value is not None:
                setattr(new.style, name, value.strip())
    if edit.title is not None:
        new.title = edit.title
    if edit.logline is not None:
        new.logline = edit.logline
    return new


def recompose(entries: list[StoryboardEntry], old: Plan, new: Plan, style: str) -> list[int]:
    """Compose every scene's prompt under ``new``; where the edit changes it, the scene takes
    the new prompt (unless a person wrote the scene's prompt themselves). Then each drawn frame
    is ``stale`` exactly when its prompt is no longer the one it was drawn from: an edit undone
    leaves nothing stale. Returns the numbers of the scenes whose prompt changed."""
    changed = []
    for entry in entries:
        scene = entry.scene
        if entry.prompt_overridden:
            continue
        after = compose_image_prompt(scene, new, style)
        if after != compose_image_prompt(scene, old, style):
            if entry.drawn_prompt is None and entry.image_url:
                entry.drawn_prompt = scene.image_prompt  # drawn before prompts were kept
            scene.image_prompt = after
            changed.append(scene.scene_number)
    for entry in entries:
        entry.stale = bool(entry.image_url and entry.drawn_prompt is not None
                           and entry.scene.image_prompt != entry.drawn_prompt)
    return changed


def apply_shot_edit(scene: Scene, edit: ShotEdit, plan: Plan, style: str) -> None:
    """Set the edited shot fields of ``scene`` and compose its prompt again. Characters and
    location must be the plan's (``InvalidRequestError`` names the field otherwise)."""
    if edit.characters is not None:
        known = {c.id for c in plan.characters}
        for character in edit.characters:
            if character not in known:
                raise InvalidRequestError("characters", f"no character {character!r} in the "
                                          f"plan (ids: {', '.join(sorted(known)) or 'none'})")
    if edit.location and plan.location(edit.location) is None:
        known_locations = ", ".join(loc.id for loc in plan.locations) or "none"
        raise InvalidRequestError("location", f"no location {edit.location!r} in the plan "
                                  f"(ids: {known_locations})")
    for name in edit.model_fields_set:
        value = getattr(edit, name)
        if name == "characters":
            value = list(dict.fromkeys(value or []))  # each character once, in the given order
        elif name in ("location", "dialogue") and value == "":
            value = None  # cleared
        setattr(scene, name, value)
    if edit.changes_the_picture:
        if not scene.visual:  # a scene stored before plans: the camera sees what it says
            scene.visual = clip_words(scene.description, LIMITS["visual"])
        scene.image_prompt = compose_image_prompt(scene, plan, style)
