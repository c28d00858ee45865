"""Persistent scheduled jobs (reminders, meeting start and end) on APScheduler.

Jobs live in APScheduler's SQLAlchemy job store, in the application's own database (table
``apscheduler_jobs``, created by our migrations), so they survive restarts. Every process
runs an APScheduler instance so that it can add and remove jobs, but only the leader (see
:mod:`scheduling.leader`) runs it unpaused; the others keep theirs paused and take over
when the leader goes away. Job defaults make a missed job run late rather than never
(``misfire_grace_time=None``, APScheduler's default of one second would silently drop a
reminder missed while the server was down) and coalesce repeated misses into one run.
Handlers must be idempotent: a job can run again after a crash mid-run.

APScheduler stores a job as a text reference to a module-level function plus pickled
arguments, so every job runs :func:`run_job` with a *kind*; the kind's handler is looked up
in ``_HANDLERS``, which the running :class:`JobScheduler` fills on start. That table is the
one bridge from a stored job back into the running application.

APScheduler 3's job store is synchronous. It runs in APScheduler's own thread
(``BackgroundScheduler``), never on the event loop: on SQLite a synchronous write on the
loop thread would wait for a lock held by an ``aiosqlite`` transaction that needs the very
loop it blocks. Each job hands its coroutine to the application's loop and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from rooms.db import Database
from scheduling.leader import LeaderLock, leader_lock

log = logging.getLogger(__name__)

JobHandler = Callable[..., Coroutine[Any, Any, None]]
JOB_TABLE = "apscheduler_jobs"

_HANDLERS: dict[str, JobHandler] = {}


_LOOPS: dict[str, asyncio.AbstractEventLoop] = {}


def run_job(kind: str, *args: Any) -> None:
    """The function every stored job calls (in a worker thread): run ``kind``'s handler on
    the application's event loop and wait for it, so a failure is APScheduler's to log."""
    handler = _HANDLERS.get(kind)
    loop = _LOOPS.get("app")
    if handler is None or loop is None or loop.is_closed():
        raise LookupError(f"no running handler for scheduled job kind {kind!r}")
    asyncio.run_coroutine_threadsafe(handler(*args), loop).result()


def sync_url(async_url: str) -> str:
    """The synchronous driver's URL for the same database (APScheduler 3 is synchronous)."""
    if async_url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + async_url.removeprefix("sqlite+aiosqlite://")
    if async_url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg://" + async_url.removeprefix("postgresql+asyncpg://")
    return async_url


class _TolerantScheduler(BackgroundScheduler):  # type: ignore[misc]
    """APScheduler whose job removal tolerates a job already gone.

    APScheduler removes a date job after submitting it; if another process (or a cancel)
    removed it first, the stock ``remove_job`` raises inside APScheduler's own thread and
    that thread dies, silently ending all scheduling in this process.
    """

    def remove_job(self, job_id: str, jobstore: str | None = None) -> None:
        try:
            super().remove_job(job_id, jobstore)
        except JobLookupError:
            log.debug("job %s was already removed", job_id)


class JobScheduler:
    """APScheduler with a persistent store, run by whichever process holds the leader lock."""

    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, JobHandler],
        *,
        lock: LeaderLock | None = None,
        poll_seconds: float = 5.0,
    ) -> None:
        self.db = db
        self.handlers = dict(handlers)
        self.lock = lock or leader_lock(db)
        self.poll_seconds = poll_seconds
        self._engine: Engine = create_engine(sync_url(db.url), pool_pre_ping=True)
        self._scheduler = _TolerantScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self._task: asyncio.Task[None] | None = None
        self.is_leader = False
        self._became_leader = asyncio.Event()

    async def start(self) -> None:
        """Open the job store (paused) and start competing for leadership."""
        if self._task is not None:
            return
        _HANDLERS.update(self.handlers)
        _LOOPS["app"] = asyncio.get_running_loop()
        # Started on the loop thread: a start cut short by cancellation in a worker thread
        # could leave a scheduler "running" whose thread never started.
        self._scheduler.start(paused=True)
        self._task = asyncio.create_task(self._lead(), name="scheduler-leader")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._scheduler.running:
            await asyncio.to_thread(self._scheduler.shutdown, wait=False)
        if self.is_leader:
            self.is_leader = False
            try:
                await self.lock.release()
            except Exception:  # the lock dies with its connection anyway
                log.warning("releasing the scheduler leader lock failed", exc_info=True)
        await asyncio.to_thread(self._engine.dispose)

    async def wait_leader(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._became_leader.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def schedule(self, job_id: str, kind: str, run_at: datetime, *args: Any) -> None:
        """Add or replace ``job_id``: run ``kind``'s handler with ``args`` at ``run_at``."""
        await asyncio.to_thread(
            self._scheduler.add_job,
            run_job,
            trigger="date",
            run_date=run_at,
            args=[kind, *args],
            id=job_id,
            name=f"{kind} {job_id}",
            replace_existing=True,
        )
        if self.is_leader:
            self._scheduler.wakeup()

    async def cancel(self, job_id: str) -> bool:
        """Remove a job; False if there was none."""
        if await asyncio.to_thread(self._scheduler.get_job, job_id) is None:
            return False
        await asyncio.to_thread(self._scheduler.remove_job, job_id)
        return True

    async def cancel_prefix(self, prefix: str) -> int:
        jobs = await asyncio.to_thread(self._scheduler.get_jobs)
        removed = 0
        for job in jobs:
            if job.id.startswith(prefix) and await self.cancel(job.id):
                removed += 1
        return removed

    async def job_ids(self) -> list[str]:
        jobs = await asyncio.to_thread(self._scheduler.get_jobs)
        return sorted(job.id for job in jobs)

    async def _lead(self) -> None:
        while True:
            try:
                leading = await self.lock.try_acquire()
            except Exception:
                log.warning("leader election failed; trying again", exc_info=True)
                leading = False
            if leading and not self.is_leader:
                log.info("this process now runs the scheduled jobs")
                self.is_leader = True
                self._scheduler.resume()
                self._became_leader.set()
            elif not leading and self.is_leader:
                log.warning("lost the scheduler leadership; pausing jobs")
                self.is_leader = False
                self._became_leader.clear()
                self._scheduler.pause()
            if self.is_leader:
                # Jobs added by other processes are not announced: look at the store again.
                self._scheduler.wakeup()
            await asyncio.sleep(self.poll_seconds)
