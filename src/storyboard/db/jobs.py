"""Queries on ``generated_videos``: keyword-only functions, the engine first."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Update, func, select, update
from sqlalchemy.orm import Session

from ..errors import JobNotFoundError
from .models import GeneratedVideo, utcnow

__all__ = [
    "FINAL_STATUSES",
    "IDLE_STATUSES",
    "RUNNABLE_STATUSES",
    "claim_job",
    "claim_statement",
    "claimable_job_ids",
    "count_jobs",
    "create_job",
    "get_job_row",
    "job_as_dict",
    "leased_jobs",
    "list_jobs",
    "release_lease",
    "release_statement",
    "renew_lease",
    "require_job_row",
    "update_job",
    "update_statement",
]

FINAL_STATUSES = ("storyboard_ready", "failed", "cancelled")
# No run works on these: final, or a plan waiting for the user (``plan_ready``).
IDLE_STATUSES = (*FINAL_STATUSES, "plan_ready")
# Statuses a worker may pick up: waiting, or interrupted while running.
RUNNABLE_STATUSES = ("pending", "parsing", "generating_storyboard")
_COLUMNS = [c.name for c in GeneratedVideo.__table__.columns]


def create_job(
    engine: Engine,
    *,
    prompt: str,
    video_url: str = "",
    model_id: str = "v2",
    parameters: dict[str, Any] | None = None,
    status: str = "pending",
    progress: str | None = None,
    owner: str | None = None,
) -> int:
    """Insert a job row in one transaction and return its id."""
    now = utcnow()
    row = GeneratedVideo(
        owner=owner,
        prompt=prompt,
        video_url=video_url,
        model_id=model_id,
        parameters=json.dumps(parameters or {}),
        status=status,
        progress=progress,
        created_at=now,
        updated_at=now,
    )
    with Session(engine) as session, session.begin():
        session.add(row)
        session.flush()
        return int(row.id)


def get_job_row(engine: Engine, job_id: int) -> GeneratedVideo | None:
    with Session(engine, expire_on_commit=False) as session:
        return session.get(GeneratedVideo, job_id)


def require_job_row(engine: Engine, job_id: int) -> GeneratedVideo:
    """The job's row; ``JobNotFoundError`` when there is none (the API answers 404)."""
    row = get_job_row(engine, job_id)
    if row is None:
        raise JobNotFoundError(job_id)
    return row


def job_as_dict(row: GeneratedVideo) -> dict[str, Any]:
    """The row as the spec's ``get_job`` dict. Unset JSON columns are left out, so the spec's
    ``json.loads(job.get("progress", "{}"))`` reads its default instead of ``None``."""
    data = {name: getattr(row, name) for name in _COLUMNS}
    for key in ("progress", "storyboard_data"):
        if data[key] is None:
            del data[key]
    return data


def update_statement(
    job_id: int,
    *,
    unless_status: Iterable[str] = (),
    only_status: Iterable[str] = (),
    held_by: str | None = None,
    unchanged_since: datetime | None = None,
    values: dict[str, Any],
) -> Update:
    """The conditional UPDATE behind ``update_job`` (and the batched writer)."""
    stmt = update(GeneratedVideo).where(GeneratedVideo.id == job_id)
    if unchanged_since is not None:
        stmt = stmt.where(GeneratedVideo.updated_at == unchanged_since)
    unless, only = tuple(unless_status), tuple(only_status)
    if unless:
        stmt = stmt.where(GeneratedVideo.status.not_in(unless))
    if only:
        stmt = stmt.where(GeneratedVideo.status.in_(only))
    if held_by is not None:
        stmt = stmt.where(GeneratedVideo.lease_owner == held_by)
    return stmt.values(**values)


def update_job(
    engine: Engine,
    job_id: int,
    *,
    unless_status: Iterable[str] = (),
    only_status: Iterable[str] = (),
    held_by: str | None = None,
    unchanged_since: datetime | None = None,
    after: Sequence[Callable[[Connection], object]] = (),
    **values: Any,
) -> bool:
    """Write ``values`` and ``updated_at`` in one statement; returns whether a row changed.

    ``unless_status`` / ``only_status`` make the write conditional on the status at that moment,
    so a job cancelled by someone else is never overwritten by a late progress write;
    ``held_by`` on the lease holder, so a run that lost its job never writes over the new run's;
    ``unchanged_since`` on the row's ``updated_at`` being the one read, so of two people's
    edits of the same storyboard the later one fails instead of undoing the first.
    ``after`` hooks run in the same transaction when the row changed (a webhook's message).
    """
    values.setdefault("updated_at", utcnow())
    stmt = update_statement(job_id, unless_status=unless_status, only_status=only_status,
                            held_by=held_by, unchanged_since=unchanged_since, values=values)
    with engine.begin() as conn:
        changed = conn.execute(stmt).rowcount > 0
        if changed:
            for hook in after:
                hook(conn)
    if changed and after:
        from ..webhooks import wake_deliverers  # the webhooks read the job models: no cycle

        wake_deliverers()
    return changed


