"""The database's connections: no ping per checkout, yet a server restart is survived."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import rooms.db
from rooms.db import Database


async def _kill_connections(db: Database) -> None:
    """What a PostgreSQL restart does to the pool: every backend of the database ends."""
    admin = create_async_engine(db.url)
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await admin.dispose()


async def _answer(session: AsyncSession) -> int:
    return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())


@pytest.mark.parametrize("noticed", [True, False], ids=["noticed", "unnoticed"])
async def test_a_transaction_survives_the_server_dropping_its_connections(
    db: Database, noticed: bool
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("an SQLite file does not drop connections")
    assert await db.transact(_answer) == 42  # the pool holds a connection now
    await _kill_connections(db)
    if not noticed:  # as if the driver had not read the end of the connection yet
        event.remove(db.engine.sync_engine.pool, "checkout", rooms.db._replace_if_closed)
    assert await db.transact(_answer) == 42
