"""The animatic: a storyboard played as a video, so a reviewer can feel its timing.

``write_animatic`` turns a job (as the API returns it, a ``JobResponse``) and the image files
behind its ``/media/...`` URLs into an H.264 MP4 that any browser plays: ``yuv420p``, BT.709,
the index (``moov``) ahead of the data so playback starts before the download ends, and the
frame in the job's aspect ratio with the short side ``height`` pixels (16:9 at 720 is 1280x720).

What a reviewer sees:

- each scene's frame held for the scene's duration, so the video is as long as the board
  (frame counts are rounded per scene boundary: the total is within one frame of the sum);
- the scene's camera move played gently on the still: a push in (scale 1.00 to 1.08) for
  ``dolly_in`` and ``zoom_in``, a pull out for ``dolly_out`` and ``zoom_out``, a slide across a
  slightly enlarged still for ``pan`` and ``truck`` (left to right), ``tilt`` (downwards) and
  ``crane`` (upwards), a slow drift for ``handheld``; ``static`` or no move holds the frame;
- the scene's transition to the next one: ``dissolve`` crossfades over 0.5 s centred on the
  cut (taken from both scenes, so the length does not change); ``fade_in`` raises the scene
  from black (on the first scene: the video opens from black), ``fade_out`` takes it to black
  at its end; ``cut``, ``match_cut`` and ``wipe`` are hard cuts (a still has nothing for a
  match cut to match, and a wipe reads as a cut at animatic speed);
- a caption band at the bottom: the scene number and the dialogue in quotes, or the
  description when nobody speaks, cut to two lines;
- a title card (the plan's title, else the prompt, and the plan's logline) over the first
  1.5 s of scene 1, dissolving into it: the video is no longer for it;
- a labelled placeholder where a scene has no usable image (failed, not drawn yet, file gone,
  unreadable), so a half-finished board still plays.

It is a pure function of the job and the files: no database, no network. Frames are made and
encoded as a stream (two threads draw the next frames while the encoder works on this one), so
memory stays flat whatever the length. The per-frame work stays in C, on the three YUV planes
(Pillow crops, blends and resamples; FFmpeg converts each still's colours once); a held frame
is built once and handed to the encoder again and again. Rendering a 60 s 1280x720 board takes
0.08-0.15 of its running time on two cores (quiet to busy), about a third of it the H.264
encoder's own work on held frames (``bench/animatic.py`` measures both).

The modules, from the entry point down:

    write.py      ``write_animatic``: checks the job, wires the parts, writes the file atomically
    timeline.py   which scene each frame shows, how far through its move; title, dissolves, fades
    frames.py     the frames made in order, on two threads, ahead of the encoder
    stills.py     each scene prepared once: its image read and fitted (or a placeholder)
    moves.py      the camera moves: the part of a scene's canvas each frame shows, cut from it
    cards.py      what is written on the pictures: caption band, title card, placeholder
    text.py       the font, text wrapped to a width, centred lines
    planes.py     the picture as Y, U, V planes: conversion, blends, even frame sizes
    encoder.py    the H.264 MP4: x264 options, keyframes, colour tags, faststart
"""

from __future__ import annotations

from .cards import caption_text
from .moves import MOVE_SCALE
from .planes import frame_size
from .write import write_animatic

__all__ = ["MOVE_SCALE", "caption_text", "frame_size", "write_animatic"]
