"""A fake Replicate API on loopback, for tests and benchmarks: real HTTP, scripted faults.

``FakeReplicate`` serves the parts of Replicate's HTTP API that Storyboard uses (see
shared/replicate-protocol.md) from a Starlette app run by uvicorn in a background thread:

- ``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (by version), with
  ``Prefer: wait[=N]`` held on an asyncio event (hundreds of waiting predictions cost no threads)
  and ``Cancel-After``;
- ``GET /v1/predictions`` (newest first, paged by a ``next`` URL), ``GET /v1/predictions/{id}``,
  ``POST /v1/predictions/{id}/cancel``;
- output files at ``/files/{id}/out-0.{ext}``: real images made with Pillow at the model's sizes,
  served with or without the Authorization header;
- language models (``text_models``, ``openai/gpt-4o-mini`` among them) whose output streams in
  as a list of string pieces, whole only at ``succeeded``, with token counts in ``metrics``;
  ``answer_text()`` scripts what they say.

Predictions run on timers: ``starting`` → ``processing`` → final after ``latency`` seconds. Each
creation takes the next ``Plan`` queued with ``plan()`` (else the default), which picks the outcome
(``succeeded``, ``failed``, ``nsfw``, ``canceled``, ``aborted``, ``hang``, or any other string as a
literal status). ``fail_next()`` scripts HTTP faults (429 with Retry-After, 5xx, 401, 402, 404,
422 ...) for the next requests of one kind. Every request is recorded in ``requests``.

Tests use the ``fake_replicate`` fixture (one server per session, reset for each test). A
benchmark uses ``with FakeReplicate(latency=L) as fake:`` and ``fake.base_url``, or, to keep the
fake's CPU off the measured process's GIL, ``FakeReplicateProcess(latency=L)`` (the same server in
a child process; also ``python -m tests.fake_replicate --latency L``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import io
import json
import math
import re
import secrets
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .story import answer_for

__all__ = [
    "FAKE_API_KEY",
    "FLUX_SCHNELL",
    "FLUX_SCHNELL_VERSION",
    "NSFW_ERROR",
    "TAG",
    "FakePrediction",
    "FakeReplicate",
    "FakeReplicateProcess",
    "Fault",
    "Plan",
    "RecordedRequest",
    "fake_replicate_fixture",
    "fake_replicate_server_fixture",
]

FLUX_SCHNELL = "black-forest-labs/flux-schnell"
FAKE_API_KEY = "r8_fake_test_key_0123456789"  # the token the fake accepts unless told otherwise
FLUX_SCHNELL_VERSION = "c846a69991daf4c0e5d016514849d14ee5b2e6846ce6b9d6f722d8c6bb0ab4ef"
NSFW_ERROR = (
    "All generated images contained NSFW content. Try running it again with a different prompt."
)
TRANSIENT_ERROR = "CUDA error: an illegal memory access was encountered"
TAG = b"\n#prediction:"  # what a tagged output file ends with, before the prediction's id
# Flux-Schnell's sizes at 1 megapixel (the doc's table; the rest follow the same rounding).
SIZES = {
    "1:1": (1024, 1024), "16:9": (1344, 768), "9:16": (768, 1344), "4:3": (1152, 896),
    "3:4": (896, 1152), "21:9": (1536, 640), "9:21": (640, 1536), "3:2": (1216, 832),
    "2:3": (832, 1216), "4:5": (896, 1088), "5:4": (1088, 896),
}  # fmt: skip
CONTENT_TYPES = {"webp": "image/webp", "png": "image/png", "jpg": "image/jpeg"}
PROBLEMS = {  # Replicate's RFC 7807 bodies, by status
    401: ("Unauthenticated", "You did not pass a valid authentication token"),
    402: (
        "Insufficient credit",
        (
            "You have insufficient credit to run this model. Go to "
            "https://replicate.com/account/billing#billing to purchase credit."
        ),
    ),
    404: ("Not found", "The requested resource could not be found."),
    422: ("Input validation failed", "- input: invalid"),
    429: ("Request was throttled.", "Request was throttled. Expected available in 1 second."),
    500: ("Internal server error", "Something went wrong."),
    502: ("Bad gateway", "The server received an invalid response."),
    503: ("Service unavailable", "The service is temporarily unavailable."),
}


@dataclass
class Plan:
    """How the next created prediction behaves."""

    outcome: str = "succeeded"  # succeeded|failed|nsfw|canceled|aborted|hang|<literal status>
    latency: float | None = None  # seconds in processing; None: the server's ``latency``
    start_delay: float = 0.0  # seconds in ``starting`` before ``processing``
    output_lag: float = 0.0  # seconds ``output`` is filled while ``status`` stays processing
    error: str | None = None  # the error text for failed predictions
    data_uri: bool = False  # output as a base64 data: URI (as sync mode did in 2024)
    age: float = 0.0  # seconds its ``created_at`` lies in the past (made long ago, or skew)
    answer_delay: float = 0.0  # seconds the create's answer lags the prediction (a slow network)
    # The create's answer is this error though the prediction was made (a gateway timing out
    # in front of Replicate).
    answer_status: int | None = None
    text: str | None = None  # a language model's whole answer (set from the model's responder)


@dataclass
class Fault:
    """A scripted HTTP answer for the next request(s) of one kind."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    echo_auth: bool = False  # put the request's Authorization header into the detail
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON, or the raw bytes


