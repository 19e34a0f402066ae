"""What the animatic writes on its pictures: the caption band at the foot of every scene, the
title card over the start of scene 1, and the placeholder for a scene without an image.

Each is drawn once per scene in RGB with Pillow; the band is then kept as planes and a mask,
so laying it over a moving shot's frame is three pastes.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter

from ..schemas import JobResponse, StoryboardEntry
from .planes import Planes, even, to_planes
from .text import draw_centred, font_at, line_height, wrap

__all__ = ["Band", "caption_band", "caption_text", "placeholder", "title_card"]

_BAND_INK = (245, 243, 238)
_ACCENT = (242, 166, 90)
_BAND_OPACITY = 165  # of 255: the picture shows through the caption band
_TITLE_INK = (250, 248, 244)
_LOGLINE_INK = (214, 209, 200)
_EMPTY_FILL = (38, 40, 46)
_EMPTY_RULE = (110, 108, 102)
_FAIL_FILL = (74, 30, 30)
_FAIL_RULE = (214, 90, 49)


def caption_text(entry: StoryboardEntry) -> str:
    """What the caption band says beside the scene number: the dialogue in quotes, else the
    description."""
    scene = entry.scene
    if scene.dialogue and scene.dialogue.strip():
        return f"\u201c{' '.join(scene.dialogue.split())}\u201d"
    return " ".join(scene.description.split())


@dataclass(frozen=True)
class Band:
    """The caption band, ready to lay over a picture: its planes and how opaque each pixel is
    (a full-size mask for Y, a half-size one for U and V)."""

    top: int
    planes: Planes
    mask: Image.Image
    half_mask: Image.Image

    def lay_over(self, picture: Planes) -> None:
        """Draws the band onto ``picture`` (in place)."""
        y, u, v = picture
        y.paste(self.planes[0], (0, self.top), self.mask)
        u.paste(self.planes[1], (0, self.top // 2), self.half_mask)
        v.paste(self.planes[2], (0, self.top // 2), self.half_mask)


def caption_band(entry: StoryboardEntry, size: tuple[int, int]) -> Band:
    """The band for ``entry`` in a frame of ``size``: "SCENE n" and two lines of caption."""
    width, height = size
    unit = min(size) / 720
    font = font_at(max(10, round(26 * unit)))
    step = line_height(font)
    pad = round(18 * unit)
    band_h = even(2 * step + 2 * pad)
    label = f"SCENE {entry.scene.scene_number}"
    text_x = pad + font.getlength(label) + round(22 * unit)
    lines = wrap(caption_text(entry), font, width - text_x - pad, 2)
    band = Image.new("RGB", (width, band_h), (0, 0, 0))
    mask = Image.new("L", (width, band_h), _BAND_OPACITY)
    top = (band_h - len(lines) * step) / 2
    # The letters are drawn on the picture and, fully opaque, on the mask.
    for draw, ink, accent in ((ImageDraw.Draw(band), _BAND_INK, _ACCENT),
                              (ImageDraw.Draw(mask), 255, 255)):
        draw.text((pad, top), label, font=font, fill=accent)
        for row, line in enumerate(lines):
            draw.text((text_x, top + row * step), line, font=font, fill=ink)
    half_mask = mask.resize((width // 2, band_h // 2), Image.Resampling.BOX)
    return Band(height - band_h, to_planes(band), mask, half_mask)


def title_card(job: JobResponse, poster: Image.Image) -> Image.Image:
    """Scene 1's opening frame, darkened and blurred, with the title and the logline."""
    size = poster.size
    unit = min(size) / 720
    card = Image.blend(Image.new("RGB", size), poster, 0.32)
    card = card.filter(ImageFilter.GaussianBlur(max(1, round(6 * unit))))
    title = job.plan.title if job.plan is not None and job.plan.title.strip() else (
        job.prompt or f"Storyboard #{job.job_id}")
    logline = job.plan.logline if job.plan is not None else ""
    title_font = font_at(max(12, round(54 * unit)))
    logline_font = font_at(max(10, round(26 * unit)))
    room = size[0] * 0.8
    title_lines = wrap(" ".join(title.split()), title_font, room, 2)
    logline_lines = wrap(" ".join(logline.split()), logline_font, room, 3)
    gap = round(22 * unit) if logline_lines else 0
    block = (len(title_lines) * line_height(title_font) + gap
             + len(logline_lines) * line_height(logline_font))
    draw = ImageDraw.Draw(card)
    below = draw_centred(draw, title_lines, title_font, size[0] / 2, (size[1] - block) / 2,
                         _TITLE_INK)
    draw_centred(draw, logline_lines, logline_font, size[0] / 2, below + gap, _LOGLINE_INK)
    return card


def placeholder(number: int, problem: str, size: tuple[int, int]) -> Image.Image:
    """A frame saying why the scene has no picture: red for a failure, grey otherwise."""
    width, height = size
    unit = min(size) / 720
    failed = problem.startswith("image failed")
    image = Image.new("RGB", size, _FAIL_FILL if failed else _EMPTY_FILL)
    draw = ImageDraw.Draw(image)
    inset, dash = round(28 * unit), max(4, round(14 * unit))
    rule = _FAIL_RULE if failed else _EMPTY_RULE
    for x in range(inset, width - inset, 2 * dash):  # a dashed frame, as on the PDF sheet
        draw.line([(x, inset), (min(x + dash, width - inset), inset)], fill=rule, width=2)
        draw.line([(x, height - inset), (min(x + dash, width - inset), height - inset)],
                  fill=rule, width=2)
    for y in range(inset, height - inset, 2 * dash):
        draw.line([(inset, y), (inset, min(y + dash, height - inset))], fill=rule, width=2)
        draw.line([(width - inset, y), (width - inset, min(y + dash, height - inset))],
                  fill=rule, width=2)
    font = font_at(max(10, round(30 * unit)))
    # A plain hyphen: Pillow's bundled font has no en dash.
    lines = wrap(f"Scene {number} - {problem}", font, width - 4 * inset, 4)
    top = height * 0.42 - len(lines) * line_height(font) / 2
    draw_centred(draw, lines, font, width / 2, top, _BAND_INK)
    return image
