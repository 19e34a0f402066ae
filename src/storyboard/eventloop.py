"""One way to run the service's event loops: on uvloop where it is installed.

A worker with hundreds of images in flight spends most of its CPU in the event loop and the
HTTP stack; uvloop (libuv) does the same work for about a tenth less CPU per image (measured in
bench/: the 100-job drain). Where uvloop has no wheel (Windows) the standard loop runs instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - only where uvloop does not build (Windows)
    uvloop = None  # type: ignore[assignment]

__all__ = ["install", "new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A fresh loop of the fastest kind available."""
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """``asyncio.run`` on a loop from ``new_event_loop``."""
    factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)


def install() -> None:
    """Make every loop this process creates with ``asyncio.new_event_loop()`` the fast kind:
    for libraries that create their own (Dramatiq's AsyncIO middleware). Process-wide: only for
    a process that is a worker through and through."""
    if uvloop is not None:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
