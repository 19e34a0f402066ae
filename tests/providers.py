"""Injected image providers for task tests: they implement the real ImageProvider interface."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from storyboard.errors import ImageGenerationError
from storyboard.images import ImageRequest, ImageResult, PredictionCallback
from storyboard.images.sketch import render_sketch

Outcome = ImageGenerationError | float | None  # raise it / sleep that long / succeed


@dataclass
class ScriptedProvider:
    """Succeeds with a real sketch image unless the script says otherwise for a scene.

    ``script[scene_number]`` is a list of outcomes, one per attempt: an exception to raise,
    a number of seconds to hang, or None to succeed. Every call is recorded, and so is every
    call cancelled while it hung.
    """

    script: dict[int, list[Outcome]] = field(default_factory=dict)
    price_per_image: float = 0.003
    delay: float = 0.0
    on_call: Callable[[ImageRequest], None] | None = None
    name: str = "scripted"
    calls: list[ImageRequest] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)  # scenes whose call was cancelled
    closed: bool = False
    # How each prediction ended, for the ledger's settling (``prediction_outcome``).
    outcomes: dict[str, tuple[str, float]] = field(default_factory=dict)

    async def generate(
        self, request: ImageRequest, *, on_prediction: PredictionCallback | None = None
    ) -> ImageResult:
        self.calls.append(request)
        if self.on_call:
            self.on_call(request)
        number = request.scene.scene_number if request.scene else 1
        pid = f"pred-{number}-{len(self.calls)}"
        self.outcomes[pid] = ("canceled", 0.0)  # until it ends otherwise
        if on_prediction is not None:
            await on_prediction(pid)
        outcomes = self.script.get(number, [])
        attempt = sum(1 for c in self.calls if c.scene and c.scene.scene_number == number)
        outcome = outcomes[attempt - 1] if attempt <= len(outcomes) else None
        if isinstance(outcome, ImageGenerationError):
            self.outcomes[pid] = ("failed", 0.0)
            raise outcome
        try:
            if isinstance(outcome, float | int):
                await asyncio.sleep(outcome)
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(number)  # what a real provider would cancel upstream
            raise
        self.outcomes[pid] = ("succeeded", self.price_per_image)
        return ImageResult(data=render_sketch(request), extension="png",
                           source_url=f"https://replicate.delivery/fake/{number}.png",
                           prediction_id=pid, cost=self.price_per_image)

    async def prediction_outcome(self, prediction_id: str) -> tuple[str, float] | None:
        return self.outcomes.get(prediction_id)

    async def aclose(self) -> None:
        self.closed = True

    def attempts(self, scene_number: int) -> int:
        return sum(1 for c in self.calls if c.scene and c.scene.scene_number == scene_number)
