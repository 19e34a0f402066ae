"""The frames of one animatic, made in order as a stream, ahead of the encoder.

The timeline (``timeline.py``) says what each frame shows; ``Frames`` draws it from the
prepared scenes (``stills.py``) and hands the frames over in order, each with whether it
starts a scene. Only a few frames and the scenes in play are held at any time.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import av

from ..schemas import JobResponse, StoryboardEntry
from .cards import title_card
from .planes import Planes, black, blend, to_frame, to_planes
from .stills import Shot, prepare_shot
from .timeline import TITLE, Layer, Recipe, Timeline

__all__ = ["WORKERS", "Frames"]

WORKERS = 2  # threads drawing frames
_QUEUE_DEPTH = 6  # frames made ahead of the encoder


class Frames:
    """Makes the frames of one job, in order, on a small pool of threads (Pillow and FFmpeg let
    go of the GIL while they work, so the pictures are drawn while the encoder runs). Each
    scene is prepared once, when first needed (the next one is read ahead), and let go after
    its last frame, so memory does not grow with the length of the board."""

    def __init__(self, job: JobResponse, entries: Sequence[StoryboardEntry], media_dir: Path,
                 size: tuple[int, int], timeline: Timeline) -> None:
        self.job = job
        self.entries = entries
        self.media_dir = media_dir
        self.size = size
        self.timeline = timeline
        self.black = black(size)
        self.title: Planes | None = None
        self._shots: dict[int, Shot] = {}
        self._preparing: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()

    def shot(self, index: int) -> Shot:
        """Scene ``index``, prepared on first use (by one thread; others wait for it)."""
        shot = self._shots.get(index)
        if shot is not None:
            return shot
        with self._lock:
            preparing = self._preparing.setdefault(index, threading.Lock())
        with preparing:
            shot = self._shots.get(index)
            if shot is None:
                shot, poster = prepare_shot(self.entries[index], self.media_dir, self.size,
                                            with_poster=index == 0)
                if poster is not None:
                    self.title = to_planes(title_card(self.job, poster))
                self._shots[index] = shot
        return shot

    def picture(self, layer: Layer) -> Planes:
        """The picture of one layer: the title card, or a scene at its point of the shot."""
        if layer.shot == TITLE:
            if self.title is None:
                self.shot(0)  # the card is drawn on scene 1's opening view
            assert self.title is not None
            return self.title
        return self.shot(layer.shot).picture(layer.progress)

    def render(self, recipe: Recipe) -> av.VideoFrame:
        """The frame ``recipe`` describes (for a held scene, the same frame object each time)."""
        if recipe.over is None and recipe.level == 1 and recipe.base.shot != TITLE:
            shot = self.shot(recipe.base.shot)
            if shot.move is None:  # a held scene: one frame object, encoded again and again
                if shot.held_frame is None:
                    shot.held_frame = to_frame(self.picture(recipe.base))
                return shot.held_frame
        picture = self.picture(recipe.base)
        if recipe.over is not None:
            picture = blend(picture, self.picture(recipe.over), recipe.mix)
        if recipe.level < 1:
            picture = blend(self.black, picture, recipe.level)
        return to_frame(picture)

    def frames(self, pool: ThreadPoolExecutor) -> Iterator[tuple[av.VideoFrame, bool]]:
        """Each frame, and whether it starts a scene (the encoder makes it a keyframe)."""
        timeline = self.timeline
        starts = timeline.firsts[:-1]
        pending: deque[tuple[int, Future[av.VideoFrame], bool]] = deque()
        previous: tuple[Recipe, Future[av.VideoFrame]] | None = None
        for index in range(timeline.total):
            recipe = timeline.recipe(index)
            if previous is None or previous[0] != recipe:
                previous = (recipe, pool.submit(self.render, recipe))
            # else: the same picture again (the title card): the same frame object
            starts_scene = index in starts
            if starts_scene:
                following = bisect_right(starts, index)
                if following < len(starts):  # read the next scene's image ahead
                    pool.submit(self.shot, following)
            pending.append((index, previous[1], starts_scene))
            if len(pending) > _QUEUE_DEPTH:
                yield self._hand_over(*pending.popleft())
        while pending:
            yield self._hand_over(*pending.popleft())

    def _hand_over(self, index: int, future: Future[av.VideoFrame],
                   starts_scene: bool) -> tuple[av.VideoFrame, bool]:
        frame = future.result()  # raises what went wrong while drawing it
        self._release(index)
        return frame, starts_scene

    def _release(self, frame: int) -> None:
        # A scene is done once ``frame`` (drawn) is past it and past any dissolve out of it:
        # no frame still to come needs it.
        for index in list(self._shots):
            end = self.timeline.firsts[index + 1]
            window = self.timeline.dissolve(index)
            if window is not None:
                end = window[0] + window[1]
            if frame >= end:
                del self._shots[index]
