"""The ``storyboard`` command: generate, serve, worker, export, costs, db upgrade.

Errors become one line on stderr and a non-zero exit status here, nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import eventloop
from .config import Settings, get_settings
from .contact_sheet import write_contact_sheet
from .db import FINAL_STATUSES, get_engine, get_job_row
from .db.models import GeneratedVideo, utcnow
from .errors import InvalidRequestError, JobStateError, StoryboardError
from .images import make_provider, provider_name
from .jobs import JobRuntime, create_storyboard_job, run_storyboard_job
from .jobs.budget import usd
from .jobs.plans import load_plan
from .jobs.review import cancel_job
from .plan import Plan
from .planning import LLM_SETTINGS_HINT, Planners, llm_kind
from .scenes import beat_label
from .schemas import (
    GenerationRequest,
    JobStatus,
    StoryboardEntry,
    VideoProgress,
    plain_message,
)
from .shots import shot_line
from .storage import path_for_url

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Turn a video prompt into a storyboard of scenes and images.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: who may use this server.")
app.add_typer(tokens_app, name="tokens")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    # Escaped: a message may quote a setting or a provider's words, [brackets] and all.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "input"
        parts.append(f"{field}: {plain_message(error['msg'])}")
    return "; ".join(parts)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise _fail(f"invalid setting - {_validation_message(exc)}", 2) from exc


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema steps are printed by us
    # httpx logs every request's full URL at INFO: a webhook receiver's ?token= among them.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video is about.")],
    duration: Annotated[int, typer.Option(help="Video length in seconds (5-300).")] = 30,
    style: Annotated[str, typer.Option(help="Visual style for every image.")] = "cinematic",
    aspect_ratio: Annotated[
        str, typer.Option("--aspect-ratio", help="16:9, 9:16, 1:1 or 4:3.")
    ] = "16:9",
    seed: Annotated[Optional[int], typer.Option(help="Fix the images.")] = None,  # noqa: UP045
    planner: Annotated[str, typer.Option(
        help="Who plans the shots: auto (the server's setting), rules, or llm (the configured "
             "language model).")] = "auto",
    max_cost: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--max-cost", help="The most this job may spend, in USD (default: "
                           "STORYBOARD_MAX_JOB_COST).")] = None,
    cache: Annotated[bool, typer.Option(
        "--cache/--no-cache", help="Reuse an identical image already made, at no cost.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Create a storyboard job, run it here with live progress, and show the result."""
    _setup_logging(verbose)
    try:
        request = GenerationRequest(prompt=prompt, duration=duration, style=style,
                                    aspect_ratio=aspect_ratio, seed=seed,  # type: ignore[arg-type]
                                    planner=planner,  # type: ignore[arg-type]
                                    max_cost=max_cost, cache=cache)
    except ValidationError as exc:
        raise _fail(_validation_message(exc), 2) from exc
    settings = _settings()
    if request.planner == "llm" and llm_kind(settings) is None:
        raise _fail(f"planner: 'llm' cannot be used: {LLM_SETTINGS_HINT}", 2)
    try:
        job_id, status, interrupted = eventloop.run(_run_with_progress(request, settings))
    except InvalidRequestError as exc:  # over the job's budget: a usage error, like the above
        raise _fail(str(exc), 2) from exc
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    row = get_job_row(get_engine(settings), job_id)
    assert row is not None
    entries = [StoryboardEntry.model_validate(e) for e in json.loads(row.storyboard_data or "[]")]
    plan = load_plan(row)
    if entries:
        _print_storyboard(settings, entries, plan)
        if plan is not None:
            _print_planner(plan, settings)
        sheet = write_contact_sheet(settings.media_dir, job_id, request.prompt, entries)
        out.print(f"Images and contact sheet: [bold]{escape(str(sheet.parent))}[/]\n"
                  f"Open [bold]{escape(str(sheet))}[/] to review.", highlight=False)
    if interrupted:
        raise _fail(f"interrupted: job {job_id} {status}", 130)
    if status != JobStatus.STORYBOARD_READY.value:
        raise _fail(f"job {job_id} {status}: {row.error_message or 'no images'}")
    progress = VideoProgress.model_validate_json(row.progress or "{}")
    out.print(f"[green]{escape(progress.message)}[/] - cost {usd(row.actual_cost or 0)} "
              f"(estimated {usd(row.estimated_cost)})", highlight=False)


def _check_provider(settings: Settings) -> None:
    """Build the image provider and the planners once, so a setting that cannot work stops
    the command now, saying what to fix, instead of a worker thread later (with jobs left
    waiting)."""

    async def build_and_close() -> None:
        await make_provider(settings).aclose()
        await Planners(settings).aclose()

    eventloop.run(build_and_close())


