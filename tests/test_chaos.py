"""The chaos suite, short: about 8 SIGKILLs of `storyboard serve` (embedded, SQLite) and of
Dramatiq workers (PostgreSQL + RabbitMQ) while jobs run against the fake Replicate. Every job
ends ready, every completed scene has its own prediction's bytes on disk, the jobs' cost is
what the provider bills, at most one extra create per kill, no 5xx. ``make chaos`` runs the
long version (tests/chaos.py) and prints its figures."""

from __future__ import annotations

import pytest

from .chaos import run_chaos
from .services import POSTGRES, RABBITMQ, require

pytestmark = pytest.mark.timeout(300)


def test_serve_killed_at_random_loses_nothing_and_bills_right() -> None:
    figures = run_chaos("embedded", jobs=10, kills=8, seed=8)
    assert figures.problems() == [], figures.summary()
    assert figures.resumed >= 1, figures.summary()  # the kills did land mid-job


@pytest.mark.services
def test_dramatiq_workers_killed_at_random_lose_nothing_and_bill_right() -> None:
    require("PostgreSQL", POSTGRES)
    require("RabbitMQ", RABBITMQ)
    figures = run_chaos("dramatiq", jobs=10, kills=8, seed=8)
    assert figures.problems() == [], figures.summary()
    assert figures.resumed >= 1, figures.summary()
