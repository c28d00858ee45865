"""Persistent jobs: they survive restarts, run late rather than never, and run once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from rooms.db import Database, utcnow
from scheduling.leader import LeaseLock, leader_lock
from scheduling.scheduler import JobScheduler


class Ran:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.event = asyncio.Event()

    async def __call__(self, label: str, number: int) -> None:
        self.calls.append((label, number))
        self.event.set()

    async def wait(self, count: int, timeout: float = 10.0) -> None:
        async def until() -> None:
            while len(self.calls) < count:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(until(), timeout)


def _scheduler(db: Database, ran: Ran, **kw: object) -> JobScheduler:
    lock = LeaseLock(db, ttl=timedelta(seconds=1)) if db.is_sqlite else leader_lock(db)
    return JobScheduler(db, {"test": ran}, lock=lock, poll_seconds=0.2, **kw)  # type: ignore[arg-type]


async def test_a_job_survives_a_restart_and_a_missed_one_runs_late(db: Database) -> None:
    ran = Ran()
    first = _scheduler(db, ran)
    await first.start()
    assert await first.wait_leader(5)
    await first.schedule("test:1", "test", utcnow() + timedelta(seconds=30), "later", 1)
    await first.schedule("test:2", "test", utcnow() + timedelta(milliseconds=300), "missed", 2)
    await first.close()  # the server stops before either is due
    await asyncio.sleep(0.6)
    assert ran.calls == []

    second = _scheduler(db, ran)
    await second.start()
    try:
        assert await second.wait_leader(5)
        await ran.wait(1)  # the missed job runs as soon as a leader is back
        assert ran.calls == [("missed", 2)]
        assert await second.job_ids() == ["test:1"]  # the later one is still stored
        await second.schedule("test:1", "test", utcnow(), "later", 1)  # moved to now
        await ran.wait(2)
        assert ran.calls[1] == ("later", 1) and await second.job_ids() == []
    finally:
        await second.close()


async def test_only_the_leader_runs_jobs_and_another_takes_over(db: Database) -> None:
    ran = Ran()
    a, b = _scheduler(db, ran), _scheduler(db, ran)
    await a.start()
    assert await a.wait_leader(5)
    await b.start()
    await asyncio.sleep(0.6)
    assert a.is_leader and not b.is_leader
    for n in range(5):
        await b.schedule(f"test:{n}", "test", utcnow() + timedelta(milliseconds=100), "x", n)
    await ran.wait(5)
    await asyncio.sleep(0.5)
    assert sorted(n for _, n in ran.calls) == [0, 1, 2, 3, 4]  # each once, not twice

    await a.close()
    try:
        assert await b.wait_leader(5)
        await b.schedule("test:9", "test", utcnow(), "after", 9)
        await ran.wait(6)
        assert ran.calls[-1] == ("after", 9)
    finally:
        await b.close()


async def test_cancelled_jobs_do_not_run(db: Database) -> None:
    ran = Ran()
    s = _scheduler(db, ran)
    await s.start()
    try:
        assert await s.wait_leader(5)
        await s.schedule("reminder:7:a", "test", utcnow() + timedelta(milliseconds=300), "a", 1)
        await s.schedule("reminder:7:b", "test", utcnow() + timedelta(milliseconds=300), "b", 2)
        await s.schedule("reminder:8:a", "test", utcnow() + timedelta(milliseconds=300), "c", 3)
        assert await s.cancel_prefix("reminder:7:") == 2
        assert not await s.cancel("reminder:7:a")
        await ran.wait(1)
        await asyncio.sleep(0.5)
        assert ran.calls == [("c", 3)]
    finally:
        await s.close()
