"""The database: one SQLAlchemy ``Base`` for every table, the engine and sessions.

SQLite (aiosqlite) is the embedded default and PostgreSQL (asyncpg) the production store.
Services open a transaction with :meth:`Database.write` (one per use case) or read with
:meth:`Database.read`; repositories only query. On SQLite every write transaction is
serialised inside the process and starts with ``BEGIN IMMEDIATE``: the database takes one
writer at a time anyway, and waiting on an in-process lock keeps the latency tail bounded,
where SQLite's busy handler sleeps for seconds (see shared/RECIPES.md).

Connections are not pinged at checkout: on asyncpg a ping is three round trips (BEGIN, a
query, ROLLBACK), more than a whole booking's statements. A connection the server closed
(restart, ``pg_terminate_backend``, idle timeout) is known closed to the driver and is
replaced at checkout for free; one that dies unnoticed fails its first statement, and
:meth:`Database.transact` then runs the transaction once more on a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import DateTime, TypeDecorator

log = logging.getLogger(__name__)
# connections kept open: above the requests in flight at once, or each one past it pays for
# a new connection (a PostgreSQL backend: several ms) when the pool is full again
POOL_SIZE = 20
T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The declarative base of every SuiMeet table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def async_url(url: str) -> str:
    """Map a plain database URL to its async driver (``postgresql://`` → asyncpg)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # aiosqlite's adapter otherwise lets pysqlite open transactions on its own; we issue
    # BEGIN ourselves (see the "begin" listener) so BEGIN IMMEDIATE is possible.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Engine, session factories and the write discipline for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = async_url(url)
        self.engine: AsyncEngine = create_async_engine(
            self.url, echo=echo, pool_size=POOL_SIZE, max_overflow=10
        )
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        if not self.is_sqlite:
            event.listen(self.engine.sync_engine.pool, "checkout", _replace_if_closed)
        self._write_lock = asyncio.Lock()
        write_engine = self.engine
        if self.is_sqlite:
            # Readers and the one writer use separate engines on the same file (WAL lets
            # them run side by side); the writer's transactions begin IMMEDIATE.
            write_engine = create_async_engine(self.url, echo=echo, pool_size=1, max_overflow=0)
            _sqlite_setup(self.engine, "BEGIN")
            _sqlite_setup(write_engine, "BEGIN IMMEDIATE")
        self._write_engine = write_engine
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(write_engine, expire_on_commit=False)

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine: SQLite's writer has its own."""
        if self._write_engine is self.engine:
            return (self.engine,)
        return (self.engine, self._write_engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; whatever it wrote is rolled back."""
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if not self.is_sqlite:
            async with self._write_sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._write_sessions() as session, session.begin():
            yield session

    async def transact(self, run: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """``run`` in one :meth:`write` transaction; again once if the connection was dead.

        Only when the connection failed before the commit was asked for: then nothing of
        the first attempt can have committed (a commit cut off midway might have).
        """
        for attempt in (1, 2):
            committing = False
            try:
                async with self.write() as session:
                    result = await run(session)
                    committing = True
                return result
            except DBAPIError as exc:
                if committing or attempt == 2 or not exc.connection_invalidated:
                    raise
                log.warning("database connection lost, running the transaction again: %s", exc)
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # asyncpg saw the server close the connection: the pool drops it and connects anew
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def _sqlite_setup(engine: AsyncEngine, begin: str) -> None:
    sync_engine = engine.sync_engine
    event.listen(sync_engine, "connect", _sqlite_pragmas)

    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    event.listen(sync_engine, "begin", _begin)
