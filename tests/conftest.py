"""Shared fixtures: an isolated DATA folder per test, fast retry settings, injected providers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storyboard.config import Settings, get_settings
from storyboard.db import dispose_engines

_ENV_TO_CLEAR = (
    "REPLICATE_API_KEY", "REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "DATABASE_URL",
    "STORYBOARD_IMAGE_PROVIDER", "STORYBOARD_BROKER_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "STORYBOARD_LLM_API_KEY", "STORYBOARD_LLM_BASE_URL", "STORYBOARD_LLM_MODEL",
    "STORYBOARD_PLANNER", "STORYBOARD_WEBHOOK_SECRET", "STORYBOARD_WEBHOOK_ALLOW_PRIVATE",
    "STORYBOARD_DAILY_BUDGET", "STORYBOARD_MAX_JOB_COST", "STORYBOARD_IMAGE_CACHE",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own DATA folder and fast retries; no real keys leak in."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "DATA"
    monkeypatch.setenv("DATA", str(data))
    monkeypatch.setenv("STORYBOARD_RETRY_BASE_DELAY", "0.001")
    monkeypatch.setenv("STORYBOARD_STATUS_POLL_INTERVAL", "0.02")
    # With a Replicate key set, "auto" would plan every job with a language model on the fake
    # Replicate; tests of the images count their predictions. The planning tests choose.
    monkeypatch.setenv("STORYBOARD_PLANNER", "rules")
    yield data
    dispose_engines()


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return get_settings()
