"""``storyboard generate``: a job made and run in this process, its progress shown live, then
the board as a table, who planned it, and the contact sheet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import eventloop
from ..config import Settings
from ..contact_sheet import write_contact_sheet
from ..db import FINAL_STATUSES, get_engine, get_job_row
from ..db.models import GeneratedVideo, utcnow
from ..errors import InvalidRequestError, JobStateError, StoryboardError
from ..images import provider_name
from ..jobs import JobRuntime, create_storyboard_job, run_storyboard_job
from ..jobs.budget import usd
from ..jobs.plans import load_plan
from ..jobs.review import cancel_job
from ..plan import Plan, cast_names
from ..planning import LLM_SETTINGS_HINT, llm_kind
from ..scenes import beat_label
from ..schemas import GenerationRequest, JobStatus, StoryboardEntry, VideoProgress
from ..shots import shot_line
from ..storage import path_for_url
from .common import fail, load_settings, out, setup_logging, validation_message

__all__ = ["generate"]


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
    setup_logging(verbose)
    try:
        request = GenerationRequest(prompt=prompt, duration=duration, style=style,
                                    aspect_ratio=aspect_ratio, seed=seed,  # type: ignore[arg-type]
                                    planner=planner,  # type: ignore[arg-type]
                                    max_cost=max_cost, cache=cache)
    except ValidationError as exc:
        raise fail(validation_message(exc), 2) from exc
    settings = load_settings()
    if request.planner == "llm" and llm_kind(settings) is None:
        raise fail(f"planner: 'llm' cannot be used: {LLM_SETTINGS_HINT}", 2)
    try:
        job_id, status, interrupted = eventloop.run(_run_with_progress(request, settings))
    except InvalidRequestError as exc:  # over the job's budget: a usage error, like the above
        raise fail(str(exc), 2) from exc
    except StoryboardError as exc:
        raise fail(str(exc)) from exc
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
        raise fail(f"interrupted: job {job_id} {status}", 130)
    if status != JobStatus.STORYBOARD_READY.value:
        raise fail(f"job {job_id} {status}: {row.error_message or 'no images'}")
    progress = VideoProgress.model_validate_json(row.progress or "{}")
    out.print(f"[green]{escape(progress.message)}[/] - cost {usd(row.actual_cost or 0)} "
              f"(estimated {usd(row.estimated_cost)})", highlight=False)


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
    return ", ".join(cast_names(ids, plan))


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
