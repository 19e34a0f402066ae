"""ReplicateClient against the fake Replicate over real HTTP on loopback: no mocked methods."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image

from storyboard.config import Settings
from storyboard.errors import (
    AccountError,
    ConfigurationError,
    PermanentImageError,
    RetryableImageError,
)
from storyboard.images import (
    DownloadError,
    ImageProvider,
    ImageRequest,
    ImageResult,
    LostSearch,
)
from storyboard.images.replicate import FLUX_SCHNELL, ReplicateClient, build_input
from tests.fake_replicate import (  # the fixtures register by import, under their own names
    FAKE_API_KEY,
    FLUX_SCHNELL_VERSION,
    SIZES,
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

KEY = FAKE_API_KEY


@pytest.fixture
def fake(fake_replicate: FakeReplicate) -> FakeReplicate:
    return fake_replicate


def settings_for(fake: FakeReplicate, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "replicate_api_key": KEY,
        "replicate_base_url": fake.base_url,
        "replicate_poll_interval": 0.02,
        "replicate_wait": 1,
    }
    return Settings(**{**values, **overrides})


def run(
    fake: FakeReplicate,
    request: ImageRequest | None = None,
    *,
    on_prediction: Callable[[str], Awaitable[None]] | None = None,
    **overrides: Any,
) -> ImageResult:
    """One generate() attempt with a fresh client, closed afterwards."""

    async def main() -> ImageResult:
        async with ReplicateClient(settings=settings_for(fake, **overrides)) as client:
            return await client.generate(
                request or ImageRequest(prompt="a lighthouse at dusk"), on_prediction=on_prediction
            )

    return asyncio.run(main())


def fails(
    fake: FakeReplicate,
    error: type[Exception],
    request: ImageRequest | None = None,
    **overrides: Any,
) -> Any:
    with pytest.raises(error) as caught:
        run(fake, request, **overrides)
    return caught.value


def only_prediction(fake: FakeReplicate) -> str:
    (pid,) = fake.predictions
    return pid


# --- the happy paths ------------------------------------------------------------------------


def test_prefer_wait_returns_the_finished_image_in_one_create(fake: FakeReplicate) -> None:
    result = run(fake)
    pid = only_prediction(fake)
    assert (result.prediction_id, result.extension, result.cost) == (pid, "webp", 0.003)
    assert result.source_url == f"http://127.0.0.1:{fake.port}/files/{pid}/out-0.webp"
    assert Image.open(io.BytesIO(result.data)).size == SIZES["16:9"]
    (create,) = fake.creations
    assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.headers["prefer"] == "wait=1"
    assert create.headers["cancel-after"] == "120s"
    assert create.body == {
        "input": {
            "prompt": "a lighthouse at dusk",
            "aspect_ratio": "16:9",
            "output_format": "webp",
            "num_outputs": 1,
            "go_fast": True,
            "num_inference_steps": 4,
        }
    }
    assert fake.requests_to("GET", "^/v1/predictions/") == []  # nothing to poll
    (download,) = fake.requests_to("GET", "^/files/")
    assert download.headers["authorization"] == f"Bearer {KEY}"


def test_slow_prediction_is_polled_and_its_id_reported_before_waiting(
    fake: FakeReplicate,
) -> None:
    fake.wait_cap = 0  # the create answers at once with "starting"
    fake.plan(latency=0.25, start_delay=0.05)
    seen: list[tuple[str, str]] = []

    async def on_prediction(pid: str) -> None:
        seen.append((pid, fake.predictions[pid].status))

    result = run(fake, on_prediction=on_prediction)
    pid = only_prediction(fake)
    assert seen == [(pid, "starting")]
    assert result.prediction_id == pid
    polls = fake.requests_to("GET", f"^/v1/predictions/{pid}$")
    assert len(polls) >= 3
    assert all(p.headers["authorization"] == f"Bearer {KEY}" for p in polls)


@pytest.mark.parametrize(
    ("aspect_ratio", "output_format", "extension"),
    [
        ("16:9", "webp", "webp"),
        ("9:16", "png", "png"),
        ("1:1", "jpg", "jpg"),
        ("4:3", "webp", "webp"),
    ],
)
def test_aspect_ratios_and_formats(
    fake: FakeReplicate, aspect_ratio: str, output_format: str, extension: str
) -> None:
    request = ImageRequest(
        prompt="p", aspect_ratio=aspect_ratio, output_format=output_format, seed=7
    )
    result = run(fake, request)
    assert result.extension == extension
    assert Image.open(io.BytesIO(result.data)).size == SIZES[aspect_ratio]
    (create,) = fake.creations
    assert create.body["input"]["aspect_ratio"] == aspect_ratio
    assert create.body["input"]["seed"] == 7


def test_output_before_final_status_is_used_at_once(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan(latency=0.05, output_lag=30)  # output filled, status "processing" for 30 s
    result = run(fake)
    # Still "processing" on the fake: the client took the output without waiting 30 s for the end.
    assert fake.predictions[result.prediction_id or ""].status == "processing"
    assert result.data


def test_data_uri_outputs_are_accepted(fake: FakeReplicate) -> None:
    fake.plan(data_uri=True)
    result = run(fake)
    assert result.extension == "webp" and result.source_url is None
    assert fake.requests_to("GET", "^/files/") == []


def test_version_pinned_model_and_202_are_accepted(fake: FakeReplicate) -> None:
    fake.create_status = 202
    result = run(fake, image_model=f"black-forest-labs/flux-schnell:{FLUX_SCHNELL_VERSION}")
    (create,) = fake.creations
    assert create.path == "/v1/predictions"
    assert create.body["version"] == FLUX_SCHNELL_VERSION
    assert result.prediction_id == only_prediction(fake)


def test_many_concurrent_predictions_share_one_fake(fake: FakeReplicate) -> None:
    fake.latency = 0.3

    async def main() -> list[ImageResult]:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            return await asyncio.gather(
                *(
                    client.generate_image(f"scene {i}", aspect_ratio="1:1", megapixels="0.25")
                    for i in range(50)
                )
            )

    results = asyncio.run(main())
    assert len({r.prediction_id for r in results}) == 50
    # Concurrency shown by order, not by a clock: every prediction was created before the first
    # one finished (one after another, each would finish before the next is created).
    created = sorted(p.created_at for p in fake.predictions.values())
    finished = sorted(p.completed_at or "" for p in fake.predictions.values())
    assert created[-1] <= finished[0]


# --- statuses that end a prediction ---------------------------------------------------------


def test_aborted_status_ends_the_wait(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan("aborted", latency=0.05)
    error = fails(fake, RetryableImageError)
    assert "aborted" in str(error)


def test_unknown_status_ends_the_wait_and_cancels(fake: FakeReplicate) -> None:
    fake.plan("hatching", latency=0.0)
    error = fails(fake, RetryableImageError)
    assert "unknown status 'hatching'" in str(error)
    assert fake.cancels == [only_prediction(fake)]


def test_transient_failure_is_retryable(fake: FakeReplicate) -> None:
    fake.plan("failed", error="CUDA out of memory")
    error = fails(fake, RetryableImageError)
    assert "failed" in str(error) and "CUDA out of memory" in str(error)


def test_nsfw_failure_is_permanent_and_says_what_to_do(fake: FakeReplicate) -> None:
    fake.plan("nsfw")
    error = fails(fake, PermanentImageError)
    assert not isinstance(error, AccountError)
    assert "NSFW" in str(error) and "Reword" in str(error)


# --- HTTP errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "7"}, None, 7.0),
        ({}, None, 1.0),  # the fake's default body: "Expected available in 1 second."
        (
            {},
            {"title": "Throttled", "detail": "Expected available in 12 seconds.", "status": 429},
            12.0,
        ),
        ({}, {"title": "Throttled", "status": 429}, None),
    ],
)
def test_429_is_retryable_with_its_hint(
    fake: FakeReplicate,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    expected: float | None,
) -> None:
    fake.fail_next("create", 429, headers=headers, body=body)
    error = fails(fake, RetryableImageError)
    assert error.retry_after == expected
    assert len(fake.creations) == 1  # creates are never resent blindly


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable(fake: FakeReplicate, status: int) -> None:
    fake.fail_next("create", status)
    error = fails(fake, RetryableImageError)
    assert f"HTTP {status}" in str(error)
    assert fake.predictions == {}


def test_a_5xx_while_polling_is_tolerated(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan(latency=0.1)
    fake.fail_next("get", 503, times=2)
    result = run(fake)
    assert result.prediction_id == only_prediction(fake)
    assert len(fake.creations) == 1


def test_a_429_while_polling_waits_at_least_retry_after(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan(latency=0.2)
    fake.fail_next("get", 429, headers={"Retry-After": "12"})  # more than the 5 s poll cap
    waits: list[tuple[float, int]] = []

    async def pace(seconds: float) -> None:
        # Record what the client asked for and how many polls it had sent; pause only briefly.
        waits.append((seconds, len(fake.requests_to("GET", "^/v1/predictions/"))))
        await asyncio.sleep(0.02)

    async def main() -> ImageResult:
        async with ReplicateClient(settings=settings_for(fake), sleep=pace) as client:
            return await client.generate(ImageRequest(prompt="p"))

    result = asyncio.run(main())
    assert result.prediction_id == only_prediction(fake)
    assert waits[:2] == [(0.02, 0), (12.0, 1)]  # the poll interval, then Replicate's 12 s
    assert len(fake.creations) == 1


def test_polls_follow_urls_get_only_on_the_api_origin(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan(latency=0.1)
    fake.get_url_host = "localhost"  # the answer points polls at another host
    result = run(fake)
    polls = fake.requests_to("GET", f"^/v1/predictions/{result.prediction_id}$")
    assert polls
    # Every poll (and so the key) went to the configured REPLICATE_BASE_URL instead.
    assert {p.headers["host"] for p in polls} == {f"127.0.0.1:{fake.port}"}


def test_network_errors_are_retryable(fake: FakeReplicate) -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1"
    error = fails(fake, RetryableImageError, replicate_base_url=base_url)
    assert "ConnectError" in str(error)  # not reported as a timeout


def test_a_connection_dropped_without_an_answer_is_retryable(fake: FakeReplicate) -> None:
    with socket.socket() as server:  # accepts, reads the request, hangs up without answering
        server.bind(("127.0.0.1", 0))
        server.listen()

        def hang_up() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)

        threading.Thread(target=hang_up, daemon=True).start()
        base_url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
        error = fails(fake, RetryableImageError, replicate_base_url=base_url)
    assert "RemoteProtocolError" in str(error)


def test_a_connection_reset_after_the_create_reached_replicate_is_followed_by_a_lookup(
    fake: FakeReplicate,
) -> None:
    """The create reaches Replicate, then the connection is reset (RST) before the answer: a
    read error, not a connection never made. The retry finds the prediction by the scene's own
    inputs and adopts it: one create, one listing."""
    fake.plan(latency=0.05, answer_delay=1.0)  # made at once, answered later

    async def main() -> tuple[RetryableImageError, ImageResult]:
        connections = 0
        handlers: list[asyncio.Task[None]] = []

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                with contextlib.suppress(ConnectionError):
                    while data := await reader.read(65536):
                        writer.write(data)
                        await writer.drain()
            finally:
                writer.close()  # one side hung up: so does the proxy, on the other

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            handlers.append(asyncio.current_task())  # type: ignore[arg-type]
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", fake.port)
            forward = asyncio.create_task(pipe(reader, up_writer))
            try:
                if connections == 1:  # the first create: reset it once Replicate made it
                    while not fake.predictions:
                        await asyncio.sleep(0.01)
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                else:
                    await pipe(up_reader, writer)
            finally:
                forward.cancel()
                writer.close()
                up_writer.close()

        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = settings_for(fake, replicate_base_url=f"http://127.0.0.1:{port}/v1")
        request = ImageRequest("p", seed=7, unique_inputs=True)
        async with server:
            async with ReplicateClient(settings=settings) as client:
                with pytest.raises(RetryableImageError) as caught:
                    await client.generate(request)
                result = await client.generate(request)
            await asyncio.gather(*handlers)  # the client closed its connections: they end
        return caught.value, result

    error, result = asyncio.run(main())
    assert "ReadError" in str(error) and "ConnectError" not in str(error)
    assert_adopted(fake, result, listings=1)


def test_a_gateway_error_after_the_prediction_was_made_is_followed_by_a_lookup(
    fake: FakeReplicate,
) -> None:
    fake.plan(latency=0.05, answer_status=504)  # made, but the answer is a gateway timeout
    request = ImageRequest("p", seed=7, unique_inputs=True)

    async def main() -> ImageResult:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            with pytest.raises(RetryableImageError, match="504"):
                await client.generate(request)
            return await client.generate(request)

    result = asyncio.run(main())
    assert_adopted(fake, result, listings=1)


def test_rejected_key_is_an_account_error(fake: FakeReplicate) -> None:
    error = fails(fake, AccountError, replicate_api_key="r8_wrong")
    assert "REPLICATE_API_KEY" in str(error) and "401" in str(error)


def test_billing_is_an_account_error(fake: FakeReplicate) -> None:
    fake.fail_next("create", 402)
    error = fails(fake, AccountError)
    assert "billing" in str(error) and "402" in str(error)


def test_unknown_model_is_an_account_error(fake: FakeReplicate) -> None:
    error = fails(fake, AccountError, image_model="nobody/no-such-model")
    assert "nobody/no-such-model" in str(error) and "STORYBOARD_IMAGE_MODEL" in str(error)


def test_422_lists_the_invalid_fields(fake: FakeReplicate) -> None:
    fake.fail_next(
        "create",
        422,
        body={
            "title": "Input validation failed",
            "status": 422,
            "detail": "- input.megapixels: megapixels must be one of the following: 1, 0.25",
            "invalid_fields": [
                {
                    "type": "enum",
                    "field": "input.megapixels",
                    "description": "megapixels must be one of the following: 1, 0.25",
                }
            ],
        },
    )
    error = fails(fake, PermanentImageError)
    assert not isinstance(error, AccountError)
    assert "input.megapixels: megapixels must be one of the following" in str(error)


# --- images that last -----------------------------------------------------------------------


def test_expired_output_is_retryable_and_the_retry_reuses_the_prediction(
    fake: FakeReplicate,
) -> None:
    fake.fail_next("file", 404)
    ids: list[str] = []

    async def remember(pid: str) -> None:
        ids.append(pid)

    error = fails(fake, DownloadError, on_prediction=remember)
    assert "HTTP 404" in str(error)
    # Replicate billed the prediction: the error says which one, and what it cost.
    assert (error.prediction_id, error.cost) == (ids[0], 0.003)
    result = run(fake, ImageRequest(prompt="a lighthouse at dusk", resume_prediction_id=ids[0]))
    assert result.prediction_id == ids[0] and result.cost == 0.003
    assert len(fake.creations) == 1  # paid once
    assert len(fake.requests_to("GET", "^/files/")) == 2


def create_elsewhere(fake: FakeReplicate, *, wait: bool = True, **inputs: Any) -> str:
    """A prediction started by an earlier process (a job that crashed after recording its id)."""
    headers = {"Authorization": f"Bearer {KEY}", "Prefer": "wait=1" if wait else ""}
    response = httpx.post(
        f"{fake.base_url}/models/black-forest-labs/flux-schnell/predictions",
        json={"input": {"prompt": "p", **inputs}},
        headers=headers,
    )
    response.raise_for_status()
    return str(response.json()["id"])


def test_resume_rules(fake: FakeReplicate) -> None:
    fake.plan(latency=0.3)  # still running when resumed: wait for it
    running = create_elsewhere(fake, wait=False)
    fake.plan("failed", latency=0.0)  # ended: a new one is needed
    failed = create_elsewhere(fake)
    succeeded = create_elsewhere(fake)  # done, output still there: just download
    fake.remove_data(removed := create_elsewhere(fake))  # done an hour ago: create anew
    cases = {
        running: running,
        succeeded: succeeded,
        failed: None,
        removed: None,
        "abcdefghijklmnopqrstuvwxyz": None,
        "../../etc": None,
    }
    for resume_id, expected in cases.items():
        before = set(fake.predictions)
        result = run(fake, ImageRequest(prompt="p", resume_prediction_id=resume_id))
        new = set(fake.predictions) - before
        if expected is None:
            assert new == {result.prediction_id}, resume_id
        else:
            assert (new, result.prediction_id) == (set(), expected), resume_id
    assert fake.cancels == []


# --- a prediction whose id a crash lost --------------------------------------------------------


def lose_a_prediction(fake: FakeReplicate, request: ImageRequest | None = None, *,
                      age: float = 0.0) -> str:
    """A worker dies while its create is held by ``Prefer: wait``: Replicate made the
    prediction, but its id never reached us (here the attempt is cancelled mid-create)."""
    fake.plan(latency=0.5, age=age)
    before = len(fake.predictions)

    async def main() -> None:
        async with ReplicateClient(settings=settings_for(fake, replicate_wait=60)) as client:
            attempt = asyncio.ensure_future(client.generate(request or ImageRequest("p", seed=7)))
            while len(fake.predictions) == before:
                await asyncio.sleep(0.01)
            attempt.cancel()
            with pytest.raises(asyncio.CancelledError):
                await attempt

    asyncio.run(main())
    return list(fake.predictions)[-1]


def lost_request(since: datetime, prompt: str = "p", seed: int = 7, **fields: Any) -> ImageRequest:
    """A resumed scene's request: its seed is its own, and a run that died may have made it."""
    return ImageRequest(prompt, seed=seed, unique_inputs=True, **fields,
                        find_lost=LostSearch(since=since, listed_after=datetime.now(UTC)))


