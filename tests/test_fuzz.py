"""Fuzz the API from its own OpenAPI schema (schemathesis): no input may reach a 500.

Schemathesis' pytest plugin does not load under pytest 9, so its Hypothesis strategies drive a
plain test: valid and invalid cases for every operation, over real HTTP.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from storyboard.access import create_token
from storyboard.api.app import create_app
from storyboard.config import get_settings
from storyboard.db import get_engine
from storyboard.jobs import save_generated_video

from .live_server import serve


@pytest.mark.parametrize("authenticated", [False, True], ids=["single-user", "tokens"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_reaches_a_server_error(monkeypatch: pytest.MonkeyPatch,
                                         mode: GenerationMode, authenticated: bool) -> None:
    """In single-user mode, and on a server with tokens (every case sent with a user's token,
    beside an admin's job and the user's own, so ids hit both)."""
    monkeypatch.setenv("STORYBOARD_EVENTS_INTERVAL", "0.01")
    failures: list[str] = []
    seen = 0
    headers: dict[str, str] = {}
    if authenticated:
        engine = get_engine(get_settings())
        save_generated_video("An admin's job", "", "v2", {"duration": 15}, "storyboard_ready",
                             owner="root")
        token, _ = create_token(engine, "fuzz")
        save_generated_video("The user's job", "", "v2", {"duration": 15}, "storyboard_ready",
                             owner="fuzz")
        headers = {"Authorization": f"Bearer {token}"}
    with serve(create_app(get_settings())) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=15 if authenticated else 25, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                nonlocal seen
                seen += 1
                response = case.call(base_url=base, timeout=30,
                                     headers={**(case.headers or {}), **headers})
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} "
                                    f"{case.body!r} -> {response.status_code} {response.text}")

            try:
                check()
            except Unsatisfiable:
                # An operation that takes no input (GET /api/v2/planning) has no invalid case.
                if mode is not GenerationMode.NEGATIVE or operation.path_parameters or \
                        operation.query or operation.body:
                    raise
    assert seen > 100
    assert failures == []
