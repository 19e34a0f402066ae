"""What the camera sees in a sketch frame: the set, and the people (``sketch_figures``) in it.

``draw_shot`` draws one shot into the picture area of a frame, in storyboard conventions:
figures scaled by the shot size (tiny in a landscape for an extreme wide, waist-up for a
medium, one head for a close-up, a pair of eyes for an extreme close-up, an object and no one
for an insert), and the camera angle in the horizon and the perspective (high in the frame
looking down, low looking up, none from overhead, tilted for a dutch, a vignette for a point
of view, a dark shoulder in the foreground over the shoulder). It letters nothing: it returns
where each character's name belongs, so the frame module letters them upright over the
finished picture, with the camera's move. Shapes only; the caller's seeded
``random.Random`` makes every choice, so the same request draws the same picture.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache

from PIL import Image, ImageChops, ImageDraw

from ..shots import CameraAngle, ShotSize
from .sketch_figures import draw_cast, draw_eyes, draw_shoulder
from .sketch_pencil import (
    CLOSE,
    CLOTH,
    GUIDE,
    HORIZON,
    INK,
    PAPER,
    SHADE,
    SOFT,
    VIGNETTE,
    WHITE,
    Frame,
    Mark,
    Point,
    hatch,
    wobbly,
)

__all__ = ["draw_shot"]

_DUTCH_DEGREES = 13.0


# --- the set: horizon, ground, scenery --------------------------------------------------------

def _backdrop(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, size: ShotSize,
              angle: CameraAngle) -> None:
    left, top, right, bottom = f.canvas
    if angle is CameraAngle.OVERHEAD:
        # Looking straight down there is no horizon: floor tiles, whose size gives the scale.
        step = max(16.0, f.h * {ShotSize.EXTREME_WIDE: 0.07, ShotSize.WIDE: 0.16}.get(size, 0.5))
        x = left + rng.uniform(0, step)
        while x < right:
            d.line((x, top, x, bottom), fill=GUIDE, width=1)
            x += step
        y = top + rng.uniform(0, step)
        while y < bottom:
            d.line((left, y, right, y), fill=GUIDE, width=1)
            y += step
        return
    horizon = f.y(HORIZON[angle])
    if angle is not CameraAngle.DUTCH:
        # Rule-of-thirds guides, faint, as a storyboard artist pencils them.
        for i in (1, 2):
            d.line((f.x(i / 3), f.y(0), f.x(i / 3), f.y(1)), fill=GUIDE, width=1)
    wide = size in (ShotSize.EXTREME_WIDE, ShotSize.WIDE)
    if size is ShotSize.EXTREME_WIDE:
        _landscape(d, rng, f, horizon)
    if size not in CLOSE:
        # Ground lines running to the vanishing point on the horizon.
        vx = f.x(rng.uniform(0.4, 0.6))
        rays = 9 if angle is CameraAngle.HIGH else 5
        for i in range(rays):
            d.line((vx, horizon, f.x(-0.8 + 2.6 * i / (rays - 1)), bottom), fill=GUIDE, width=1)
    if angle in (CameraAngle.HIGH, CameraAngle.LOW):
        # Verticals converge below the frame when looking down, above it when looking up.
        vy = f.y(2.8) if angle is CameraAngle.HIGH else f.y(-1.8)
        far = top if angle is CameraAngle.HIGH else bottom
        for fx in (0.05, 0.13, 0.87, 0.95):
            d.line((f.x(fx), far, f.x(0.5 + (fx - 0.5) * 0.35), vy), fill=SOFT, width=2)
    wobbly(d, rng, [(left, horizon), (f.x(0.5), horizon), (right, horizon)],
            width=2 if wide else 1, fill=INK if wide else SOFT)
    if size is ShotSize.WIDE:
        _house(d, rng, f, horizon)
    elif size in (ShotSize.FULL, ShotSize.MEDIUM_CLOSE_UP, ShotSize.CLOSE_UP):
        # A door or window behind the subject: a little depth without stealing the eye.
        x = f.x(rng.choice((0.1, 0.7)))
        d.rectangle((x, f.y(0.08), x + f.w * 0.2, f.y(0.08) + f.h * 0.62), outline=SOFT,
                    width=2)
    elif size is ShotSize.MEDIUM:
        x = f.x(rng.choice((0.06, 0.8)))
        s = f.h * 0.18
        prop = (x, f.y(0.97) - 2 * s, x + 1.4 * s, f.y(0.97))
        d.rectangle(prop, fill=WHITE, outline=INK, width=2)
        hatch(d, rng, prop, 6)


def _landscape(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, horizon: float) -> None:
    left, _, right, _ = f.canvas
    ridge = [(left, horizon)]
    steps = 9
    for i in range(1, steps):
        ridge.append((left + (right - left) * i / steps, horizon - rng.uniform(0.02, 0.2) * f.h))
    ridge.append((right, horizon))
    wobbly(d, rng, ridge, width=2, fill=INK)
    if horizon - f.y(0) > f.h * 0.3:
        sun, r = f.x(rng.uniform(0.15, 0.85)), f.h * 0.06
        d.ellipse((sun - r, f.y(0.06), sun + r, f.y(0.06) + 2 * r), outline=SOFT, width=2)
    for _ in range(4):
        x, y = f.x(rng.uniform(0.03, 0.97)), horizon + rng.uniform(0.02, 0.12) * f.h
        s = f.h * 0.035
        d.line((x, y, x, y - s), fill=INK, width=1)
        d.ellipse((x - s * 0.6, y - 2.4 * s, x + s * 0.6, y - s * 0.8), outline=INK, width=1)


def _house(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, horizon: float) -> None:
    x = f.x(rng.choice((0.04, 0.72)))
    bw, bh = f.w * 0.22, f.h * 0.3
    base = horizon + f.h * 0.04
    d.rectangle((x, base - bh, x + bw, base), fill=PAPER, outline=INK, width=2)
    d.polygon([(x - 4, base - bh), (x + bw / 2, base - bh * 1.5), (x + bw + 4, base - bh)],
              fill=SHADE, outline=INK, width=2)
    for i in range(3):
        wx = x + bw * (0.12 + 0.3 * i)
        d.rectangle((wx, base - bh * 0.75, wx + bw * 0.16, base - bh * 0.45), outline=SOFT)


def _insert(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame,
            angle: CameraAngle) -> Point:
    """An insert: a detail object filling the frame, its faces showing the camera's height."""
    if angle is CameraAngle.OVERHEAD:
        s = min(0.6 * f.w, 0.8 * f.h)
        box = (f.x(0.5) - s / 2, f.y(0.5) - s / 2, f.x(0.5) + s / 2, f.y(0.5) + s / 2)
        d.rectangle(box, fill=WHITE, outline=INK, width=3)
        hatch(d, rng, (box[0], box[1], f.x(0.5), box[3]), 7)
        d.line((f.x(0.5), box[1], f.x(0.5), box[3]), fill=INK, width=3)
        d.line((box[0], f.y(0.5), box[2], f.y(0.5)), fill=INK, width=3)
        return f.x(0.5), f.y(0.5)
    depth = {CameraAngle.HIGH: 0.3, CameraAngle.LOW: -0.26}.get(angle, 0.1)
    fy0, fy1 = (0.1, 0.66) if depth < 0 else (0.2 + depth, 0.94)
    front = (f.x(0.2), f.y(fy0), f.x(0.66), f.y(fy1))
    dx, dy = f.w * 0.12, f.h * depth
    # The far face (top when looking down or level, underside when looking up) and the side.
    edge = front[1] if depth > 0 else front[3]
    d.polygon([(front[0], edge), (front[2], edge), (front[2] + dx, edge - dy),
               (front[0] + dx, edge - dy)], fill=CLOTH, outline=INK, width=3)
    d.polygon([(front[2], front[1]), (front[2] + dx, front[1] - dy),
               (front[2] + dx, front[3] - dy), (front[2], front[3])],
              fill=SHADE, outline=INK, width=3)
    d.rectangle(front, fill=WHITE, outline=INK, width=3)
    hatch(d, rng, (front[0] + 3, front[1] + 3, (front[0] + front[2]) / 2, front[3] - 3), 7)
    tag = (front[2] - (front[2] - front[0]) * 0.38, front[1] + (front[3] - front[1]) * 0.2)
    d.rectangle((*tag, tag[0] + (front[2] - front[0]) * 0.28, tag[1] + f.h * 0.08),
                outline=INK, width=2)
    return (front[0] + front[2]) / 2, (front[1] + front[3]) / 2