def assert_adopted(fake: FakeReplicate, result: ImageResult, *, listings: int) -> None:
    """The lost prediction was found (after ``listings`` list requests) and used: one create,
    one prediction, and it is the result's."""
    assert list(fake.predictions) == [result.prediction_id]
    assert len(fake.creations) == 1 and list_requests(fake) == listings


def list_requests(fake: FakeReplicate) -> int:
    return len(fake.requests_to("GET", "^/v1/predictions$"))


def test_a_lost_prediction_is_found_by_its_inputs_not_paid_twice(fake: FakeReplicate) -> None:
    since = datetime.now(UTC)
    lost = lose_a_prediction(fake)
    seen: list[str] = []

    async def record(pid: str) -> None:
        seen.append(pid)

    result = run(fake, lost_request(since), on_prediction=record, replicate_wait=60)
    assert result.prediction_id == lost and seen == [lost]
    assert len(fake.creations) == 1 and fake.cancels == []
    (listing,) = fake.requests_to("GET", "^/v1/predictions$")
    assert listing.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("other", ["seed", "prompt", "aspect_ratio", "too_old"])
def test_only_the_very_same_request_made_since_then_is_taken(
    fake: FakeReplicate, other: str
) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    # Made 7 minutes ago: before the search's start even allowing 5 minutes of clock skew.
    lost = lose_a_prediction(fake, age=420 if other == "too_old" else 0)
    request = {
        "seed": lost_request(since, seed=8),
        "prompt": lost_request(since, prompt="another scene"),
        "aspect_ratio": lost_request(since, aspect_ratio="9:16"),
        "too_old": lost_request(since),
    }[other]
    result = run(fake, request)
    assert result.prediction_id != lost and len(fake.creations) == 2