@dataclass
class FakePrediction:
    """A prediction's state on the fake server."""

    id: str
    model: str
    version: str
    input: dict[str, Any]
    plan: Plan
    status: str = "starting"
    output: Any = None
    error: str | None = None
    data_removed: bool = False
    created_at: str = ""
    started_at: str | None = None
    completed_at: str | None = None
    # Set when a ``Prefer: wait`` may answer: output filled, or a final status.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


_ALPHABET = string.ascii_lowercase + string.digits


def _now(ago: float = 0.0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id() -> str:
    # 26 lowercase alphanumerics, like Replicate's; random, not secret (one urandom call).
    return "".join(_ALPHABET[b % 36] for b in secrets.token_bytes(26))


def _duration(text: str) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def validate_flux_schnell(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """Replicate's own input checks for Flux-Schnell, as ``invalid_fields`` entries."""
    problems: list[dict[str, str]] = []

    def bad(name: str, kind: str, description: str) -> None:
        problems.append({"type": kind, "field": f"input.{name}", "description": description})

    if not isinstance(inputs.get("prompt"), str):
        bad("prompt", "required", "prompt is required")
    enums = {
        "aspect_ratio": list(SIZES),
        "output_format": list(CONTENT_TYPES),
        "megapixels": ["1", "0.25"],
    }
    for name, allowed in enums.items():
        if name in inputs and inputs[name] not in allowed:
            bad(name, "enum", f"{name} must be one of the following: {', '.join(allowed)}")
    ranges = {"num_outputs": (1, 4), "num_inference_steps": (1, 4), "output_quality": (0, 100)}
    for name, (low, high) in ranges.items():
        value = inputs.get(name, low)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            bad(name, "number_range", f"{name} must be between {low} and {high}")
    return problems


TextResponder = Callable[[dict[str, Any]], str]
LANGUAGE_MODEL = "openai/gpt-4o-mini"  # the Replicate planner's default model


def _plan_answer(inputs: dict[str, Any]) -> str:
    return answer_for(str(inputs.get("prompt", "")))


def _pieces(text: str) -> list[str]:
    """A streamed answer: the text in pieces of a few characters, as tokens arrive."""
    return [text[i:i + 7] for i in range(0, len(text), 7)] or [""]


def validate_text_input(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """A chat model's input checks (openai/gpt-4o-mini's and Llama's on Replicate)."""
    problems: list[dict[str, str]] = []

    def bad(name: str, kind: str, description: str) -> None:
        problems.append({"type": kind, "field": f"input.{name}", "description": description})

    if not isinstance(inputs.get("prompt"), str) or not inputs["prompt"]:
        bad("prompt", "required", "prompt is required")
    if "system_prompt" in inputs and not isinstance(inputs["system_prompt"], str):
        bad("system_prompt", "type", "system_prompt must be a string")
    for name in ("max_tokens", "max_completion_tokens"):
        value = inputs.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            bad(name, "number_range", f"{name} must be a positive integer")
    temperature = inputs.get("temperature", 1)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) \
            or not 0 <= temperature <= 2:
        bad("temperature", "number_range", "temperature must be between 0 and 2")
    return problems


class FakeReplicate:
    """Replicate's prediction API on 127.0.0.1; ``start()``/``stop()`` or a ``with`` block."""

    def __init__(
        self,
        *,
        api_key: str | None = FAKE_API_KEY,
        latency: float = 0.0,
        wait_cap: float | None = None,
        file_host: str | None = None,
        tag_outputs: bool = False,
        create_limit: tuple[int, float] | None = None,
    ) -> None:
        self._defaults = (api_key, latency, wait_cap, file_host)
        self._tag = tag_outputs
        self._limit = create_limit
        self._configure()
        self.predictions: dict[str, FakePrediction] = {}
        self.requests: list[RecordedRequest] = []
        self._plans: collections.deque[Plan] = collections.deque()
        self._texts: collections.deque[TextResponder] = collections.deque()
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(
            collections.deque
        )
        self._lock = threading.Lock()
        self._images: dict[tuple[str, str, str], bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def _configure(self) -> None:
        self.api_key: str | None  # the token to accept; None: any
        self.latency: float  # seconds from processing to output, per image
        self.wait_cap: float | None  # hold ``Prefer: wait`` at most this long (0: answer at once)
        self.file_host: str | None  # host name in output URLs (None: the one requested)
        self.api_key, self.latency, self.wait_cap, self.file_host = self._defaults
        self.get_url_host: str | None = None  # host name in ``urls.get`` (None: the one requested)
        self.models = {FLUX_SCHNELL}  # image models that exist (others: 404)
        # Language models that exist: each answers a prediction's input with text, streamed
        # into ``output`` as a list of string pieces. Default: the lighthouse story planned in
        # as many shots as the prompt asks; ``answer_text()`` queues other answers.
        self.text_models: dict[str, TextResponder] = {
            LANGUAGE_MODEL: _plan_answer, "meta/meta-llama-3-8b-instruct": _plan_answer}
        self.create_status = 201  # Replicate answers creates with 201 (202 is documented too)
        self.list_page_size = 100  # ``GET /v1/predictions`` pages (Replicate's: 100)
        # Each output file ends with "#prediction:<id>" (after the image data, which decoders
        # ignore): a stored image then says which prediction it came from (not for jpg).
        self.tag_outputs = self._tag
        # (creates, seconds): a rolling limit on creations, answered 429 beyond it.
        self.create_limit: tuple[int, float] | None = self._limit
        self.accepted: collections.deque[float] = collections.deque()
        self.accepted_at: list[float] = []  # wall-clock times of creates let through
        self.throttled = 0  # creates answered 429 by the limit

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root to use as REPLICATE_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeReplicate:
        """Serve on a free loopback port; returns once requests are accepted."""
        # proto=IPPROTO_TCP, or asyncio skips TCP_NODELAY on accepted sockets and every
        # keep-alive answer stalls 40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def run() -> None:
            async def serve() -> None:
                self._loop = asyncio.get_running_loop()
                started.set()
                await self._server.serve(sockets=[sock])  # type: ignore[union-attr]

            try:
                asyncio.run(serve())
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fake-replicate", daemon=True)
        self._thread.start()
        started.wait(5)
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("fake Replicate failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Release every held request, stop the server and join its thread."""
        if self._server is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._release_all)
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(10)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _forget_all(self) -> None:
        self._release_all()
        self.predictions.clear()

    def _release_all(self) -> None:
        for prediction in self.predictions.values():
            for timer in prediction.timers:
                timer.cancel()
            prediction.ready.set()

    # --- scripting ------------------------------------------------------------------------

    def plan(self, outcome: str = "succeeded", **fields: Any) -> Plan:
        """Queue how the next created prediction behaves (see ``Plan``)."""
        plan = Plan(outcome=outcome, **fields)
        with self._lock:
            self._plans.append(plan)
        return plan

    def fail_next(
        self,
        kind: str,
        status: int,
        *,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        echo_auth: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests of ``kind`` (create|get|list|cancel|file) with
        ``status``.

        Without ``body`` the answer is Replicate's problem JSON for that status.
        """
        assert kind in ("create", "get", "list", "cancel", "file"), kind
        fault = Fault(status, body, dict(headers or {}), echo_auth, delay)
        with self._lock:
            self._faults[kind].extend([fault] * times)

    def answer_text(self, text: str | TextResponder, *, times: int = 1) -> None:
        """Queue what the next ``times`` language-model predictions answer."""
        responder = text if callable(text) else (lambda _inputs: text)
        with self._lock:
            self._texts.extend([responder] * times)

    def remove_data(self, prediction_id: str) -> None:
        """Do what Replicate does an hour after a prediction: drop its output and files."""
        prediction = self.predictions[prediction_id]
        prediction.output, prediction.data_removed = None, True

    def reset(self) -> None:
        """Back to the constructor's settings; forget predictions, plans, faults and records."""
        if self._loop is not None and self._server is not None:

            async def forget() -> None:
                self._forget_all()

            asyncio.run_coroutine_threadsafe(forget(), self._loop).result(5)
        self._configure()
        with self._lock:
            self._plans.clear()
            self._texts.clear()
            self._faults.clear()
            self.requests.clear()

    # --- what tests look at ---------------------------------------------------------------

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path matches the regex ``pattern``."""
        with self._lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    @property
    def creations(self) -> list[RecordedRequest]:
        """Every create request received (answered or not)."""
        return self.requests_to("POST", r"^/v1/(models/[^/]+/[^/]+/)?predictions$")

    def billed(self) -> list[str]:
        """The image predictions Replicate would bill: Flux-Schnell is priced per output image,
        so those that succeeded (an aborted one never ran; failed and canceled ones made no
        image)."""
        return [p.id for p in list(self.predictions.values())
                if p.plan.text is None and p.status == "succeeded"]

    @property
    def cancels(self) -> list[str]:
        """Ids of the predictions a client asked to cancel, in order."""
        return [r.path.split("/")[3] for r in self.requests_to("POST", r"/cancel$")]

    # --- the app --------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI app (usable on its own, e.g. under another server)."""
        return Starlette(
            routes=[
                Route(
                    "/v1/models/{owner}/{name}/predictions",
                    self._create_for_model,
                    methods=["POST"],
                ),
                Route("/v1/predictions", self._create_for_version, methods=["POST"]),
                Route("/v1/predictions", self._list, methods=["GET"]),
                Route("/v1/predictions/{id}", self._get, methods=["GET"]),
                Route("/v1/predictions/{id}/cancel", self._cancel, methods=["POST"]),
                Route("/files/{id}/{file}", self._file, methods=["GET"]),
                # Not Replicate's: what a test outside this process reads of the fake.
                Route("/_fake/stats", self._stats, methods=["GET"]),
            ]
        )

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.url.path, headers, body))
        return body

    async def _fault(self, kind: str, request: Request) -> Response | None:
        with self._lock:
            queue = self._faults.get(kind)
            fault = queue.popleft() if queue else None
        if fault is None:
            return None
        await asyncio.sleep(fault.delay)
        body = fault.body if fault.body is not None else self._problem_body(fault.status)
        if fault.echo_auth:
            body = {
                **body,
                "detail": f"{body.get('detail', '')} (you sent "
                f"Authorization: {request.headers.get('authorization', '')})",
            }
        return JSONResponse(
            body, fault.status, headers=fault.headers, media_type="application/problem+json"
        )

    @staticmethod
    def _problem_body(status: int) -> dict[str, Any]:
        title, detail = PROBLEMS.get(status, ("Error", f"HTTP {status}"))
        return {"title": title, "detail": detail, "status": status}

    def _problem(self, status: int, **extra: Any) -> JSONResponse:
        return JSONResponse(
            {**self._problem_body(status), **extra}, status, media_type="application/problem+json"
        )

    def _authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        return request.headers.get("authorization", "") in (
            f"Bearer {self.api_key}",
            f"Token {self.api_key}",
        )

    async def _create_for_model(self, request: Request) -> Response:
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await self._create(request, model=model, by_version=False)

    async def _create_for_version(self, request: Request) -> Response:
        return await self._create(request, model=None, by_version=True)

    async def _create(self, request: Request, *, model: str | None, by_version: bool) -> Response:
        body = await self._record(request)
        if not self._authorized(request):
            return self._problem(401)
        if fault := await self._fault("create", request):
            return fault
        if throttled := self._over_the_limit():
            return throttled
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return self._problem(
                422,
                detail="- input: input is required",
                invalid_fields=[
                    {"type": "required", "field": "input", "description": "input is required"}
                ],
            )
        if by_version:
            if body.get("version") != FLUX_SCHNELL_VERSION:
                return self._problem(
                    422,
                    title="Invalid version or not permitted",
                    detail="The specified version does not exist.",
                )
            model = FLUX_SCHNELL
        text = model in self.text_models
        if model not in self.models and not text:
            return self._problem(404)
        invalid = (validate_text_input(body["input"]) if text
                   else validate_flux_schnell(body["input"]))
        if invalid:
            detail = "\n".join(f"- {p['field']}: {p['description']}" for p in invalid)
            return self._problem(422, detail=detail, invalid_fields=invalid)
        with self._lock:
            plan = self._plans.popleft() if self._plans else Plan()
            if text:
                responder = self._texts.popleft() if self._texts else self.text_models[model]
        if text:
            plan.text = responder(body["input"])  # type: ignore[possibly-undefined]
        prediction = FakePrediction(
            id=_new_id(),
            model=str(model),
            version=FLUX_SCHNELL_VERSION,
            input=body["input"],
            plan=plan,
            created_at=_now(plan.age),
        )
        self.predictions[prediction.id] = prediction
        self._schedule(prediction, request)
        if cancel_after := _duration(request.headers.get("cancel-after", "") or "x"):
            handle = asyncio.get_running_loop().call_later(
                cancel_after, self._do_cancel, prediction
            )
            prediction.timers.append(handle)
        if plan.answer_delay:
            await asyncio.sleep(plan.answer_delay)
        if plan.answer_status is not None:
            return self._problem(plan.answer_status)
        wait = self._prefer_wait(request.headers.get("prefer", ""))
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(prediction.ready.wait(), wait)
        return JSONResponse(self._json(prediction, request), self.create_status)

    def _prefer_wait(self, prefer: str) -> float:
        match = re.search(r"\bwait(?:=(\d+))?\b", prefer)
        if not match:
            return 0.0
        wait = float(match.group(1) or 60)
        return wait if self.wait_cap is None else min(wait, self.wait_cap)

    def _schedule(self, prediction: FakePrediction, request: Request) -> None:
        """Run the plan on timers: no task per prediction, so hundreds cost next to nothing."""
        loop, plan = asyncio.get_running_loop(), prediction.plan
        latency = self.latency if plan.latency is None else plan.latency
        later = prediction.timers.append

        def process() -> None:
            if prediction.status == "starting":  # timers due together may run in any order
                prediction.status, prediction.started_at = "processing", _now()
                if plan.text is not None:  # a language model streams: part of the answer
                    prediction.output = _pieces(plan.text)[:1]

        def finish() -> None:
            if prediction.status not in ("starting", "processing"):
                return  # canceled meanwhile
            if plan.outcome == "succeeded" and plan.text is not None:
                prediction.output = _pieces(plan.text)
                end("succeeded", None)
            elif plan.outcome == "succeeded":
                prediction.output = [self._output(prediction, request)]
                prediction.ready.set()
                if plan.output_lag > 0:
                    later(loop.call_later(plan.output_lag, end, "succeeded", None))
                else:
                    end("succeeded", None)
            elif plan.outcome in ("failed", "nsfw"):
                default = NSFW_ERROR if plan.outcome == "nsfw" else TRANSIENT_ERROR
                end("failed", plan.error or default)
            elif plan.outcome != "hang":
                end(plan.outcome, plan.error)

        def end(status: str, error: str | None) -> None:
            if prediction.status in ("starting", "processing"):
                prediction.status, prediction.error = status, error
                prediction.completed_at = _now()
                prediction.ready.set()

        if plan.outcome == "aborted":  # the deadline passed before it ever started
            later(loop.call_later(plan.start_delay + latency, end, "aborted", None))
            return
        later(loop.call_later(plan.start_delay, process))
        later(loop.call_later(plan.start_delay + latency, finish))

    def _do_cancel(self, prediction: FakePrediction) -> None:
        if prediction.status in ("starting", "processing"):
            prediction.status, prediction.output = "canceled", None
            prediction.completed_at = _now()
            prediction.ready.set()

    def _output(self, prediction: FakePrediction, request: Request) -> str:
        fmt = prediction.input.get("output_format", "webp")
        data = self.image(
            fmt,
            prediction.input.get("aspect_ratio", "1:1"),
            prediction.input.get("megapixels", "1"),
        )
        if prediction.plan.data_uri:
            return f"data:{CONTENT_TYPES[fmt]};base64,{base64.b64encode(data).decode()}"
        host = self.file_host or request.url.hostname
        return f"http://{host}:{self.port}/files/{prediction.id}/out-0.{fmt}"

    def image(self, fmt: str, aspect_ratio: str, megapixels: str = "1") -> bytes:
        """A real image file at Flux-Schnell's size (cached: encoding is the slow part)."""
        key = (fmt, aspect_ratio, megapixels)
        if key not in self._images:
            width, height = SIZES[aspect_ratio]
            if megapixels == "0.25":
                width, height = width // 2, height // 2
            picture = Image.new("RGB", (width, height), (40, 90, 160))
            ImageDraw.Draw(picture).ellipse(
                (width // 4, height // 4, width // 2, height // 2), fill=(240, 200, 60)
            )
            out = io.BytesIO()
            picture.save(out, format={"jpg": "JPEG"}.get(fmt, fmt.upper()))
            self._images[key] = out.getvalue()
        return self._images[key]

    def _json(self, prediction: FakePrediction, request: Request) -> dict[str, Any]:
        netloc = f"{self.get_url_host}:{self.port}" if self.get_url_host else request.url.netloc
        api = f"{request.url.scheme}://{netloc}/v1/predictions/{prediction.id}"
        body: dict[str, Any] = {
            "id": prediction.id,
            "model": prediction.model,
            "version": prediction.version,
            "input": prediction.input,
            "logs": "",
            "output": prediction.output,
            "data_removed": prediction.data_removed,
            "error": prediction.error,
            "status": prediction.status,
            "source": "api",
            "created_at": prediction.created_at,
            "urls": {
                "get": api,
                "cancel": f"{api}/cancel",
                "web": f"https://replicate.com/p/{prediction.id}",
            },
        }
        if prediction.started_at:
            body["started_at"] = prediction.started_at
        if prediction.completed_at:
            body["completed_at"] = prediction.completed_at
            body["metrics"] = {
                "predict_time": prediction.plan.latency or self.latency,
                "total_time": prediction.plan.latency or self.latency,
            }
            if prediction.plan.text is not None:
                body["metrics"]["input_token_count"] = sum(
                    len(str(prediction.input.get(k, ""))) // 4 for k in ("prompt", "system_prompt"))
                body["metrics"]["output_token_count"] = len(prediction.plan.text) // 4
        return body

    async def _get(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorized(request):
            return self._problem(401)
        if fault := await self._fault("get", request):
            return fault
        prediction = self.predictions.get(request.path_params["id"])
        if prediction is None:
            return self._problem(404)
        return JSONResponse(self._json(prediction, request))

    async def _list(self, request: Request) -> Response:
        """Every prediction, newest first, in pages joined by an opaque ``next`` URL."""
        await self._record(request)
        if not self._authorized(request):
            return self._problem(401)
        if fault := await self._fault("list", request):
            return fault
        cursor = request.query_params.get("cursor", "0")
        if not cursor.isdigit():
            return self._problem(400, detail="invalid cursor")
        start, size = int(cursor), self.list_page_size
        newest_first = list(reversed(self.predictions.values()))
        page = newest_first[start:start + size]
        more = start + size < len(newest_first)
        return JSONResponse({
            "next": str(request.url.include_query_params(cursor=start + size)) if more else None,
            "previous": None,
            "results": [self._json(p, request) for p in page],
        })

    async def _cancel(self, request: Request) -> Response:
        await self._record(request)
        if not self._authorized(request):
            return self._problem(401)
        if fault := await self._fault("cancel", request):
            return fault
        prediction = self.predictions.get(request.path_params["id"])
        if prediction is None:
            return self._problem(404)
        self._do_cancel(prediction)
        return JSONResponse(self._json(prediction, request))

    def _over_the_limit(self) -> Response | None:
        """Replicate's create limit, as a rolling window: at most ``create_limit[0]`` creates
        in any ``create_limit[1]`` seconds; beyond, 429 with Retry-After (whole seconds, as
        HTTP has them) and the body's "Expected available in N seconds"."""
        if self.create_limit is None:
            return None
        limit, window = self.create_limit
        now = time.monotonic()
        with self._lock:
            while self.accepted and self.accepted[0] <= now - window:
                self.accepted.popleft()
            if len(self.accepted) < limit:
                self.accepted.append(now)
                self.accepted_at.append(time.time())
                return None
            self.throttled += 1
            wait = max(1, math.ceil(self.accepted[0] + window - now))
        return JSONResponse(
            {"title": "Request was throttled.", "status": 429,
             "detail": f"Request was throttled. Expected available in {wait} second"
                       f"{'s' if wait != 1 else ''}."},
            429, headers={"Retry-After": str(wait)}, media_type="application/problem+json")

    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"creations": len(self.creations), "billed": self.billed(),
                             "predictions": len(self.predictions),
                             "accepted_at": list(self.accepted_at),
                             "throttled": self.throttled})

    async def _file(self, request: Request) -> Response:
        await self._record(request)
        if fault := await self._fault("file", request):
            return fault
        prediction = self.predictions.get(request.path_params["id"])
        name = request.path_params["file"]
        if prediction is None or prediction.data_removed or not prediction.output:
            return Response(b"Not found", 404)  # expired: Replicate's files go after an hour
        fmt = name.rsplit(".", 1)[-1]
        data = self.image(
            fmt,
            prediction.input.get("aspect_ratio", "1:1"),
            prediction.input.get("megapixels", "1"),
        )
        if self.tag_outputs and fmt != "jpg":
            data += TAG + prediction.id.encode()
        return Response(data, media_type=CONTENT_TYPES.get(fmt, "application/octet-stream"))


@pytest.fixture(scope="session", name="fake_replicate_server")
def fake_replicate_server_fixture() -> Iterator[FakeReplicate]:
    """One fake Replicate for the session (starting one per test costs ~0.2 s)."""
    with FakeReplicate() as fake:
        yield fake


@pytest.fixture(name="fake_replicate")
def fake_replicate_fixture(fake_replicate_server: FakeReplicate) -> Iterator[FakeReplicate]:
    """The session's fake Replicate, reset: tests script it and read ``.requests``."""
    fake_replicate_server.reset()
    yield fake_replicate_server
    fake_replicate_server.reset()


class FakeReplicateProcess:
    """The fake in a child process, for benchmarks: no shared GIL with the code measured.

    Scripting is limited to the constructor's settings; ``base_url`` is ready after ``start()``.
    """

    def __init__(self, *, latency: float = 0.0, api_key: str = FAKE_API_KEY,
                 tag_outputs: bool = False, create_limit: tuple[int, float] | None = None,
                 ) -> None:
        self.latency, self.api_key, self.tag_outputs = latency, api_key, tag_outputs
        self.create_limit = create_limit
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> FakeReplicateProcess:
        command = [
            sys.executable,
            "-m",
            "tests.fake_replicate",
            "--latency",
            str(self.latency),
            "--api-key",
            self.api_key,
            *(["--tag-outputs"] if self.tag_outputs else []),
            *(["--create-limit", str(self.create_limit[0]), "--create-window",
               str(self.create_limit[1])] if self.create_limit else []),
        ]
        root = str(Path(__file__).resolve().parent.parent)
        self._process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError("the fake Replicate process did not start")
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
    """``python -m tests.fake_replicate --latency 0.5``: serve, print the base URL, run until
    SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--api-key", default=FAKE_API_KEY)
    parser.add_argument("--tag-outputs", action="store_true")
    parser.add_argument("--create-limit", type=int, default=0)
    parser.add_argument("--create-window", type=float, default=60.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    limit = (args.create_limit, args.create_window) if args.create_limit else None
    with FakeReplicate(latency=args.latency, api_key=args.api_key,
                       tag_outputs=args.tag_outputs, create_limit=limit) as fake:
        print(fake.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
