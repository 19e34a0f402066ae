"""The people in a sketch frame: standing figures, faces, eyes, seen from the camera's height.

Figures are scaled so the shot size crops them as a storyboard artist would (tiny in a
landscape, head to toe, waist up, chest up, one face, a pair of eyes), foreshortened by the
camera angle (a big head and short legs from above, the reverse from below), and seen from
straight above from overhead. Each gives where its name belongs; the frame letters it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import ImageDraw

from ..shots import CameraAngle, ShotSize
from .sketch_pencil import (
    CLOTH,
    DARK,
    HORIZON,
    INK,
    SHADE,
    SKIN,
    SOFT,
    STANDING,
    WHITE,
    Frame,
    Mark,
    Point,
    wobbly,
)

__all__ = ["draw_cast", "draw_eyes", "draw_shoulder"]

_MAX_FIGURES = 8


@dataclass(frozen=True)
class _Build:
    """A standing figure's proportions in head heights. Foreshortening changes them: seen
    from above the head is big and the legs short, seen from below the reverse."""

    head: float = 1.0
    torso: float = 2.2  # shoulders to hips
    legs: float = 3.9
    shoulders: float = 1.0  # half width
    eyes: float = 0.5  # eye line, as a fraction of the head from its top
    hair: int = 20  # degrees below the head's middle the hair cap's chord starts

    @property
    def tall(self) -> float:
        return self.head + 0.3 + self.torso + self.legs


_BUILDS = {
    CameraAngle.HIGH: _Build(head=1.2, torso=1.9, legs=3.0, eyes=0.6, hair=8),
    CameraAngle.LOW: _Build(head=0.82, torso=2.4, legs=4.6, shoulders=1.1, eyes=0.4, hair=36),
}


def _limb(d: ImageDraw.ImageDraw, p0: Point, p1: Point, w0: float, w1: float) -> None:
    # A tapered limb: a quadrilateral around the segment, w0 wide at p0 and w1 at p1.
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n / 2, dx / n / 2
    d.polygon([(p0[0] + nx * w0, p0[1] + ny * w0), (p1[0] + nx * w1, p1[1] + ny * w1),
               (p1[0] - nx * w1, p1[1] - ny * w1), (p0[0] - nx * w0, p0[1] - ny * w0)],
              fill=CLOTH, outline=INK, width=2)


def _person(d: ImageDraw.ImageDraw, rng: random.Random, cx: float, top: float, u: float,
            b: _Build) -> tuple[float, float, float]:
    """A standing figure, front on, ``u`` pixels to a head height; gives (chin, shoulders,
    hips) y."""
    hh = u * b.head
    chin = top + hh
    sy = chin + 0.3 * u
    hips = sy + b.torso * u
    feet = hips + b.legs * u
    if u < 4:
        # Too small for shapes: a pencil tick of a person.
        d.ellipse((cx - 0.45 * hh, top, cx + 0.45 * hh, chin), fill=INK)
        d.line([(cx, chin), (cx, hips)], fill=INK, width=2)
        d.line([(cx - 0.5 * u, feet), (cx, hips), (cx + 0.5 * u, feet)], fill=INK, width=1)
        return chin, sy, hips
    sw = b.shoulders * u
    stance = u * rng.uniform(0.1, 0.4)
    for side in (-1, 1):
        _limb(d, (cx + side * 0.36 * u, hips - 0.1 * u), (cx + side * (0.3 * u + stance), feet),
              0.62 * u, 0.3 * u)
        d.ellipse((cx + side * (0.3 * u + stance) - 0.3 * u, feet - 0.14 * u,
                   cx + side * (0.3 * u + stance) + 0.3 * u, feet + 0.1 * u), fill=INK)
    d.polygon([(cx - sw, sy + 0.25 * u), (cx - sw * 0.82, sy), (cx + sw * 0.82, sy),
               (cx + sw, sy + 0.25 * u), (cx + 0.68 * u, hips), (cx - 0.68 * u, hips)],
              fill=CLOTH, outline=INK, width=2)
    for side in (-1, 1):
        elbow = (cx + side * (sw + 0.15 * u), sy + b.torso * 0.5 * u)
        hand = (elbow[0] + side * rng.uniform(-0.3, 0.25) * u, hips + 0.15 * u)
        _limb(d, (cx + side * (sw - 0.2 * u), sy + 0.2 * u), elbow, 0.42 * u, 0.34 * u)
        _limb(d, elbow, hand, 0.34 * u, 0.26 * u)
        d.ellipse((hand[0] - 0.15 * u, hand[1] - 0.1 * u, hand[0] + 0.15 * u, hand[1] + 0.22 * u),
                  fill=SKIN, outline=INK, width=1)
    d.rectangle((cx - 0.16 * u, chin - 0.1 * u, cx + 0.16 * u, sy + 0.06 * u), fill=SKIN,
                outline=INK, width=1)
    _head(d, cx, top, hh, b, detail=u >= 14)
    return chin, sy, hips


def _head(d: ImageDraw.ImageDraw, cx: float, top: float, hh: float, b: _Build,
          detail: bool) -> None:
    hw = 0.4 * hh
    box = (cx - hw, top, cx + hw, top + hh)
    line = 3 if hh > 90 else 2
    d.ellipse(box, fill=SKIN)
    if detail:
        d.chord(box, 290, 70, fill=SHADE)  # the side away from the light
    d.chord(box, 180 + b.hair, 360 - b.hair, fill=INK)  # the hair cap
    d.ellipse(box, outline=INK, width=line)
    if not detail:
        return
    ey = top + hh * b.eyes
    r = max(1.5, hh * 0.045)
    for side in (-1, 1):
        ex = cx + side * hw * 0.42
        d.ellipse((ex - r * 1.6, ey - r, ex + r * 1.6, ey + r), fill=INK)
        if hh > 40:
            d.line((ex - r * 2.4, ey - r * 3, ex + r * 2.4, ey - r * 3.4), fill=INK, width=line)
    nose = top + hh * min(0.82, b.eyes + 0.22)
    d.line([(cx, ey + r), (cx - hw * 0.1, nose), (cx + hw * 0.05, nose)], fill=INK, width=line)
    if b.eyes < 0.5:
        # Seen from below: the nostrils show.
        for side in (-1, 1):
            d.ellipse((cx + side * hw * 0.12 - r, nose - r * 0.8, cx + side * hw * 0.12 + r,
                       nose + r * 0.6), fill=INK)
    mouth = nose + (top + hh - nose) * 0.45
    d.line((cx - hw * 0.28, mouth, cx + hw * 0.28, mouth), fill=INK, width=line)


def _person_above(d: ImageDraw.ImageDraw, cx: float, cy: float, u: float) -> None:
    """A figure seen from straight above: shoulders, the top of the head, the feet."""
    if u < 4:
        d.ellipse((cx - u, cy - u * 0.5, cx + u, cy + u * 0.5), fill=INK)
        return
    for side in (-1, 1):
        d.ellipse((cx + side * 0.3 * u - 0.16 * u, cy + 0.2 * u, cx + side * 0.3 * u + 0.16 * u,
                   cy + 0.75 * u), fill=INK)
    d.ellipse((cx - 1.05 * u, cy - 0.42 * u, cx + 1.05 * u, cy + 0.42 * u), fill=CLOTH,
              outline=INK, width=2)
    d.ellipse((cx - 0.4 * u, cy - 0.45 * u, cx + 0.4 * u, cy + 0.35 * u), fill=INK)
    d.line((cx, cy - 0.4 * u, cx, cy - 0.05 * u), fill=SOFT, width=max(1, int(u / 30)))


def draw_cast(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, size: ShotSize,
          angle: CameraAngle, cast: Sequence[str], region: tuple[float, float],
          ) -> tuple[list[Mark], Point]:
    """One figure per name, spread over ``region`` (fractions of the width), scaled so the
    shot size crops them right; one unnamed figure when there is no cast."""
    names = list(cast[:_MAX_FIGURES]) or [""]
    if size is ShotSize.CLOSE_UP:
        names = names[:1]  # a close-up holds one face; its name is still lettered
    b = _BUILDS.get(angle, _Build())
    if size in STANDING:
        u0 = STANDING[size] * f.h / b.tall
    elif size is ShotSize.MEDIUM:
        u0 = 0.9 * f.h / (b.head + 0.3 + 0.9 * b.torso)  # cut at the waist
    elif size is ShotSize.MEDIUM_CLOSE_UP:
        u0 = 0.9 * f.h / (b.head + 0.3 + 0.45 * b.torso)  # cut at the chest
    else:
        u0 = 0.62 * f.h / b.head  # one head fills the frame
    n = len(names)
    span = (region[1] - region[0]) * f.w
    # Several people share the width: shrink them to fit, but not past recognising the size
    # (a tight two-shot overlaps its people and lets the frame edges cut them instead).
    tight = size not in STANDING
    u = max((0.85 if tight else 0.6) * u0, min(u0, span / (n * 2.5))) if n > 1 else u0
    horizon = HORIZON.get(angle, 0.5)
    marks: list[Mark] = []
    focus: Point | None = None
    for i, name in enumerate(names):
        slot = (i + 0.5) / n if tight else (i + 1) / (n + 1)
        cx = f.x(region[0]) + span * slot + rng.uniform(-0.02, 0.02) * f.w
        if angle is CameraAngle.OVERHEAD:
            cy = f.y(0.5) + (rng.uniform(-0.2, 0.2) * f.h if size in STANDING else 0.0)
            _person_above(d, cx, cy, u)
            focus = focus or (cx, cy)
            label = (cx, cy + max(0.5 * u, 4) + 9)
        else:
            if size is ShotSize.EXTREME_WIDE:
                top = f.y(min(0.9, horizon + 0.1)) - b.tall * u
            elif size is ShotSize.WIDE:
                top = f.y(min(0.94, max(horizon + 0.14, 0.82))) - b.tall * u
            elif size is ShotSize.FULL:
                top = f.y(0.95) - b.tall * u
            else:
                top = f.y(0.1)
            chin, sy, hips = _person(d, rng, cx, top, u, b)
            focus = focus or (cx, (top + chin) / 2)
            label = {
                ShotSize.EXTREME_WIDE: (cx, top - 9), ShotSize.WIDE: (cx, top - 9),
                ShotSize.FULL: (cx, hips), ShotSize.MEDIUM: (cx, sy + 0.9 * u),
                ShotSize.MEDIUM_CLOSE_UP: (cx, sy + 0.55 * u),
            }.get(size, (cx, f.y(1) - 12))
        if name:
            marks.append(Mark(name, *label, room=max(40.0, span / n - 6)))
    if len(cast) > _MAX_FIGURES:
        marks.append(Mark(f"+{len(cast) - _MAX_FIGURES}", f.x(region[1]) - 16, f.y(0.5)))
    return marks, focus or (f.x(0.5), f.y(0.5))


def draw_eyes(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, angle: CameraAngle,
          cast: Sequence[str], region: tuple[float, float]) -> tuple[list[Mark], Point]:
    """An extreme close-up: a pair of eyes across the frame; the camera's height shows in
    where they sit and what else of the face is seen (hair from above, nostrils from below)."""
    left, top, right, bottom = f.canvas
    d.rectangle((left, top, right, bottom), fill=SKIN)
    span = (region[1] - region[0]) * f.w
    cx = f.x(region[0]) + span / 2
    ey = f.y({CameraAngle.HIGH: 0.58, CameraAngle.LOW: 0.38, CameraAngle.OVERHEAD: 0.66}
             .get(angle, 0.48))
    ex = min(0.3 * span, 0.3 * f.h)
    if angle in (CameraAngle.HIGH, CameraAngle.OVERHEAD):
        # The brow and hair come into frame from above.
        hairline = ey - ex * (1.9 if angle is CameraAngle.HIGH else 1.3)
        wave = [(left, top), (right, top)] + [
            (right - (right - left) * i / 8, hairline + rng.uniform(-0.1, 0.1) * ex)
            for i in range(9)]
        d.polygon(wave, fill=INK)
    if angle is CameraAngle.LOW:
        for side in (-1, 1):
            nx = cx + side * ex * 0.35
            d.ellipse((nx - ex * 0.22, f.y(0.9), nx + ex * 0.22, f.y(0.9) + ex * 0.22), fill=INK)
    d.rectangle((f.x(0.86), top, right, bottom), fill=SHADE)
    look = rng.uniform(-0.2, 0.2) * ex
    for side in (-1, 1):
        x = cx + side * span * 0.25
        lid = [(x - ex + 2 * ex * i / 10, ey - ex * 0.45 * math.sin(math.pi * i / 10))
               for i in range(11)]
        lower = [(x + ex - 2 * ex * i / 10, ey + ex * 0.32 * math.sin(math.pi * i / 10))
                 for i in range(11)]
        d.polygon(lid + lower, fill=WHITE, outline=INK, width=3)
        r = ex * 0.3
        ix = x + look
        d.ellipse((ix - r, ey - r, ix + r, ey + r), fill=SOFT, outline=INK, width=2)
        d.ellipse((ix - r * 0.45, ey - r * 0.45, ix + r * 0.45, ey + r * 0.45), fill=INK)
        d.ellipse((ix + r * 0.2, ey - r * 0.5, ix + r * 0.45, ey - r * 0.25), fill=WHITE)
        d.line(lid, fill=INK, width=5)
        crease = [(px, py - ex * 0.18) for px, py in lid[2:-2]]
        d.line(crease, fill=SOFT, width=2)
        brow = [(x - ex * 1.05, ey - ex * 0.75), (x, ey - ex * 1.0), (x + ex * 1.0, ey - ex * 0.8)]
        wobbly(d, rng, brow, width=max(4, int(ex / 12)))
    d.line([(cx - ex * 0.2, ey - ex * 0.2), (cx - ex * 0.3, bottom)], fill=SHADE, width=4)
    marks = [Mark(cast[0], cx, f.y(1) - 12)] if cast and cast[0] else []
    return marks, (cx, ey)


def draw_shoulder(d: ImageDraw.ImageDraw, f: Frame, side: int) -> None:
    # Over the shoulder: the near character's head and shoulder, dark, in a bottom corner.
    m = min(f.w, f.h)
    xc = f.x(0.04 if side < 0 else 0.96)
    d.ellipse((xc - 0.62 * m, f.y(1) - 0.48 * m, xc + 0.62 * m, f.y(1) + 0.5 * m), fill=DARK)
    d.ellipse((xc - 0.21 * m, f.y(1) - 0.95 * m, xc + 0.21 * m, f.y(1) - 0.36 * m), fill=DARK)
