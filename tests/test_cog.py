"""CogClient against a REAL Cog server (cog/coglet from PyPI, no Docker) on loopback.

The server runs tests/cog_predictor/predict.py, a tiny model that makes small PNGs and misbehaves
on request. Without the ``cog`` package these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest
from PIL import Image

from storyboard import StoryboardEntry, generate_storyboard_task, get_job, save_generated_video
from storyboard.config import Settings, get_settings
from storyboard.errors import (
    AccountError,
    ConfigurationError,
    PermanentImageError,
    RetryableImageError,
)
from storyboard.images import ImageProvider, ImageRequest, ImageResult, make_provider
from storyboard.images.cog import CogClient
from storyboard.storage import path_for_url

PREDICTOR = Path(__file__).parent / "cog_predictor"


def require_cog() -> None:
    """Skip without the cog package; under CI a missing package is a failure, not a skip."""
    if importlib.util.find_spec("cog") and importlib.util.find_spec("coglet"):
        return
    message = "the `cog` package is not installed (pip install cog==0.23.1)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}: CI must run the real Cog server tests")
    pytest.skip(f"{message}: real Cog server tests skipped")


@dataclass
class CogServer:
    """A Cog HTTP server process running the tiny predictor."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def health(self) -> str:
        try:
            return str(httpx.get(f"{self.url}/health-check", timeout=1).json()["status"])
        except (httpx.HTTPError, ValueError, KeyError):
            return "UNREACHABLE"

    def wait_for(self, *statuses: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the Cog server exited:\n{self.log()}")
            if (status := self.health()) in statuses:
                return status
            time.sleep(0.02)
        pytest.fail(f"the Cog server never reached {statuses}:\n{self.log()}")

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        # The server starts its worker in the group made for it below; end any straggler.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()


def start_cog(log_dir: Path, **env: str) -> CogServer:
    """Start ``python -m cog.server.http`` on a free loopback port (not yet waiting for READY)."""
    require_cog()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    venv_bin = str(Path(sys.executable).parent)
    environment = {
        **os.environ,
        "PORT": str(port),
        "COG_PREDICT_TYPE_STUB": "predict.py:Predictor",
        # The server starts its worker as plain `python`: it must be this virtualenv's.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        **env,
    }
    log_path = log_dir / f"cog-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cog.server.http", "--host", "127.0.0.1"],
        cwd=PREDICTOR,
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return CogServer(f"http://127.0.0.1:{port}", process, log_path, log_file)


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CogServer]:
    server = start_cog(tmp_path_factory.mktemp("cog"))
    try:
        server.wait_for("READY")
        yield server
    finally:
        server.stop()


def run(url: str, request: ImageRequest, **callbacks: object) -> ImageResult:
    async def main() -> ImageResult:
        async with CogClient(settings=Settings(cog_url=url, image_timeout=30)) as client:
            return await client.generate(request, **callbacks)  # type: ignore[arg-type]

    return asyncio.run(main())


def test_makes_an_image_with_the_requests_inputs(cog: CogServer) -> None:
    ids: list[str] = []

    async def remember(pid: str) -> None:
        ids.append(pid)

    result = run(
        cog.url, ImageRequest(prompt="a fox", aspect_ratio="16:9", seed=200), on_prediction=remember
    )
    image = Image.open(io.BytesIO(result.data))
    assert (image.format, image.size, result.extension) == ("PNG", (64, 36), "png")
    assert image.convert("RGB").getpixel((0, 0)) == (200, 90, 160)  # the seed reached the model
    assert (result.cost, result.source_url) == (0.0, None)  # a data: URI, not kept
    assert ids == [result.prediction_id] and len(ids[0]) == 26
    assert f'"prediction_id":"{ids[0]}"' in cog.log()  # the server ran our id (PUT)


def test_rejected_input_is_permanent(cog: CogServer) -> None:
    with pytest.raises(PermanentImageError) as caught:
        run(cog.url, ImageRequest(prompt="p", aspect_ratio="21:9"))  # not in this model's schema
    assert "HTTP 422" in str(caught.value) and "input.aspect_ratio" in str(caught.value)


