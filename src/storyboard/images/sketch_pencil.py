"""The pencil a sketch frame is drawn with: its tones, its lines and where the picture sits.

Shared by the set (``sketch_shots``) and the people (``sketch_figures``) of a sketch frame, and
by the frame's lettering (``sketch``). Shapes only, no I/O.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import ImageDraw

from ..shots import CameraAngle, ShotSize

__all__ = [
    "ACCENT",
    "CLOSE",
    "CLOTH",
    "DARK",
    "GUIDE",
    "HORIZON",
    "INK",
    "PAPER",
    "SHADE",
    "SKIN",
    "SOFT",
    "STANDING",
    "TONES",
    "VIGNETTE",
    "WHITE",
    "Frame",
    "Mark",
    "Point",
    "hatch",
    "wobbly",
]

PAPER = (246, 243, 236)
INK = (38, 38, 44)
SOFT = (150, 146, 140)
ACCENT = (214, 90, 49)  # camera notation only, so a move never reads as part of the scene
WHITE = (255, 255, 255)
GUIDE = (225, 221, 212)
SKIN = (236, 228, 214)
CLOTH = (201, 195, 184)
SHADE = (218, 209, 194)
DARK = (64, 63, 70)
# The point-of-view vignette darkens the corners in flat steps (multiplied onto the picture).
VIGNETTE = ((232, 232, 232), (214, 214, 214), (194, 194, 194))
TONES: tuple[tuple[int, int, int], ...] = (
    PAPER, INK, SOFT, ACCENT, WHITE, GUIDE, SKIN, CLOTH, SHADE, DARK,
    *((r * grey // 255, g * grey // 255, b * grey // 255) for grey, _, _ in VIGNETTE
      for r, g, b in (PAPER, WHITE, SKIN, CLOTH, SHADE, GUIDE)),
)

Point = tuple[float, float]
# Where the horizon sits, as a fraction of the picture's height from the top: a camera that
# looks down sees more ground, one that looks up more sky.
HORIZON = {
    CameraAngle.EYE_LEVEL: 0.5, CameraAngle.HIGH: 0.22, CameraAngle.LOW: 0.8,
    CameraAngle.DUTCH: 0.5, CameraAngle.POV: 0.52, CameraAngle.OVER_THE_SHOULDER: 0.45,
}
# Standing figures' height as a fraction of the picture, for the sizes that show the feet.
STANDING = {ShotSize.EXTREME_WIDE: 0.1, ShotSize.WIDE: 0.36, ShotSize.FULL: 0.86}
# Sizes too close to see the ground under the subject.
CLOSE = (ShotSize.MEDIUM_CLOSE_UP, ShotSize.CLOSE_UP)


@dataclass(frozen=True)
class Mark:
    """Text to letter over the picture, centred at (x, y) in the frame image's coordinates."""

    text: str
    x: float
    y: float
    room: float = 120.0  # the widest the label may be before it is cut
    camera: bool = False  # a camera note (accent), not a character's name


@dataclass(frozen=True)
class Frame:
    """The picture's place on the canvas drawn on; the canvas is bigger than the picture when
    the drawing is turned afterwards (a dutch angle), so its corners never show bare paper."""

    x0: float
    y0: float
    w: float
    h: float
    canvas: tuple[float, float, float, float]

    def x(self, f: float) -> float:
        return self.x0 + f * self.w

    def y(self, f: float) -> float:
        return self.y0 + f * self.h


def wobbly(d: ImageDraw.ImageDraw, rng: random.Random, points: Sequence[Point],
            width: int = 2, fill: tuple[int, int, int] = INK) -> None:
    # Two slightly offset strokes read as a hand-drawn pencil line.
    for _ in range(2):
        jittered = [(x + rng.uniform(-1.5, 1.5), y + rng.uniform(-1.5, 1.5)) for x, y in points]
        d.line(jittered, fill=fill, width=width, joint="curve")


def hatch(d: ImageDraw.ImageDraw, rng: random.Random, box: Sequence[float], step: int) -> None:
    # Diagonal shading kept inside the box: each stroke runs from the left/bottom edge up to
    # the top/right edge at 45 degrees.
    x0, y0, x1, y1 = box
    offset = 0.0
    while offset < (x1 - x0) + (y1 - y0):
        sx, sy = x0 + max(0.0, offset - (y1 - y0)), y0 + min(offset, y1 - y0)
        length = min(sy - y0, x1 - sx)
        d.line((sx, sy, sx + length, sy - length), fill=SOFT, width=1)
        offset += step + rng.randint(0, 3)
