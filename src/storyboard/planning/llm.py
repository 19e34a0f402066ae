"""Planning with a language model: ask, check, repair once, count every token.

``LLMPlanner`` holds what the two language-model planners share; each says only how one turn
of the conversation reaches its server (``complete``). A turn that fails in transit is retried
as an image is (``STORYBOARD_MAX_RETRIES`` attempts, backoff doubling from
``STORYBOARD_RETRY_BASE_DELAY``, never sooner than the server's own ``Retry-After``). An answer
that fails the checks gets one repair turn carrying the problems; a second bad answer is a
``PlanningError``, and the job then plans with the rules (``stage.py``).
"""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Sequence
from typing import ClassVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ..config import Settings
from ..errors import PlanningError, RetryablePlanningError
from ..plan import Plan, PlannerInfo, PlannerKind
from .answers import read_plan
from .base import Completion, PlanRequest, Usage
from .format import SYSTEM_PROMPT, plan_prompt, repair_prompt

__all__ = ["DEFAULT_MODELS", "DEFAULT_PRICES", "LLMPlanner", "Message", "redact"]

log = logging.getLogger("storyboard.planning")

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}

# The default model of each planner, and what it costs in USD per million input and output
# tokens (OpenAI's list price; Replicate bills OpenAI's models at the same rate).
DEFAULT_MODELS: dict[str, str] = {"openai": "gpt-4o-mini", "replicate": "openai/gpt-4o-mini"}
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o-mini": (0.15, 0.60),
}

# What an API key looks like, so one quoted back by a server never reaches a message.
_KEYLIKE = re.compile(r"\b(?:sk|r8|rk|pk|key)[-_][A-Za-z0-9_\-*.]{6,}|Bearer\s+\S+", re.IGNORECASE)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the given secrets and anything that looks like a key taken out."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


class LLMPlanner(abc.ABC):
    """A planner backed by a language model."""

    kind: ClassVar[PlannerKind]

    def __init__(self, settings: Settings, model: str) -> None:
        self.settings = settings
        self.model = model
        prices = DEFAULT_PRICES.get(model, (0.0, 0.0))
        self.input_price = settings.llm_input_price if settings.llm_input_price is not None \
            else prices[0]
        self.output_price = settings.llm_output_price if settings.llm_output_price is not None \
            else prices[1]
        if model not in DEFAULT_PRICES and None in (settings.llm_input_price,
                                                    settings.llm_output_price):
            log.warning("planning: no price known for %s; its tokens count as free (set "
                        "STORYBOARD_LLM_INPUT_PRICE and STORYBOARD_LLM_OUTPUT_PRICE)", model)

    @property
    def label(self) -> str:
        """"openai (gpt-4o-mini)": which planner, for messages."""
        return f"{self.kind} ({self.model})"

    def cost(self, usage: Usage) -> float:
        """What ``usage`` cost in USD."""
        return round((usage.input_tokens * self.input_price
                      + usage.output_tokens * self.output_price) / 1_000_000, 8)

    @abc.abstractmethod
    async def complete(self, messages: Sequence[Message], usage: Usage) -> Completion:
        """One turn: the model's answer to ``messages`` (a prediction it makes is told to
        ``usage.on_created``). Raises ``RetryablePlanningError`` for what another try may fix,
        ``PlanningError`` for what it cannot."""

    async def aclose(self) -> None:
        """Release connections."""

    async def plan(self, request: PlanRequest, usage: Usage) -> Plan:
        """A checked plan for ``request``; every turn's tokens are added to ``usage``."""
        messages: list[Message] = [{"role": "system", "content": SYSTEM_PROMPT},
                                   {"role": "user", "content": plan_prompt(request)}]
        answer = await self._ask(messages, usage)
        plan, problems = self._read(answer, request, usage)
        if problems:
            log.info("planning: %s's plan has %d problems (%s); asking once more", self.label,
                     len(problems), "; ".join(problems[:3]))
            messages += [{"role": "assistant", "content": answer.text},
                         {"role": "user", "content": repair_prompt(problems)}]
            answer = await self._ask(messages, usage)
            plan, problems = self._read(answer, request, usage)
        if plan is None:
            raise PlanningError(f"no usable plan after one repair ({'; '.join(problems[:3])})")
        plan.planner = self._info(usage)
        return plan

    def _read(self, answer: Completion, request: PlanRequest,
              usage: Usage) -> tuple[Plan | None, list[str]]:
        if answer.refusal:
            raise PlanningError(f"the model refused: {redact(answer.refusal)[:200]}")
        plan, problems = read_plan(answer.text, request, self._info(usage))
        if problems and answer.truncated:
            problems.insert(0, f"the answer was cut off at the output limit "
                               f"({self.settings.llm_max_tokens} tokens): keep every text short "
                               "(or raise STORYBOARD_LLM_MAX_TOKENS)")
        return plan, problems

    def _info(self, usage: Usage) -> PlannerInfo:
        return PlannerInfo(kind=self.kind, model=self.model, input_tokens=usage.input_tokens,
                           output_tokens=usage.output_tokens, cost=self.cost(usage))

    def _wait_seconds(self, state: RetryCallState) -> float:
        s = self.settings
        delay = min(s.retry_base_delay * 2 ** (state.attempt_number - 1), s.retry_max_delay)
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        return max(delay, float(hint)) if hint else delay

    async def _ask(self, messages: Sequence[Message], usage: Usage) -> Completion:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.max_retries),
            wait=self._wait_seconds,
            retry=retry_if_exception_type(RetryablePlanningError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    completion = await self.complete(messages, usage)
                except RetryablePlanningError as exc:
                    log.warning("planning: %s attempt %d failed - %s", self.label,
                                attempt.retry_state.attempt_number, exc)
                    raise
                usage.add(completion)  # billed, whatever it says
                return completion
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover
