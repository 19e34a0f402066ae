"""A tiny Cog model for tests: makes a small PNG, or misbehaves when the prompt says so.

The real Cog server (``python -m cog.server.http``) runs it without Docker. Prompt directives
stand in for a real model's troubles: ``[sleep=1.5]`` works that long (cancellable),
``[fail]`` raises, ``[nsfw]`` fails like Flux's safety checker, ``[text]`` returns a non-image,
``[crash]`` kills the worker process (as an out-of-memory kill would).
Set ``SETUP_DELAY`` (seconds) to keep the server in setup, answering 503, and ``BUSY_FLAG`` (a
path) for a model whose own health check fails while it works (as one checking free GPU memory).
"""

import os
import re
import tempfile
import time

from cog import BaseRunner, Input, Path
from PIL import Image

SIZES = {"1:1": (32, 32), "16:9": (64, 36), "9:16": (36, 64), "4:3": (48, 36)}


BUSY_FLAG = os.environ.get("BUSY_FLAG")  # a file that exists while a prediction runs


class Predictor(BaseRunner):
    def healthcheck(self) -> bool:
        return not (BUSY_FLAG and os.path.exists(BUSY_FLAG))

    def setup(self) -> None:
        time.sleep(float(os.environ.get("SETUP_DELAY", "0")))

    def run(
        self,
        prompt: str = Input(description="What to draw"),
        aspect_ratio: str = Input(default="1:1", choices=list(SIZES)),
        output_format: str = Input(default="png", choices=["png", "webp", "jpg"]),
        num_outputs: int = Input(default=1, ge=1, le=1),
        seed: int = Input(default=0),
    ) -> Path:
        if match := re.search(r"\[sleep=([\d.]+)\]", prompt):
            if BUSY_FLAG:
                open(BUSY_FLAG, "w").close()
            end = time.monotonic() + float(match.group(1))
            while time.monotonic() < end:  # short sleeps: cancellation lands between them
                time.sleep(0.01)
            if BUSY_FLAG:
                os.remove(BUSY_FLAG)
        if "[crash]" in prompt:
            os._exit(1)
        if "[fail]" in prompt:
            raise RuntimeError("CUDA out of memory (pretend)")
        if "[nsfw]" in prompt:
            raise RuntimeError(
                "All generated images contained NSFW content. "
                "Try running it again with a different prompt."
            )
        out = Path(tempfile.mkdtemp()) / "out-0.png"
        if "[text]" in prompt:
            out = out.with_suffix(".txt")
            out.write_text("not an image")
            return out
        Image.new("RGB", SIZES[aspect_ratio], (seed % 256, 90, 160)).save(out, format="PNG")
        return out
