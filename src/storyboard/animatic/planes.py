"""The picture as the encoder takes it: three 4:2:0 planes, Y at full size and U, V at half
size, each a Pillow "L" image, in BT.709 limited range.

Frames are composed on the planes rather than in RGB: FFmpeg converts each still's colours
once, and every crop, blend and resample after that works on the bytes the encoder takes as
they are. That is why both sides of the video are even (the colour planes halve them exactly).
"""

from __future__ import annotations

import math

import av
from av.video.reformatter import ColorRange, Colorspace
from PIL import Image

__all__ = ["Planes", "black", "blend", "even", "frame_size", "to_frame", "to_planes"]

Planes = tuple[Image.Image, Image.Image, Image.Image]  # Y, U, V ("L" images; U, V half size)


def frame_size(aspect_ratio: str, height: int = 720) -> tuple[int, int]:
    """Width and height of the video for ``aspect_ratio`` ("16:9", "9:16", "1:1", "4:3", or
    any "w:h"; anything else reads as 16:9): the shorter side is ``height``, both even (4:2:0
    video halves them for the colour planes)."""
    width_part, _, height_part = aspect_ratio.partition(":")
    try:
        ratio = float(width_part) / float(height_part)
    except (ValueError, ZeroDivisionError):
        ratio = 16 / 9
    if not math.isfinite(ratio) or ratio <= 0:
        ratio = 16 / 9
    short = even(height)
    if ratio >= 1:
        return even(short * ratio), short
    return short, even(short / ratio)


def even(value: float) -> int:
    """``value`` rounded to the nearest even number, at least 2."""
    return max(2, 2 * round(value / 2))


def to_planes(image: Image.Image) -> Planes:
    """An RGB image (even width and height) as BT.709 limited-range Y, U, V planes."""
    frame = av.VideoFrame.from_image(image).reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
    y, u, v = (Image.frombytes("L", (p.width, p.height), bytes(p), "raw", "L", p.line_size)
               for p in frame.planes)
    return y, u, v


def to_frame(planes: Planes) -> av.VideoFrame:
    """The planes as a ``yuv420p`` frame for the encoder."""
    y = planes[0]
    frame = av.VideoFrame(y.width, y.height, "yuv420p")
    for plane, image in zip(frame.planes, planes, strict=True):
        # One copy per plane: Pillow pads each row to the frame's line size itself.
        memoryview(plane)[:] = image.tobytes("raw", "L", plane.line_size)
    return frame


def blend(first: Planes, second: Planes, alpha: float) -> Planes:
    """``first`` * (1 - alpha) + ``second`` * alpha, plane by plane. (Y'CbCr is a linear map of
    R'G'B', so mixing the planes is mixing the pictures.)"""
    y, u, v = (Image.blend(a, b, alpha) for a, b in zip(first, second, strict=True))
    return y, u, v


def black(size: tuple[int, int]) -> Planes:
    """A black picture of ``size`` (what a fade goes to)."""
    width, height = size
    half = (width // 2, height // 2)
    return Image.new("L", size, 16), Image.new("L", half, 128), Image.new("L", half, 128)
