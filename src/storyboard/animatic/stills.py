"""Each scene prepared once, for all its frames: its image read (or a placeholder saying why
there is none), fitted to the frame, converted to planes, its caption band drawn.

A held scene (``static``, no move, or a placeholder) is then one finished picture, band
included; a moving one keeps a canvas (the still enlarged by ``MOVE_SCALE``) that each frame
is cut from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from ..schemas import StoryboardEntry
from ..shots import CameraMovement
from ..storage import path_for_url
from .cards import Band, caption_band, placeholder
from .moves import MOVE_SCALE, Move
from .planes import Planes, even, to_planes

__all__ = ["Shot", "prepare_shot", "read_still"]


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` scaled to fill ``size`` and centre-cropped to it (the frame is never
    letterboxed: a 1344x768 Flux image loses a few columns to be 16:9)."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    crop_w, crop_h = min(image.width, width / scale), min(image.height, height / scale)
    left, top = (image.width - crop_w) / 2, (image.height - crop_h) / 2
    return image.resize(size, Image.Resampling.BICUBIC,
                        box=(left, top, left + crop_w, top + crop_h), reducing_gap=2.0)


def read_still(entry: StoryboardEntry, media_dir: Path,
               size: tuple[int, int]) -> tuple[Image.Image | None, str]:
    """The scene's image, or None and why there is none (the placeholder's words)."""
    failed = f"image failed: {entry.error or 'no reason given'}"
    if not entry.image_url:
        return None, failed if entry.generation_status == "failed" else "not drawn"
    path = path_for_url(media_dir, entry.image_url)
    if path is None:  # the job names an image whose file is gone, or is not ours
        return None, failed if entry.generation_status == "failed" else "image file not found"
    try:
        with Image.open(path) as image:
            image.draft("RGB", size)  # a large JPEG decodes straight at a smaller scale
            return image.convert("RGB"), ""
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return None, f"image unreadable ({type(exc).__name__})"


@dataclass
class Shot:
    """One scene, prepared once: its canvas (moving shots) or finished picture (held ones)."""

    move: Move | None  # None: the frame is held
    canvas: Planes
    band: Band
    held: Planes | None = None  # the finished picture of a held shot, caption included
    held_frame: av.VideoFrame | None = None

    def picture(self, progress: float) -> Planes:
        """The scene at ``progress`` (0 to 1) through it, caption included (a new picture
        for a moving shot; the shared one, not to be changed, for a held one)."""
        if self.held is not None:
            return self.held
        assert self.move is not None
        picture = self.move.view(self.canvas, progress)
        self.band.lay_over(picture)
        return picture


def prepare_shot(entry: StoryboardEntry, media_dir: Path, size: tuple[int, int],
                 with_poster: bool = False) -> tuple[Shot, Image.Image | None]:
    """The shot and, if asked for, its opening view as an RGB image (the title card's
    background)."""
    band = caption_band(entry, size)
    canvas_size = (even(size[0] * MOVE_SCALE + 1), even(size[1] * MOVE_SCALE + 1))
    still, problem = read_still(entry, media_dir, canvas_size)
    movement = entry.scene.camera_movement
    if still is None or movement is None or movement is CameraMovement.STATIC:
        # A placeholder stays put whatever the plan says: it is a notice, not a picture.
        if still is None:
            poster = placeholder(entry.scene.scene_number, problem, size)
        else:
            poster = _cover(still, size)
        picture = to_planes(poster)
        band.lay_over(picture)
        return Shot(None, picture, band, held=picture), poster
    canvas = _cover(still, canvas_size)
    move = Move(movement, canvas_size, size, entry.scene.duration)
    shot = Shot(move, to_planes(canvas), band)
    if not with_poster:
        return shot, None
    return shot, canvas.resize(size, Image.Resampling.BOX, box=move.box(0.0))
