"""A room removed by the chair stays out: its agent does not join that conference again."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Unit
from tests.conftest import Staff
from tests.web.terminal_fixtures import (
    agent_for,
    book,
    conference_of,
    room_with_terminal,
    soon,
    until,
)
from web.conference import HUB


async def test_a_removed_room_is_not_joined_again_by_its_agent(
    app: web.Application, client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit
) -> None:
    room, _, token = await room_with_terminal(db, city, "越秀区视频会议室")
    agent = agent_for(str(client.make_url("")).rstrip("/"), token, lead=1.0)
    task = agent.start()
    try:
        await until(lambda: agent.connected)
        start = soon(1)
        meeting = await book(client, staff, city, [room], start, 30)
        conference = conference_of(meeting["id"], start)
        await until(lambda: agent.conference == conference, 10)
        hub = app[HUB]
        [terminal] = [p for p in hub.participants(conference) if p["kind"] == "terminal"]

        await hub.control(conference, "remove", terminal["id"], operator="ops@gz.gov.cn")
        await until(lambda: agent.conference is None, 5)
        await asyncio.sleep(3.5)  # longer than the agent's retry delay after a close (3 s)
        assert agent.conference is None
        assert [c for kind, c, _ in agent.history if kind == "joined"] == [conference]
        assert not any(p["kind"] == "terminal" for p in hub.participants(conference))
    finally:
        agent.stop()
        await task