def test_a_clock_running_ahead_of_replicates_still_finds_it(fake: FakeReplicate) -> None:
    lost = lose_a_prediction(fake)
    ahead = datetime.now(UTC) + timedelta(minutes=2)  # "since" later than Replicate's time
    assert run(fake, lost_request(ahead)).prediction_id == lost


def test_the_search_pages_back_to_its_start_and_no_further(fake: FakeReplicate) -> None:
    fake.list_page_size = 2
    for _ in range(3):
        fake.plan(age=600)
        create_elsewhere(fake)  # older than the search's start: never looked at
    since = datetime.now(UTC)
    lost = lose_a_prediction(fake)
    for _ in range(4):
        create_elsewhere(fake)  # newer: the lost one is on the third page
    assert run(fake, lost_request(since)).prediction_id == lost
    assert list_requests(fake) == 3


def test_an_attempt_whose_create_went_unanswered_is_followed_by_a_lookup(
    fake: FakeReplicate,
) -> None:
    """Within one process: the create reached Replicate but the attempt timed out before the
    answer came. The next attempt with the same inputs finds the prediction, if the inputs are
    the scene's own; with a seed another job may share it creates anew."""
    for unique in (True, False):
        fake.reset()
        fake.plan(latency=0.1, answer_delay=2.0)

        async def main(unique: bool = unique) -> ImageResult:
            request = ImageRequest("p", seed=7, unique_inputs=unique)
            async with ReplicateClient(settings=settings_for(fake, replicate_wait=60)) as client:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await client.generate(request)
                return await client.generate(request)

        result = asyncio.run(main())
        made = list(fake.predictions)
        if unique:
            assert made == [result.prediction_id] and list_requests(fake) == 1
        else:
            assert len(made) == 2 and list_requests(fake) == 0