def len_hint(request: GenerationRequest) -> str:
    return escape(f"{request.duration}s {request.style} storyboard, {request.aspect_ratio}")


async def _run_with_progress(
    request: GenerationRequest, settings: Settings
) -> tuple[int, str | None, bool]:
    """Create the job and run it here, showing its progress: (job id, final status, whether
    Ctrl-C/SIGTERM cancelled it). The provider is built first, so a setting that cannot work
    fails before any job is written."""
    rt = JobRuntime.create(settings)
    try:
        job_id = create_storyboard_job(request, settings=settings)
        out.print(f"Job [bold]{job_id}[/]: {len_hint(request)} with "
                  f"[bold]{provider_name(settings)}[/] images", highlight=False)
        run = _LocalRun(job_id, rt)
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)
        for sig in signals:
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays default
                loop.add_signal_handler(sig, run.interrupt)
        try:
            status = await run.follow()
        finally:
            for sig in signals:
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)
        return job_id, status, run.interrupted
    finally:
        await rt.aclose()


class _LocalRun:
    """``generate``'s job, run in this process while its progress is shown."""

    def __init__(self, job_id: int, rt: JobRuntime) -> None:
        self.job_id, self.rt = job_id, rt
        self.interrupted = False
        self.task = asyncio.create_task(run_storyboard_job(job_id, rt))

    def interrupt(self) -> None:
        # The user gave up on this storyboard: cancel it (a final status, its predictions
        # cancelled) rather than leave it for a worker to finish, and pay for, later.
        if self.interrupted:
            self.task.cancel()  # a second Ctrl-C: stop waiting for the cancel to land
            return
        self.interrupted = True
        with contextlib.suppress(JobStateError):
            cancel_job(self.rt.engine, self.job_id)
        self.rt.nudge(self.job_id)

    async def follow(self) -> str | None:
        """Show the job's progress until it ends. When a worker on the same database took the
        job first, this run returns at once: the bar then follows the row, and the job is
        taken back here if that worker lets go of it (stopped, or died and its lease lapsed)."""
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[eta]}"), TimeElapsedColumn())
        with Progress(*columns, console=out, transient=False) as bar:
            shown = bar.add_task("Starting", total=None, eta="")
            while True:
                if self.task.done():
                    await asyncio.sleep(0.2)  # following another worker's run
                else:
                    await asyncio.wait({self.task}, timeout=0.2)
                if self.task.done() and not self.task.cancelled():
                    self.task.result()  # raises what the run raised
                row = get_job_row(self.rt.engine, self.job_id)
                if row is None or row.status in FINAL_STATUSES or self.task.cancelled():
                    return row.status if row is not None else None
                if self.task.done() and not self.interrupted and _lease_free(row):
                    self.task = asyncio.create_task(run_storyboard_job(self.job_id, self.rt))
                if not row.progress:
                    continue
                p = VideoProgress.model_validate_json(row.progress)
                eta = p.estimated_completion_seconds
                bar.update(shown, description=escape(p.message or p.current_stage),
                           total=p.scenes_total or None, completed=p.scenes_completed,
                           eta=f"ETA {eta:.0f}s" if eta else "")


def _lease_free(row: GeneratedVideo) -> bool:
    expires = row.lease_expires_at
    return row.lease_owner is None or expires is None or expires <= utcnow()


def _print_storyboard(settings: Settings, entries: list[StoryboardEntry],
                      plan: Plan | None = None) -> None:
    table = Table(title=plan.title if plan is not None and plan.title else "Storyboard",
                  show_lines=False)
    # Short columns never wrap (a file name split over two lines is hard to copy); the
    # description and any error take whatever width is left.
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("Beat", max_width=16)
    table.add_column("Shot", no_wrap=True)
    table.add_column("Length", no_wrap=True, justify="right")
    table.add_column("Image", no_wrap=True)
    table.add_column("Description", min_width=24, ratio=1)
    for e in entries:
        scene = e.scene
        path = path_for_url(settings.media_dir, e.image_url) if e.image_url else None
        # Text, not markup: a description or provider error may contain [brackets].
        image = Text(path.name) if path else Text(e.generation_status, style="red")
        text = Text(scene.description)
        names = _cast(scene.characters, plan)
        if names:
            text.append(f"\n{names}", style="dim")
        if scene.dialogue:
            text.append(f"\n\u201c{scene.dialogue}\u201d", style="italic")
        if e.error:
            text.append(f"\n{e.error}", style="red")
        shot = shot_line(scene.shot_size, scene.camera_angle, scene.camera_movement)
        table.add_row(str(scene.scene_number), Text(beat_label(scene, len(entries))),
                      Text(shot), f"{scene.duration:g}s", image, text)
    out.print(table)


