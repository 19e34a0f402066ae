"""The local PostgreSQL, Redis and RabbitMQ: reachable, or skip (locally) / fail (CI=true)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
RABBITMQ = ("127.0.0.1", 5672)
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


def require(name: str, address: tuple[str, int]) -> None:
    """Skip the test when ``name`` does not answer locally; under CI=true, fail instead."""
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError as exc:
        message = f"{name} is not reachable on {address[0]}:{address[1]} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must provide it")
        pytest.skip(f"{message}; start it to run this test")


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; its SQLAlchemy URL. Dropped after."""
    require("PostgreSQL", POSTGRES)
    import psycopg

    name = f"storyboard_test_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 dbname=test"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://127.0.0.1:5432/{name}"
    finally:
        from storyboard.db import dispose_engines

        dispose_engines()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