def test_a_lookup_cut_short_leaves_the_loss_to_the_next_attempt(fake: FakeReplicate) -> None:
    """The attempt after a lost answer is itself cancelled while it lists: the loss is not
    forgotten, and the attempt after that still finds the prediction."""
    fake.plan(latency=0.05, answer_delay=2.0)
    fake.fail_next("list", 503, delay=2.0)  # the first listing outlasts its attempt
    request = ImageRequest("p", seed=7, unique_inputs=True)

    async def main() -> ImageResult:
        async with ReplicateClient(settings=settings_for(fake, replicate_wait=60)) as client:
            for _ in range(2):  # the create's answer, then the listing, outlast the attempt
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await client.generate(request)
            return await client.generate(request)

    result = asyncio.run(main())
    assert_adopted(fake, result, listings=2)


def test_a_listing_older_than_the_loss_is_not_reused(fake: FakeReplicate) -> None:
    """Scenes of one run share a listing; a run resumed later (another job, whose worker died
    after that listing) lists again rather than miss its lost prediction."""
    since = datetime.now(UTC)

    async def main() -> tuple[ImageResult, ImageResult]:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            first = await client.generate(lost_request(since, seed=1))  # lists: nothing lost
            await asyncio.to_thread(lose_a_prediction, fake, ImageRequest("p", seed=2))
            return first, await client.generate(lost_request(since, seed=2))

    _, second = asyncio.run(main())
    assert second.prediction_id == list(fake.predictions)[1]  # the lost one, not a new one
    assert list_requests(fake) == 2 and len(fake.creations) == 2


