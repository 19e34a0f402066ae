"""The FastAPI application: routes, error translation, media files, the studio."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..access import OwnerLimits
from ..config import Settings, get_settings
from ..db import get_engine
from ..errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
    JobNotFoundError,
    JobStateError,
    PermissionDeniedError,
    StoryboardError,
    TooManyRequestsError,
)
from ..jobs.queue import Queue
from ..jobs.task import generate_storyboard_task
from ..jobs.worker import WorkerThread
from ..schemas import plain_message
from ..webhooks import DelivererThread
from . import exports, media, review, routes, sharing
from .security import install_security

__all__ = ["create_app"]

log = logging.getLogger("storyboard.api")

Dispatch = Callable[[int, BackgroundTasks], None]


def _background_dispatch(settings: Settings) -> Dispatch:
    def dispatch(job_id: int, background_tasks: BackgroundTasks) -> None:
        # The spec's FastAPI integration: the task runs after the response, in the thread pool.
        background_tasks.add_task(generate_storyboard_task, job_id, settings=settings)

    return dispatch


def _send_or_defer(queue: Queue, job_id: int) -> None:
    try:
        queue.send(job_id)
    except Exception:  # the row is saved; the workers' re-dispatch pass will send it
        log.warning("job %s saved but not dispatched (broker unreachable); it will be re-sent",
                    job_id, exc_info=True)


_STATUS = {
    JobNotFoundError: 404,
    media.MediaNotFound: 404,
    InvalidRequestError: 422,
    JobStateError: 409,
    ConfigurationError: 503,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    TooManyRequestsError: 429,
}


async def _storyboard_error(request: Request, exc: Exception) -> JSONResponse:
    # One place where our errors become HTTP statuses.
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    body: dict[str, object] = {"detail": str(exc)}
    if isinstance(exc, JobNotFoundError):
        body = {"detail": "Job not found"}  # the spec's exact words; the id is in the URL
    elif isinstance(exc, InvalidRequestError):
        # FastAPI's own 422 shape, so clients read every validation error the same way.
        where = "path" if exc.field in request.path_params else "body"
        body = {"detail": [{"loc": [where, *_field_path(exc.field)], "msg": exc.message,
                            "type": "value_error"}]}
    headers = {}
    if isinstance(exc, TooManyRequestsError):  # when to try again (the budget: midnight UTC)
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="storyboard"'
    return JSONResponse(body, status_code=status, headers=headers)


def _field_path(field: str) -> list[str | int]:
    """"characters[0].id" as FastAPI writes a location: ["characters", 0, "id"]."""
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field):
        parts.append(int(index) if index else name)
    return parts or [field]


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # FastAPI's own 422, less the "input" it echoes back (a 5 MB prompt would return whole) and
    # in ASCII-escaped JSON: a lone surrogate in the body is refused, not turned into a 500
    # when the answer cannot be encoded as UTF-8.
    assert isinstance(exc, RequestValidationError)
    errors = [{**{k: v for k, v in error.items() if k != "input"},
               "msg": plain_message(error["msg"])} for error in exc.errors()]
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


def create_app(
    settings: Settings | None = None,
    *,
    dispatch: Dispatch | None = None,
    embedded_worker: bool = False,
) -> FastAPI:
    """Build the app. New jobs run through ``dispatch`` (default: the spec's BackgroundTasks),
    or, with ``embedded_worker``, through a durable in-process worker that picks them up from
    the database (and resumes interrupted ones after a restart)."""
    settings = settings or get_settings()
    queue = None
    if settings.broker_url and dispatch is None:
        queue = Queue(settings)
        embedded_worker = False  # the fleet's workers run the jobs
    worker = WorkerThread(settings) if embedded_worker else None
    # Jobs run here as background tasks (neither a worker nor a broker): their webhooks are
    # sent from here too. (A worker sends its own; with a broker, the fleet's workers do.)
    hooks = DelivererThread(settings) if worker is None and queue is None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        if hooks is not None:
            hooks.start()
        try:
            yield
        finally:
            if worker is not None:
                await asyncio.to_thread(worker.stop)
            if hooks is not None:
                await asyncio.to_thread(hooks.stop, settings.webhook_timeout + 5)
            app.state.limits.close()
            if queue is not None:
                queue.close()

    # FastAPIOffline: FastAPI whose /docs page uses bundled files, not a CDN, so the docs work
    # offline like the studio does. No /redoc: ReDoc still fetches its logo from a CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="Storyboard",
        version="0.1.0",
        description="Turn a video prompt into a storyboard of scenes and images for review.",
        swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = get_engine(settings)
    app.state.limits = OwnerLimits(settings, app.state.engine)
    if queue is not None:
        app.state.dispatch = lambda job_id, _tasks: _send_or_defer(queue, job_id)
    elif worker is not None:
        app.state.dispatch = lambda job_id, _tasks: worker.wake()
    else:
        app.state.dispatch = dispatch or _background_dispatch(settings)
    # After a cancel: the in-process worker stops the job at once; other processes notice at
    # their next status poll.
    app.state.cancelled = worker.check_now if worker is not None else lambda _job_id: None
    app.add_exception_handler(StoryboardError, _storyboard_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(routes.router)
    app.include_router(review.router)
    app.include_router(exports.router)
    app.include_router(sharing.router)
    app.include_router(media.router)
    if media.STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=media.STATIC_DIR), name="static")
    install_security(app, settings)
    return app
