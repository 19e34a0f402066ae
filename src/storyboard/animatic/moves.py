"""The camera moves, played on a still: which part of the scene's canvas (its still enlarged by
``MOVE_SCALE``) each frame shows, and that part cut from the canvas's planes.

A push in or pull out scales a centred box; a pan, truck, tilt or crane slides a frame-sized
window across the margin; handheld drifts it. Every move eases in and out (smoothstep), so it
starts and settles softly at the cuts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image

from ..shots import CameraMovement
from .planes import Planes

__all__ = ["MOVE_SCALE", "Move"]

# How far a move travels: a push in ends 8% closer; a slide crosses an image 8% larger.
MOVE_SCALE = 1.08
_HANDHELD_DRIFT = 0.35  # of the room a slide has: a drift, not a shake

_PUSH_IN = frozenset({CameraMovement.DOLLY_IN, CameraMovement.ZOOM_IN})
_PULL_OUT = frozenset({CameraMovement.DOLLY_OUT, CameraMovement.ZOOM_OUT})
_SLIDE_ACROSS = frozenset({CameraMovement.PAN, CameraMovement.TRUCK})


def _ease(progress: float) -> float:
    # Smoothstep: the move starts and settles softly instead of jerking at the cuts.
    return progress * progress * (3 - 2 * progress)


@dataclass(frozen=True)
class Move:
    """Which part of a scene's canvas (its still, enlarged by ``MOVE_SCALE``) the frame shows
    at a point of the shot, in canvas pixels."""

    movement: CameraMovement
    canvas: tuple[int, int]
    frame: tuple[int, int]
    seconds: float

    def box(self, progress: float) -> tuple[float, float, float, float]:
        """The part of the canvas shown at ``progress`` (0 to 1): left, top, right, bottom."""
        (canvas_w, canvas_h), (width, height) = self.canvas, self.frame
        eased = _ease(min(1.0, max(0.0, progress)))
        room_x, room_y = canvas_w - width, canvas_h - height
        # Offsets kept even on the axis that does not move: the colour planes (half size)
        # then crop whole pixels there too, and only mix along the move.
        mid_x, mid_y = room_x // 4 * 2, room_y // 4 * 2
        movement = self.movement
        if movement in _PUSH_IN or movement in _PULL_OUT:
            widest = min(canvas_w / width, canvas_h / height)  # 1.08 of the frame
            if movement in _PUSH_IN:
                scale = widest + (1 - widest) * eased
            else:
                scale = 1 + (widest - 1) * eased
            box_w, box_h = width * scale, height * scale
            left, top = (canvas_w - box_w) / 2, (canvas_h - box_h) / 2
            return left, top, left + box_w, top + box_h
        if movement in _SLIDE_ACROSS:
            left, top = room_x * eased, float(mid_y)
        elif movement is CameraMovement.TILT:
            left, top = float(mid_x), room_y * eased
        elif movement is CameraMovement.CRANE:
            left, top = float(mid_x), room_y * (1 - eased)
        else:  # handheld: two slow, unrelated swings per axis, well inside the margin
            t = progress * self.seconds
            swing_x = 0.6 * math.sin(1.9 * t) + 0.4 * math.sin(3.1 * t + 1.3)
            swing_y = 0.6 * math.sin(1.3 * t + 0.7) + 0.4 * math.sin(2.7 * t + 2.1)
            left = room_x / 2 * (1 + _HANDHELD_DRIFT * swing_x)
            top = room_y / 2 * (1 + _HANDHELD_DRIFT * swing_y)
        return left, top, left + width, top + height

    def view(self, canvas: Planes, progress: float) -> Planes:
        """The frame at ``progress`` (0 to 1) through the shot, cut from the planes of the
        canvas (a new picture: the canvas is not changed)."""
        box = self.box(progress)
        width, height = self.frame
        half = (width // 2, height // 2)
        if self.movement in _PUSH_IN or self.movement in _PULL_OUT:
            half_box = (box[0] / 2, box[1] / 2, box[2] / 2, box[3] / 2)
            # A push or pull resamples both axes of every plane. The colour planes, which
            # the eye resolves least, take the nearest pixel (a third of the work, saved);
            # the brightness plane, which carries the detail, is resampled smoothly.
            y = _zoomed(canvas[0], box, (width, height))
            u = _zoomed(canvas[1], half_box, half, Image.Resampling.NEAREST)
            v = _zoomed(canvas[2], half_box, half, Image.Resampling.NEAREST)
        else:  # a slide or a drift: the frame-sized window moves, sub-pixel
            y = _shifted(canvas[0], box[0], box[1], (width, height))
            u = _shifted(canvas[1], box[0] / 2, box[1] / 2, half)
            v = _shifted(canvas[2], box[0] / 2, box[1] / 2, half)
        return y, u, v


def _zoomed(plane: Image.Image, box: tuple[float, float, float, float], size: tuple[int, int],
            resample: Image.Resampling = Image.Resampling.BOX) -> Image.Image:
    """The part ``box`` of ``plane`` scaled to ``size`` (a new image).

    BOX over a step close to one pixel is a linear mix of the pixels under it: as smooth as
    bilinear for the sub-pixel steps of a push in, a true average for its slight shrink, and
    measured a third cheaper than BILINEAR."""
    return plane.resize(size, resample, box=box)


def _shifted(plane: Image.Image, left: float, top: float, size: tuple[int, int]) -> Image.Image:
    """The ``size`` part of ``plane`` from (``left``, ``top``), sub-pixel, as a new image.

    A shift by a fraction of a pixel is a linear mix of the two whole-pixel crops around it
    (bilinear interpolation, exactly): two copies and a blend, four times cheaper than
    resampling the plane (measured), and the slides are a third of a typical board."""
    width, height = size
    x, y = math.floor(left), math.floor(top)
    frac_x, frac_y = left - x, top - y

    def crop(dx: int, dy: int) -> Image.Image:
        return plane.crop((x + dx, y + dy, x + dx + width, y + dy + height))

    def row(dy: int) -> Image.Image:
        image = crop(0, dy)
        return Image.blend(image, crop(1, dy), frac_x) if frac_x > 1e-3 else image

    image = row(0)
    return Image.blend(image, row(1), frac_y) if frac_y > 1e-3 else image
