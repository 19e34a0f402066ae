"""Image providers behind one interface, and the choice of provider from the settings."""

from __future__ import annotations

from ..config import Settings
from ..errors import ConfigurationError
from .base import ImageProvider, ImageRequest, ImageResult, LostSearch, PredictionCallback
from .download import DownloadError

__all__ = [
    "DownloadError",
    "ImageProvider",
    "ImageRequest",
    "ImageResult",
    "LostSearch",
    "PredictionCallback",
    "make_provider",
    "provider_name",
]


def provider_name(settings: Settings) -> str:
    """Which provider the settings select: ``auto`` means Replicate with a key, else the sketch."""
    if settings.image_provider != "auto":
        return settings.image_provider
    return "replicate" if settings.replicate_api_key else "sketch"


def make_provider(settings: Settings) -> ImageProvider:
    """Build the provider the settings select."""
    name = provider_name(settings)
    if name == "sketch":
        from .sketch import SketchRenderer

        return SketchRenderer(delay=settings.sketch_delay)
    if name == "replicate":
        from .replicate import ReplicateClient

        return ReplicateClient(settings=settings)
    if name == "cog":
        from .cog import CogClient

        if not settings.cog_url:
            raise ConfigurationError(
                "STORYBOARD_IMAGE_PROVIDER=cog needs STORYBOARD_COG_URL, "
                "e.g. STORYBOARD_COG_URL=http://gpu-box:5000"
            )
        return CogClient(settings=settings)
    raise ConfigurationError(f"unknown image provider {name!r}")  # pragma: no cover
