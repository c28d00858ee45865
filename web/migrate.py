"""Schema migrations through Alembic, callable from a running event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from rooms.db import async_url
from scheduling.scheduler import JOB_TABLE

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def migrate(url: str, revision: str = "heads") -> None:
    """Apply every pending migration to the database at ``url``."""
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Any, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """APScheduler's job table is created by a migration but not described by our models."""
    table = getattr(obj, "table", None)
    return name != JOB_TABLE and getattr(table, "name", None) != JOB_TABLE
