"""A fake OpenAI-compatible Chat Completions server on loopback: real HTTP, scripted answers.

``FakeLLM`` serves ``POST /v1/chat/completions`` from a Starlette app run by uvicorn in a
background thread, as OpenAI, Ollama, vLLM or llama.cpp's server would:

- it checks the request as OpenAI does: a model, messages, and, when ``response_format`` asks
  for ``json_schema`` with ``strict: true``, a schema strict mode accepts (every object with
  ``additionalProperties: false`` and all its properties required, no ``default``, objects
  nested at most five deep). A schema it would refuse is answered 400 with OpenAI's error body,
  and every problem is recorded in ``schema_problems``;
- ``refuse_schema = True`` makes it a server that refuses ``response_format`` altogether (400);
- answers come from a queue filled by ``answer()`` (a text, or a function of the request;
  an HTTP status with OpenAI's error body; a delay; a refusal), else from ``default``, which
  plans the lighthouse story in as many shots as the prompt asks for;
- ``usage`` counts about four characters a token, as servers do roughly.

Every request is recorded in ``requests``. Tests use the ``fake_llm`` fixture (one server per
session, reset per test); a benchmark runs ``FakeLLMProcess(latency=L)`` (the same server in a
child process; also ``python -m tests.fake_llm --latency L``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .story import answer_for

__all__ = [
    "FAKE_LLM_KEY",
    "FakeLLM",
    "FakeLLMProcess",
    "ScriptedAnswer",
    "fake_llm_fixture",
    "fake_llm_server_fixture",
    "strict_schema_problems",
]

FAKE_LLM_KEY = "sk-fake-llm-test-key-0123456789abcdef"
_MAX_DEPTH = 5

Responder = Callable[[dict[str, Any]], str]


@dataclass
class ScriptedAnswer:
    """How the server answers one request."""

    content: str | Responder | None = None  # None: the default answer
    status: int = 200
    error: str | None = None  # the error message of a non-200 answer
    delay: float = 0.0  # seconds before answering (a hang: longer than the client waits)
    refusal: str | None = None  # a refusal instead of content
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)


def strict_schema_problems(schema: Any, path: str = "schema", depth: int = 0) -> list[str]:
    """What OpenAI's strict structured outputs would refuse in ``schema``."""
    problems: list[str] = []
    if not isinstance(schema, dict):
        return [f"{path}: not an object"]
    if "default" in schema:
        problems.append(f"{path}: 'default' is not permitted")
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "object" in kinds:
        if depth >= _MAX_DEPTH:
            problems.append(f"{path}: objects nested more than {_MAX_DEPTH} deep")
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: 'additionalProperties' is required to be false")
        properties = schema.get("properties") or {}
        if sorted(schema.get("required") or []) != sorted(properties):
            problems.append(f"{path}: 'required' must list every property")
        for name, sub in properties.items():
            problems += strict_schema_problems(sub, f"{path}.{name}", depth + 1)
    if "array" in kinds:
        problems += strict_schema_problems(schema.get("items"), f"{path}[]", depth)
    if kinds == [None] and not any(k in schema for k in ("enum", "anyOf", "$ref", "const")):
        problems.append(f"{path}: no type")
    for name, sub in (schema.get("$defs") or {}).items():
        problems += strict_schema_problems(sub, f"{path}.$defs.{name}", depth)
    return problems


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class FakeLLM:
    """OpenAI's Chat Completions endpoint on 127.0.0.1; ``start()``/``stop()`` or ``with``."""

    def __init__(self, *, api_key: str | None = FAKE_LLM_KEY, latency: float = 0.0) -> None:
        self._defaults = (api_key, latency)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._answers: collections.deque[ScriptedAnswer] = collections.deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._configure()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def _configure(self) -> None:
        self.api_key, self.latency = self._defaults
        self.default: Responder = lambda body: answer_for(_prompt_text(body))
        self.refuse_schema = False  # a server that answers 400 to any response_format
        self.schema_problems: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False,
                                lifespan="off", ws="none", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._release.clear()

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))  # type: ignore[union-attr]
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fake-llm", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("fake LLM server failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._release.set()  # answer every hanging request
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(10)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- scripting ------------------------------------------------------------------------

    def answer(self, content: str | Responder | None = None, *, times: int = 1,
               **fields: Any) -> None:
        """Queue the next ``times`` answers (see ``ScriptedAnswer``)."""
        with self._lock:
            self._answers.extend([ScriptedAnswer(content, **fields)] * times)

    def reset(self) -> None:
        self._release.set()
        with self._lock:
            self._answers.clear()
            self.requests.clear()
            self.headers.clear()
        self._configure()
        self._release.clear()

    # --- the app --------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])

    @staticmethod
    def _error(status: int, message: str, kind: str = "invalid_request_error",
               headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                       "code": None}}, status, headers=headers)

    async def _complete(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.")
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            scripted = self._answers.popleft() if self._answers else ScriptedAnswer()
        if self.api_key is not None and request.headers.get("authorization") != \
                f"Bearer {self.api_key}":
            sent = request.headers.get("authorization", "").removeprefix("Bearer ")
            # Adversarial on purpose: the whole key sent comes back in the message.
            return self._error(401, f"Incorrect API key provided: {sent}.", "invalid_api_key")
        if not isinstance(body, dict) or not body.get("model") or \
                not isinstance(body.get("messages"), list) or not body["messages"]:
            return self._error(400, "'model' and a non-empty 'messages' are required")
        fmt = body.get("response_format")
        if fmt is not None:
            if self.refuse_schema:
                return self._error(400, "response_format is not supported by this model")
            problems = self._format_problems(fmt)
            self.schema_problems += problems
            if problems:
                return self._error(400, f"Invalid schema for response_format: {problems[0]}")
        delay = scripted.delay or self.latency
        if delay:
            await asyncio.to_thread(self._release.wait, delay)
        if scripted.status != 200:
            return self._error(scripted.status, scripted.error or f"HTTP {scripted.status}",
                               "server_error", headers=scripted.headers)
        source = scripted.content if scripted.content is not None else self.default
        content = source(body) if callable(source) else source
        prompt_tokens = sum(_tokens(str(m.get("content", ""))) for m in body["messages"]
                            if isinstance(m, dict))
        completion_tokens = _tokens(content or scripted.refusal or "")
        return JSONResponse({
            "id": f"chatcmpl-fake{len(self.requests)}", "object": "chat.completion",
            "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "finish_reason": scripted.finish_reason, "logprobs": None,
                         "message": {"role": "assistant",
                                     "content": None if scripted.refusal else content,
                                     "refusal": scripted.refusal}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    @staticmethod
    def _format_problems(fmt: Any) -> list[str]:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object",
                                                                 "text"):
            return ["response_format.type must be json_schema, json_object or text"]
        if fmt["type"] != "json_schema":
            return []
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not spec.get("name"):
            return ["response_format.json_schema.name is required"]
        if spec.get("strict") is not True:
            return []  # not strict: any schema goes
        return strict_schema_problems(spec.get("schema"))


def _prompt_text(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", [])
                     if isinstance(m, dict) and m.get("role") == "user")


@pytest.fixture(scope="session", name="fake_llm_server")
def fake_llm_server_fixture() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(name="fake_llm")
def fake_llm_fixture(fake_llm_server: FakeLLM) -> Iterator[FakeLLM]:
    """The session's fake LLM server, reset: tests script it and read ``.requests``."""
    fake_llm_server.reset()
    yield fake_llm_server
    fake_llm_server.reset()


class FakeLLMProcess:
    """The fake in a child process, for benchmarks (no shared GIL with the code measured)."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> FakeLLMProcess:
        root = str(Path(__file__).resolve().parent.parent)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_llm", "--latency", str(self.latency)],
            cwd=root, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError("the fake LLM process did not start")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main() -> None:
    """``python -m tests.fake_llm --latency 0.5``: serve, print the base URL, run until
    SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FakeLLM(latency=args.latency) as fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
