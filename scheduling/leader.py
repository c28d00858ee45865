"""Leader election: at most one process runs scheduled jobs for a database at a time.

On PostgreSQL a session-level advisory lock, held by one dedicated connection for as long
as the process leads (it is released by the server if the process or its connection dies).
On SQLite, which has no such lock, a lease row renewed every few seconds: a leader that stops
renewing loses the lease when it expires.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow

log = logging.getLogger(__name__)

# A constant of our own for pg_try_advisory_lock: "suimeet" scheduler.
ADVISORY_KEY = 0x5349_4D45_0001


class SchedulerLease(Base):
    """Who leads the scheduler until when (SQLite only; PostgreSQL uses an advisory lock)."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LeaderLock(Protocol):
    """Try to become (or stay) the leader; give it up."""

    async def try_acquire(self) -> bool: ...

    async def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL: ``pg_try_advisory_lock`` on a connection kept open while leading."""

    def __init__(self, db: Database, key: int = ADVISORY_KEY) -> None:
        self.db = db
        self.key = key
        self._conn: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._conn is not None:
            try:  # still leading if our connection is alive
                await self._conn.exec_driver_sql("SELECT 1")
                return True
            except Exception:  # connection lost: the server released the lock
                log.warning("lost the scheduler leader connection")
                await self._drop()
        conn = await self.db.engine.connect()
        try:
            got = await conn.scalar(select(_advisory(self.key)))
        except Exception:
            await conn.close()
            raise
        if got:
            await conn.commit()  # keep the session, end the implicit transaction
            self._conn = conn
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        if self._conn is not None:
            try:
                await self._conn.exec_driver_sql(f"SELECT pg_advisory_unlock({int(self.key)})")
            finally:
                await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:  # already broken
                log.debug("closing a broken leader connection failed", exc_info=True)


def _advisory(key: int) -> Any:
    from sqlalchemy import func

    return func.pg_try_advisory_lock(key)


class LeaseLock:
    """SQLite: a lease row with an expiry, taken when free or expired, renewed by the holder."""

    def __init__(
        self, db: Database, *, name: str = "scheduler", ttl: timedelta = timedelta(seconds=15)
    ) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.holder = secrets.token_hex(8)

    async def try_acquire(self) -> bool:
        now = utcnow()
        async with self.db.write() as session:
            taken = await session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name)
                .where((SchedulerLease.holder == self.holder) | (SchedulerLease.expires_at < now))
                .values(holder=self.holder, expires_at=now + self.ttl)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                return True
            if await session.get(SchedulerLease, self.name) is not None:
                return False
            try:
                async with session.begin_nested():
                    session.add(
                        SchedulerLease(
                            name=self.name, holder=self.holder, expires_at=now + self.ttl
                        )
                    )
            except IntegrityError:
                return False
            return True

    async def release(self) -> None:
        async with self.db.write() as session:
            await session.execute(
                delete(SchedulerLease)
                .where(SchedulerLease.name == self.name)
                .where(SchedulerLease.holder == self.holder)
            )


def leader_lock(db: Database) -> LeaderLock:
    return LeaseLock(db) if db.is_sqlite else AdvisoryLock(db)