def _cast(ids: list[str] | None, plan: Plan | None) -> str:
    names = []
    for character_id in ids or ():
        character = plan.character(character_id) if plan is not None else None
        names.append(character.name if character is not None else character_id)
    return ", ".join(names)


def _print_planner(plan: Plan, settings: Settings) -> None:
    """Who planned the shots (and why not the language model, when it fell back)."""
    info = plan.planner
    if info.kind == "rules" and info.fallback_reason:
        out.print(Text(f"Planned with the rules: the language model's plan could not be used "
                       f"({info.fallback_reason})", style="yellow"))
    elif info.kind == "rules":
        hint = "" if llm_kind(settings) is not None else (
            " - set OPENAI_API_KEY, STORYBOARD_LLM_BASE_URL (a local server) or "
            "REPLICATE_API_KEY to plan the story with a language model")
        out.print(Text(f"Planned with the rules{hint}", style="dim"))
    else:
        out.print(Text(f"Planned by {info.kind} ({info.model}): {info.input_tokens:,} + "
                       f"{info.output_tokens:,} tokens, {usd(info.cost)}", style="dim"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Listen beyond loopback with no tokens: anyone who can reach the "
                           "server can use it.")] = False,
) -> None:
    """Start the API (and the studio at /) on loopback unless told otherwise."""
    import uvicorn

    from .access import any_tokens
    from .api.app import create_app
    from .api.logs import redact_access_log

    _setup_logging(True)  # the jobs' own log lines (the spec's), beside uvicorn's
    settings = _settings()
    try:
        if not _loopback(host) and not insecure and not any_tokens(get_engine(settings)):
            raise _fail(
                f"refusing to listen on {host} with no API tokens: anyone who can reach it could "
                "read, approve and spend on every job. Create one first (storyboard tokens "
                "create NAME --admin), or pass --insecure to run open on purpose", 2)
        if not settings.broker_url:  # else the fleet's workers make the images
            _check_provider(settings)
        application = create_app(settings, embedded_worker=True)
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    out.print(f"Storyboard on http://{host}:{port}/  (API docs at /docs)", highlight=False)
    redact_access_log()
    uvicorn.run(application, host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (a name is resolved as uvicorn would)."""
    import ipaddress
    import socket

    if host == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                   for a in addresses)


@app.command()
def worker(
    threads: Annotated[int, typer.Option(help="Jobs at once (queue mode).", min=1)] = 16,
    verbose: Annotated[bool, typer.Option("--verbose/--quiet", "-v", help="Log steps.")] = True,
) -> None:
    """Run jobs until stopped (SIGTERM/Ctrl-C finish or hand back work).

    Without STORYBOARD_BROKER_URL it takes jobs from the database; with it, from the queue.
    """
    import signal
    import threading

    _setup_logging(verbose)
    settings = _settings()
    if settings.broker_url:
        from .jobs.queue import Queue, Redispatcher, redispatch_lost_jobs

        try:
            _check_provider(settings)
            get_engine(settings)  # schema up to date before any message is taken
            queue = Queue(settings)
        except StoryboardError as exc:
            raise _fail(str(exc)) from exc
        eventloop.install()  # Dramatiq's job loop, made by its middleware, runs on uvloop too
        consumer = queue.worker(threads)
        redispatcher = Redispatcher(queue)
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        consumer.start()
        redispatch_lost_jobs(queue)
        redispatcher.start()
        from .webhooks import DelivererThread

        hooks = DelivererThread(settings)  # this worker empties the webhook outbox too
        hooks.start()
        out.print(f"worker consuming queue {settings.queue_name!r}", highlight=False)
        stopping.wait()
        redispatcher.stop()
        # While Dramatiq stops taking messages and waits for its threads, running jobs get the
        # grace period; then they are handed back (lease released, message sent again).
        handing_back = threading.Thread(target=queue.hand_back, args=(settings.shutdown_grace,))
        handing_back.start()
        consumer.stop(timeout=int((settings.shutdown_grace + 30) * 1000))
        handing_back.join()
        queue.send_handed_back()
        hooks.stop(timeout=settings.webhook_timeout + 5)
        queue.close()
        return

    from .jobs.worker import Worker

    async def main() -> None:
        w = Worker(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, w.stop)
        await w.run()

    try:
        eventloop.run(main())
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc


@app.command()
def export(
    job_id: Annotated[int, typer.Argument(help="The job's id.", min=1)],
    kind: Annotated[str, typer.Option(
        "--format", "-f", help="pdf (the sheet), zip (images, JSON, shot list, animatic), "
                               "csv (the shot list) or mp4 (the animatic).")] = "pdf",
    destination: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", "-o", help="Where to write it (default: storyboard-<id>.<format> here).")
    ] = None,
) -> None:
    """Write a job's storyboard as a file: PDF sheet, ZIP, CSV shot list or MP4 animatic."""
    from .api.views import job_response
    from .db import require_job_row

    kinds = ("pdf", "zip", "csv", "mp4")
    if kind not in kinds:
        raise _fail(f"--format: {kind!r} is not one of {', '.join(kinds)}", 2)
    settings = _settings()
    try:
        job = job_response(require_job_row(get_engine(settings), job_id))
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    if not job.storyboard:
        raise _fail(f"job {job_id} has no storyboard yet ({job.status})")
    target = destination or Path(f"storyboard-{job_id}.{kind}")
    if kind == "mp4":
        from .renders import ensure_animatic

        with out.status(escape(f"Rendering the animatic of job {job_id}")):
            shutil.copyfile(ensure_animatic(job, settings.media_dir), target)
    else:
        from .exports import build_pdf, build_zip
        from .jobs.comments import list_comments
        from .shotlist import build_shot_list

        if kind == "pdf":  # with the reviewers' notes
            data: bytes | str = build_pdf(job, settings.media_dir,
                                          list_comments(get_engine(settings), job_id))
        else:
            data = {"zip": build_zip, "csv": build_shot_list}[kind](job, settings.media_dir)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    out.print(f"Wrote [bold]{escape(str(target))}[/] ({target.stat().st_size:,} bytes)",
              highlight=False)


@app.command()
def costs(
    since: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--since", help="Only spend on or after this day (YYYY-MM-DD, UTC).")] = None,
) -> None:
    """What was spent, from the prediction ledger: totals by day and by job."""
    from datetime import date

    from .db import ledger

    day = None
    if since is not None:
        try:
            day = date.fromisoformat(since)
        except ValueError as exc:
            raise _fail(f"--since: {since!r} is not a day like 2026-12-01", 2) from exc
    settings = _settings()
    try:
        days, jobs = ledger.spend(get_engine(settings), since=day)
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
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


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Whose token: the owner of the jobs made with it.")],
    admin: Annotated[bool, typer.Option("--admin", help="May see and act on every job.")] = False,
) -> None:
    """Make a token and print it once (only its hash is kept)."""
    from .access import create_token

    settings = _settings()
    try:
        token, info = create_token(get_engine(settings), name, admin=admin)
    except InvalidRequestError as exc:
        raise _fail(str(exc), 2) from exc
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    err.print(f"Token for [bold]{escape(info.name)}[/]{' (admin)' if info.admin else ''}; "
              "it is shown only now:", highlight=False)
    print(token)  # alone on stdout, for scripts
    err.print("Send it as 'Authorization: Bearer <token>'. The server now needs a token for "
              "every request.", highlight=False)


