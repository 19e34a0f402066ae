"""What every command shares: the consoles, one way to fail, settings and logging.

Errors become one line on stderr and a non-zero exit status here, nowhere else.
"""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from .. import eventloop
from ..config import Settings, get_settings
from ..images import make_provider
from ..planning import Planners
from ..schemas import plain_message

__all__ = ["check_provider", "err", "fail", "load_settings", "out", "setup_logging",
           "validation_message"]

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the command's one error line; raise what this returns."""
    # Escaped: a message may quote a setting or a provider's words, [brackets] and all.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "input"
        parts.append(f"{field}: {plain_message(error['msg'])}")
    return "; ".join(parts)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise fail(f"invalid setting - {validation_message(exc)}", 2) from exc


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema steps are printed by us
    # httpx logs every request's full URL at INFO: a webhook receiver's ?token= among them.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def check_provider(settings: Settings) -> None:
    """Build the image provider and the planners once, so a setting that cannot work stops
    the command now, saying what to fix, instead of a worker thread later (with jobs left
    waiting)."""

    async def build_and_close() -> None:
        await make_provider(settings).aclose()
        await Planners(settings).aclose()

    eventloop.run(build_and_close())