def test_a_lost_prediction_that_failed_is_made_again(fake: FakeReplicate) -> None:
    since = datetime.now(UTC)
    fake.plan("failed", latency=0.0)
    create_elsewhere(fake, **build_input(FLUX_SCHNELL, lost_request(since), {}))
    result = run(fake, lost_request(since))
    assert len(fake.creations) == 2 and result.prediction_id in fake.predictions


def test_a_useless_recorded_prediction_falls_back_to_the_lost_one(fake: FakeReplicate) -> None:
    """Attempt 1 recorded a prediction that failed; attempt 2's create was lost in a crash."""
    since = datetime.now(UTC)
    fake.plan("failed", latency=0.0)
    recorded = create_elsewhere(fake)
    lost = lose_a_prediction(fake)
    result = run(fake, lost_request(since, resume_prediction_id=recorded))
    assert result.prediction_id == lost and len(fake.creations) == 2


@pytest.mark.parametrize("answer", [
    {"status": 503}, {"status": 405}, {"status": 200, "body": {"results": "nonsense"}},
], ids=["503", "405", "malformed"])
def test_an_unreadable_list_means_creating_anew(fake: FakeReplicate, answer: dict[str, Any]) -> None:
    since = datetime.now(UTC)
    lose_a_prediction(fake)
    fake.fail_next("list", answer["status"], body=answer.get("body"))
    run(fake, lost_request(since))
    assert list_requests(fake) == 1
    assert len(fake.creations) == 2  # best effort: the image is still made


