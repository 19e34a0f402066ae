"""The offline sketch renderer: a real storyboard frame drawn with Pillow, no account needed.

Each frame is a pencil-style panel in the requested aspect ratio that draws the scene's shot:
figures scaled by the shot size, the horizon by the camera angle (the set in ``sketch_shots``,
the people in ``sketch_figures``, the pencil they share in ``sketch_pencil``), the
camera's move as arrows or nested frames, and one figure per character with the name lettered
beside it. A scene without shot fields (stored before planning existed) gets the rules' shot
for its position. The header letters the scene number, the shot line ("MCU · LOW · DOLLY IN")
and the duration; the picture carries the beat and the transition; the caption strip the
description and any dialogue. The same prompt, scene and seed always give the same bytes.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import io
import math
import random
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

from PIL import Image, ImageDraw, ImageFont

from ..planning.rules import rules_shot
from ..scenes import beat_for
from ..schemas import Scene
from ..shots import CameraAngle, CameraMovement, ShotSize, Transition, shot_line
from .base import ImageRequest, ImageResult, PredictionCallback
from .sketch_pencil import ACCENT, INK, PAPER, SOFT, TONES, WHITE, Mark, Point
from .sketch_shots import draw_shot

__all__ = ["FRAME_SIZES", "SketchRenderer", "render_sketch"]

# Frames are drawn small (fast, a few KB) but keep the ratio exactly.
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (640, 360),
    "9:16": (360, 640),
    "1:1": (480, 480),
    "4:3": (560, 420),
}
_HEADER_H = 26
Shot = tuple[ShotSize, CameraAngle, CameraMovement, Transition | None]
_E = TypeVar("_E", bound=enum.StrEnum)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled scalable font: no system fonts needed on a fresh machine.
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=8)
def _metrics(size: int) -> tuple[int, int]:
    """The font's ascent and descent: where lines sit and how tall label cards are."""
    font = _font(size)
    if isinstance(font, ImageFont.FreeTypeFont):
        return font.getmetrics()
    return int(font.getbbox("Ag")[3]), 0  # Pillow built without FreeType: a bitmap font


@lru_cache(maxsize=1)
def _palette() -> Image.Image:
    # Every flat tone the drawing uses, plus steps between the colours text is lettered in and
    # on, so anti-aliased letters keep their edges. A palette PNG is a third of the RGB data
    # and skips the per-row filter search: encoding takes a fraction of the time.
    pairs = ((INK, WHITE), (INK, PAPER), (PAPER, INK), (ACCENT, INK), (ACCENT, PAPER),
             (SOFT, PAPER), (SOFT, WHITE))
    ramps = [tuple(round(b[k] + (a[k] - b[k]) * i / 7) for k in range(3))
             for a, b in pairs for i in range(1, 7)]
    image = Image.new("P", (1, 1))
    image.putpalette([c for colour in (*TONES, *ramps) for c in colour])
    return image


def _rng(request: ImageRequest) -> random.Random:
    key = f"{request.prompt}|{request.seed}|{request.aspect_ratio}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _shot(scene: Scene | None, number: int, total: int) -> Shot:
    """The scene's shot, each field it lacks taken from the rules' shot for its position. The
    rules' transition is noted only for a scene with no shot at all (stored before planning):
    a planned scene without one has none."""
    (size, angle, movement), transition = rules_shot(number, total)
    if scene is None:
        return size, angle, movement, transition
    planned = scene.shot_size or scene.camera_angle or scene.camera_movement
    cut = _pick(Transition, scene.transition, None if planned else transition)
    return (_pick(ShotSize, scene.shot_size, size) or size,
            _pick(CameraAngle, scene.camera_angle, angle) or angle,
            _pick(CameraMovement, scene.camera_movement, movement) or movement, cut)


def _pick(kind: type[_E], value: str | None, default: _E | None) -> _E | None:
    # A value this renderer does not know (a newer plan's word) draws as the default.
    try:
        return kind(value) if value else default
    except ValueError:
        return default


