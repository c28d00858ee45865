"""The terminal agent against a real server: joins at the start, leaves at the end, on its own.

Agents run in-process here (the browser test runs one as a subprocess); their media are
the test pattern, checked by colour at a Python participant.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Unit
from signaling.client import ConferenceClient
from signaling.sources import mean_rgb
from tests.conftest import Staff, add_person
from tests.web.terminal_fixtures import (
    LOOPBACK,
    Proxy,
    agent_for,
    book,
    conference_of,
    room_with_terminal,
    soon,
    until,
)
from web.conference import LINKS

ORANGE = (250, 140, 20)


def near(rgb: tuple[float, float, float], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 30 for a, b in zip(rgb, want, strict=True))


async def test_agent_attends_back_to_back_meetings_from_start_to_end(
    app: web.Application, client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit
) -> None:
    room, _, token = await room_with_terminal(db, city, "天河区视频会议室")
    person = await add_person(db, city.id, "chen@gz.gov.cn", "陈静")
    agent = agent_for(str(client.make_url("")).rstrip("/"), token, ORANGE, lead=1.0)
    task = agent.start()
    try:
        await until(lambda: agent.connected)
        first_start = soon(3)
        first = await book(client, staff, city, [room], first_start, 5, people=[person.id])
        second_start = datetime.fromisoformat(first["end_utc"].replace("Z", "+00:00"))
        second = await book(client, staff, city, [room], second_start, 4, title="第二场")
        a = conference_of(first["id"], first_start)
        b = conference_of(second["id"], second_start)
        await until(lambda: {x.conference for x in agent.bookings} == {a, b}, 3)

        await until(lambda: agent.conference == a, 10)

        # an invitee in the same conference sees the room's camera (the test pattern)
        ws = str(client.make_url("/ws")).replace("http://", "ws://")
        link = app[LINKS].sign("join", first["id"], person.id)
        invitee = ConferenceClient(ws, link, host_addresses=LOOPBACK)
        try:
            await invitee.connect()
            await invitee.wait_until(
                lambda: any(t.kind == "video" for _, t in invitee.remote_tracks.values()), 10
            )
            video = next(t for _, t in invitee.remote_tracks.values() if t.kind == "video")
            rgb = (0.0, 0.0, 0.0)
            for _ in range(60):
                rgb = mean_rgb(await asyncio.wait_for(video.recv(), 5))  # type: ignore[arg-type]
                if near(rgb, ORANGE):
                    break
            assert near(rgb, ORANGE), rgb
        finally:
            await invitee.close()

        await until(lambda: agent.conference is None and len(agent.history) == 4, 15)
        assert [(e, c) for e, c, _ in agent.history] == [
            ("joined", a), ("left", a), ("joined", b), ("left", b)
        ]  # fmt: skip
        times = [at for _, _, at in agent.history]
        second_end = second_start + timedelta(seconds=4)
        # joined about `lead` (1 s) early; left at the end; the next one straight after
        assert 0 <= (first_start - times[0]).total_seconds() <= 1.5, times[0]
        assert 0 <= (times[1] - second_start).total_seconds() < 1.0, times[1]
        assert 0 <= (times[2] - second_start).total_seconds() < 1.5, times[2]
        assert 0 <= (times[3] - second_end).total_seconds() < 1.0, times[3]
    finally:
        agent.stop()
        await task


async def test_agent_offline_when_its_meeting_starts_joins_when_it_comes_back(
    app: web.Application, client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit
) -> None:
    room, _, token = await room_with_terminal(db, city, "越秀区视频会议室")
    assert client.port is not None
    proxy = Proxy(client.port)
    await proxy.plug()
    agent = agent_for(f"http://127.0.0.1:{proxy.port}", token, lead=1.0)
    task = agent.start()
    try:
        await until(lambda: agent.connected)
        await proxy.unplug()  # the terminal's network fails
        await until(lambda: not agent.connected, 5)
        start = soon(1)
        meeting = await book(client, staff, city, [room], start, 15)
        # the meeting starts while the agent is offline
        await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()))
        assert agent.conference is None and agent.bookings == []
        await asyncio.sleep(0.5)

        await proxy.plug()  # back: reconnects (backoff ≤ 0.5 s here) and joins at once
        back = time.monotonic()
        await until(lambda: agent.conference == conference_of(meeting["id"], start), 10)
        assert time.monotonic() - back < 5
    finally:
        agent.stop()
        await task
        await proxy.unplug()
