"""The ``storyboard`` command: generate, serve, worker, export, costs, tokens, db upgrade.

Each command lives in the module named after what it does; this module only puts them
together under one Typer app.
"""

from __future__ import annotations

import typer

from . import admin, export, generate, serving

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Turn a video prompt into a storyboard of scenes and images.")
app.command()(generate.generate)
app.command()(serving.serve)
app.command()(serving.worker)
app.command()(export.export)
app.command()(admin.costs)

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: who may use this server.")
tokens_app.command("create")(admin.tokens_create)
tokens_app.command("list")(admin.tokens_list)
tokens_app.command("revoke")(admin.tokens_revoke)
app.add_typer(tokens_app, name="tokens")

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
db_app.command("upgrade")(admin.db_upgrade)
app.add_typer(db_app, name="db")


def main() -> None:
    app()