def test_a_next_page_on_another_origin_is_not_followed(fake: FakeReplicate) -> None:
    """The key goes to the API's origin only: localhost is this same fake, another origin."""
    since = datetime.now(UTC)
    elsewhere = f"http://localhost:{fake.port}/v1/predictions?cursor=0"
    fake.fail_next("list", 200, body={"results": [], "next": elsewhere})
    run(fake, lost_request(since))
    assert list_requests(fake) == 1


def test_a_rejected_key_while_looking_is_an_account_error(fake: FakeReplicate) -> None:
    fake.fail_next("list", 401)
    fails(fake, AccountError, lost_request(datetime.now(UTC)))
    assert fake.creations == []


def test_one_search_serves_every_scene_resuming_together(fake: FakeReplicate) -> None:
    since = datetime.now(UTC)
    lost = [lose_a_prediction(fake, ImageRequest("p", seed=seed)) for seed in (1, 2, 3)]

    async def main() -> list[ImageResult]:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            return await asyncio.gather(*(client.generate(lost_request(since, seed=seed))
                                          for seed in (1, 2, 3)))

    results = asyncio.run(main())
    assert [r.prediction_id for r in results] == lost
    assert list_requests(fake) == 1
    assert len(fake.creations) == 3


def test_not_an_image_is_retryable(fake: FakeReplicate) -> None:
    fake.fail_next("file", 200, body={"not": "an image"})
    error = fails(fake, RetryableImageError)
    assert "not a readable image" in str(error)