@tokens_app.command("list")
def tokens_list() -> None:
    """Every token made here: name, admin, made, last used, revoked."""
    from .access import list_tokens

    settings = _settings()
    try:
        tokens = list_tokens(get_engine(settings))
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    table = Table(title="API tokens")
    for column in ("Name", "Admin", "Created", "Last used", "Revoked"):
        table.add_column(column, no_wrap=True)
    for t in tokens:
        table.add_row(Text(t.name), "yes" if t.admin else "", f"{t.created_at:%Y-%m-%d %H:%M}",
                      f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "",
                      f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "")
    out.print(table if tokens else "No tokens: the server runs in single-user mode "
              "(loopback only).")


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="Whose token to revoke.")]) -> None:
    """Revoke NAME's token at once (its jobs stay NAME's)."""
    from .access import revoke_token

    settings = _settings()
    try:
        revoked = revoke_token(get_engine(settings), name)
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    if not revoked:
        raise _fail(f"{name!r} has no live token", 1)
    out.print(f"Revoked {escape(name)}'s token.", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema, or upgrade an existing generated_videos table in place."""
    from .db.engine import _create, ensure_schema_or_explain, shown_url

    settings = _settings()
    try:
        engine = _create(settings.resolved_database_url, settings)
        try:
            steps = ensure_schema_or_explain(engine)
        finally:
            engine.dispose()
    except StoryboardError as exc:
        raise _fail(str(exc)) from exc
    for step in steps:
        out.print(escape(step))
    out.print(f"Database at head: {escape(shown_url(settings.resolved_database_url))}"
              if not steps else "Done.", highlight=False)


def main() -> None:
    app()
