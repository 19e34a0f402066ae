"""The operator's commands: ``costs`` (the ledger's totals), ``tokens create | list |
revoke`` (who may use the server) and ``db upgrade``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..db import get_engine
from ..errors import InvalidRequestError, StoryboardError
from ..jobs.budget import usd
from .common import err, fail, load_settings, out

__all__ = ["costs", "db_upgrade", "tokens_create", "tokens_list", "tokens_revoke"]


def costs(
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--since", help="Only spend on or after this day (YYYY-MM-DD, UTC).")] = None,
) -> None:
    """What was spent, from the prediction ledger: totals by day and by job."""
    from datetime import date

    from ..db import ledger

    day = None
    if since is not None:
        try:
            day = date.fromisoformat(since)
        except ValueError as exc:
            raise fail(f"--since: {since!r} is not a day like 2026-12-01", 2) from exc
    settings = load_settings()
    try:
        days, jobs = ledger.spend(get_engine(settings), since=day)
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    if not days:
        out.print(f"No spend{f' since {day}' if day else ''}.", highlight=False)
        return
    by_day = Table(title="Spend by day (UTC)")
    for name, justify in (("Day", "left"), ("Predictions", "right"), ("Billed", "right"),
                          ("Possible", "right")):
        by_day.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in days:
        by_day.add_row(row.key, str(row.predictions), usd(row.billed),
                       usd(row.possible) if row.possible else "")
    by_job = Table(title="Spend by job")
    for name, justify in (("Job", "right"), ("Prompt", "left"), ("Predictions", "right"),
                          ("Billed", "right"), ("Possible", "right")):
        by_job.add_column(name, justify=justify, no_wrap=name != "Prompt",  # type: ignore[arg-type]
                          ratio=1 if name == "Prompt" else None)
    for row in jobs:
        by_job.add_row(row.key, Text(row.label[:80]), str(row.predictions), usd(row.billed),
                       usd(row.possible) if row.possible else "")
    out.print(by_day)
    out.print(by_job)
    billed, possible = sum(r.billed for r in days), sum(r.possible for r in days)
    out.print(f"Total billed {usd(billed)}"
              + (f", and up to {usd(possible)} more not known (lost answers)" if possible else ""),
              highlight=False)


def tokens_create(
    name: Annotated[str, typer.Argument(help="Whose token: the owner of the jobs made with it.")],
    admin: Annotated[bool, typer.Option("--admin", help="May see and act on every job.")] = False,
) -> None:
    """Make a token and print it once (only its hash is kept)."""
    from ..access import create_token

    settings = load_settings()
    try:
        token, info = create_token(get_engine(settings), name, admin=admin)
    except InvalidRequestError as exc:
        raise fail(str(exc), 2) from exc
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    err.print(f"Token for [bold]{escape(info.name)}[/]{' (admin)' if info.admin else ''}; "
              "it is shown only now:", highlight=False)
    print(token)  # alone on stdout, for scripts
    err.print("Send it as 'Authorization: Bearer <token>'. The server now needs a token for "
              "every request.", highlight=False)


def tokens_list() -> None:
    """Every token made here: name, admin, made, last used, revoked."""
    from ..access import list_tokens

    settings = load_settings()
    try:
        tokens = list_tokens(get_engine(settings))
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    table = Table(title="API tokens")
    for column in ("Name", "Admin", "Created", "Last used", "Revoked"):
        table.add_column(column, no_wrap=True)
    for t in tokens:
        table.add_row(Text(t.name), "yes" if t.admin else "", f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table if tokens else "No tokens: the server runs in single-user mode "
              "(loopback only).")


def tokens_revoke(name: Annotated[str, typer.Argument(help="Whose token to revoke.")]) -> None:
    """Revoke NAME's token at once (its jobs stay NAME's)."""
    from ..access import revoke_token

    settings = load_settings()
    try:
        revoked = revoke_token(get_engine(settings), name)
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    if not revoked:
        raise fail(f"{name!r} has no live token", 1)
    out.print(f"Revoked {escape(name)}'s token.", highlight=False)


def db_upgrade() -> None:
    """Create the schema, or upgrade an existing generated_videos table in place."""
    from ..db.engine import _create, ensure_schema_or_explain, shown_url

    settings = load_settings()
    try:
        engine = _create(settings.resolved_database_url, settings)
        try:
            steps = ensure_schema_or_explain(engine)
        finally:
            engine.dispose()
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
    for step in steps:
        out.print(escape(step))
    out.print(f"Database at head: {escape(shown_url(settings.resolved_database_url))}"
              if not steps else "Done.", highlight=False)