@lru_cache(maxsize=4096)
def _glyph(char: str, size: int) -> tuple[Image.Image | None, int, int, float]:
    """A character's coverage mask, its offset from the pen on the baseline, and its advance.

    Pillow rasterises every glyph of every string anew (about 20 us a glyph: most of a frame's
    time went on its caption). Lettering from cached glyphs gives the same pixels, since the
    basic layout puts each glyph at a whole pixel anyway, several times faster."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    advance = font.getlength(char)
    if right <= left or bottom <= top:
        return None, 0, 0, advance
    mask = Image.new("L", (int(right - left), int(bottom - top)))
    ImageDraw.Draw(mask).text((-left, -top), char, font=font, fill=255, anchor="ls")
    return mask, int(left), int(top), advance


def _width(text: str, size: int) -> float:
    return sum(_glyph(char, size)[3] for char in text)


def _letter(image: Image.Image, xy: tuple[float, float], text: str, size: int,
            colour: tuple[int, int, int], anchor: str = "la") -> None:
    """Letter ``text`` anchored at ``xy`` as Pillow's anchors say (l/m/r, then a/m/s/d)."""
    ascent, descent = _metrics(size)
    width = _width(text, size)
    x = xy[0] - {"l": 0.0, "m": width / 2, "r": width}[anchor[0]]
    base = round(xy[1] + {"a": ascent, "m": (ascent - descent) / 2, "s": 0, "d": -descent}[
        anchor[1]])
    pen = x
    for char in text:
        mask, left, top, advance = _glyph(char, size)
        if mask is not None:
            image.paste(colour, (round(pen) + left, base + top), mask)
        pen += advance


def _fit(text: str, size: int, room: float) -> str:
    """``text`` on one line, cut with an ellipsis to at most ``room`` pixels wide."""
    text = " ".join(text.split())
    if _width(text, size) <= room:
        return text
    room -= _width("\u2026", size)
    end, used = 0, 0.0
    for char in text:
        used += _glyph(char, size)[3]
        if used > room:
            break
        end += 1
    return text[:end].rstrip() + "\u2026"


def _label(image: Image.Image, text: str, xy: tuple[float, float], anchor: str,
           box: tuple[int, int, int, int], colour: tuple[int, int, int] = INK,
           background: tuple[int, int, int] = WHITE, size: int = 11) -> None:
    # Letters on a small light card so they read over any drawing; kept inside the picture.
    ascent, descent = _metrics(size)
    width = _width(text, size)
    left = xy[0] - {"l": 0.0, "m": width / 2, "r": width}[anchor[0]]
    top = xy[1] - {"a": 0.0, "m": (ascent + descent) / 2, "d": ascent + descent}[anchor[1]]
    x = min(max(left, box[0] + 6), box[2] - 6 - width)
    y = min(max(top, box[1] + 5), box[3] - 5 - ascent - descent)
    ImageDraw.Draw(image).rectangle((x - 3, y, x + width + 3, y + ascent + descent),
                                    fill=background,
                                    outline=SOFT if background is WHITE else None)
    _letter(image, (x, y), text, size, colour)


def _letter_marks(image: Image.Image, marks: list[Mark], box: tuple[int, int, int, int]) -> None:
    for mark in marks:
        text = _fit(mark.text, 11, mark.room)
        if mark.camera:
            _label(image, text, (mark.x, mark.y), "mm", box, ACCENT, PAPER)
        else:
            _label(image, text, (mark.x, mark.y), "mm", box)


def _header(image: Image.Image, w: int, number: int, scene: Scene | None, line: str) -> None:
    ImageDraw.Draw(image).rectangle((0, 0, w, _HEADER_H), fill=INK)
    mid = _HEADER_H / 2
    left = f"SCENE {number:02d}"
    _letter(image, (10, mid), left, 14, PAPER, "lm")
    right = f"{scene.duration:g}s" if scene else ""
    _letter(image, (w - 10, mid), right, 14, PAPER, "rm")
    # The shot line sits centred between the two, as large as the room allows.
    room = w - 2 * (max(_width(left, 14), _width(right, 14)) + 22)
    size = next((s for s in (12, 11, 10) if _width(line, s) <= room), 10)
    _letter(image, (w / 2, mid), _fit(line, size, room), size, ACCENT, "mm")


