"""Group commit: concurrent job writes share transactions, keep each job's order and outcome."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from sqlalchemy import event

from storyboard import get_job, save_generated_video
from storyboard.config import Settings
from storyboard.db import JobWriter, get_engine

ACTIVE = ("generating_storyboard",)


def _jobs(settings: Settings, n: int, status: str = "generating_storyboard") -> list[int]:
    return [save_generated_video(f"job {i}", "", "v2", {}, status, settings=settings)
            for i in range(n)]


def _commits(settings: Settings) -> list[int]:
    """Counts COMMITs on the engine (a list, so the listener can add to it)."""
    seen = [0]

    @event.listens_for(get_engine(settings), "commit")
    def count(_conn: object) -> None:
        seen[0] += 1

    return seen


def test_concurrent_writes_from_many_jobs_share_commits(settings: Settings) -> None:
    ids = _jobs(settings, 40)
    writer = JobWriter(get_engine(settings))
    commits = _commits(settings)

    async def main() -> list[bool]:
        return await asyncio.gather(*(
            writer.update(job_id, only_status=ACTIVE, progress=f'{{"n": {job_id}}}')
            for job_id in ids))

    assert asyncio.run(main()) == [True] * 40
    assert 1 <= commits[0] < 40 and writer.transactions == commits[0]
    for job_id in ids:  # every write landed, each on its own row
        assert get_job(job_id, settings=settings)["progress"] == f'{{"n": {job_id}}}'


def test_each_waiter_gets_its_own_rows_outcome(settings: Settings) -> None:
    running, cancelled = _jobs(settings, 1)[0], _jobs(settings, 1, "cancelled")[0]
    writer = JobWriter(get_engine(settings))

    async def main() -> list[bool]:
        return await asyncio.gather(
            writer.update(running, only_status=ACTIVE, progress='{"late": true}'),
            writer.update(cancelled, only_status=ACTIVE, progress='{"late": true}'),
        )

    assert asyncio.run(main()) == [True, False]
    assert get_job(running, settings=settings)["progress"] == '{"late": true}'
    # A late write never lands on a job that left the active statuses.
    assert get_job(cancelled, settings=settings).get("progress") != '{"late": true}'


def test_a_jobs_writes_are_merged_but_never_reordered(settings: Settings) -> None:
    (job_id,) = _jobs(settings, 1)
    writer = JobWriter(get_engine(settings))
    commits = _commits(settings)

    async def main() -> list[bool]:
        # Queued in one tick: two progress writes (merged), a cancel, then a progress write that
        # must see the cancel and be refused, exactly as if each had committed on its own.
        return await asyncio.gather(
            writer.update(job_id, only_status=ACTIVE, progress='{"n": 1}', actual_cost=0.1),
            writer.update(job_id, only_status=ACTIVE, progress='{"n": 2}'),
            writer.update(job_id, status="cancelled"),
            writer.update(job_id, only_status=ACTIVE, progress='{"n": 3}'),
        )

    assert asyncio.run(main()) == [True, True, True, False]
    job = get_job(job_id, settings=settings)
    assert job["status"] == "cancelled"
    assert job["progress"] == '{"n": 2}' and job["actual_cost"] == pytest.approx(0.1)
    assert commits[0] == 1  # all four in one transaction
    assert writer.writes == 4


def test_a_bad_write_fails_only_its_own_caller(settings: Settings) -> None:
    ids = _jobs(settings, 2)
    writer = JobWriter(get_engine(settings))

    async def main() -> list[object]:
        return await asyncio.gather(
            writer.update(ids[0], progress='{"kept": true}'),
            writer.update(ids[1], no_such_column=1),
            return_exceptions=True,
        )

    good, bad = asyncio.run(main())
    assert good is True and isinstance(bad, Exception)  # one job's error is not everyone's
    assert get_job(ids[0], settings=settings)["progress"] == '{"kept": true}'


def test_a_write_that_changes_the_status_is_not_merged_into(settings: Settings) -> None:
    (job_id,) = _jobs(settings, 1)
    writer = JobWriter(get_engine(settings))

    async def main() -> list[bool]:
        # Same condition, one tick: the first write ends the job, so the second (a late
        # progress write of a duplicate run) must see that and be refused, not merged in.
        return await asyncio.gather(
            writer.update(job_id, only_status=ACTIVE, status="storyboard_ready",
                          progress='{"final": true}'),
            writer.update(job_id, only_status=ACTIVE, progress='{"late": true}'),
        )

    assert asyncio.run(main()) == [True, False]
    job = get_job(job_id, settings=settings)
    assert job["status"] == "storyboard_ready" and job["progress"] == '{"final": true}'


def test_writes_queued_behind_a_cancelled_flusher_still_land(settings: Settings) -> None:
    """When a loop shuts down it cancels every task, a flusher in mid-commit included; a write
    queued behind it (a job's lease release, from its clean-up) must still land, not wait
    forever."""
    (job_id,) = _jobs(settings, 1)
    writer = JobWriter(get_engine(settings))
    # Another connection holds the database's write lock for a moment, so the first commit is
    # still running in the writer's thread while the flusher is cancelled.
    blocker = sqlite3.connect(settings.data_dir / "storyboard.db", check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, blocker.rollback).start()

    async def main() -> tuple[object, bool]:
        first = asyncio.create_task(writer.update(job_id, actual_cost=0.5))
        await asyncio.sleep(0.1)  # the flusher now waits on the locked commit
        later = asyncio.create_task(writer.update(job_id, progress='{"released": true}'))
        await asyncio.sleep(0)  # queued behind the busy flusher
        writer._flusher.cancel()  # what the loop's shutdown does  # type: ignore[union-attr]
        outcome = await asyncio.gather(first, return_exceptions=True)
        return outcome[0], await asyncio.wait_for(later, 10)

    try:
        first, later = asyncio.run(main())
    finally:
        blocker.close()
    assert isinstance(first, RuntimeError)  # its commit's outcome is unknown: said so
    assert later is True
    assert get_job(job_id, settings=settings)["progress"] == '{"released": true}'


def test_a_call_runs_in_the_batch_in_order_and_hands_back_its_result(settings: Settings) -> None:
    """``call`` runs a function on the batch's connection after the job's earlier writes (it
    sees them) and before its later ones; its result (or its error) goes to its caller only."""
    from sqlalchemy import text

    job_id = _jobs(settings, 1)[0]
    writer = JobWriter(get_engine(settings))
    commits = _commits(settings)

    def progress_now(conn: object) -> str:
        return str(conn.execute(  # type: ignore[attr-defined]
            text("SELECT progress FROM generated_videos WHERE id = :id"), {"id": job_id}
        ).scalar_one())

    def broken(_conn: object) -> None:
        raise ValueError("this call fails")

    async def main() -> list[object]:
        return await asyncio.gather(
            writer.update(job_id, only_status=ACTIVE, progress='{"n": 1}'),
            writer.call(job_id, progress_now),
            writer.call(job_id, broken),
            writer.update(job_id, only_status=ACTIVE, progress='{"n": 2}'),
            return_exceptions=True)

    first, seen, failed, last = asyncio.run(main())
    assert first is True and last is True
    assert seen == '{"n": 1}'  # after the write before it, before the one after
    assert isinstance(failed, ValueError)
    assert get_job(job_id, settings=settings)["progress"] == '{"n": 2}'
    assert commits[0] >= 1
