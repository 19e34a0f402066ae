"""The ``replicate`` planner: a language model hosted on Replicate, with the images' key.

Replicate's chat models take one ``prompt`` (and a ``system_prompt``), not a list of messages,
so the conversation is written out as one prompt; the answer streams into ``output`` as a list
of string pieces to join (a few models return one string). The format is stated in the prompt
(these models take no schema), and the answer is checked like any other. Token counts come
from the prediction's ``metrics``. Runs through the project's Replicate client
(``replicate/api.py``): its key handling, polling, cancelling and error translation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..errors import (
    AccountError,
    ImageGenerationError,
    PlanningError,
    RetryableImageError,
    RetryablePlanningError,
)
from ..replicate.api import ModelRef, ReplicateAPI
from .base import Completion, Usage
from .llm import DEFAULT_MODELS, LLMPlanner, Message, redact

__all__ = ["ReplicatePlanner", "transcript"]

_TEMPERATURE = 0.7


def transcript(messages: Sequence[Message]) -> tuple[str, str]:
    """(system prompt, prompt): the turns after the system's written out in order, so a
    repair turn sees the answer it repairs."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return system, turns[0]["content"]
    names = {"user": "USER", "assistant": "YOU ANSWERED"}
    written = "\n\n".join(f"[{names.get(m['role'], m['role'].upper())}]\n{m['content']}"
                          for m in turns)
    return system, written


def _tokens(metrics: Any, name: str) -> int:
    value = metrics.get(name) if isinstance(metrics, dict) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


class ReplicatePlanner(LLMPlanner):
    """Plans with a language model on Replicate (``openai/gpt-4o-mini`` unless
    ``STORYBOARD_LLM_MODEL`` says otherwise)."""

    kind = "replicate"

    def __init__(self, settings: Settings, api: ReplicateAPI | None = None) -> None:
        super().__init__(settings, (settings.llm_model or DEFAULT_MODELS["replicate"]).strip())
        self._ref = ModelRef.parse(self.model, setting="STORYBOARD_LLM_MODEL",
                                   default=DEFAULT_MODELS["replicate"])
        self._owns_api = api is None
        self._api = api if api is not None else ReplicateAPI(settings=settings)
        # OpenAI's models on Replicate name the output limit as OpenAI does; the others (Meta's
        # Llama, ...) call it max_tokens.
        self._limit_name = ("max_completion_tokens" if self._ref.owner == "openai"
                            else "max_tokens")

    async def aclose(self) -> None:
        if self._owns_api:
            await self._api.aclose()

    async def complete(self, messages: Sequence[Message], usage: Usage) -> Completion:
        system, prompt = transcript(messages)
        inputs = {"prompt": prompt, "system_prompt": system, "temperature": _TEMPERATURE,
                  self._limit_name: self.settings.llm_max_tokens}
        try:
            prediction = await self._api.run(self._ref, inputs,
                                             cancel_after=self.settings.parsing_timeout,
                                             on_created=usage.on_created)
        except AccountError as exc:
            raise PlanningError(str(exc)) from exc
        except RetryableImageError as exc:  # the shared client's tree: see replicate/api.py
            raise RetryablePlanningError(str(exc), retry_after=exc.retry_after) from exc
        except ImageGenerationError as exc:
            raise PlanningError(str(exc)) from exc
        status, pid = prediction["status"], prediction["id"]
        if status != "succeeded":
            reason = redact(str(prediction.get("error") or "no error message"))[:200]
            raise RetryablePlanningError(f"prediction {pid} ended {status}: {reason}")
        output = prediction.get("output")
        text = "".join(str(p) for p in output) if isinstance(output, list) else str(output or "")
        metrics = prediction.get("metrics")
        return Completion(text=text, id=pid, input_tokens=_tokens(metrics, "input_token_count"),
                          output_tokens=_tokens(metrics, "output_token_count"))
