"""The shot vocabulary a storyboard is written in: sizes, angles, movements and transitions.

Pure values. Each member's value is the snake_case word the API, the plan and the language
model use; ``FRAMING`` gives the words an image model understands for it, and ``SHORT`` the
abbreviations a storyboard artist pencils beside a frame (WS, MCU, ...).
"""

from __future__ import annotations

import enum

__all__ = [
    "FRAMING",
    "SHORT",
    "CameraAngle",
    "CameraMovement",
    "ShotSize",
    "Transition",
    "shot_line",
]


class ShotSize(enum.StrEnum):
    """How much of the subject the frame holds, widest first."""

    EXTREME_WIDE = "extreme_wide"
    WIDE = "wide"
    FULL = "full"
    MEDIUM = "medium"
    MEDIUM_CLOSE_UP = "medium_close_up"
    CLOSE_UP = "close_up"
    EXTREME_CLOSE_UP = "extreme_close_up"
    INSERT = "insert"  # a detail: an object, a hand, a note


class CameraAngle(enum.StrEnum):
    """Where the camera looks from."""

    EYE_LEVEL = "eye_level"
    HIGH = "high"
    LOW = "low"
    OVERHEAD = "overhead"
    DUTCH = "dutch"
    POV = "pov"
    OVER_THE_SHOULDER = "over_the_shoulder"


class CameraMovement(enum.StrEnum):
    """What the camera does during the shot (one move per shot)."""

    STATIC = "static"
    PAN = "pan"
    TILT = "tilt"
    DOLLY_IN = "dolly_in"
    DOLLY_OUT = "dolly_out"
    TRUCK = "truck"
    CRANE = "crane"
    HANDHELD = "handheld"
    ZOOM_IN = "zoom_in"
    ZOOM_OUT = "zoom_out"


class Transition(enum.StrEnum):
    """How a shot hands over to the next one; ``fade_in`` opens the first shot from black and
    ``fade_out`` ends a shot on black."""

    CUT = "cut"
    DISSOLVE = "dissolve"
    FADE_IN = "fade_in"
    FADE_OUT = "fade_out"
    MATCH_CUT = "match_cut"
    WIPE = "wipe"


# Words an image model reads as the framing. A still cannot move, so movements become what a
# frame of that move looks like (a dolly-in frame is tight and centred; handheld is loose).
FRAMING: dict[enum.StrEnum, str] = {
    ShotSize.EXTREME_WIDE: "extreme wide shot, tiny figures in a vast landscape",
    ShotSize.WIDE: "wide establishing shot",
    ShotSize.FULL: "full shot, head to toe",
    ShotSize.MEDIUM: "medium shot, waist up",
    ShotSize.MEDIUM_CLOSE_UP: "medium close-up, chest up",
    ShotSize.CLOSE_UP: "close-up on the face",
    ShotSize.EXTREME_CLOSE_UP: "extreme close-up, a detail filling the frame",
    ShotSize.INSERT: "insert shot of a detail",
    CameraAngle.EYE_LEVEL: "eye-level camera",
    CameraAngle.HIGH: "high angle looking down",
    CameraAngle.LOW: "low angle looking up",
    CameraAngle.OVERHEAD: "overhead top-down view",
    CameraAngle.DUTCH: "dutch angle, tilted horizon",
    CameraAngle.POV: "point-of-view shot",
    CameraAngle.OVER_THE_SHOULDER: "over-the-shoulder shot",
    CameraMovement.STATIC: "locked-off camera",
    CameraMovement.PAN: "panning camera",
    CameraMovement.TILT: "tilting camera",
    CameraMovement.DOLLY_IN: "camera pushing in",
    CameraMovement.DOLLY_OUT: "camera pulling back",
    CameraMovement.TRUCK: "tracking shot, camera moving alongside",
    CameraMovement.CRANE: "crane shot from above",
    CameraMovement.HANDHELD: "handheld camera, slight motion blur",
    CameraMovement.ZOOM_IN: "zooming in",
    CameraMovement.ZOOM_OUT: "zooming out",
}

SHORT: dict[enum.StrEnum, str] = {
    ShotSize.EXTREME_WIDE: "EWS",
    ShotSize.WIDE: "WS",
    ShotSize.FULL: "FS",
    ShotSize.MEDIUM: "MS",
    ShotSize.MEDIUM_CLOSE_UP: "MCU",
    ShotSize.CLOSE_UP: "CU",
    ShotSize.EXTREME_CLOSE_UP: "ECU",
    ShotSize.INSERT: "INSERT",
    CameraAngle.EYE_LEVEL: "EYE LEVEL",
    CameraAngle.HIGH: "HIGH",
    CameraAngle.LOW: "LOW",
    CameraAngle.OVERHEAD: "OVERHEAD",
    CameraAngle.DUTCH: "DUTCH",
    CameraAngle.POV: "POV",
    CameraAngle.OVER_THE_SHOULDER: "OTS",
    CameraMovement.STATIC: "STATIC",
    CameraMovement.PAN: "PAN",
    CameraMovement.TILT: "TILT",
    CameraMovement.DOLLY_IN: "DOLLY IN",
    CameraMovement.DOLLY_OUT: "DOLLY OUT",
    CameraMovement.TRUCK: "TRUCK",
    CameraMovement.CRANE: "CRANE",
    CameraMovement.HANDHELD: "HANDHELD",
    CameraMovement.ZOOM_IN: "ZOOM IN",
    CameraMovement.ZOOM_OUT: "ZOOM OUT",
}


def shot_line(size: str | None, angle: str | None, movement: str | None) -> str:
    """"MCU · LOW · DOLLY IN": the shot as a storyboard artist notes it; "" with no fields."""
    parts = []
    for value, kind in ((size, ShotSize), (angle, CameraAngle), (movement, CameraMovement)):
        if value:
            try:
                parts.append(SHORT[kind(value)])
            except ValueError:
                parts.append(str(value).upper())
    return " \u00b7 ".join(parts)
