"""Emergency convening (应急指挥) end to end: rooms of every district with online agents join
at once; an ordinary meeting in the way gives up its room and its organiser gets an email
(delivered to a real SMTP server on loopback by the app's own mail sender).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from rooms.db import Database
from rooms.models import Role, Unit, UnitKind
from scheduling.mailqueue import OutgoingMail
from tests.conftest import Inbox, Staff
from tests.web.terminal_fixtures import (
    agent_for,
    book,
    conference_of,
    room_with_terminal,
    soon,
    until,
)
from web.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: tuple[Inbox, int]) -> Settings:
    """The app sends mail to the loopback SMTP server (no TLS)."""
    _, port = smtp_server
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url,
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
        port=8080, media_host_addresses=["127.0.0.1"],
        smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none",
    )  # fmt: skip


async def district(db: Database, name: str) -> Unit:
    async with db.write() as session:
        unit = Unit(name=name, short_name=name[:2], kind=UnitKind.DISTRICT)
        session.add(unit)
    return unit


async def test_convening_districts_brings_their_terminals_in_and_releases_a_room(
    app: web.Application,
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, _ = smtp_server
    tianhe, yuexiu = await district(db, "天河区人民政府"), await district(db, "越秀区人民政府")
    room_a, terminal_a, token_a = await room_with_terminal(db, tianhe, "天河区视频会议室")
    room_b, terminal_b, token_b = await room_with_terminal(db, yuexiu, "越秀区视频会议室")
    await room_with_terminal(db, city, "市府视频会议室")  # not a district: not convened

    # an ordinary meeting holds room A now; its terminal is in it
    start = soon(1)
    ordinary = await book(client, staff, city, [room_a], start, 1800, title="区务例会")
    organiser = ordinary["organiser_id"]
    url = str(client.make_url("")).rstrip("/")
    agents = [agent_for(url, token_a, lead=1.0), agent_for(url, token_b, lead=1.0)]
    tasks = [a.start() for a in agents]
    try:
        await until(lambda: all(a.connected for a in agents), 5)
        await until(lambda: agents[0].conference == conference_of(ordinary["id"], start), 10)

        r = await client.post(
            "/api/v1/convene", headers=await staff.headers(Role.ADMIN),
            json={"title": "防汛应急视频会议", "unit_kind": "district", "minutes": 30},
        )  # fmt: skip
        told_at = time.monotonic()
        assert r.status == 201, await r.text()
        out = await r.json()
        assert out["room_ids"] == sorted([room_a, room_b])
        assert sorted(out["terminals_told"]) == sorted([terminal_a, terminal_b])
        (released,) = out["released"]
        assert released["meeting_id"] == ordinary["id"] and released["room_id"] == room_a
        assert released["organiser_notified"] is True

        # both terminals are in the convened conference within 5 s
        convened = out["conference"]
        await until(lambda: all(a.conference == convened for a in agents), 5)
        assert time.monotonic() - told_at < 5
        # ... and stay there (their bookings now list it; the released one is gone)
        await until(lambda: all(convened in {b.conference for b in a.bookings} for a in agents), 2)
        assert all(ordinary["id"] != b.conference.split("@")[0] for b in agents[0].bookings)
        assert [e for e, _, _ in agents[0].history] == ["joined", "left", "joined"]
        assert [e for e, _, _ in agents[1].history] == ["joined"]

        # the ordinary meeting is not cancelled; its organiser is told by email
        r = await client.get(
            f"/api/v1/meetings/{ordinary['id']}", headers=await staff.headers(Role.SECRETARIAT)
        )
        assert (await r.json())["status"] != "cancelled"
        async with db.read() as session:
            rows = (
                await session.scalars(
                    select(OutgoingMail).where(OutgoingMail.kind == "room_released")
                )
            ).all()
        assert [row.meeting_id for row in rows] == [ordinary["id"]]

        def released_mail() -> Any:
            return next(
                (m for m in inbox.messages() if "会议室已让出给应急会议" in str(m["Subject"])), None
            )

        mail = await until(released_mail, 10)
        assert mail["To"] == rows[0].recipient
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert "防汛应急视频会议" in body and "区务例会" in body and "天河区视频会议室" in body
        assert organiser
    finally:
        for a in agents:
            a.stop()
        for t in tasks:
            await t
