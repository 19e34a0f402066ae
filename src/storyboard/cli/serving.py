"""``storyboard serve`` (the API and the studio) and ``storyboard worker`` (jobs from the
database or the queue)."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Annotated

import typer

from .. import eventloop
from ..db import get_engine
from ..errors import StoryboardError
from .common import check_provider, fail, load_settings, out, setup_logging

__all__ = ["serve", "worker"]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen beyond loopback with no tokens: anyone who can reach the "
                           "server can use it.")] = False,
) -> None:
    """Start the API (and the studio at /) on loopback unless told otherwise."""
    import uvicorn

    from ..access import any_tokens
    from ..api.app import create_app
    from ..api.logs import redact_access_log

    setup_logging(True)  # the jobs' own log lines (the spec's), beside uvicorn's
    settings = load_settings()
    try:
        if not _loopback(host) and not insecure and not any_tokens(get_engine(settings)):
            raise fail(
                f"refusing to listen on {host} with no API tokens: anyone who can reach it could "
                "read, approve and spend on every job. Create one first (storyboard tokens "
                "create NAME --admin), or pass --insecure to run open on purpose", 2)
        if not settings.broker_url:  # else the fleet's workers make the images
            check_provider(settings)
        application = create_app(settings, embedded_worker=True)
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    out.print(f"Storyboard on http://{host}:{port}/  (API docs at /docs)", highlight=False)
    redact_access_log()
    uvicorn.run(application, host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a name is resolved as uvicorn would)."""
    import ipaddress
    import socket

    if host == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                   for a in addresses)


def worker(
    threads: Annotated[int, typer.Option(help="Jobs at once (queue mode).", min=1)] = 16,
    verbose: Annotated[bool, typer.Option("--verbose/--quiet", "-v", help="Log steps.")] = True,
) -> None:
    """Run jobs until stopped (SIGTERM/Ctrl-C finish or hand back work).

    Without STORYBOARD_BROKER_URL it takes jobs from the database; with it, from the queue.
    """
    setup_logging(verbose)
    settings = load_settings()
    if settings.broker_url:
        from ..jobs.queue import Queue, Redispatcher, redispatch_lost_jobs

        try:
            check_provider(settings)
            get_engine(settings)  # schema up to date before any message is taken
            queue = Queue(settings)
        except StoryboardError as exc:
            raise fail(str(exc)) from exc
        eventloop.install()  # Dramatiq's job loop, made by its middleware, runs on uvloop too
        consumer = queue.worker(threads)
        redispatcher = Redispatcher(queue)
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        consumer.start()
        redispatch_lost_jobs(queue)
        redispatcher.start()
        from ..webhooks import DelivererThread

        hooks = DelivererThread(settings)  # this worker empties the webhook outbox too
        hooks.start()
        out.print(f"worker consuming queue {settings.queue_name!r}", highlight=False)
        stopping.wait()
        redispatcher.stop()
        # While Dramatiq stops taking messages and waits for its threads, running jobs get the
        # grace period; then they are handed back (lease released, message sent again).
        handing_back = threading.Thread(target=queue.hand_back, args=(settings.shutdown_grace,))
        handing_back.start()
        consumer.stop(timeout=int((settings.shutdown_grace + 30) * 1000))
        handing_back.join()
        queue.send_handed_back()
        hooks.stop(timeout=settings.webhook_timeout + 5)
        queue.close()
        return

    from ..jobs.worker import Worker

    async def main() -> None:
        w = Worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, w.stop)
        await w.run()

    try:
        eventloop.run(main())
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
