"""Reading a language model's answer into a plan, never trusting it. Pure.

An answer is taken as JSON, a fenced ```json block or the first JSON object in prose; its
texts are cut to ``LIMITS`` at a word and its enum words forgiven their case and spacing
("Close-Up" is ``close_up``); then it is checked: the shape, exactly the spec's scene count for
the duration, unique ids, only known character and location ids, a visual for every shot and a
look for everyone. The problems found are listed in words the model can act on (they go back
in the repair turn). Scene numbers are put in order and the durations are spread in code to
sum exactly to the request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from ..plan import LIMITS, MAX_CHARACTERS, MAX_LOCATIONS, Plan, PlannerInfo
from ..scenes import scene_count_for
from .base import PlanRequest
from .rules import clip_words

__all__ = ["read_plan", "spread_durations"]

# A reasoning model's thoughts (qwen3, deepseek-r1 on a local server) may hold braces too.
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_TRIES = 50  # opening braces tried before giving up on an answer
# Fields cut to a limit (by their name in LIMITS), wherever they appear.
_CLIPPED = {"title", "logline", "name", "look", "palette", "lighting", "beat", "description",
            "visual", "dialogue"}
_ENUMS = ("shot_size", "camera_angle", "camera_movement", "transition")


def _json_in(text: str) -> Any:
    """The JSON the answer holds: all of it, a fenced block, or the first object in it that
    parses (after any <think> block)."""
    text = _THINKING.sub("", text.strip().lstrip("\ufeff")).strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for block in text.split("```")[1::2]:  # the insides of fenced blocks
        body = block.split("\n", 1)[1] if block[:4].lower() == "json" else block
        try:
            return json.loads(body)
        except ValueError:
            continue
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(_TRIES):
        if start < 0:
            break
        try:
            found = decoder.raw_decode(text, start)[0]
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(found, dict):
            return found
        start = text.find("{", start + 1)
    raise ValueError("the answer holds no JSON object")


def _enum_word(value: Any) -> Any:
    if isinstance(value, str):
        return re.sub(r"[\s\-]+", "_", value.strip().lower())
    return value


def _tidy(data: dict[str, Any]) -> None:
    """Cut long texts and forgive enum spellings, in place."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _CLIPPED and isinstance(value, str):
                    node[key] = clip_words(value, LIMITS[key])
                elif key in _ENUMS:
                    node[key] = _enum_word(value)
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(data)
    # Ids are compared as tidied the same way everywhere: "Mara " in the bible is "mara" in a
    # scene.
    for key in ("characters", "locations"):
        for entry in _dicts(data.get(key)):
            entry["id"] = _id(entry.get("id"))
    for scene in _dicts(data.get("scenes")):
        if isinstance(scene.get("characters"), list):  # each once, in the order given
            scene["characters"] = list(dict.fromkeys(_id(c) for c in scene["characters"]))
        if isinstance(scene.get("location"), str):
            scene["location"] = _id(scene["location"]) or None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id(value: Any) -> Any:
    return value.strip().lower()[: LIMITS["id"]] if isinstance(value, str) else value


def _duration_of(scene: dict[str, Any]) -> float | None:
    value = scene.get("duration")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < float("inf") else None  # (nan fails both)


def spread_durations(asked: list[float | None], total: int) -> list[float]:
    """Scene lengths that sum exactly to ``total`` seconds, each at least 1 s, in proportion to
    what was asked (a missing or non-positive length counts as the average of the others);
    equal asks give the spec's even spread to the hundredth."""
    count = len(asked)
    known = [a for a in asked if a is not None]
    if not known or len(set(known)) == 1 and len(known) == count:
        each = round(total / count, 2)
        return [*([each] * (count - 1)), round(total - each * (count - 1), 2)]
    known = [min(a, total * 100.0) for a in known]  # 1e308 seconds must not overflow a sum
    mean = sum(known) / len(known)
    weights = [min(a, total * 100.0) if a is not None else mean for a in asked]
    # Proportional shares, with every share floored at 1 s: scenes pinned at the floor leave
    # the rest of the time to the others, until no share is below it.
    pinned: set[int] = set()
    while True:
        free = [i for i in range(count) if i not in pinned]
        room = total - len(pinned)
        weight = sum(weights[i] for i in free)
        shares = {i: room * weights[i] / weight for i in free}
        low = {i for i, share in shares.items() if share < 1.0}
        if not low:
            break
        pinned |= low
    lengths = [1.0 if i in pinned else shares[i] for i in range(count)]
    rounded = [round(x, 2) for x in lengths]
    longest = max(range(count), key=lambda i: rounded[i])
    rounded[longest] = round(total - sum(r for i, r in enumerate(rounded) if i != longest), 2)
    return rounded


def _problems_of(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        problems.append(f"{where.lstrip('.') or 'answer'}: {item['msg']}")
    return problems


def read_plan(text: str, request: PlanRequest, planner: PlannerInfo) -> tuple[Plan | None, list[str]]:
    """The plan in ``text`` for ``request``, or None and what is wrong with it."""
    try:
        data = _json_in(text)
    except ValueError as exc:
        return None, [f"{exc}; answer with the JSON object only"]
    except RecursionError:
        return None, ["the JSON is nested too deeply; answer with the plan's shape only"]
    if not isinstance(data, dict):
        return None, ["the answer is not a JSON object"]
    _tidy(data)
    scenes = data.get("scenes")
    asked = [_duration_of(s) if isinstance(s, dict) else None for s in scenes or []] \
        if isinstance(scenes, list) else []
    for number, scene in enumerate(_dicts(scenes), start=1):
        # Both are set in code below: lengths spread to sum exactly, numbers in order.
        scene["duration"], scene["scene_number"] = 1.0, number
    data.pop("planner", None)
    try:
        plan = Plan.model_validate({**data, "planner": planner})
    except ValidationError as exc:
        return None, _problems_of(exc)

    problems: list[str] = []
    count = scene_count_for(request.duration)
    if len(plan.scenes) != count:
        problems.append(f"there are {len(plan.scenes)} scenes; exactly {count} are needed for "
                        f"{request.duration} seconds")
    for kind, entries, most in (("character", plan.characters, MAX_CHARACTERS),
                                ("location", plan.locations, MAX_LOCATIONS)):
        ids = [e.id for e in entries]
        if len(ids) > most:
            problems.append(f"{len(ids)} {kind}s; at most {most}")
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"{kind} id {dup!r} is used twice; ids must be unique")
        for entry in entries:
            if not entry.look.strip():
                problems.append(f"{kind} {entry.id!r} has an empty look")
    known_characters = {c.id for c in plan.characters}
    known_locations = {loc.id for loc in plan.locations}
    for index, scene in enumerate(plan.scenes, start=1):
        if not scene.visual.strip():
            problems.append(f"scene {index} has an empty visual")
        for character in scene.characters:
            if character not in known_characters:
                problems.append(f"scene {index} names character {character!r}, which is not in "
                                f"characters (ids: {', '.join(sorted(known_characters)) or 'none'})")
        if scene.location is not None and scene.location not in known_locations:
            problems.append(f"scene {index} names location {scene.location!r}, which is not in "
                            f"locations (ids: {', '.join(sorted(known_locations)) or 'none'})")
    if problems:
        return None, problems
    lengths = spread_durations(asked, request.duration)
    for number, (scene, length) in enumerate(zip(plan.scenes, lengths, strict=True), start=1):
        scene.scene_number, scene.duration = number, length
    return plan, []
