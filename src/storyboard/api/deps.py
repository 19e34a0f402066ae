"""FastAPI dependencies: the settings and engine the app was built with."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import BeforeValidator
from sqlalchemy import Engine

from ..config import Settings

__all__ = ["EngineDep", "JobId", "PlainNumber", "SettingsDep", "plain_number"]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]
EngineDep = Annotated[Engine, Depends(_engine)]

def plain_number(value: object) -> object:
    """A number in a URL is its digits only: "+1", " 1", "1_000" or "01" name no job (the
    usual int parsing would read them all as numbers)."""
    if isinstance(value, str) and not re.fullmatch(r"[1-9][0-9]*", value):
        raise ValueError("must be a whole number written in digits, like 12")
    return value


PlainNumber = BeforeValidator(plain_number)

# Bounded so no id can overflow the id column (a 32-bit integer on PostgreSQL).
JobId = Annotated[int, PlainNumber, Path(ge=1, le=2**31 - 1, description="The job's id")]