def test_the_key_goes_only_to_replicates_hosts(fake: FakeReplicate) -> None:
    fake.file_host = "localhost"  # outputs on another host than the API's 127.0.0.1
    run(fake)
    (download,) = fake.requests_to("GET", "^/files/")
    assert "authorization" not in download.headers


# --- cancellation ---------------------------------------------------------------------------


def test_timeout_cancels_the_running_prediction(fake: FakeReplicate) -> None:
    fake.wait_cap = 0
    fake.plan("hang")

    async def main() -> None:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            async with asyncio.timeout(0.3):
                await client.generate(ImageRequest(prompt="p"))

    with pytest.raises(TimeoutError):
        asyncio.run(main())
    pid = only_prediction(fake)
    assert fake.cancels == [pid]
    (cancel,) = fake.requests_to("POST", "/cancel$")
    assert cancel.headers["authorization"] == f"Bearer {KEY}"
    assert fake.predictions[pid].status == "canceled"


def test_a_failing_prediction_callback_cancels_the_prediction(fake: FakeReplicate) -> None:
    fake.plan("hang")
    fake.wait_cap = 0

    async def broken(pid: str) -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError):
        run(fake, on_prediction=broken)
    assert fake.cancels == [only_prediction(fake)]


# --- settings and secrets -------------------------------------------------------------------


def test_options_are_checked_before_any_request(fake: FakeReplicate) -> None:
    async def main() -> list[str]:
        messages = []
        async with ReplicateClient(settings=settings_for(fake)) as client:
            for call in (
                client.generate_image("p", foo=1),
                client.generate_image("p", num_inference_steps=9),
                client.generate_image("p", go_fast="yes"),
                client.generate_image("p", num_outputs=4),
                client.generate(ImageRequest(prompt="p", aspect_ratio="7:1")),
                client.generate(ImageRequest(prompt=" ")),
            ):
                with pytest.raises(PermanentImageError) as caught:
                    await call
                messages.append(str(caught.value))
        return messages

    messages = asyncio.run(main())
    for name, message in zip(
        ["'foo'", "num_inference_steps", "go_fast", "num_outputs", "aspect_ratio", "prompt"],
        messages,
        strict=True,
    ):
        assert name in message
    assert fake.requests == []


def test_generate_image_passes_the_models_options(fake: FakeReplicate) -> None:
    async def main() -> ImageResult:
        async with ReplicateClient(settings=settings_for(fake)) as client:
            return await client.generate_image(
                "a fox", aspect_ratio="1:1", seed=42, output_quality=90, output_format="png"
            )

    result = asyncio.run(main())
    (create,) = fake.creations
    assert create.body["input"] == {
        "prompt": "a fox",
        "aspect_ratio": "1:1",
        "output_format": "png",
        "num_outputs": 1,
        "seed": 42,
        "go_fast": True,
        "num_inference_steps": 4,
        "output_quality": 90,
    }
    assert result.extension == "png"


