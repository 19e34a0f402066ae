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
import urllib.parse
from collections.abc import Sequence
from typing import Any

from ..config import Settings
from ..errors import ConfigurationError, PlanningError, RetryablePlanningError
from ..transport import parse_retry_after
from .base import Completion, Usage
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
        # The URL as messages show it: no user name, password or query (they may be secrets).
        parts = urllib.parse.urlsplit(self.base_url)
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port is not None else "")
        self.shown_url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        # OpenAI's own API calls the output limit max_completion_tokens; servers that copied
        # the older API know only max_tokens.
        self._limit_name = ("max_completion_tokens" if self.base_url == OPENAI_BASE_URL
                            else "max_tokens")
        self._schema_refused = False  # the server answered 400 to json_schema
        self._temperature_refused = False  # ... or the model to a temperature (reasoning ones)
        import openai  # a second to import: only when this planner is used

        self._openai = openai
        self._client = openai.AsyncOpenAI(
            base_url=self.base_url, api_key=key or "no-key", max_retries=0,
            timeout=settings.parsing_timeout)

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, messages: Sequence[Message], usage: Usage) -> Completion:
        try:
            response = await self._create(messages)
        except self._openai.BadRequestError as exc:
            # Some servers and models refuse the schema (the prompt states the format too),
            # and reasoning models a temperature: without what the refusal names, once more.
            if not self._drop_refused(exc):
                raise self._error(exc) from exc
            try:
                response = await self._create(messages)
            except self._openai.OpenAIError as again:
                raise self._error(again) from again
        except self._openai.OpenAIError as exc:
            raise self._error(exc) from exc
        choice = response.choices[0] if response.choices else None
        message = choice.message if choice is not None else None
        refusal = getattr(message, "refusal", None)
        text = (message.content if message is not None else None) or ""
        usage = response.usage
        return Completion(
            text=text, id=getattr(response, "id", None) or None,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            truncated=getattr(choice, "finish_reason", None) == "length",
            refusal=redact(str(refusal), self._key) if refusal else None)

    def _drop_refused(self, exc: Exception) -> bool:
        """Stop sending what a 400 says the server or model does not take (for the rest of
        this process); False when it names nothing we can leave out."""
        said = self._status_text(exc).lower()
        dropped = []
        if not self._schema_refused and any(w in said for w in ("response_format", "schema")):
            self._schema_refused = True
            dropped.append("the response schema")
        if not self._temperature_refused and "temperature" in said:
            self._temperature_refused = True
            dropped.append("a temperature")
        if dropped:
            log.warning("planning: %s refused %s (%s); asking without", self.label,
                        " and ".join(dropped), self._status_text(exc))
        return bool(dropped)

    async def _create(self, messages: Sequence[Message]) -> Any:
        extra: dict[str, Any] = {self._limit_name: self.settings.llm_max_tokens}
        if not self._schema_refused:
            extra["response_format"] = _RESPONSE_FORMAT
        if not self._temperature_refused:
            extra["temperature"] = _TEMPERATURE
        return await self._client.chat.completions.create(
            model=self.model, messages=list(messages), **extra)  # type: ignore[call-overload]

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
            return RetryablePlanningError(f"cannot reach {self.shown_url}")
        status = getattr(exc, "status_code", None)
        response = getattr(exc, "response", None)
        if status == 429 or (isinstance(status, int) and status >= 500) or status in (408, 409):
            hint = parse_retry_after(response.headers, "") if response is not None else None
            return RetryablePlanningError(self._status_text(exc), retry_after=hint)
        if status in (401, 403):
            return PlanningError(f"the server rejected the API key (HTTP {status}); check "
                                 "STORYBOARD_LLM_API_KEY")
        if status == 404:
            return PlanningError(f"no model {self.model!r} at {self.shown_url} (HTTP 404); "
                                 "check STORYBOARD_LLM_MODEL")
        return PlanningError(self._status_text(exc))
