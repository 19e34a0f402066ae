"""Webhooks: Standard Webhooks signatures, the address policy, and delivery through the durable
outbox over real HTTP on loopback (SQLite, and PostgreSQL when it runs locally)."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from storyboard.config import Settings, get_settings
from storyboard.db import create_job, get_engine, update_statement
from storyboard.db.models import WebhookMessage, utcnow
from storyboard.errors import ConfigurationError, InvalidRequestError
from storyboard.schemas import JobResponse
from storyboard.webhooks import (
    DEFAULT_POLICY,
    AddressRefusedError,
    DelivererThread,
    InvalidSecretError,
    RetryPolicy,
    WebhookDeliverer,
    WebhookURLError,
    WebhookVerificationError,
    check_url,
    check_webhook_request,
    checked_addresses,
    claim_due,
    claim_lease,
    deliver_due,
    enqueue,
    enqueue_job_event,
    event_hooks,
    new_secret,
    parse_secret,
    pending_count,
    refused_reason,
    sign,
    signature_headers,
    verify,
    wake_deliverers,
    webhook_client,
    webhook_target,
)
from storyboard.webhooks import outbox as outbox_module

from .services import postgres_database
from .webhook_receiver import running_receiver

T = TypeVar("T")

# Replicate's client tests' vector (see /work/shared/replicate-protocol.md, "Webhooks").
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = new_secret()
PAYLOAD = '{"job_id": 7, "status": "storyboard_ready"}'


@pytest.fixture(autouse=True)
def _no_webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own webhook settings must not change what these tests see.
    for name in ("STORYBOARD_WEBHOOK_SECRET", "STORYBOARD_WEBHOOK_ALLOW_PRIVATE",
                 "STORYBOARD_WEBHOOK_TIMEOUT", "STORYBOARD_WEBHOOK_POLL_INTERVAL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: SQLite under the test's DATA; else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


def make_settings(database: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"webhook_secret": SECRET, "webhook_allow_private": True,
                              "webhook_timeout": 5.0, "webhook_poll_interval": 0.05}
    if database:
        values["database_url"] = database
    return get_settings(**{**values, **overrides})


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 60))


def message(engine: Engine, msg_id: str) -> WebhookMessage:
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(WebhookMessage, msg_id)
        assert row is not None
        return row


async def deliver(engine: Engine, settings: Settings, *, now: datetime | None = None,
                  owner: str = "worker-a", **options: Any) -> int:
    async with webhook_client(settings, resolve=options.get("resolve")) as client:
        return await deliver_due(engine, settings, owner=owner, client=client, now=now,
                                 **options)


def wait_until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def static_resolver(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return list(addresses)

    return resolve


# -- signing -----------------------------------------------------------------------------------

def test_signing_matches_the_standard_webhooks_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = signature_headers(VECTOR_SECRET, VECTOR_ID, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    assert headers == {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP),
                       "webhook-signature": VECTOR_SIGNATURE}
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)
    # The bare base64 form of the secret is the same key.
    verify(VECTOR_SECRET.removeprefix("whsec_"), headers, VECTOR_BODY, now=VECTOR_TIMESTAMP)


def _vector_headers(**changes: str) -> dict[str, str]:
    headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP),
               "webhook-signature": VECTOR_SIGNATURE}
    headers.update(changes)
    return {k: v for k, v in headers.items() if v != "-"}


@pytest.mark.parametrize(("headers", "body", "secret", "now", "says"), [
    (_vector_headers(), b'{"test": 2432232315}', VECTOR_SECRET, VECTOR_TIMESTAMP, "no signature"),
    (_vector_headers(), VECTOR_BODY, new_secret(), VECTOR_TIMESTAMP, "no signature"),
    (_vector_headers(**{"webhook-id": "msg_other"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "no signature"),
    (_vector_headers(), VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP + 301, "old"),
    (_vector_headers(), VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP - 301, "future"),
    (_vector_headers(**{"webhook-id": "-"}), VECTOR_BODY, VECTOR_SECRET, VECTOR_TIMESTAMP,
     "missing header webhook-id"),
    (_vector_headers(**{"webhook-timestamp": "-"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "missing header webhook-timestamp"),
    (_vector_headers(**{"webhook-signature": "-"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "missing header webhook-signature"),
    (_vector_headers(**{"webhook-timestamp": "yesterday"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "not a Unix time"),
    (_vector_headers(**{"webhook-signature": "v2,abc"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "no v1 signature"),
    (_vector_headers(**{"webhook-signature": "v1,not-base64!"}), VECTOR_BODY, VECTOR_SECRET,
     VECTOR_TIMESTAMP, "no signature"),
], ids=["tampered-body", "wrong-secret", "other-id", "too-old", "in-the-future", "no-id",
        "no-timestamp", "no-signature", "bad-timestamp", "other-version", "garbage"])
def test_verify_refuses(headers: dict[str, str], body: bytes, secret: str, now: int,
                        says: str) -> None:
    with pytest.raises(WebhookVerificationError, match=says):
        verify(secret, headers, body, now=now)


def test_verify_accepts_any_matching_signature_and_any_header_case() -> None:
    other = sign(new_secret(), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)
    headers = {"Webhook-Id": VECTOR_ID, "Webhook-Timestamp": str(VECTOR_TIMESTAMP),
               "Webhook-Signature": f"v1a,xyz {other} {VECTOR_SIGNATURE}"}
    verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TIMESTAMP + 299)
    verify(VECTOR_SECRET, httpx.Headers(headers), VECTOR_BODY.decode(), now=VECTOR_TIMESTAMP)


def test_secrets_parse_and_refuse_without_showing_themselves() -> None:
    fresh = new_secret()
    assert fresh.startswith("whsec_")
    assert len(parse_secret(fresh)) == 32
    assert parse_secret(fresh) == parse_secret(fresh.removeprefix("whsec_").rstrip("="))
    for bad in ("whsec_not*base64*at*all", "whsec_c2hvcnQ=", ""):
        with pytest.raises(InvalidSecretError) as caught:
            parse_secret(bad)
        assert isinstance(caught.value, ConfigurationError)
        if bad:
            assert bad.removeprefix("whsec_") not in str(caught.value)


# -- where webhooks may go ---------------------------------------------------------------------

@pytest.mark.parametrize(("url", "says"), [
    ("ftp://example.com/hook", "http:// or https://"),
    ("example.com/hook", "http:// or https://"),
    ("http:///hook", "no host"),
    ("https://alice:s3cr3t@example.com/hook", "user name or password"),
    ("https://s3cr3t@example.com/hook", "user name or password"),
    ("http://example.com:99999/hook", "not a valid URL"),
    ("http://exa mple.com/hook", "spaces"),
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[::1]:8000/hook", "loopback"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("http://localhost:8000/hook", "loopback"),
])
def test_check_url_refuses(url: str, says: str) -> None:
    with pytest.raises(WebhookURLError, match=says) as caught:
        check_url(url, allow_private=False)
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.field == "webhook_url"
    assert "s3cr3t" not in str(caught.value)


def test_check_url_accepts_public_urls_and_private_ones_when_allowed() -> None:
    check_url("https://hooks.example.com/storyboard?token=abc", allow_private=False)
    check_url("http://93.184.216.34:8080/hook", allow_private=False)
    check_url("http://127.0.0.1:8000/hook", allow_private=True)
    check_url("http://localhost:8000/hook", allow_private=True)
    with pytest.raises(WebhookURLError):  # the form is checked either way
        check_url("ftp://127.0.0.1/hook", allow_private=True)


@pytest.mark.parametrize(("address", "reason"), [
    ("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("172.16.5.4", "private"),
    ("192.168.1.1", "private"), ("169.254.169.254", "link-local"), ("100.64.0.1", "CGNAT"),
    ("224.0.0.251", "multicast"), ("0.0.0.0", "unspecified"), ("240.0.0.1", "reserved"),
    ("::1", "loopback"), ("::", "unspecified"), ("fe80::1", "link-local"),
    ("fd12:3456::1", "private"), ("ff02::1", "multicast"), ("::ffff:127.0.0.1", "loopback"),
    ("2002:a00:1::1", "private"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("192.0.2.10", "private"),
])
def test_refused_addresses(address: str, reason: str) -> None:
    refused = refused_reason(address)
    assert refused is not None and reason in refused


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_reason(address) is None


def test_names_are_judged_by_what_they_resolve_to() -> None:
    async def main() -> None:
        # localhost, resolved for real.
        with pytest.raises(AddressRefusedError, match="localhost resolves to 127.0.0.1"):
            await checked_addresses("localhost", 80, allow_private=False)
        assert "127.0.0.1" in await checked_addresses("localhost", 80, allow_private=True)
        for address in ("10.0.0.7", "169.254.169.254", "::1", "127.0.0.1"):
            with pytest.raises(AddressRefusedError, match=f"hooks.example resolves to {address}"):
                await checked_addresses("hooks.example", 443, allow_private=False,
                                        resolve=static_resolver(address))
        # One inside address among public ones is enough to refuse the name.
        with pytest.raises(AddressRefusedError):
            await checked_addresses("hooks.example", 443, allow_private=False,
                                    resolve=static_resolver("93.184.216.34", "10.0.0.7"))
        public = await checked_addresses("hooks.example", 443, allow_private=False,
                                         resolve=static_resolver("93.184.216.34"))
        assert public == ["93.184.216.34"]
        with pytest.raises(socket.gaierror):
            await checked_addresses("nothing.invalid", 443, allow_private=False)

    run(main())


def test_the_webhook_client_refuses_at_connect_time() -> None:
    async def main() -> None:
        async with webhook_client(make_settings(webhook_allow_private=False)) as client:
            for url in ("http://127.0.0.1:9/hook", "http://localhost:9/hook"):
                with pytest.raises(AddressRefusedError):
                    await client.post(url, content=b"{}")
            with pytest.raises(httpx.ConnectError, match="cannot resolve"):
                await client.post("http://nothing.invalid/hook", content=b"{}")

    run(main())


# -- submission ----------------------------------------------------------------------------------

def test_submission_needs_a_secret_and_a_good_url() -> None:
    check_webhook_request(make_settings(webhook_secret=None), url=None)  # no webhook asked
    with pytest.raises(WebhookURLError, match="STORYBOARD_WEBHOOK_SECRET") as caught:
        check_webhook_request(make_settings(webhook_secret=None), url="https://example.com/h")
    assert isinstance(caught.value, InvalidRequestError)  # the API's 422
    with pytest.raises(InvalidSecretError, match="STORYBOARD_WEBHOOK_SECRET") as bad:
        check_webhook_request(make_settings(webhook_secret="whsec_###"), url="https://e.com/")
    assert isinstance(bad.value, ConfigurationError)  # the server's fault: the API's 503
    with pytest.raises(WebhookURLError, match="http:// or https://"):
        check_webhook_request(make_settings(), url="ftp://example.com/h")
    with pytest.raises(AddressRefusedError):
        check_webhook_request(make_settings(webhook_allow_private=False),
                              url="http://10.0.0.1/h")
    check_webhook_request(make_settings(), url="http://127.0.0.1:8000/h")


# -- the retry policy ----------------------------------------------------------------------------

def test_the_default_schedule_retries_for_about_three_hours() -> None:
    elapsed, attempts, waits = 0.0, 0, []
    while True:
        attempts += 1
        if DEFAULT_POLICY.gives_up(attempts, elapsed):
            break
        waits.append(DEFAULT_POLICY.delay(attempts))
        elapsed += waits[-1]
    assert waits == [5, 30, 120, 300, 600, 1200, 1800, 3600, 3600]
    assert attempts == 10
    assert elapsed == 11255  # the 10th and last attempt, 3 h 7 min 35 s after the first
    # Never before an hour, however many attempts were made.
    assert not DEFAULT_POLICY.gives_up(50, 3599)


# -- delivery ------------------------------------------------------------------------------------

def test_a_message_is_delivered_signed(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    with running_receiver(SECRET) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url, payload=PAYLOAD)
        assert run(deliver(engine, settings)) == 1
        assert run(deliver(engine, settings)) == 0  # nothing is due any more
    [got] = receiver.deliveries
    assert got.verified, got.error
    assert got.msg_id == msg_id and msg_id.startswith("msg_")
    assert got.body == PAYLOAD.encode()
    assert got.headers["content-type"] == "application/json"
    row = message(engine, msg_id)
    assert row.delivered_at is not None and row.attempts == 1 and row.last_error is None
    assert row.claimed_by is None and row.gave_up_at is None


def test_failures_are_retried_with_backoff_and_the_same_webhook_id(
        database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    t0 = utcnow()
    with running_receiver(SECRET, fail_first=2) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                         payload=PAYLOAD, now=t0)
        assert run(deliver(engine, settings, now=t0)) == 1
        row = message(engine, msg_id)
        assert row.attempts == 1 and row.delivered_at is None
        assert row.next_attempt_at == t0 + timedelta(seconds=5)
        assert row.last_error is not None and "HTTP 500" in row.last_error
        assert run(deliver(engine, settings, now=t0 + timedelta(seconds=4))) == 0  # not yet
        assert run(deliver(engine, settings, now=t0 + timedelta(seconds=5))) == 1
        row = message(engine, msg_id)
        assert row.attempts == 2
        assert row.next_attempt_at == t0 + timedelta(seconds=5 + 30)
        assert run(deliver(engine, settings, now=t0 + timedelta(seconds=35))) == 1
    assert [d.answered for d in receiver.deliveries] == [500, 500, 204]
    assert {d.msg_id for d in receiver.deliveries} == {msg_id}
    assert all(d.verified for d in receiver.deliveries)
    assert len({d.body for d in receiver.deliveries}) == 1
    row = message(engine, msg_id)
    assert row.delivered_at is not None and row.attempts == 3


def test_a_message_is_given_up_only_after_enough_attempts_and_an_hour(
        database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    policy = RetryPolicy(delays=(1,), max_attempts=3, min_span=3600)
    t0 = utcnow()
    with running_receiver(SECRET, fail_first=100) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                         payload=PAYLOAD, now=t0)
        for seconds in (0, 1, 2, 3):  # 4 attempts in 3 s: past max_attempts, not an hour
            assert run(deliver(engine, settings, now=t0 + timedelta(seconds=seconds),
                               policy=policy)) == 1
        assert message(engine, msg_id).gave_up_at is None
        late = t0 + timedelta(seconds=3601)
        assert run(deliver(engine, settings, now=late, policy=policy)) == 1
        row = message(engine, msg_id)
        assert row.gave_up_at == late and row.attempts == 5 and row.delivered_at is None
        assert run(deliver(engine, settings, now=late + timedelta(days=1), policy=policy)) == 0
    assert len(receiver.deliveries) == 5


def test_retry_after_and_redirects(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    t0 = utcnow()
    with running_receiver(SECRET, fail_first=1, fail_status=429,
                          fail_headers={"retry-after": "120"}) as receiver:
        msg_id = enqueue(engine, job_id=7, event="scene", url=receiver.url, payload=PAYLOAD,
                         now=t0)
        run(deliver(engine, settings, now=t0))
        assert message(engine, msg_id).next_attempt_at == t0 + timedelta(seconds=120)
    with running_receiver(SECRET, fail_first=1, fail_status=308,
                          fail_headers={"location": "https://elsewhere.example/x?t=1"}) as rec:
        msg_id = enqueue(engine, job_id=7, event="scene", url=rec.url, payload=PAYLOAD, now=t0)
        run(deliver(engine, settings, now=t0))
        row = message(engine, msg_id)
        assert row.delivered_at is None and row.last_error is not None
        assert "redirects are not followed" in row.last_error
        assert "t=1" not in row.last_error
    assert len(rec.deliveries) == 1  # the redirect was not followed


def test_a_worker_killed_mid_delivery_is_delivered_by_another(database: str | None,
                                                              isolated_env: Path) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    with running_receiver(SECRET, hold_first=1) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                         payload=PAYLOAD)
        env = {**os.environ, "STORYBOARD_WEBHOOK_SECRET": SECRET,
               "STORYBOARD_WEBHOOK_ALLOW_PRIVATE": "1", "STORYBOARD_WEBHOOK_TIMEOUT": "60"}
        if database:
            env["DATABASE_URL"] = database
        code = (
            "import asyncio\n"
            "from storyboard.config import get_settings\n"
            "from storyboard.db import get_engine\n"
            "from storyboard.webhooks import deliver_due, webhook_client\n"
            "s = get_settings()\n"
            "async def main():\n"
            "    async with webhook_client(s) as client:\n"
            "        await deliver_due(get_engine(s), s, owner='doomed', client=client)\n"
            "asyncio.run(main())\n")
        doomed = subprocess.Popen([sys.executable, "-c", code], env=env)
        try:
            wait_until(lambda: len(receiver.deliveries) == 1 or doomed.poll() is not None)
            assert doomed.poll() is None, "the doomed worker ended before delivering"
        finally:
            doomed.kill()  # SIGKILL mid-delivery: nothing is recorded
            doomed.wait()
        row = message(engine, msg_id)
        assert row.claimed_by == "doomed" and row.delivered_at is None
        assert row.claimed_until is not None
        # Its claim is live: nobody else takes the message yet.
        assert run(deliver(engine, settings, owner="survivor")) == 0
        lapsed = row.claimed_until + timedelta(seconds=1)
        assert run(deliver(engine, settings, owner="survivor", now=lapsed)) == 1
    assert [d.msg_id for d in receiver.deliveries] == [msg_id, msg_id]
    assert [d.answered for d in receiver.deliveries] == [0, 204]
    row = message(engine, msg_id)
    assert row.delivered_at is not None and row.attempts == 2  # the killed attempt counts


def test_a_lapsed_claim_is_taken_over(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    t0 = utcnow()
    with running_receiver(SECRET) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                         payload=PAYLOAD, now=t0)
        lease = claim_lease(settings)
        [claimed] = claim_due(engine, owner="died", now=t0, limit=10, lease_seconds=lease)
        assert claimed.id == msg_id and claimed.attempts == 1
        assert claim_due(engine, owner="other", now=t0, limit=10, lease_seconds=lease) == []
        assert run(deliver(engine, settings, now=t0 + timedelta(seconds=lease - 1))) == 0
        assert run(deliver(engine, settings, now=t0 + timedelta(seconds=lease + 1))) == 1
    assert [d.msg_id for d in receiver.accepted] == [msg_id]


def test_concurrent_deliverers_send_each_message_once(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    with running_receiver(SECRET) as receiver:
        ids = {enqueue(engine, job_id=i, event="scene", url=receiver.url, payload=PAYLOAD)
               for i in range(24)}

        async def main() -> None:
            async with webhook_client(settings) as client:
                while True:
                    done = await asyncio.gather(*(
                        deliver_due(engine, settings, owner=f"worker-{n}", client=client,
                                    limit=5)
                        for n in range(3)))
                    if sum(done) == 0:
                        return

        run(main())
    assert sorted(d.msg_id for d in receiver.deliveries) == sorted(ids)


def test_refused_addresses_are_given_up_at_once(database: str | None) -> None:
    settings = make_settings(database, webhook_allow_private=False)
    engine = get_engine(settings)
    with running_receiver(SECRET) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        urls = {
            "literal": receiver.url,
            "name": f"http://hooks.example:{port}/hook",  # resolves to loopback (below)
        }
        ids = {kind: enqueue(engine, job_id=7, event="completed", url=url, payload=PAYLOAD)
               for kind, url in urls.items()}
        run(deliver(engine, settings, resolve=static_resolver("127.0.0.1")))
    assert receiver.deliveries == []
    for msg_id in ids.values():
        row = message(engine, msg_id)
        assert row.gave_up_at is not None and row.attempts == 1
        assert row.last_error is not None and "loopback" in row.last_error
    assert "hooks.example resolves to 127.0.0.1" in (message(engine, ids["name"]).last_error or "")


def test_the_checked_address_is_the_one_connected_to() -> None:
    """DNS rebinding: a name that answers a public address to the check and loopback to the
    connect is refused at the connect; and the client connects where its resolver said."""
    engine = get_engine(make_settings())
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> Sequence[str]:
        calls.append(host)
        return ["93.184.216.34"] if len(calls) == 1 else ["127.0.0.1"]

    with running_receiver(SECRET) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        url = f"http://rebind.example:{port}/hook"
        msg_id = enqueue(engine, job_id=7, event="completed", url=url, payload=PAYLOAD)
        settings = make_settings(webhook_allow_private=False)

        async def main() -> None:
            async with webhook_client(settings, resolve=rebinding) as client:
                await deliver_due(engine, settings, owner="w", client=client, resolve=rebinding)

        run(main())
        assert receiver.deliveries == []
        row = message(engine, msg_id)
        assert row.gave_up_at is not None and "rebind.example resolves to 127.0.0.1" in (
            row.last_error or "")
        assert calls == ["rebind.example", "rebind.example"]

        # Allowed private: the client connects to the address its resolver gave for the name,
        # and the receiver sees the name in Host.
        settings = make_settings()
        msg_id = enqueue(engine, job_id=8, event="completed", url=url, payload=PAYLOAD)
        run(deliver(engine, settings, resolve=static_resolver("127.0.0.1")))
    [got] = receiver.deliveries
    assert got.msg_id == msg_id and got.verified
    assert got.headers["host"] == f"rebind.example:{port}"


def test_a_hung_receiver_times_out_and_is_retried(database: str | None) -> None:
    settings = make_settings(database, webhook_timeout=0.3)
    engine = get_engine(settings)
    t0 = utcnow()
    with running_receiver(SECRET, hold_first=1) as receiver:
        msg_id = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                         payload=PAYLOAD, now=t0)
        run(deliver(engine, settings, now=t0))
        row = message(engine, msg_id)
        assert row.last_error == "no answer within 0.3s" and row.delivered_at is None
        receiver.release.set()
        run(deliver(engine, settings, now=row.next_attempt_at))
    assert message(engine, msg_id).delivered_at is not None


def test_without_a_secret_nothing_is_claimed() -> None:
    settings = make_settings(webhook_secret=None)
    engine = get_engine(settings)
    msg_id = enqueue(engine, job_id=7, event="completed", url="http://127.0.0.1:9/h",
                     payload=PAYLOAD)
    with pytest.raises(ConfigurationError, match="STORYBOARD_WEBHOOK_SECRET is not set"):
        run(deliver(engine, settings))
    row = message(engine, msg_id)
    assert row.attempts == 0 and row.claimed_by is None  # waits for a worker that can sign


def test_the_secret_stays_out_of_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings()
    engine = get_engine(settings)
    key_b64 = SECRET.removeprefix("whsec_")
    with running_receiver(SECRET, fail_first=1) as receiver:
        failing = enqueue(engine, job_id=7, event="completed", url=receiver.url,
                          payload=PAYLOAD)
        refused = enqueue(engine, job_id=7, event="completed", url="http://10.0.0.1/hook",
                          payload=PAYLOAD)
        run(deliver(engine, make_settings(webhook_allow_private=False),
                    resolve=static_resolver("127.0.0.1")))
        run(deliver(engine, settings, now=utcnow() + timedelta(minutes=1)))
    assert receiver.accepted == []  # the loopback one was refused; then 10.0.0.1 was given up
    errors = [message(engine, failing).last_error, message(engine, refused).last_error]
    broken = f"whsec_{key_b64[:-4]}!!!!"
    with pytest.raises(InvalidSecretError) as caught:
        run(deliver(engine, make_settings(webhook_secret=broken)))
    logging.getLogger("test").error("error: %s", caught.value)
    assert caplog.records, "nothing was logged"
    for text in (caplog.text, *map(str, errors), str(caught.value)):
        assert key_b64 not in text and key_b64[:12] not in text
        assert "!!!!" not in text


# -- the deliverer loop ----------------------------------------------------------------------------

def test_the_deliverer_delivers_until_stopped_and_outlives_database_errors(
        database: str | None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(database, webhook_poll_interval=0.02)
    engine = get_engine(settings)
    real_claim = outbox_module.claim_due
    failures = {"left": 2}

    def flaky_claim(*args: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("SELECT", {}, Exception("database restarting"))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox_module, "claim_due", flaky_claim)
    with running_receiver(SECRET) as receiver:
        first = enqueue(engine, job_id=1, event="start", url=receiver.url, payload=PAYLOAD)

        async def main() -> None:
            stop = asyncio.Event()
            deliverer = WebhookDeliverer(engine, settings)
            task = asyncio.create_task(deliverer.run(stop))
            while not receiver.accepted:
                await asyncio.sleep(0.02)
            second = await asyncio.to_thread(enqueue, engine, job_id=1, event="completed",
                                             url=receiver.url, payload=PAYLOAD)
            deliverer.wake()
            while len(receiver.accepted) < 2:
                await asyncio.sleep(0.02)
            assert [d.msg_id for d in receiver.accepted] == [first, second]
            stop.set()
            await task

        run(main())
    assert failures["left"] == 0
    assert "cannot read the outbox" in caplog.text


def test_a_deliverer_without_a_secret_speaks_only_when_messages_wait(
        caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(webhook_secret=None)
    engine = get_engine(settings)

    async def run_briefly() -> None:
        stop = asyncio.Event()
        deliverer = WebhookDeliverer(engine, settings)
        task = asyncio.create_task(deliverer.run(stop))
        await asyncio.sleep(0.3)
        assert not task.done()  # it keeps looking for a worker-side fix
        stop.set()
        await task

    run(run_briefly())
    assert "not delivered" not in caplog.text  # no webhooks here: nothing to say
    msg_id = enqueue(engine, job_id=7, event="completed", url="https://example.com/h",
                     payload=PAYLOAD)
    assert pending_count(engine) == 1
    run(run_briefly())
    said = [r for r in caplog.records if "not delivered by this worker" in r.getMessage()]
    assert len(said) == 1 and "STORYBOARD_WEBHOOK_SECRET" in said[0].getMessage()
    assert message(engine, msg_id).attempts == 0


def test_the_deliverer_thread_is_woken_after_an_enqueue() -> None:
    settings = make_settings(webhook_poll_interval=30)  # only a wake makes it look again
    engine = get_engine(settings)
    with running_receiver(SECRET) as receiver:
        thread = DelivererThread(settings, engine=engine)
        thread.start()
        try:
            assert thread.deliverer is not None
            wait_until(lambda: thread.deliverer is not None and thread.deliverer.passes >= 1)
            msg_id = enqueue(engine, job_id=3, event="completed", url=receiver.url,
                             payload=PAYLOAD)
            wake_deliverers()
            wait_until(lambda: len(receiver.accepted) == 1)
        finally:
            thread.stop(timeout=10)
    assert receiver.accepted[0].msg_id == msg_id


# -- job events --------------------------------------------------------------------------------------

def test_webhook_targets_follow_the_request() -> None:
    url = "https://example.com/hook"
    assert webhook_target({"webhook_url": url}, "completed") == url
    assert webhook_target({"webhook_url": url}, "start") is None  # default: completed only
    asked = {"webhook_url": url, "webhook_events": ["start", "scene"]}
    assert webhook_target(asked, "scene") == url
    assert webhook_target(asked, "completed") is None
    assert webhook_target({"webhook_url": url, "webhook_events": []}, "completed") is None
    assert webhook_target({}, "completed") is None and webhook_target(None, "start") is None
    assert event_hooks({}, job_id=1, event="completed") == []
    assert len(event_hooks(asked, job_id=1, event="scene")) == 1
    with pytest.raises(ValueError, match="unknown webhook event"):
        webhook_target(asked, "logs")


def test_job_events_are_written_with_the_job_state(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    url = "https://hooks.example.com/storyboard"
    job_id = create_job(engine, prompt="A lighthouse keeper finds a message in a bottle",
                        parameters={"webhook_url": url, "webhook_events": ["start", "completed"]})
    quiet = create_job(engine, prompt="No webhook here", parameters={})

    with engine.begin() as conn:
        conn.execute(update_statement(job_id, values={"status": "parsing"}))
        start = enqueue_job_event(conn, job_id=job_id, event="start", once=True)
        assert enqueue_job_event(conn, job_id=job_id, event="scene") is None  # not asked for
        assert enqueue_job_event(conn, job_id=quiet, event="start") is None
    with engine.begin() as conn:  # a resumed run moves the job again: no second start
        conn.execute(update_statement(job_id, values={"status": "parsing"}))
        assert enqueue_job_event(conn, job_id=job_id, event="start", once=True) is None
    assert start is not None
    row = message(engine, start)
    assert row.url == url and row.event == "start" and row.job_id == job_id
    body = JobResponse.model_validate_json(row.payload)
    assert body.job_id == job_id and body.status == "parsing"  # the state committed with it

    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(update_statement(job_id, values={"status": "storyboard_ready"}))
        assert enqueue_job_event(conn, job_id=job_id, event="completed") is not None
        raise RuntimeError("the job's write failed")
    with engine.connect() as conn:  # rolled back with the state: no event for it
        events = conn.execute(select(WebhookMessage.event)
                              .where(WebhookMessage.job_id == job_id)).scalars().all()
    assert events == ["start"]

    with engine.begin() as conn:
        conn.execute(update_statement(job_id, values={"status": "failed",
                                                      "error_message": "All scenes failed"}))
        [hook] = event_hooks({"webhook_url": url, "webhook_events": ["completed"]},
                             job_id=job_id, event="completed")
        done = hook(conn)
    assert done is not None
    final = JobResponse.model_validate_json(message(engine, done).payload)
    assert final.status == "failed" and final.error_message == "All scenes failed"


def test_a_job_event_reaches_a_receiver(database: str | None) -> None:
    settings = make_settings(database)
    engine = get_engine(settings)
    with running_receiver(SECRET) as receiver:
        job_id = create_job(engine, prompt="A storm over the harbour",
                            parameters={"webhook_url": receiver.url})
        with engine.begin() as conn:
            conn.execute(update_statement(job_id, values={"status": "storyboard_ready"}))
            msg_id = enqueue_job_event(conn, job_id=job_id, event="completed")
        run(deliver(engine, settings))
    [got] = receiver.accepted
    assert got.msg_id == msg_id and got.verified
    response = JobResponse.model_validate(got.json())
    assert response.job_id == job_id and response.status == "storyboard_ready"
    assert base64.b64decode(got.headers["webhook-signature"].split(",", 1)[1])
