"""A story plan as a language model would answer it, for the fake servers and the tests.

``lighthouse_plan(count)`` is the issue's example prompt planned into ``count`` shots, in the
answer format the planners ask for (``storyboard.planning.format``): two characters, three
places, a varied shot list. Tests break it on purpose (a scene too few, an unknown id ...).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

__all__ = ["LIGHTHOUSE", "MARA_LOOK", "answer_for", "lighthouse_plan", "scene_count_asked"]

LIGHTHOUSE = ("A lonely lighthouse keeper finds a message in a bottle. She sails out into the "
              "storm to find its sender, and discovers a hidden island.")
MARA_LOOK = ("woman in her sixties, weathered face, long grey braid, yellow oilskin coat over a "
             "navy fisherman's sweater, rubber boots")

_SHOTS = [
    ("Alone at the light", "wide", "high", "crane", ["mara"], "lighthouse", None, "fade_in",
     "A white lighthouse on a black rock; a small figure climbs the outside stair at dusk"),
    ("The bottle", "insert", "high", "static", [], "beach", None, "cut",
     "A green glass bottle half buried in wet sand, a rolled paper inside"),
    ("Reading", "close_up", "eye_level", "dolly_in", ["mara"], "lighthouse",
     "\"Come find me.\"", "cut", "Mara unrolls the paper by lamplight, her eyes widening"),
    ("Decision", "medium", "low", "static", ["mara"], "lighthouse", None, "cut",
     "Mara pulls on her coat at the door, the storm flashing behind the glass"),
    ("Into the storm", "wide", "eye_level", "handheld", ["mara"], "sea", None, "cut",
     "A small wooden boat climbs a huge black wave, lantern swinging"),
    ("Holding on", "medium_close_up", "dutch", "handheld", ["mara"], "sea", None, "cut",
     "Mara grips the tiller, rain streaming down her face"),
    ("Land", "extreme_wide", "high", "pan", [], "island", None, "dissolve",
     "Through breaking cloud, a hidden island of tall cliffs and green light"),
    ("The sender", "full", "eye_level", "truck", ["mara", "ezra"], "island", "\"You came.\"",
     "cut", "Mara steps onto the shingle; a thin old man with a lantern waits by the cliff path"),
    ("Two keepers", "medium_close_up", "over_the_shoulder", "static", ["mara", "ezra"],
     "island", None, "cut", "Over Ezra's shoulder, Mara smiles for the first time"),
    ("Dawn", "wide", "low", "dolly_out", ["mara", "ezra"], "island", None, "fade_out",
     "Two figures on the clifftop watch the sun rise over a calm sea"),
]


def lighthouse_plan(count: int, duration: float | None = None) -> dict[str, Any]:
    """The lighthouse story in ``count`` shots (3 to 10) as an answer's JSON object."""
    shots = _SHOTS[:count - 1] + [_SHOTS[-1]]
    each = (duration or count * 5.0) / count
    scenes = []
    for number, (beat, size, angle, move, who, where, said, transition, visual) in enumerate(
            shots, start=1):
        scenes.append({
            "scene_number": number, "beat": beat, "duration": each,
            "description": f"{beat}: {visual.split(',')[0]}.", "visual": visual,
            "shot_size": size, "camera_angle": angle, "camera_movement": move,
            "lighting": "storm light" if where == "sea" else "", "characters": who,
            "location": where, "dialogue": said, "transition": transition,
        })
    return {
        "title": "The Keeper's Message",
        "logline": "A lighthouse keeper follows a message in a bottle through a storm.",
        "style": {"look": "moody 35mm film, soft grain", "palette": "slate blue, sodium orange",
                  "lighting": "low winter light"},
        "characters": [
            {"id": "mara", "name": "Mara", "look": MARA_LOOK},
            {"id": "ezra", "name": "Ezra", "look": "thin old man, white beard, patched grey "
                                                  "coat, brass lantern"},
        ],
        "locations": [
            {"id": "lighthouse", "name": "The lighthouse", "look": "white stone tower on a "
                                                                  "black basalt rock"},
            {"id": "beach", "name": "The beach", "look": "grey shingle beach below the tower"},
            {"id": "sea", "name": "The open sea", "look": "black storm sea, huge waves"},
            {"id": "island", "name": "The hidden island", "look": "tall green cliffs, a "
                                                                   "shingle cove"},
        ],
        "scenes": scenes,
    }


def scene_count_asked(prompt_text: str) -> int:
    """How many shots a planning prompt asks for ("exactly N shots")."""
    match = re.search(r"exactly (\d+) shots", prompt_text)
    return int(match.group(1)) if match else 6


def answer_for(prompt_text: str) -> str:
    """A valid answer to a planning prompt: the lighthouse story in as many shots as asked."""
    match = re.search(r"for a (\d+)-second video", prompt_text)
    duration = float(match.group(1)) if match else None
    return json.dumps(copy.deepcopy(lighthouse_plan(scene_count_asked(prompt_text), duration)))