def _caption(image: Image.Image, w: int, h: int, caption_h: int, text: str,
             dialogue: str | None) -> None:
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, h - caption_h, w, h), fill=WHITE)
    draw.line((0, h - caption_h, w, h - caption_h), fill=INK, width=2)
    chars = max(20, int(w / 7.2))
    room = max(1, (caption_h - 8) // 16)
    said = textwrap.wrap(f"\u201c{dialogue.strip()}\u201d", width=chars) if dialogue else []
    # The dialogue is lettered after the description; when space is short the description
    # keeps one line and the dialogue takes the rest (all of it in a one-line caption).
    keep = room - min(len(said), room - 1) if room > 1 else (0 if said else 1)
    lines = _clip(textwrap.wrap(text, width=chars), keep) + _clip(said, room - keep)
    for i, line in enumerate(lines):
        _letter(image, (10, h - caption_h + 6 + 16 * i), line, 13, INK)


def _clip(lines: list[str], n: int) -> list[str]:
    """The first ``n`` lines, the last one ending in an ellipsis when some were left out."""
    if len(lines) <= n:
        return lines
    if n <= 0:
        return []
    return [*lines[: n - 1], lines[n - 1].rstrip(" ,.;:\u201d") + "\u2026"]


# --- the camera's move ----------------------------------------------------------------------

def _arrow(d: ImageDraw.ImageDraw, p0: Point, p1: Point, width: int = 3, head: float = 11) -> None:
    a = math.atan2(p1[1] - p0[1], p1[0] - p0[0])
    # The shaft stops inside the head, so the tip stays sharp.
    end = (p1[0] - math.cos(a) * head * 0.6, p1[1] - math.sin(a) * head * 0.6)
    d.line([p0, end], fill=ACCENT, width=width)
    d.polygon([p1, (p1[0] - head * math.cos(a - 0.42), p1[1] - head * math.sin(a - 0.42)),
               (p1[0] - head * math.cos(a + 0.42), p1[1] - head * math.sin(a + 0.42))],
              fill=ACCENT)


def _dashed_box(d: ImageDraw.ImageDraw, box: Sequence[float], dash: int = 10) -> None:
    x0, y0, x1, y1 = box
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)),
                 ((x0, y1), (x0, y0))):
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        steps = max(1, int(length // (dash * 1.6)))
        for i in range(steps + 1):
            t0, t1 = i / (steps + 0.6), min(1.0, (i + 0.6) / (steps + 0.6))
            d.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                    (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)],
                   fill=ACCENT, width=2)


