"""Which planner the settings choose, and building the language-model one."""

from __future__ import annotations

from typing import Literal

from ..config import Settings
from ..errors import ConfigurationError
from ..images import provider_name
from ..replicate.api import ReplicateAPI
from .llm import LLMPlanner

__all__ = ["LLM_SETTINGS_HINT", "llm_kind", "make_llm_planner", "planner_kind"]

LLMKind = Literal["openai", "replicate"]

# What to set for a language model, in the words of a 422 or a CLI error.
LLM_SETTINGS_HINT = (
    "no language model is configured: set STORYBOARD_LLM_API_KEY (or OPENAI_API_KEY) for "
    "OpenAI, STORYBOARD_LLM_BASE_URL for a local OpenAI-compatible server (Ollama, vLLM, "
    "llama.cpp, LM Studio), or REPLICATE_API_KEY for a model on Replicate"
)


def llm_kind(settings: Settings) -> LLMKind | None:
    """The language model configured: the one ``STORYBOARD_PLANNER`` names, else an
    OpenAI-compatible server when a base URL or an OpenAI key is set, else Replicate when the
    images come from Replicate; None when there is none."""
    if settings.planner in ("openai", "replicate"):
        return settings.planner  # type: ignore[return-value]
    if settings.llm_base_url or settings.llm_api_key:
        return "openai"
    if provider_name(settings) == "replicate":
        return "replicate"
    return None


def planner_kind(settings: Settings) -> Literal["rules", "openai", "replicate"]:
    """What a request that leaves the choice to the server (``planner: auto``) plans with."""
    if settings.planner == "rules":
        return "rules"
    return llm_kind(settings) or "rules"


def make_llm_planner(settings: Settings, kind: LLMKind, *,
                     replicate_api: ReplicateAPI | None = None) -> LLMPlanner:
    """Build the ``kind`` planner; ``ConfigurationError`` says what to set when it cannot work."""
    if kind == "openai":
        from .openai_compatible import OpenAIPlanner

        return OpenAIPlanner(settings)
    if kind == "replicate":
        from .replicate import ReplicatePlanner

        if replicate_api is None and settings.replicate_api_key is None:
            raise ConfigurationError(
                "STORYBOARD_PLANNER=replicate needs REPLICATE_API_KEY (or REPLICATE_API_TOKEN)")
        return ReplicatePlanner(settings, replicate_api)
    raise ConfigurationError(f"unknown planner {kind!r}")  # pragma: no cover
