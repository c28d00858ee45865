"""Alembic environment: runs on a connection handed in by ``web.migrate`` (async-safe)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import rooms.models  # noqa: F401  (registers the tables)
from rooms.db import Base
from web.migrate import include_object

target_metadata = Base.metadata
config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # plain `alembic` CLI use: a sync URL from alembic.ini / -x url=
        url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
            "sqlalchemy.url"
        )
        engine = create_engine(str(url))
        with engine.begin() as conn:
            _configure_and_run(conn)
        return
    _configure_and_run(connection)


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs table rebuilds for ALTER
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
