"""The prediction ledger: recording every prediction a job makes, settling what it was billed.

A row is written for each prediction a job creates or adopts, before anything waits on it, and
settled once its outcome is known: ``billed_cost`` what the provider bills, ``possible_cost``
what it may bill though we cannot tell yet (a prediction still running, or a create whose
answer was lost and that could not be found again). Statements are built here and run by the
caller inside the job's own write (``JobWriter.update(..., ledger=...)``), together with
``cost_columns()``, so the job's ``actual_cost`` and ``possible_cost`` are always the sums
of its rows, committed in the same transaction as the rows themselves: right after any crash,
retry, regeneration or re-render, on every worker.

Statuses: a prediction's own (``starting``, ``processing``, ``succeeded``, ``failed``,
``canceled``, ``aborted``), ``reserved`` (the daily budget's share taken for a create about to
be sent), and three of ours for a create whose answer never came: ``unanswered`` (not looked
for yet), ``not_created`` (looked for in a complete listing, or never sent: it does not exist)
and ``lost`` (could not be looked for: it may exist and be billed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Engine,
    Insert,
    ScalarSelect,
    String,
    Text,
    Update,
    and_,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import BudgetDay, GeneratedVideo, Prediction, UTCDateTime, utcnow

__all__ = [
    "FINAL",
    "OPEN",
    "Spend",
    "adopt_unanswered",
    "cost_columns",
    "day_start",
    "job_costs",
    "job_ledger",
    "record",
    "record_lost",
    "reservations_unanswered",
    "reserve_daily",
    "resolve_unanswered",
    "running_predictions",
    "settle",
    "spend",
    "spent_since",
    "spent_today",
]

FINAL = ("succeeded", "failed", "canceled", "aborted", "not_created", "lost")
RUNNING = ("starting", "processing")
OPEN = (*RUNNING, "unanswered", "reserved")  # outcome not known yet


def record(dialect: str, *, job_id: int, kind: str, provider: str, model: str | None,
           prediction_id: str | None, status: str, scene_number: int | None = None,
           version: int | None = None, billed: float = 0.0, possible: float = 0.0,
           ) -> Insert:
    """Insert a row; a prediction already in the ledger (another run, another worker) is left
    as it is."""
    table = Prediction.__table__
    values: dict[str, Any] = {
        "job_id": job_id, "scene_number": scene_number, "version": version, "kind": kind,
        "provider": provider, "model": model, "prediction_id": prediction_id, "status": status,
        "billed_cost": billed, "possible_cost": possible, "created_at": utcnow(),
        "finished_at": utcnow() if status in FINAL else None,
    }
    if dialect == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing(
            index_elements=["provider", "prediction_id"])
    return sqlite.insert(table).values(**values).on_conflict_do_nothing(
        index_elements=["provider", "prediction_id"])


def record_lost(dialect: str, *, job_id: int, scene_number: int, version: int,
                provider: str, model: str | None, possible: float) -> Insert:
    """A possible charge for a scene's create that could not be looked for, unless the scene
    already has a row for it (an unanswered create this run saw; it is then marked lost)."""
    p = Prediction
    has_row = exists().where(p.job_id == job_id, p.scene_number == scene_number,
                             p.provider == provider, p.prediction_id.is_(None),
                             p.status == "unanswered")
    now = utcnow()
    values = select(
        literal(job_id), literal(scene_number), literal(version), literal("image"),
        literal(provider), literal(model, String), literal("lost"), literal(0.0),
        literal(possible), literal(now, UTCDateTime()), literal(now, UTCDateTime()),
    ).where(~has_row)
    columns = ["job_id", "scene_number", "version", "kind", "provider", "model", "status",
               "billed_cost", "possible_cost", "created_at", "finished_at"]
    del dialect  # the same statement in both databases
    return insert(p).from_select(columns, values)


def adopt_unanswered(*, job_id: int, scene_number: int, provider: str, prediction_id: str,
                     statuses: tuple[str, ...] = ("unanswered", "lost")) -> Update:
    """A create whose answer was lost was found again (or a reserved create was made): the
    scene's oldest such row becomes that prediction's (unless the prediction has a row of its
    own already)."""
    p = Prediction
    oldest = (select(func.min(p.id)).where(
        p.job_id == job_id, p.scene_number == scene_number, p.provider == provider,
        p.prediction_id.is_(None), p.status.in_(statuses)).scalar_subquery())
    taken = exists().where(p.provider == provider, p.prediction_id == prediction_id)
    return (update(p).where(p.id == oldest, ~taken)
            .values(prediction_id=prediction_id, status="starting", finished_at=None))


def resolve_unanswered(*, job_id: int, scene_number: int | None, provider: str, status: str,
                       possible: float, was: str = "unanswered") -> Update:
    """Close the open rows of creates whose answers were lost: ``not_created`` (no charge) or
    ``lost`` (a possible charge). (``was="reserved"``: a reservation's row, its create never
    sent, or sent and unanswered.)"""
    p = Prediction
    where = [p.job_id == job_id, p.provider == provider, p.prediction_id.is_(None),
             p.status == was]
    if scene_number is not None:
        where.append(p.scene_number == scene_number)
    return update(p).where(and_(*where)).values(status=status, possible_cost=possible,
                                                finished_at=utcnow())


def reservations_unanswered(*, job_id: int, provider: str,
                            scene_number: int | None = None) -> Update:
    """Reservations whose create may have gone out without its answer (the attempt's create
    went unanswered, or the run that made them died): from now on unanswered creates, looked
    for like any other."""
    p = Prediction
    where = [p.job_id == job_id, p.provider == provider, p.status == "reserved"]
    if scene_number is not None:
        where.append(p.scene_number == scene_number)
    return update(p).where(and_(*where)).values(status="unanswered")


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of ``moment``'s day: when the daily budget starts again."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def spent_since(conn: Any, since: datetime) -> float:
    """Billed and possible charges of predictions made since ``since`` (the whole fleet)."""
    total = conn.execute(select(func.coalesce(
        func.sum(Prediction.billed_cost + Prediction.possible_cost), 0.0))
        .where(Prediction.created_at >= since)).scalar_one()
    return float(total)


def spent_today(engine: Engine) -> float:
    with engine.connect() as conn:
        return spent_since(conn, day_start(utcnow()))


def reserve_daily(engine: Engine, *, budget: float, price: float, job_id: int,
                  scene_number: int, version: int, provider: str, model: str | None) -> bool:
    """Take ``price`` of today's fleet-wide budget for one create: a ``reserved`` row in the
    ledger (a possible charge until the prediction is made), written in the same transaction
    that checked the day's spend, with the day's row locked, so two workers cannot both take
    the last of it. False (and nothing written) when the day's spend would pass the budget."""
    now = utcnow()
    day = day_start(now)
    key = day.strftime("%Y-%m-%d")
    table = BudgetDay.__table__
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    with engine.begin() as conn:
        conn.execute(dialect.insert(table).values(day=key, touched_at=now)
                     .on_conflict_do_nothing(index_elements=["day"]))
        if engine.dialect.name == "postgresql":
            conn.execute(select(BudgetDay.day).where(BudgetDay.day == key).with_for_update())
        else:  # SQLite: this write takes the database's write lock until commit
            conn.execute(update(BudgetDay).where(BudgetDay.day == key).values(touched_at=now))
        if spent_since(conn, day) + price > budget + 1e-9:
            return False
        conn.execute(record(engine.dialect.name, job_id=job_id, kind="image", provider=provider,
                            model=model, prediction_id=None, status="reserved",
                            scene_number=scene_number, version=version, possible=price))
    return True


