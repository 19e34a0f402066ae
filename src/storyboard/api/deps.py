"""FastAPI dependencies: the settings and engine the app was built with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Engine

from ..config import Settings

__all__ = ["EngineDep", "JobId", "SettingsDep"]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]

# Bounded so no id can overflow the id column (a 32-bit integer on PostgreSQL).
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The job's id")]
