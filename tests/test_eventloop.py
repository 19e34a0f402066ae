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