def settle(*, provider: str, prediction_id: str, status: str, billed: float,
           possible: float = 0.0) -> Update:
    """A prediction's outcome: its status and what it was (or may be) billed."""
    p = Prediction
    return (update(p).where(p.provider == provider, p.prediction_id == prediction_id)
            .values(status=status, billed_cost=billed, possible_cost=possible,
                    finished_at=utcnow() if status in FINAL else None))


def _sum(column: Any) -> ScalarSelect[Any]:
    """The sum of ``column`` over the ledger rows of the job row being updated."""
    return (select(func.coalesce(func.sum(column), 0.0))
            .where(Prediction.job_id == GeneratedVideo.id).scalar_subquery())


# Correlated with the UPDATE's own row, so built once: making and keying a new subquery for
# every write cost a scene more than a millisecond of CPU.
_BILLED = _sum(Prediction.billed_cost)
_POSSIBLE = _sum(Prediction.possible_cost)


def cost_columns(*, still_to_pay: float | None = None) -> dict[str, Any]:
    """A job row's cost columns as the sums of its ledger, for an UPDATE of that row (the
    sums follow the row updated); with ``still_to_pay``, ``estimated_cost`` too: what was
    billed so far and that much more."""
    columns: dict[str, Any] = {"actual_cost": _BILLED, "possible_cost": _POSSIBLE}
    if still_to_pay is not None:
        columns["estimated_cost"] = _BILLED + round(still_to_pay, 6)
    return columns


