"""The Alembic migrations build exactly the schema the models describe, and go both ways."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

import rooms.models  # noqa: F401
import scheduling.leader
import scheduling.mailqueue
import scheduling.models  # noqa: F401
from rooms.db import Base, async_url
from web.migrate import include_object, migrate


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include_object}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []


async def test_migrations_downgrade_and_upgrade_again(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'updown.sqlite3'}"
    await migrate(url)
    from alembic import command

    from web.migrate import alembic_config

    engine = create_async_engine(async_url(url))

    def down(connection: Any) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with engine.begin() as conn:
        await conn.run_sync(down)
    await engine.dispose()
    await migrate(url)
