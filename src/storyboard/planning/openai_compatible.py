"""The ``openai`` planner: any server that speaks OpenAI's Chat Completions API.

OpenAI itself, Ollama, vLLM, llama.cpp's server, LM Studio: ``STORYBOARD_LLM_BASE_URL`` (or
``OPENAI_BASE_URL``) says where, ``STORYBOARD_LLM_API_KEY`` (or ``OPENAI_API_KEY``) with what
key (local servers need none). Each turn asks for structured output
(``response_format: json_schema`` with ``strict: true``); a server that refuses the schema
(HTTP 400) is asked again without it, and is not asked with it again by this process: the
format is in the prompt as well. Talks through the official ``openai`` package, imported only
when this planner is used (it takes a second to import), with its own retries off: ours are
the image retries' (``llm.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..errors import ConfigurationError, PlanningError, RetryablePlanningError
from ..transport import parse_retry_after
from .base import Completion
from .format import PLAN_SCHEMA, SCHEMA_NAME
from .llm import DEFAULT_MODELS, LLMPlanner, Message, redact

__all__ = ["OPENAI_BASE_URL", "OpenAIPlanner"]

log = logging.getLogger("storyboard.planning")

OPENAI_BASE_URL = "https://api.openai.com/v1"
_RESPONSE_FORMAT = {"type": "json_schema",
                    "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": PLAN_SCHEMA}}
_TEMPERATURE = 0.7


class OpenAIPlanner(LLMPlanner):
    """Plans with a model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    kind = "openai"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, (settings.llm_model or DEFAULT_MODELS["openai"]).strip())
        self.base_url = (settings.llm_base_url or OPENAI_BASE_URL).strip().rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"STORYBOARD_LLM_BASE_URL={self.base_url!r} should be an http(s) URL, e.g. "
                "http://localhost:11434/v1 for Ollama")
        key = settings.llm_api_key.get_secret_value().strip() if settings.llm_api_key else ""
        if not key and self.base_url == OPENAI_BASE_URL:
            raise ConfigurationError(
                "The openai planner needs STORYBOARD_LLM_API_KEY (or OPENAI_API_KEY) for "
                f"{OPENAI_BASE_URL}; for a local server set STORYBOARD_LLM_BASE_URL")
        self._key = key
        # OpenAI's own API calls the output limit max_completion_tokens; servers that copied
        # the older API know only max_tokens.
        self._limit_name = ("max_completion_tokens" if self.base_url == OPENAI_BASE_URL
                            else "max_tokens")
        self._schema_refused = False
        import openai  # a second to import: only when this planner is used

        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=key or "no-key", max_retries=0,
            timeout=settings.parsing_timeout)

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, messages: Sequence[Message]) -> Completion:
        structured = not self._schema_refused
        try:
            response = await self._create(messages, structured)
        except self._openai.BadRequestError as exc:
            if not structured:
                raise self._error(exc) from exc
            # Some servers and models refuse json_schema: the prompt states the format too.
            log.warning("planning: %s refused the response schema (%s); asking without it",
                        self.label, self._status_text(exc))
            self._schema_refused = True
            try:
                response = await self._create(messages, structured=False)
            except self._openai.OpenAIError as again:
                raise self._error(again) from again
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice is not None else None
        refusal = getattr(message, "refusal", None)
        if refusal:
            raise PlanningError(f"the model refused: {redact(str(refusal), self._key)[:200]}")
        text = (message.content if message is not None else None) or ""
        usage = response.usage
        return Completion(text=text,
                          input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                          output_tokens=int(getattr(usage, "completion_tokens", 0) or 0))

    async def _create(self, messages: Sequence[Message], structured: bool) -> Any:
        extra: dict[str, Any] = {self._limit_name: self.settings.llm_max_tokens}
        if structured:
            extra["response_format"] = _RESPONSE_FORMAT
        return await self._client.chat.completions.create(
            model=self.model, messages=list(messages), temperature=_TEMPERATURE,
            **extra)  # type: ignore[call-overload]

    def _status_text(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "message", None) or str(exc)
        text = redact(str(body), self._key)[:200]
        return f"HTTP {status}: {text}" if status else text

    def _error(self, exc: Exception) -> PlanningError:
        """Our error for the package's: what to retry, and what to tell a person."""
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return RetryablePlanningError("no answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return RetryablePlanningError(f"cannot reach {self.base_url}")
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        if status == 429 or (isinstance(status, int) and status >= 500) or status in (408, 409):
            hint = parse_retry_after(response.headers, "") if response is not None else None
            return RetryablePlanningError(self._status_text(exc), retry_after=hint)
        if status in (401, 403):
            return PlanningError(f"the server rejected the API key (HTTP {status}); check "
                                 "STORYBOARD_LLM_API_KEY")
        if status == 404:
            return PlanningError(f"no model {self.model!r} at {self.base_url} (HTTP 404); check "
                                 "STORYBOARD_LLM_MODEL")
        return PlanningError(self._status_text(exc))
