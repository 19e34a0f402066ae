"""The offline sketch renderer: a real storyboard frame drawn with Pillow, no account needed.

Each frame is a pencil-style panel in the requested aspect ratio whose composition follows the
scene's beat: a wide establishing shot with a horizon for the opening, a medium shot with a
subject for context and content scenes, and a clean end card for the closing. Scene number,
duration and a caption from the description are lettered on. The same prompt, scene and seed
always give the same bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import textwrap
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from ..scenes import SceneBeat, beat_for
from .base import ImageRequest, ImageResult, PredictionCallback

__all__ = ["FRAME_SIZES", "SketchRenderer", "render_sketch"]

# Frames are drawn small (fast, a few KB) but keep the ratio exactly.
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (640, 360),
    "9:16": (360, 640),
    "1:1": (480, 480),
    "4:3": (560, 420),
}
_PAPER = (246, 243, 236)
_INK = (38, 38, 44)
_SOFT = (150, 146, 140)
_ACCENT = (214, 90, 49)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled scalable font: no system fonts needed on a fresh machine.
    return ImageFont.load_default(size=size)


def _rng(request: ImageRequest) -> random.Random:
    key = f"{request.prompt}|{request.seed}|{request.aspect_ratio}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _wobbly_line(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    points: list[tuple[float, float]],
    width: int = 2,
    fill: tuple[int, int, int] = _INK,
) -> None:
    # Two slightly offset strokes read as a hand-drawn pencil line.
    for _ in range(2):
        jittered = [(x + rng.uniform(-1.5, 1.5), y + rng.uniform(-1.5, 1.5)) for x, y in points]
        draw.line(jittered, fill=fill, width=width, joint="curve")


def _figure(draw: ImageDraw.ImageDraw, rng: random.Random, cx: float, base: float, h: float) -> None:
    head = h * 0.14
    draw.ellipse((cx - head, base - h, cx + head, base - h + 2 * head), outline=_INK, width=2)
    neck = base - h + 2 * head
    _wobbly_line(draw, rng, [(cx, neck), (cx, base - h * 0.4)])
    _wobbly_line(draw, rng, [(cx - h * 0.22, neck + h * 0.15), (cx, neck + h * 0.08),
                             (cx + h * 0.22, neck + h * 0.2)])
    _wobbly_line(draw, rng, [(cx - h * 0.15, base), (cx, base - h * 0.4), (cx + h * 0.15, base)])


def _hatch(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[float, ...], step: int) -> None:
    # Diagonal shading kept inside the box: each stroke runs from the left/top edge to the
    # bottom/right edge at 45 degrees.
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    offset = 0.0
    while offset < (x1 - x0) + (y1 - y0):
        sx, sy = x0 + max(0.0, offset - (y1 - y0)), y0 + min(offset, y1 - y0)
        length = min(sy - y0, x1 - sx, side * 4)
        draw.line((sx, sy, sx + length, sy - length), fill=_SOFT, width=1)
        offset += step + rng.randint(0, 3)


def _compose(draw: ImageDraw.ImageDraw, rng: random.Random, beat: SceneBeat,
             w: int, h: int, top: int, bottom: int) -> None:
    inner_h = bottom - top
    if beat is SceneBeat.OPENING:
        horizon = top + inner_h * rng.uniform(0.55, 0.68)
        ridge = [(0, horizon)]
        for i in range(1, 9):
            ridge.append((w * i / 8, horizon - rng.uniform(0, inner_h * 0.18)))
        _wobbly_line(draw, rng, ridge)
        _wobbly_line(draw, rng, [(0, horizon + 4), (w, horizon + 4)], width=1, fill=_SOFT)
        sun = rng.uniform(0.15, 0.85) * w
        r = inner_h * 0.07
        draw.ellipse((sun - r, top + inner_h * 0.15, sun + r, top + inner_h * 0.15 + 2 * r),
                     outline=_ACCENT, width=2)
        _figure(draw, rng, rng.uniform(0.3, 0.7) * w, horizon + inner_h * 0.12, inner_h * 0.18)
        _label(draw, "WIDE / ESTABLISHING", w, top)
    elif beat is SceneBeat.CLOSING:
        pad = min(w, inner_h) * 0.18
        box = (pad, top + pad, w - pad, bottom - pad)
        draw.rounded_rectangle(box, radius=12, outline=_INK, width=3)
        mid = (box[1] + box[3]) / 2
        _wobbly_line(draw, rng, [(box[0] + 24, mid - 8), (box[2] - 24, mid - 8)], width=3)
        bw = (box[2] - box[0]) * 0.4
        cx = (box[0] + box[2]) / 2
        draw.rounded_rectangle((cx - bw / 2, mid + 10, cx + bw / 2, mid + 36), radius=10,
                               fill=_ACCENT)
        _label(draw, "END CARD / CTA", w, top)
    else:
        floor = top + inner_h * 0.82
        _wobbly_line(draw, rng, [(0, floor), (w, floor)], width=1, fill=_SOFT)
        subject_x = rng.uniform(0.35, 0.65) * w
        _figure(draw, rng, subject_x, floor, inner_h * 0.62)
        prop_x = subject_x + (w * 0.22 if subject_x < w / 2 else -w * 0.22)
        s = inner_h * 0.16
        prop = (prop_x - s, floor - 2 * s, prop_x + s, floor)
        draw.rectangle(prop, outline=_INK, width=2)
        _hatch(draw, rng, prop, 6)
        # Rule-of-thirds guides, faint, as a storyboard artist would pencil them.
        for i in (1, 2):
            draw.line((w * i / 3, top, w * i / 3, bottom), fill=(225, 221, 212), width=1)
        _label(draw, "MEDIUM" if beat is SceneBeat.CONTEXT else "MEDIUM / SHOWCASE", w, top)


def _label(draw: ImageDraw.ImageDraw, text: str, w: int, top: int) -> None:
    font = _font(11)
    draw.text((w - 10, top + 8), text, fill=_SOFT, font=font, anchor="ra")


def render_sketch(request: ImageRequest) -> bytes:
    """Draw the frame for ``request`` and return it as PNG bytes."""
    w, h = FRAME_SIZES.get(request.aspect_ratio, FRAME_SIZES["16:9"])
    scene = request.scene
    number = scene.scene_number if scene else 1
    total = max(request.scenes_total, number)
    beat = beat_for(number, total)
    rng = _rng(request)

    image = Image.new("RGB", (w, h), _PAPER)
    draw = ImageDraw.Draw(image)
    caption_h = max(44, h // 6)
    header_h = 26
    _compose(draw, rng, beat, w, h, header_h, h - caption_h)

    # Header strip: scene number and duration; caption strip: the description.
    draw.rectangle((0, 0, w, header_h), fill=_INK)
    draw.text((10, header_h / 2), f"SCENE {number:02d}", fill=_PAPER, font=_font(14), anchor="lm")
    if scene:
        draw.text((w - 10, header_h / 2), f"{scene.duration:g}s", fill=_PAPER, font=_font(14),
                  anchor="rm")
    draw.text((w / 2, header_h / 2), beat.value.upper(), fill=_ACCENT, font=_font(11), anchor="mm")
    draw.rectangle((0, h - caption_h, w, h), fill=(255, 255, 255))
    draw.line((0, h - caption_h, w, h - caption_h), fill=_INK, width=2)
    text = scene.description if scene else request.prompt
    chars = max(20, int(w / 7.2))
    lines = textwrap.wrap(text, width=chars)[: max(1, (caption_h - 8) // 16)]
    draw.multiline_text((10, h - caption_h + 6), "\n".join(lines), fill=_INK, font=_font(13),
                        spacing=3)
    draw.rectangle((0, 0, w - 1, h - 1), outline=_INK, width=2)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=1)
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