# --- point of view ----------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _vignette(w: int, h: int) -> Image.Image:
    # Multiplied onto a point-of-view picture: corners darken in flat steps, the middle stays.
    image = Image.new("RGB", (w, h), VIGNETTE[2])
    d = ImageDraw.Draw(image)
    for grow, tone in ((0.16, VIGNETTE[1]), (0.08, VIGNETTE[0]), (0.0, WHITE)):
        d.ellipse((-w * (0.1 + grow), -h * (0.16 + grow), w * (1.1 + grow), h * (1.16 + grow)),
                  fill=tone)
    return image


def _point_of_view(image: Image.Image, box: tuple[int, int, int, int]) -> None:
    region = image.crop(box)
    image.paste(ImageChops.multiply(region, _vignette(*region.size)), box[:2])
    d = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    for cx, cy, sx, sy in ((x0, y0, 1, 1), (x1, y0, -1, 1), (x0, y1, 1, -1), (x1, y1, -1, -1)):
        px, py = cx + sx * 12, cy + sy * 12
        d.line([(px, py + sy * 16), (px, py), (px + sx * 16, py)], fill=INK, width=2)


# --- the shot ---------------------------------------------------------------------------------

def _scene(d: ImageDraw.ImageDraw, rng: random.Random, f: Frame, size: ShotSize,
           angle: CameraAngle, cast: Sequence[str]) -> tuple[list[Mark], Point]:
    side = rng.choice((-1, 1)) if angle is CameraAngle.OVER_THE_SHOULDER else 0
    # Over the shoulder, the subject stands clear of the near character's silhouette.
    region = (0.0, 1.0) if not side else (0.36, 1.0) if side < 0 else (0.0, 0.64)
    marks: list[Mark] = []
    if size is ShotSize.EXTREME_CLOSE_UP:
        marks, focus = draw_eyes(d, rng, f, angle, cast, region)
    else:
        _backdrop(d, rng, f, size, angle)
        if size is ShotSize.INSERT:
            focus = _insert(d, rng, f, angle)
        else:
            marks, focus = draw_cast(d, rng, f, size, angle, cast, region)
    if side:
        draw_shoulder(d, f, side)
    return marks, focus


