"""A run's side of the prediction ledger: what it owes the database, written with its next write.

``RunLedger`` turns what a run learns into ledger statements (``db/ledger.py``): a prediction
created or adopted (written with the checkpoint that records its id, before anything waits on
it), an image made (billed, written with the scene's own save), a create whose answer was lost,
the language model's calls of the planning stage. At the end of a run (finished, failed or
stopped) ``settle`` asks the provider how every prediction still open ended, so what the
provider bills is what the job says it spent; a create that could not be found again stays a
possible charge (``lost``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Executable

from ..db import ledger
from ..planning import LLMPlanner, Usage
from ..schemas import StoryboardEntry

if TYPE_CHECKING:
    from .runtime import JobRuntime

__all__ = ["RunLedger"]

log = logging.getLogger("storyboard.jobs")


class _SceneReport:
    """What the provider tells of one scene's lost creates (``images.PredictionReport``)."""

    def __init__(self, books: RunLedger, entry: StoryboardEntry) -> None:
        self.books, self.entry = books, entry

    def unanswered(self) -> None:
        books, scene = self.books, self.entry.scene.scene_number
        if scene in books.reserved:  # the reservation's row stays, as the unanswered create
            books.reserved.discard(scene)
            books.pending.append(ledger.reservations_unanswered(
                job_id=books.job_id, provider=books.provider, scene_number=scene))
            return
        books.pending.append(books.row(self.entry, None, "unanswered"))

    def found(self, prediction_id: str, status: str) -> None:
        scene = self.entry.scene.scene_number
        self.books.pending += [
            ledger.adopt_unanswered(job_id=self.books.job_id, scene_number=scene,
                                    provider=self.books.provider, prediction_id=prediction_id),
            self.books.row(self.entry, prediction_id, "starting"),
        ]
        if status in ledger.FINAL:
            self.books.settled(prediction_id, status)

    def not_found(self, *, complete: bool) -> None:
        scene = self.entry.scene.scene_number
        if complete:  # the lost create never reached the provider: nothing to pay
            self.books.pending.append(ledger.resolve_unanswered(
                job_id=self.books.job_id, scene_number=scene, provider=self.books.provider,
                status="not_created", possible=0.0))
            return
        # It may exist (and be billed): a possible charge, whether this run saw the create
        # go unanswered (its row) or an earlier run died during it (a row of its own).
        self.books.pending += [
            ledger.record_lost(self.books.dialect, job_id=self.books.job_id,
                               scene_number=scene, version=len(self.entry.versions) + 1,
                               provider=self.books.provider, model=self.books.model,
                               possible=self.books.price),
            ledger.resolve_unanswered(job_id=self.books.job_id, scene_number=scene,
                                      provider=self.books.provider, status="lost",
                                      possible=self.books.price),
        ]


class RunLedger:
    """Ledger statements of one run of one job, waiting for the run's next write."""

    def __init__(self, rt: JobRuntime, job_id: int) -> None:
        self.rt, self.job_id = rt, job_id
        self.dialect = rt.engine.dialect.name
        self.provider: str = rt.provider.name
        self.model: str | None = getattr(rt.provider, "model", None)
        self.price: float = rt.provider.price_per_image
        self.pending: list[Executable] = []
        # Scenes whose current attempt reserved the daily budget's share (a ``reserved`` row
        # its prediction takes over, or that is released if no create went out).
        self.reserved: set[int] = set()
        # Reservations an earlier run of the job left (it died between reserving and learning
        # of its create): unanswered creates, to be looked for and settled like any other.
        self.pending.append(ledger.reservations_unanswered(job_id=job_id,
                                                           provider=self.provider))

    def also(self, statement: Executable) -> None:
        """A statement to write with the run's next write (a scene's cache entry)."""
        self.pending.append(statement)

    def take(self) -> list[Executable]:
        """The statements owed so far (for the write about to be made)."""
        owed, self.pending = self.pending, []
        return owed

    def row(self, entry: StoryboardEntry, prediction_id: str | None, status: str) -> Any:
        return ledger.record(
            self.dialect, job_id=self.job_id, kind="image", provider=self.provider,
            model=self.model, prediction_id=prediction_id, status=status,
            scene_number=entry.scene.scene_number, version=len(entry.versions) + 1,
            possible=self.price)

    def report_for(self, entry: StoryboardEntry) -> _SceneReport:
        return _SceneReport(self, entry)

    def created(self, entry: StoryboardEntry, prediction_id: str) -> None:
        """A prediction for ``entry`` exists (made, resumed or found): it may be billed."""
        scene = entry.scene.scene_number
        if scene in self.reserved:
            self.reserved.discard(scene)
            self.pending.append(ledger.adopt_unanswered(
                job_id=self.job_id, scene_number=scene, provider=self.provider,
                prediction_id=prediction_id, statuses=("reserved",)))
        self.pending.append(self.row(entry, prediction_id, "starting"))

    def attempt_ended(self, entry: StoryboardEntry) -> None:
        """An attempt is over: a reservation no create took (nothing was sent) is released."""
        scene = entry.scene.scene_number
        if scene in self.reserved:
            self.reserved.discard(scene)
            self.pending.append(ledger.resolve_unanswered(
                job_id=self.job_id, scene_number=scene, provider=self.provider,
                status="not_created", possible=0.0, was="reserved"))

    def settled(self, prediction_id: str, status: str, billed: float = 0.0) -> None:
        """How a prediction ended and what it was billed."""
        self.pending.append(ledger.settle(provider=self.provider, prediction_id=prediction_id,
                                          status=status, billed=billed))

    def planned(self, usage: Usage, planner: LLMPlanner | None) -> None:
        """The language model's calls of the planning stage, each billed for its tokens (a
        fallback's too: a bad answer costs what a good one does)."""
        if planner is None:
            return
        for call in usage.calls:
            billed = planner.cost(Usage(input_tokens=call.input_tokens,
                                        output_tokens=call.output_tokens))
            self.pending.append(ledger.record(
                self.dialect, job_id=self.job_id, kind="plan", provider=planner.kind,
                model=planner.model, prediction_id=call.id, status="succeeded",
                billed=billed))
            if call.id is not None:  # recorded when created: settle that row
                self.pending.append(ledger.settle(provider=planner.kind,
                                                  prediction_id=call.id, status="succeeded",
                                                  billed=billed))

    def plan_created(self, planner: LLMPlanner, prediction_id: str) -> Executable:
        """A language model's prediction, recorded before anything waits on it."""
        return ledger.record(self.dialect, job_id=self.job_id, kind="plan",
                             provider=planner.kind, model=planner.model,
                             prediction_id=prediction_id, status="starting")

    async def settle(self) -> None:
        """Ask the provider how the job's open predictions ended (its own and any an earlier
        run left); creates never found again become possible charges (``lost``)."""
        outcome = getattr(self.rt.provider, "prediction_outcome", None)
        rows = ledger.running_predictions(self.rt.engine, self.job_id)
        for row in rows:
            if outcome is None or row.provider != self.provider or row.prediction_id is None:
                continue
            ended = await outcome(row.prediction_id)
            if ended is not None:
                self.settled(row.prediction_id, *ended)
        self.pending.append(ledger.resolve_unanswered(
            job_id=self.job_id, scene_number=None, provider=self.provider, status="lost",
            possible=self.price))
