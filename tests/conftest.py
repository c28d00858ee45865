"""Test fixtures: a real, migrated database (SQLite or PostgreSQL) and a running app.

``SUIMEET_TEST_DB=sqlite`` (default) or ``postgresql`` picks the database. For PostgreSQL a
fresh database is created for the session from ``SUIMEET_TEST_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), migrated once, emptied after every test and
dropped at the end.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import delete, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from rooms.accounts import Accounts
from rooms.db import Base, Database
from rooms.models import Person, Role, Unit, UnitKind
from web.app import create_app
from web.migrate import migrate
from web.settings import Settings

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"


def _backend() -> str:
    return os.environ.get("SUIMEET_TEST_DB", "sqlite")


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the whole session."""
    if _backend() == "postgresql":
        base = os.environ.get("SUIMEET_TEST_PG_URL", DEFAULT_PG)
        name = f"suimeet_test_{secrets.token_hex(4)}"
        head, _, tail = base.partition("/test")
        url = f"{head}/{name}{tail}"
        asyncio.run(_admin(base, f'CREATE DATABASE "{name}"'))
        asyncio.run(migrate(url))
        yield url
        asyncio.run(_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        url = f"sqlite:///{path}"
        asyncio.run(migrate(url))
        yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The session's database; every table is emptied after the test."""
    database = Database(database_url)
    yield database
    # On SQLite a writer of the app being shut down (the scheduler's thread, a last
    # presence or conference-log write) can still hold the file's lock for a moment.
    for attempt in range(40):
        try:
            await _empty_tables(database)
            break
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 39:
                raise
            await asyncio.sleep(0.25)
    await database.close()


async def _empty_tables(database: Database) -> None:
    async with database.write() as session:
        existing = set(
            await (await session.connection()).run_sync(
                lambda conn: inspect(conn).get_table_names()
            )
        )
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in existing:
                await session.execute(delete(table))
        if "apscheduler_jobs" in existing:
            await session.execute(text("DELETE FROM apscheduler_jobs"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
        port=8080,
        media_host_addresses=["127.0.0.1"],
    )


@pytest.fixture
def app(settings: Settings, db: Database) -> web.Application:
    return create_app(settings)


ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client(app: web.Application, aiohttp_client: ClientFactory) -> TestClient[Any, Any]:
    return await aiohttp_client(app)


@pytest.fixture
async def city(db: Database) -> Unit:
    async with db.write() as session:
        unit = Unit(name="广州市人民政府办公厅", short_name="市府办", kind=UnitKind.CITY)
        session.add(unit)
    return unit


class Staff:
    """Logs staff in through the real API and hands out Authorization headers."""

    def __init__(self, client: TestClient[Any, Any], db: Database, unit: Unit) -> None:
        self.client = client
        self.db = db
        self.unit = unit
        self._tokens: dict[str, str] = {}

    async def account(self, role: Role, email: str | None = None) -> tuple[str, int]:
        email = email or f"{role.value}-{secrets.token_hex(3)}@example.gov.cn"
        account = await Accounts(self.db).create_account(
            email, PASSWORD, role, name=f"{role.value} 测试", unit_id=self.unit.id
        )
        return email, account.person_id

    async def token(self, role: Role) -> str:
        if role.value not in self._tokens:
            email, _ = await self.account(role)
            response = await self.client.post(
                "/api/v1/auth/token", json={"email": email, "password": PASSWORD}
            )
            assert response.status == 201, await response.text()
            self._tokens[role.value] = (await response.json())["token"]
        return self._tokens[role.value]

    async def headers(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(role)}"}


@pytest.fixture
async def staff(client: TestClient[Any, Any], db: Database, city: Unit) -> Staff:
    return Staff(client, db, city)


async def add_person(db: Database, unit_id: int, email: str, name: str = "张伟") -> Person:
    async with db.write() as session:
        person = Person(name=name, email=email, unit_id=unit_id)
        session.add(person)
    return person


class Inbox:
    """What a real SMTP server on loopback received (aiosmtpd)."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.refuse = 0  # answer the next N messages with a temporary failure

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 try again later"
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[Any]:
        import email
        from email.policy import default

        return [email.message_from_bytes(e.content, policy=default) for e in self.envelopes]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd SMTP server on 127.0.0.1 at a free port, with its inbox."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def create_meeting(
    client: TestClient[Any, Any],
    staff: Staff,
    unit: Unit,
    people: list[int],
    *,
    rooms: list[int] | None = None,
    start: Any = None,
    minutes: int = 60,
    title: str = "全市视频调度会",
) -> int:
    """A meeting booked through the real API by the secretariat (default: starts in 1 min)."""
    from datetime import UTC, datetime, timedelta

    start = start or datetime.now(UTC) + timedelta(minutes=1)
    response = await client.post(
        "/api/v1/meetings",
        headers=await staff.headers(Role.SECRETARIAT),
        json={
            "title": title,
            "unit_id": unit.id,
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=minutes)).isoformat(),
            "attendees": [{"person_id": p} for p in people],
            "room_ids": rooms or [],
        },
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])