def _turn(p: Point, centre: Point, degrees: float, shift: Point) -> Point:
    # Where a point of the canvas lands once Pillow turns it by ``degrees`` counter-clockwise.
    a = math.radians(degrees)
    dx, dy = p[0] - centre[0], p[1] - centre[1]
    return (centre[0] + dx * math.cos(a) + dy * math.sin(a) + shift[0],
            centre[1] - dx * math.sin(a) + dy * math.cos(a) + shift[1])


def draw_shot(image: Image.Image, box: tuple[int, int, int, int], size: ShotSize,
              angle: CameraAngle, cast: Sequence[str], rng: random.Random,
              ) -> tuple[list[Mark], Point]:
    """Draw what the camera sees into ``box`` of ``image`` (drawing may spill outside the box:
    the caller covers the margins). Gives the names to letter over it, upright, and the point
    the shot is about (the first face, the object), where a push-in ends."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if angle is CameraAngle.DUTCH:
        # The world tilts, the camera notation does not: draw on a canvas big enough to turn
        # without bare corners, turn it, and keep the middle.
        degrees = rng.choice((-1, 1)) * _DUTCH_DEGREES
        a = math.radians(_DUTCH_DEGREES)
        cw = int(w * math.cos(a) + h * math.sin(a)) + 4
        ch = int(w * math.sin(a) + h * math.cos(a)) + 4
        px, py = (cw - w) // 2, (ch - h) // 2
        layer = Image.new("RGB", (cw, ch), PAPER)
        frame = Frame(px, py, w, h, (0, 0, cw, ch))
        marks, focus = _scene(ImageDraw.Draw(layer), rng, frame, size, angle, cast)
        # Nearest-neighbour keeps pencil lines crisp and is twenty times faster than bilinear.
        turned = layer.rotate(degrees, resample=Image.Resampling.NEAREST, fillcolor=PAPER)
        image.paste(turned.crop((px, py, px + w, py + h)), (x0, y0))
        centre, shift = (cw / 2, ch / 2), (x0 - px, y0 - py)
        marks = [replace(m, x=q[0], y=q[1])
                 for m in marks for q in [_turn((m.x, m.y), centre, degrees, shift)]]
        focus = _turn(focus, centre, degrees, shift)
    else:
        marks, focus = _scene(ImageDraw.Draw(image), rng, Frame(x0, y0, w, h, box), size,
                              angle, cast)
        if angle is CameraAngle.POV:
            _point_of_view(image, box)
    return marks, focus

