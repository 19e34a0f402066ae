"""Letters on frames: the font, text wrapped to a width and a number of lines, lines centred.

Pillow's bundled scalable font is used at every size, so a caption wraps and looks the same on
every machine, whatever fonts it has installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from PIL import ImageDraw, ImageFont

__all__ = ["draw_centred", "font_at", "line_height", "wrap"]


@lru_cache(maxsize=16)
def font_at(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font at ``size`` pixels (cached: each scene's band asks for the same sizes)."""
    # Pillow's bundled scalable font: the same letters on every machine, no system fonts.
    return ImageFont.load_default(size=size)


def line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """The distance from one line's top to the next one's."""
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return round((ascent + descent) * 1.15)
    return int(font.getbbox("Ag")[3]) + 2  # Pillow built without FreeType: a bitmap font


def _longest_prefix(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
                    width: float, suffix: str = "") -> int:
    """How many leading characters of ``text`` (followed by ``suffix``) fit in ``width``."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid] + suffix) <= width:
            low = mid
        else:
            high = mid - 1
    return low


def wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float,
         max_lines: int) -> list[str]:
    """``text`` in at most ``max_lines`` lines of ``width`` pixels, broken at spaces (mid-word
    for a word longer than a line), the last line cut with an ellipsis when text is left."""
    words = text.split()
    lines: list[str] = []
    current = ""
    while words and len(lines) <= max_lines:  # one line more than shown: tells if text is left
        trial = f"{current} {words[0]}" if current else words[0]
        if font.getlength(trial) <= width:
            current = trial
            words.pop(0)
        elif current:
            lines.append(current)
            current = ""
        else:  # a word wider than the line (a URL, a script written without spaces)
            cut = max(1, _longest_prefix(words[0], font, width))
            lines.append(words[0][:cut])
            words[0] = words[0][cut:]
    if current:
        lines.append(current)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    last = last[:_longest_prefix(last, font, width, "\u2026")].rstrip()
    return [*lines[:max_lines - 1], last + "\u2026"]


def draw_centred(draw: ImageDraw.ImageDraw, lines: Sequence[str],
                 font: ImageFont.FreeTypeFont | ImageFont.ImageFont, centre_x: float,
                 top: float, fill: tuple[int, int, int]) -> float:
    """Draws ``lines`` centred on ``centre_x`` from ``top``; returns the y below them."""
    step = line_height(font)
    for line in lines:
        draw.text((centre_x - font.getlength(line) / 2, top), line, font=font, fill=fill)
        top += step
    return top