def _notate(d: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int],
            movement: CameraMovement, focus: Point) -> list[Mark]:
    """The camera's move, drawn upright over the picture in the accent colour; gives the
    notes to letter beside it."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    flip = rng.choice((-1, 1))
    if movement in (CameraMovement.PAN, CameraMovement.TRUCK):
        y = y0 + h * (0.16 if movement is CameraMovement.PAN else 0.8)
        a, b = x0 + w * 0.12, x0 + w * (0.88 if movement is CameraMovement.PAN else 0.76)
        _arrow(d, *(((a, y), (b, y)) if flip > 0 else ((b, y), (a, y))))
        if movement is CameraMovement.TRUCK:
            # The dolly track: two rails with ties.
            for off in (8, 14):
                d.line((a, y + off, b, y + off), fill=ACCENT, width=1)
            x = a
            while x <= b:
                d.line((x, y + 5, x, y + 17), fill=ACCENT, width=2)
                x += 10
    elif movement is CameraMovement.TILT:
        x = x0 + w * 0.93
        a, b = y0 + h * 0.15, y0 + h * 0.85
        _arrow(d, *(((x, a), (x, b)) if flip > 0 else ((x, b), (x, a))))
    elif movement is CameraMovement.CRANE:
        # The jib's sweep: a quarter ellipse rising from low in the frame and over the top.
        cx, cy, rx, ry = x0 + w * 0.92, y0 + h * 0.86, w * 0.2, h * 0.7
        sweep = [math.pi * (1 + t / 24) for t in range(13)]
        pts = [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in sweep]
        if flip < 0:
            pts.reverse()
        d.line(pts[:-1], fill=ACCENT, width=3, joint="curve")
        _arrow(d, pts[-3], pts[-1])
        return [Mark("CRANE", pts[6][0] - 30, pts[6][1], camera=True)]
    elif movement is CameraMovement.HANDHELD:
        wave = [(x0 + 14 + i * 3, y1 - 20 + 5 * math.sin(i * 0.9)) for i in range(25)]
        d.line(wave, fill=ACCENT, width=2, joint="curve")
    elif movement is not CameraMovement.STATIC:
        _nested(d, box, movement, focus)
    return []


def _nested(d: ImageDraw.ImageDraw, box: tuple[int, int, int, int], movement: CameraMovement,
            focus: Point) -> None:
    # Dollies and zooms: the end (or start) framing as a frame inside the frame, with arrows
    # from the outer corners in (pushing in) or out to them (pulling back). A zoom's inner
    # frame is dashed: the lens moves, not the camera.
    x0, y0, x1, y1 = box
    iw, ih = (x1 - x0) * 0.5, (y1 - y0) * 0.5
    # Centred half way towards the subject, with room left for every corner's arrow.
    cx = min(max((x0 + x1 + focus[0] * 2) / 4, x0 + iw * 0.8), x1 - iw * 0.8)
    cy = min(max((y0 + y1 + focus[1] * 2) / 4, y0 + ih * 0.8), y1 - ih * 0.8)
    inner = (cx - iw / 2, cy - ih / 2, cx + iw / 2, cy + ih / 2)
    if movement in (CameraMovement.ZOOM_IN, CameraMovement.ZOOM_OUT):
        _dashed_box(d, inner)
    else:
        d.rectangle(inner, outline=ACCENT, width=2)
    outer = (x0 + 7, y0 + 7, x1 - 7, y1 - 7)
    d.rectangle(outer, outline=ACCENT, width=1)
    inward = movement in (CameraMovement.DOLLY_IN, CameraMovement.ZOOM_IN)
    for ox, oy, ix, iy in ((0, 1, 0, 1), (2, 1, 2, 1), (0, 3, 0, 3), (2, 3, 2, 3)):
        o, i = (outer[ox], outer[oy]), (inner[ix], inner[iy])
        a, b = (o, i) if inward else (i, o)
        # Arrows stop short of both frames so the corners stay readable.
        _arrow(d, (a[0] + (b[0] - a[0]) * 0.12, a[1] + (b[1] - a[1]) * 0.12),
               (a[0] + (b[0] - a[0]) * 0.9, a[1] + (b[1] - a[1]) * 0.9), width=2, head=9)


def render_sketch(request: ImageRequest) -> bytes:
    """Draw the frame for ``request`` and return it as PNG bytes."""
    w, h = FRAME_SIZES.get(request.aspect_ratio, FRAME_SIZES["16:9"])
    scene = request.scene
    number = scene.scene_number if scene else 1
    total = max(request.scenes_total, number)
    size, angle, movement, transition = _shot(scene, number, total)
    beat = (scene.beat if scene and scene.beat else None) or beat_for(number, total).value
    rng = _rng(request)

    image = Image.new("RGB", (w, h), PAPER)
    caption_h = max(44, h // 6)
    box = (0, _HEADER_H, w, h - caption_h)
    cast = tuple(" ".join(name.split()) for name in request.cast)
    marks, focus = draw_shot(image, box, size, angle, cast, rng)
    marks += _notate(ImageDraw.Draw(image), rng, box, movement, focus)
    _letter_marks(image, marks, box)
    _label(image, _fit(beat, 11, w * 0.45), (box[0] + 8, box[1] + 7), "la", box, SOFT, PAPER)
    if transition:
        _label(image, transition.value.replace("_", " ").upper(), (box[2] - 8, box[3] - 5),
               "rd", box, SOFT, PAPER, size=10)
    _header(image, w, number, scene, shot_line(size, angle, movement))
    _caption(image, w, h, caption_h, scene.description if scene else request.prompt,
             scene.dialogue if scene else None)
    ImageDraw.Draw(image).rectangle((0, 0, w - 1, h - 1), outline=INK, width=2)

    out = io.BytesIO()
    image.quantize(palette=_palette(), dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=False, compress_level=1)
    return out.getvalue()


class SketchRenderer:
    """The default provider: draws frames locally, free and offline."""

    name = "sketch"
    price_per_image = 0.0

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def generate(
        self, request: ImageRequest, *, on_prediction: PredictionCallback | None = None
    ) -> ImageResult:
        if self.delay:
            await asyncio.sleep(self.delay)
        # Drawing takes a few milliseconds; doing it inline keeps the renderer free of threads.
        return ImageResult(data=render_sketch(request), extension="png")

    async def aclose(self) -> None:
        return None
