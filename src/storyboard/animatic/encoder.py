"""The H.264 encoder: an MP4 that any browser plays, written frame by frame with PyAV.

``yuv420p`` with its colours declared (BT.709, limited range), x264 at its fastest preset and a
constant quantiser, a keyframe at least every few seconds (and wherever the caller asks: the
animatic asks at every scene), and the index moved to the front when the file is closed
(``+faststart``) so playback starts before the download ends. It knows nothing of storyboards:
the benchmark pushes plain frames through it to measure this machine's floor.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self

import av
from av.video.frame import PictureType
from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

__all__ = ["Encoder"]

_KEYFRAME_SECONDS = 5  # a keyframe at least this often (and at every scene) for seeking

# x264's fastest preset at a constant quantiser. A constant rate factor (CRF) would run
# x264's look-ahead analysis on every frame: measured here it costs 1.5-2x the CPU per frame
# (a held frame 3.9 ms instead of 2.4 ms at 1280x720) for no gain on pictures this simple.
# Deblocking stays on: it costs little and hides the block edges of the moves.
_X264_OPTIONS = {"preset": "ultrafast", "qp": "26", "x264-params": "deblock=1"}


def _add_stream(container: av.container.OutputContainer, size: tuple[int, int],
                fps: int) -> av.video.stream.VideoStream:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    context = stream.codec_context
    context.time_base = Fraction(1, fps)
    context.gop_size = _KEYFRAME_SECONDS * fps
    # Frame threads rather than PyAV's default slice threads: x264 then works on a frame in
    # the background while the next ones are handed over (measured on the benchmark's frames:
    # 3.0 s instead of 3.3 s to encode them); the thread count is left to x264.
    context.thread_type = "FRAME"
    # What the planes are (BT.709, limited range), so players do not guess.
    context.colorspace = Colorspace.ITU709.value
    context.color_primaries = ColorPrimaries.BT709.value
    context.color_trc = ColorTrc.BT709.value
    context.color_range = ColorRange.MPEG.value
    stream.options = dict(_X264_OPTIONS)
    return stream


class Encoder:
    """An H.264 MP4 being written at ``path``: ``with Encoder(path, size, fps) as encoder:``,
    then ``encoder.send(frame, keyframe)`` for each ``yuv420p`` frame of ``size``, in order.

    Leaving the block normally flushes the encoder and closes the file (moving the index to
    the front); leaving it on an exception closes the file without flushing, as it is
    discarded anyway."""

    def __init__(self, path: Path, size: tuple[int, int], fps: int) -> None:
        self.path = path
        self.size = size
        self.fps = fps
        self._pts = 0

    def __enter__(self) -> Self:
        # +faststart: the muxer moves the index to the front when it closes the file, so a
        # browser can start playing before the whole file has arrived.
        self._container = av.open(str(self.path), "w", format="mp4",
                                  options={"movflags": "+faststart"})
        try:
            self._stream = _add_stream(self._container, self.size, self.fps)
        except BaseException:
            self._container.close()
            raise
        return self

    def send(self, frame: av.VideoFrame, keyframe: bool = False) -> None:
        """Encodes ``frame`` as the next one (a keyframe if asked) and writes what is ready."""
        # The same frame object may come back (a held picture): its time is set here, at the
        # encoder, and FFmpeg copies what it needs before the next call.
        frame.pts = self._pts
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        self._container.mux(self._stream.encode(frame))
        self._pts += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self._container.mux(self._stream.encode(None))  # what x264 still holds
        finally:
            self._container.close()
