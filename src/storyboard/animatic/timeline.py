"""The timeline: which scene each frame of the video shows, how far through its move, and
where the title card, the dissolves and the fades fall.

Pure arithmetic on frame numbers, no pictures: ``Timeline.recipe`` says how to make a frame,
and the frame maker (``frames.py``) follows it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from ..schemas import StoryboardEntry
from ..shots import Transition

__all__ = ["TITLE", "Layer", "Recipe", "Timeline"]

_DISSOLVE_SECONDS = 0.5
_FADE_SECONDS = 0.75
_TITLE_SECONDS = 1.5  # the title card alone; it then dissolves into scene 1 ...
_TITLE_DISSOLVE_SECONDS = 0.5  # ... over this long

TITLE = -1  # the layer index of the title card


@dataclass(frozen=True)
class Layer:
    """One picture in a frame: a scene (or the title card) at a point of its shot."""

    shot: int  # index into the scenes, or TITLE
    progress: float  # 0 to 1 through the shot


@dataclass(frozen=True)
class Recipe:
    """How to make one frame: ``base``, mixed with ``over`` at ``mix``, at ``level`` (1 is
    full brightness, 0 black)."""

    base: Layer
    over: Layer | None = None
    mix: float = 0.0
    level: float = 1.0


@dataclass(frozen=True)
class Timeline:
    """Which frames belong to which scene, and where the title, dissolves and fades fall."""

    firsts: tuple[int, ...]  # each scene's first frame; one more entry: the frame count
    transitions: tuple[Transition | None, ...]
    fps: int

    @classmethod
    def of(cls, entries: Sequence[StoryboardEntry], fps: int) -> Timeline:
        """The timeline of ``entries`` (in playing order) at ``fps``."""
        # Boundaries are rounded from the running total, so rounding never accumulates: the
        # video is within one frame of the board's length and each cut within one frame of
        # its time.
        starts = accumulate((e.scene.duration for e in entries), initial=0.0)
        firsts = tuple(round(t * fps) for t in starts)
        return cls(firsts, tuple(e.scene.transition for e in entries), fps)

    @property
    def total(self) -> int:
        return self.firsts[-1]

    def count(self, shot: int) -> int:
        return self.firsts[shot + 1] - self.firsts[shot]

    def layer(self, shot: int, frame: int) -> Layer:
        # Progress at the middle of the frame's time, clamped for frames a dissolve borrows.
        progress = (frame - self.firsts[shot] + 0.5) / max(1, self.count(shot))
        return Layer(shot, min(1.0, max(0.0, progress)))

    def frames(self, seconds: float) -> int:
        return round(seconds * self.fps)

    def title_frames(self) -> tuple[int, int]:
        """Frames of the title card alone, then of its dissolve into scene 1 (at most 60% of
        scene 1 together, so a short first scene is still seen)."""
        count = self.count(0)
        return (min(self.frames(_TITLE_SECONDS), count * 2 // 5),
                min(self.frames(_TITLE_DISSOLVE_SECONDS), count // 5))

    def dissolve(self, shot: int) -> tuple[int, int] | None:
        """First frame and length of the crossfade from ``shot`` into the next one, centred on
        the cut and at most half of either scene."""
        if shot + 1 >= len(self.transitions) or self.transitions[shot] != Transition.DISSOLVE:
            return None
        length = min(self.frames(_DISSOLVE_SECONDS), self.count(shot) // 2,
                     self.count(shot + 1) // 2)
        if length < 2:
            return None
        return self.firsts[shot + 1] - length // 2, length

    def fade(self, shot: int) -> int:
        return min(self.frames(_FADE_SECONDS), self.count(shot) // 3)

    def shot_at(self, frame: int) -> int:
        # Scenes too short for a frame share their first frame with the next: take the last.
        return bisect_right(self.firsts, frame, hi=len(self.firsts) - 1) - 1

    def recipe(self, frame: int) -> Recipe:
        shot = self.shot_at(frame)
        recipe = Recipe(self.layer(shot, frame))
        for outgoing in (shot - 1, shot):
            window = self.dissolve(outgoing) if outgoing >= 0 else None
            if window is not None and window[0] <= frame < window[0] + window[1]:
                start, length = window
                recipe = Recipe(self.layer(outgoing, frame), self.layer(outgoing + 1, frame),
                                (frame - start + 1) / (length + 1))
        if shot == 0:
            alone, dissolving = self.title_frames()
            if frame < alone:
                recipe = Recipe(Layer(TITLE, 0.0))
            elif frame < alone + dissolving:
                recipe = Recipe(Layer(TITLE, 0.0), recipe.base,
                                (frame - alone + 1) / (dissolving + 1))
        return Recipe(recipe.base, recipe.over, recipe.mix, self.level(shot, frame))

    def level(self, shot: int, frame: int) -> float:
        """Brightness from the scene's own fade: 0 (black) on the first frame of a fade in and
        on the last frame of a fade out."""
        length = self.fade(shot)
        if length < 1:
            return 1.0
        into = frame - self.firsts[shot]
        left = self.firsts[shot + 1] - 1 - frame
        if self.transitions[shot] == Transition.FADE_IN and into < length:
            return into / length
        if self.transitions[shot] == Transition.FADE_OUT and left < length:
            return left / length
        return 1.0
