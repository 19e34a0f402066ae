"""Group commit: concurrent job writes share transactions, keep each job's order and outcome."""

from __future__ import annotations

import asyncio

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


def test_a_failed_batch_raises_in_every_caller(settings: Settings) -> None:
    ids = _jobs(settings, 2)
    writer = JobWriter(get_engine(settings))

    async def main() -> list[object]:
        return await asyncio.gather(
            writer.update(ids[0], progress='{"lost": true}'),
            writer.update(ids[1], no_such_column=1),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert all(isinstance(r, Exception) for r in results)
    # The batch rolled back as a whole.
    assert get_job(ids[0], settings=settings).get("progress") != '{"lost": true}'

    async def later() -> bool:  # and the writer keeps working afterwards
        return await writer.update(ids[0], progress='{"ok": true}')

    assert asyncio.run(later()) is True