def test_model_failures(cog: CogServer) -> None:
    with pytest.raises(RetryableImageError, match="CUDA out of memory"):
        run(cog.url, ImageRequest(prompt="[fail]"))
    with pytest.raises(PermanentImageError, match="NSFW") as caught:
        run(cog.url, ImageRequest(prompt="[nsfw]"))
    assert not isinstance(caught.value, AccountError)
    with pytest.raises(RetryableImageError, match="not a readable image"):
        run(cog.url, ImageRequest(prompt="[text]"))


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real transport that also records each request's method, path and answer."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_timeout_cancels_the_prediction_and_a_busy_server_is_waited_for(cog: CogServer) -> None:
    ids: list[str] = []
    pauses: list[float] = []
    transport = RecordingTransport()

    async def remember(pid: str) -> None:
        ids.append(pid)

    async def pause(seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(seconds)

    async def main() -> None:
        async with CogClient(settings=Settings(cog_url=cog.url)) as client:
            slow = client.generate(ImageRequest(prompt="[sleep=10]"), on_prediction=remember)
            task = asyncio.ensure_future(slow)
            while await asyncio.to_thread(cog.health) != "BUSY":
                await asyncio.sleep(0.02)
            # The one slot is taken: a second prediction is offered again and again (409),
            # until its own limit has passed; only then is it a failed, retryable attempt.
            busy_settings = Settings(cog_url=cog.url, image_timeout=0.5)
            async with CogClient(settings=busy_settings, transport=transport, sleep=pause) as busy:
                with pytest.raises(RetryableImageError, match="stayed busy") as caught:
                    await busy.generate(ImageRequest(prompt="p"))
            assert "409" in str(caught.value)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await task

    asyncio.run(main())
    puts = [(path, status) for method, path, status in transport.seen if method == "PUT"]
    assert len(puts) >= 3 and {status for _, status in puts} == {409}
    assert len({path for path, _ in puts}) == 1  # the same prediction, never started
    assert len(pauses) == len(puts) - 1 and pauses == sorted(pauses)  # growing pauses
    # The cancelled prediction sleeps for 10 s; the slot frees long before that only if it was
    # really cancelled on the server.
    assert cog.wait_for("READY", timeout=5) == "READY"
    assert f'"message":"Cancelling prediction","prediction_id":"{ids[0]}"' in cog.log()


def test_setup_not_finished_is_retryable(tmp_path: Path) -> None:
    starting = start_cog(tmp_path, SETUP_DELAY="30")
    try:
        starting.wait_for("STARTING")
        with pytest.raises(RetryableImageError, match="still starting"):  # HTTP 503
            run(starting.url, ImageRequest(prompt="p"))
    finally:
        starting.stop()


def test_failed_setup_is_an_account_error(tmp_path: Path) -> None:
    broken = start_cog(tmp_path, SETUP_DELAY="not a number")  # setup() raises
    try:
        broken.wait_for("SETUP_FAILED")
        with pytest.raises(AccountError, match="failed its setup"):  # also HTTP 503
            run(broken.url, ImageRequest(prompt="p"))
    finally:
        broken.stop()


def test_a_server_whose_worker_crashed_fails_the_job_once(tmp_path: Path) -> None:
    """The model process dies (an out-of-memory kill): that prediction fails, and the server
    then answers every request 409 "busy" for good. The next attempt says so at once (an
    account error: the job fails once) instead of waiting out its time on every scene."""
    server = start_cog(tmp_path)
    try:
        server.wait_for("READY")
        with pytest.raises(RetryableImageError):
            run(server.url, ImageRequest(prompt="robot [crash]"))
        server.wait_for("UNHEALTHY", "DEFUNCT")
        with pytest.raises(AccountError, match="restart"):  # not "busy" after 30 s of waiting
            run(server.url, ImageRequest(prompt="robot"))
    finally:
        server.stop()


def test_a_busy_server_whose_model_health_check_fails_is_still_waited_for(
    tmp_path: Path,
) -> None:
    """UNHEALTHY from the model's own health check while it works is not a dead server: the
    next scene waits for the slot, as with any busy server."""
    flag = tmp_path / "busy"
    server = start_cog(tmp_path, BUSY_FLAG=str(flag))
    try:
        server.wait_for("READY")

        async def main() -> tuple[ImageResult, ImageResult, str]:
            settings = Settings(cog_url=server.url, image_timeout=30)
            async with CogClient(settings=settings) as client:
                first = asyncio.create_task(client.generate(ImageRequest(prompt="a [sleep=3]")))
                while not flag.exists():
                    await asyncio.sleep(0.02)
                health = await asyncio.to_thread(server.wait_for, "UNHEALTHY")
                second = await client.generate(ImageRequest(prompt="b"))  # while a is running
                return await first, second, health
        first, second, health = asyncio.run(main())
        assert health == "UNHEALTHY" and first.data and second.data
    finally:
        server.stop()


def test_unreachable_server_is_retryable() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with pytest.raises(RetryableImageError, match="ConnectError"):
        run(url, ImageRequest(prompt="p"))


def test_settings_and_factory() -> None:
    with pytest.raises(ConfigurationError, match="STORYBOARD_COG_URL"):
        CogClient(settings=Settings())
    for bad in ("gpu-box:5000", "ftp://gpu-box", "http://"):  # would fail every scene later
        with pytest.raises(ConfigurationError, match="http"):
            CogClient(settings=Settings(cog_url=bad))
    provider = make_provider(Settings(image_provider="cog", cog_url="http://gpu-box:5000"))
    assert isinstance(provider, CogClient) and isinstance(provider, ImageProvider)
    assert (provider.name, provider.price_per_image) == ("cog", 0.0)
    asyncio.run(provider.aclose())


def test_a_whole_job_on_one_cog_server(cog: CogServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scene at once against a server with one slot: the busy ones wait their turn."""
    monkeypatch.setenv("STORYBOARD_IMAGE_PROVIDER", "cog")
    monkeypatch.setenv("STORYBOARD_COG_URL", cog.url)
    settings = get_settings()
    job_id = save_generated_video(
        prompt="A robot exploring Mars [sleep=0.3]", parameters={"duration": 15, "style": "x"},
    )
    generate_storyboard_task(job_id)  # the provider chosen by the environment alone

    job = get_job(job_id)
    assert job is not None and job["status"] == "storyboard_ready", job
    entries = [StoryboardEntry.model_validate(e) for e in json.loads(job["storyboard_data"])]
    assert [e.generation_status for e in entries] == ["completed"] * 3
    for entry in entries:
        path = path_for_url(settings.media_dir, entry.image_url or "")
        assert path is not None and path.is_relative_to(settings.data_dir.resolve())
        with Image.open(path) as image:
            assert (image.format, image.size) == ("PNG", (64, 36))
        assert entry.source_url is None  # Cog answered with a data: URI: nothing to keep
        assert f'"prediction_id":"{entry.prediction_id}"' in cog.log()
    assert job["actual_cost"] == 0
