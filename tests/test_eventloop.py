"""The service's loops (worker, CLI, bench) run on uvloop where it is installed."""

import asyncio
import sys

import pytest

from storyboard import eventloop


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build")
def test_loops_run_on_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(loop_module()).startswith("uvloop")


def test_run_returns_the_result_and_closes_the_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def answer() -> int:
        loops.append(asyncio.get_running_loop())
        return 42

    assert eventloop.run(answer()) == 42
    assert loops[0].is_closed()


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop has no Windows build")
def test_install_makes_loops_that_libraries_create_uvloops_too() -> None:
    """Dramatiq's AsyncIO middleware makes its loop with asyncio.new_event_loop()."""
    try:
        eventloop.install()
        loop = asyncio.new_event_loop()
        assert type(loop).__module__.startswith("uvloop")
        loop.close()
    finally:
        asyncio.set_event_loop_policy(None)