def test_missing_or_malformed_key_says_how_to_fix_it() -> None:
    for key in (None, "  ", "r8_abc def", "r8_ünïcode"):
        with pytest.raises(ConfigurationError, match="REPLICATE_API_KEY") as caught:
            ReplicateClient(settings=Settings(replicate_api_key=key))
        assert not (key and key.strip()) or key not in str(caught.value)


def test_it_is_an_image_provider(fake: FakeReplicate) -> None:
    client = ReplicateClient(settings=settings_for(fake))
    assert isinstance(client, ImageProvider)
    assert (client.name, client.price_per_image) == ("replicate", 0.003)
    asyncio.run(client.aclose())


def test_environment_token_alias_and_base_url(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)
    monkeypatch.setenv("REPLICATE_BASE_URL", fake.base_url)
    monkeypatch.setenv("STORYBOARD_REPLICATE_WAIT", "1")

    async def main() -> ImageResult:
        async with ReplicateClient() as client:  # settings from the environment
            return await client.generate_image("p")

    assert asyncio.run(main()).prediction_id == only_prediction(fake)
    assert fake.creations[0].headers["authorization"] == f"Bearer {KEY}"


def test_injected_transport_and_client(fake: FakeReplicate) -> None:
    class CountingTransport(httpx.AsyncBaseTransport):
        """A real transport that also counts what goes through it."""

        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()
            self.paths: list[str] = []

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.paths.append(request.url.path)
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    transport = CountingTransport()

    async def main() -> bool:
        async with ReplicateClient(settings=settings_for(fake), transport=transport) as client:
            await client.generate_image("p")
        async with httpx.AsyncClient() as shared:
            client = ReplicateClient(settings=settings_for(fake), http_client=shared)
            await client.generate_image("p")
            await client.aclose()
            return shared.is_closed  # the caller's client stays open

    assert asyncio.run(main()) is False
    assert transport.paths[0] == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert len(fake.creations) == 2


def test_the_key_never_leaks(fake: FakeReplicate, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail_next("create", 500, echo_auth=True)
    fake.fail_next("create", 422, echo_auth=True)
    fake.fail_next("create", 401, echo_auth=True)
    fake.plan("failed", error=f"worker crashed with token {KEY}")
    errors = [
        fails(fake, RetryableImageError),
        fails(fake, PermanentImageError),
        fails(fake, AccountError),
        fails(fake, RetryableImageError),
    ]
    assert "[redacted]" in str(errors[0])  # the echo was there, and redacted
    for error in errors:
        chain: BaseException | None = error
        while chain is not None:
            assert KEY not in str(chain) and KEY not in repr(chain)
            chain = chain.__cause__ or chain.__context__
    assert "created prediction" in caplog.text  # the client did log, just not the key
    assert KEY not in caplog.text
    client = ReplicateClient(settings=settings_for(fake))
    assert KEY not in repr(client) and KEY not in str(vars(client))
    asyncio.run(client.aclose())


class _Stopped(BaseException):
    """Stands for the job's stop signal, raised by the checkpoint of a cancelled job."""


def test_a_finished_image_is_kept_when_recording_its_id_fails(fake: FakeReplicate) -> None:
    # `Prefer: wait` returned the finished prediction; the job was cancelled meanwhile, so the
    # checkpoint refuses. The image is made and paid for: the caller gets it to store and bill.
    async def refuse(_pid: str) -> None:
        raise _Stopped

    result = run(fake, on_prediction=refuse)
    assert result.data and result.prediction_id == only_prediction(fake)
    assert result.cost > 0
    assert fake.cancels == []


def test_a_running_prediction_is_cancelled_when_recording_its_id_fails(
    fake: FakeReplicate,
) -> None:
    # Still running: nobody could resume it without its id, so it is stopped, not paid for.
    fake.wait_cap = 0
    fake.plan(latency=5.0)

    async def refuse(_pid: str) -> None:
        raise _Stopped

    with pytest.raises(_Stopped):
        run(fake, on_prediction=refuse)
    assert fake.cancels == [only_prediction(fake)]