def job_costs(engine: Engine, job_id: int) -> tuple[float, float]:
    """(billed, possible) of the job, from its ledger."""
    with engine.connect() as conn:
        row = conn.execute(select(func.coalesce(func.sum(Prediction.billed_cost), 0.0),
                                  func.coalesce(func.sum(Prediction.possible_cost), 0.0))
                           .where(Prediction.job_id == job_id)).one()
    return float(row[0]), float(row[1])


def job_ledger(engine: Engine, job_id: int) -> list[Prediction]:
    """The job's rows, oldest first."""
    stmt = select(Prediction).where(Prediction.job_id == job_id).order_by(Prediction.id)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(stmt))


def running_predictions(engine: Engine, job_id: int) -> list[Prediction]:
    """The job's image predictions whose outcome is not known yet (to ask the provider)."""
    stmt = select(Prediction).where(Prediction.job_id == job_id, Prediction.kind == "image",
                                    Prediction.status.in_(RUNNING),
                                    Prediction.prediction_id.is_not(None))
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(stmt))


@dataclass(frozen=True)
class Spend:
    """Spend of one day or one job."""

    key: str  # the day (YYYY-MM-DD) or the job id
    predictions: int
    billed: float
    possible: float
    label: str = ""  # for a job: its prompt


def spend(engine: Engine, *, since: date | None = None) -> tuple[list[Spend], list[Spend]]:
    """Spend by day and by job (newest first), from the ledger, since ``since``."""
    p = Prediction
    where = [] if since is None else [p.created_at >= datetime(since.year, since.month,
                                                               since.day)]
    day = func.substr(cast(p.created_at, Text), 1, 10)  # YYYY-MM-DD in both databases
    totals = (func.count(p.id), func.coalesce(func.sum(p.billed_cost), 0.0),
              func.coalesce(func.sum(p.possible_cost), 0.0))
    with engine.connect() as conn:
        days = conn.execute(select(day, *totals).where(*where).group_by(day)
                            .order_by(day.desc())).all()
        jobs = conn.execute(
            select(p.job_id, *totals, GeneratedVideo.prompt)
            .join(GeneratedVideo, GeneratedVideo.id == p.job_id, isouter=True)
            .where(*where).group_by(p.job_id, GeneratedVideo.prompt)
            .order_by(p.job_id.desc())).all()
    return ([Spend(str(d), int(n), float(b), float(q)) for d, n, b, q in days],
            [Spend(str(j), int(n), float(b), float(q), prompt or "")
             for j, n, b, q, prompt in jobs])