def list_jobs(
    engine: Engine, *, status: str | None = None, limit: int = 20, offset: int = 0,
    owner: str | None = None,
) -> list[GeneratedVideo]:
    """Jobs newest first (only ``owner``'s when given)."""
    stmt = select(GeneratedVideo).order_by(GeneratedVideo.id.desc()).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(GeneratedVideo.status == status)
    if owner is not None:
        stmt = stmt.where(GeneratedVideo.owner == owner)
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(stmt))


def count_jobs(engine: Engine, *, status: str | None = None, owner: str | None = None,
               statuses: Iterable[str] = ()) -> int:
    """How many jobs (of ``status``, or of any of ``statuses``; ``owner``'s when given)."""
    stmt = select(func.count()).select_from(GeneratedVideo)
    if status:
        stmt = stmt.where(GeneratedVideo.status == status)
    if statuses:
        stmt = stmt.where(GeneratedVideo.status.in_(tuple(statuses)))
    if owner is not None:
        stmt = stmt.where(GeneratedVideo.owner == owner)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _claimable() -> Any:
    now = utcnow()
    return (
        GeneratedVideo.status.in_(RUNNABLE_STATUSES)
        & (GeneratedVideo.lease_owner.is_(None) | (GeneratedVideo.lease_expires_at < now))
    )


def claim_statement(
    job_id: int, *, owner: str, lease_seconds: float, steal_from: str | None = None
) -> Update:
    """Take the job's lease if it is runnable and nobody holds a live lease.
    ``steal_from`` also takes it from that holder (known dead) before its lease lapses."""
    # Re-entrant: a worker that already holds the lease (it stole it) may claim again.
    who = _claimable() | (GeneratedVideo.status.in_(RUNNABLE_STATUSES)
                          & (GeneratedVideo.lease_owner == owner))
    if steal_from:
        who = who | (GeneratedVideo.status.in_(RUNNABLE_STATUSES)
                     & (GeneratedVideo.lease_owner == steal_from))
    return (
        update(GeneratedVideo)
        .where(GeneratedVideo.id == job_id, who)
        .values(lease_owner=owner, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )


def release_statement(job_id: int, *, owner: str) -> Update:
    """Give the job back (finished, or handed back on shutdown)."""
    return (
        update(GeneratedVideo)
        .where(GeneratedVideo.id == job_id, GeneratedVideo.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )


def claim_job(
    engine: Engine, job_id: int, *, owner: str, lease_seconds: float, steal_from: str | None = None
) -> bool:
    """``claim_statement`` in its own transaction; atomic. True if the lease is ours."""
    stmt = claim_statement(job_id, owner=owner, lease_seconds=lease_seconds,
                           steal_from=steal_from)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def renew_lease(engine: Engine, job_id: int, *, owner: str, lease_seconds: float) -> bool:
    """Extend our lease; False when the job is no longer ours or no longer running."""
    stmt = (
        update(GeneratedVideo)
        .where(GeneratedVideo.id == job_id, GeneratedVideo.lease_owner == owner,
               GeneratedVideo.status.in_(RUNNABLE_STATUSES))
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def release_lease(engine: Engine, job_id: int, *, owner: str) -> None:
    """``release_statement`` in its own transaction."""
    with engine.begin() as conn:
        conn.execute(release_statement(job_id, owner=owner))


def claimable_job_ids(engine: Engine, *, limit: int) -> list[int]:
    """Jobs a worker could run now, oldest first."""
    stmt = select(GeneratedVideo.id).where(_claimable()).order_by(GeneratedVideo.id).limit(limit)
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(stmt).scalars()]


def leased_jobs(engine: Engine) -> list[tuple[int, str]]:
    """Runnable jobs whose lease is still live: (id, owner), to spot owners that died."""
    stmt = select(GeneratedVideo.id, GeneratedVideo.lease_owner).where(
        GeneratedVideo.status.in_(RUNNABLE_STATUSES), GeneratedVideo.lease_owner.is_not(None),
        GeneratedVideo.lease_expires_at >= utcnow())
    with engine.connect() as conn:
        return [(int(i), str(o)) for i, o in conn.execute(stmt)]
