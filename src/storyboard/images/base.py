"""The one small interface every image provider implements.

A provider turns an ``ImageRequest`` into an ``ImageResult`` holding the image's bytes; the job
stores the bytes itself, so every provider's images last as long as the storyboard does.
Providers raise only ``ImageGenerationError`` subclasses: ``RetryableImageError`` for what another
attempt may fix, ``PermanentImageError`` for what it cannot, ``AccountError`` for what would fail
every scene. A ``DownloadError`` (retryable) is a prediction that was billed but whose image
could not be fetched: the job owes its cost even if no later attempt gets the image.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..schemas import Scene

__all__ = [
    "ImageProvider",
    "ImageRequest",
    "ImageResult",
    "LostSearch",
    "PredictionCallback",
    "PredictionReport",
]

# Called with the provider's prediction id as soon as it exists, before waiting on it, so a
# crashed job can resume that prediction instead of paying for a new one.
PredictionCallback = Callable[[str], Awaitable[None]]


class PredictionReport(Protocol):
    """What a provider tells the job's prediction ledger beyond ``on_prediction``: about
    creates whose answers never came, so that a prediction that may be billed is never hidden.
    Calls are quick and synchronous: the job records them with its next write."""

    def unanswered(self) -> None:
        """A create was sent and its answer lost: a prediction may exist, unseen."""

    def found(self, prediction_id: str, status: str) -> None:
        """Looking for a lost create found it: prediction ``prediction_id``, now ``status``."""

    def not_found(self, *, complete: bool) -> None:
        """Looking for a lost create found nothing: in a ``complete`` listing (it was never
        made), or the listing could not be read (it may exist, and be billed)."""


@dataclass(frozen=True)
class LostSearch:
    """Where to look for a prediction an earlier run created without learning its id."""

    since: datetime  # it was created after this
    listed_after: datetime  # a listing of the account made before this may not show it


@dataclass(frozen=True)
class ImageRequest:
    """One image to make."""

    prompt: str
    aspect_ratio: str = "16:9"
    seed: int | None = None
    output_format: str = "webp"
    # The scene and storyboard size, for providers that draw the shot (the sketch renderer), and
    # the names of the characters in frame, in the scene's order, for its labels.
    scene: Scene | None = None
    scenes_total: int = 1
    cast: tuple[str, ...] = ()
    # A prediction started by an earlier, interrupted attempt: poll it instead of creating anew.
    resume_prediction_id: str | None = None
    # An earlier run may have created this image and died before it learned the prediction's
    # id (during a create's `Prefer: wait`): providers that can look predictions up by their
    # inputs (``finds_lost_predictions``) look for it before creating anew, only when
    # ``unique_inputs`` is set (else a prediction found could be another job's).
    find_lost: LostSearch | None = None
    # The seed was drawn at random for this scene, so a prediction with exactly these inputs can
    # only be this scene's: a provider may adopt one it finds (never for a seed two jobs share).
    unique_inputs: bool = False
    # Where lost creates and found predictions are reported, for the job's ledger.
    report: PredictionReport | None = None

    def model_input(self) -> dict[str, Any]:
        """The inputs every Flux-style model takes (Replicate's and a Cog server's): one image."""
        inputs: dict[str, Any] = {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "output_format": self.output_format,
            "num_outputs": 1,
        }
        if self.seed is not None:
            inputs["seed"] = self.seed
        return inputs


@dataclass(frozen=True)
class ImageResult:
    """A finished image."""

    data: bytes
    extension: str  # "png", "webp", "jpg"
    source_url: str | None = None  # where the provider served it (may expire)
    prediction_id: str | None = None
    cost: float = 0.0  # what this image was billed, in USD


@runtime_checkable
class ImageProvider(Protocol):
    """Makes images. Implementations: sketch (offline), replicate, cog. A provider that can
    tell how a prediction ended also has ``async prediction_outcome(prediction_id) ->
    (status, billed) | None`` (the job settles its ledger with it)."""

    name: str
    price_per_image: float

    async def generate(
        self, request: ImageRequest, *, on_prediction: PredictionCallback | None = None
    ) -> ImageResult:
        """Make one image. One call is one attempt: the caller owns retries and the timeout."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
