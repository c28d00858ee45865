"""The terminal control channel against the running app: pushes of bookings, presence,
the administrators' status endpoint and page, and the online/offline events.

A plain aiohttp WebSocket client plays the agent where the protocol itself is checked; an
in-process :class:`rooms.agent.agent.TerminalAgent` where a real conference is needed.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Unit
from tests.conftest import PASSWORD, Staff
from tests.web.terminal_fixtures import (
    agent_for,
    book,
    conference_of,
    room_with_terminal,
    soon,
    until,
)
from web.terminal_control import TERMINAL_EVENTS, TerminalEvent

PUSH_WITHIN = 1.0  # seconds from the API's answer to the message at the terminal


class Control:
    """A control-channel client that records every message the server sends."""

    def __init__(self, client: TestClient[Any, Any], token: str, agent: str = "probe/1.0") -> None:
        self.url = str(client.make_url("/terminal/ws"))
        self.token = token
        self.agent = agent
        self.messages: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> Control:
        self._http = aiohttp.ClientSession()
        try:
            self.ws = await self._http.ws_connect(
                self.url, headers={"Authorization": f"Bearer {self.token}"}
            )
        except aiohttp.ClientError:
            await self._http.close()
            raise
        await self.send({"type": "hello", "version": 1, "agent": self.agent})
        self._reader = asyncio.create_task(self._read())
        await self.wait(lambda m: m["type"] == "bookings" and m["reason"] == "connected", 5)
        return self

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(message))

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
        self.close_code = self.ws.close_code

    async def wait(self, predicate: Any, timeout: float = PUSH_WITHIN) -> dict[str, Any]:
        found: dict[str, Any] = await until(
            lambda: next((m for m in reversed(self.messages) if predicate(m)), None), timeout
        )
        return found

    def bookings(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == "bookings"]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._http is not None:
            await self._http.close()


@pytest.fixture
async def controls() -> Any:
    made: list[Control] = []
    yield made
    for c in made:
        await c.close()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_bookings_made_moved_and_cancelled_reach_the_terminal_at_once(
    client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit, controls: list[Control]
) -> None:
    room_a, _, token_a = await room_with_terminal(db, city, "天河区视频会议室")
    room_b, _, token_b = await room_with_terminal(db, city, "越秀区视频会议室")
    a = await Control(client, token_a).connect()
    b = await Control(client, token_b).connect()
    controls.extend([a, b])
    welcome = a.messages[0]
    assert welcome["type"] == "welcome" and welcome["terminal"]["room_id"] == room_a
    assert welcome["heartbeat"] > 0 and "server_time" in welcome
    assert a.bookings()[-1]["bookings"] == []
    headers = await staff.headers(Role.SECRETARIAT)

    # made
    start = soon(600)
    meeting = await book(client, staff, city, [room_a], start, 1800, title="防汛工作会议")
    t0 = time.monotonic()
    pushed = await a.wait(lambda m: m["type"] == "bookings" and m["reason"] == "created")
    assert time.monotonic() - t0 < PUSH_WITHIN
    (listed,) = pushed["bookings"]
    assert listed["conference"] == conference_of(meeting["id"], start)
    assert listed["title"] == "防汛工作会议" and listed["meeting_id"] == meeting["id"]
    assert utc(listed["starts_at"]) == start
    assert utc(listed["ends_at"]) == start + timedelta(seconds=1800)

    # moved (a new time, then to the other room)
    later = start + timedelta(hours=1)
    r = await client.patch(
        f"/api/v1/meetings/{meeting['id']}", headers=headers,
        json={"start": later.isoformat(), "end": (later + timedelta(minutes=45)).isoformat()},
    )  # fmt: skip
    assert r.status == 200, await r.text()
    t0 = time.monotonic()
    pushed = await a.wait(lambda m: m["type"] == "bookings" and m["reason"] == "updated")
    assert time.monotonic() - t0 < PUSH_WITHIN
    (listed,) = pushed["bookings"]
    assert utc(listed["starts_at"]) == later
    assert utc(listed["ends_at"]) == later + timedelta(minutes=45)

    r = await client.patch(
        f"/api/v1/meetings/{meeting['id']}", headers=headers, json={"room_ids": [room_b]}
    )
    assert r.status == 200, await r.text()
    t0 = time.monotonic()
    await a.wait(
        lambda m: m["type"] == "bookings" and m["reason"] == "updated" and not m["bookings"]
    )
    pushed = await b.wait(lambda m: m["type"] == "bookings" and m["reason"] == "updated")
    assert time.monotonic() - t0 < PUSH_WITHIN
    assert [x["meeting_id"] for x in pushed["bookings"]] == [meeting["id"]]

    # cancelled
    r = await client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    t0 = time.monotonic()
    pushed = await b.wait(lambda m: m["type"] == "bookings" and m["reason"] == "cancelled")
    assert time.monotonic() - t0 < PUSH_WITHIN
    assert pushed["bookings"] == []
    assert all("server_time" in m for m in a.messages + b.messages)


async def test_one_occurrence_moved_or_cancelled_is_pushed(
    client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit, controls: list[Control]
) -> None:
    room, _, token = await room_with_terminal(db, city, "海珠区视频会议室")
    c = await Control(client, token).connect()
    controls.append(c)
    start = soon(600)
    headers = await staff.headers(Role.SECRETARIAT)
    body = {
        "title": "每日调度会", "unit_id": city.id, "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(), "rrule": "FREQ=DAILY;COUNT=3",
        "attendees": [], "room_ids": [room],
    }  # fmt: skip
    r = await client.post("/api/v1/meetings", json=body, headers=headers)
    assert r.status == 201, await r.text()
    meeting = (await r.json())["id"]
    pushed = await c.wait(lambda m: m["reason"] == "created" if m["type"] == "bookings" else False)
    assert len(pushed["bookings"]) == 2  # the third one is beyond the 36 h horizon

    key = int(start.timestamp())
    moved = start + timedelta(hours=2)
    r = await client.patch(
        f"/api/v1/meetings/{meeting}/occurrences/{key}", headers=headers,
        json={"start": moved.isoformat(), "end": (moved + timedelta(minutes=30)).isoformat()},
    )  # fmt: skip
    assert r.status == 200, await r.text()
    pushed = await c.wait(lambda m: m.get("reason") == "occurrence_updated")
    first = pushed["bookings"][0]
    assert utc(first["starts_at"]) == moved
    assert first["conference"] == conference_of(meeting, start)  # the occurrence keeps its id

    r = await client.post(f"/api/v1/meetings/{meeting}/occurrences/{key}/cancel", headers=headers)
    assert r.status == 200, await r.text()
    pushed = await c.wait(lambda m: m.get("reason") == "occurrence_cancelled")
    assert [utc(x["starts_at"]) for x in pushed["bookings"]] == [start + timedelta(days=1)]


async def test_the_channel_refuses_other_credentials_and_replaces_a_second_connection(
    client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit, controls: list[Control]
) -> None:
    _, _, token = await room_with_terminal(db, city, "荔湾区视频会议室")
    for bad, status in (("smr_nope", 401), (await staff.token(Role.ADMIN), 403)):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await Control(client, bad).connect()
        assert info.value.status == status
    first = await Control(client, token).connect()
    second = await Control(client, token).connect()
    controls.extend([first, second])
    await until(lambda: first.close_code == 4009, 2)
    assert second.close_code is None
    # a protocol error is answered, then the socket closes with 4000
    await second.send({"type": "status", "state": "dancing"})
    await until(lambda: second.close_code == 4000, 2)
    assert second.messages[-1]["code"] == "protocol_error"


async def test_status_endpoint_page_and_events_follow_the_agent(
    app: web.Application,
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    controls: list[Control],
) -> None:
    room, terminal_id, token = await room_with_terminal(db, city, "白云区视频会议室")
    _, never_id, _ = await room_with_terminal(db, city, "黄埔区视频会议室")
    _, revoked_id, _ = await room_with_terminal(db, city, "番禺区视频会议室")
    await Directory(db).revoke_terminal(revoked_id)
    events: list[TerminalEvent] = []

    async def hook(event: TerminalEvent) -> None:
        events.append(event)

    app[TERMINAL_EVENTS].append(hook)
    admin = await staff.headers(Role.ADMIN)

    async def statuses() -> dict[int, dict[str, Any]]:
        r = await client.get("/api/v1/terminals/status", headers=admin)
        assert r.status == 200, await r.text()
        return {s["terminal_id"]: s for s in await r.json()}

    before = await statuses()
    assert not before[terminal_id]["online"] and before[terminal_id]["last_seen_at"] is None
    assert before[revoked_id]["revoked"] and not before[never_id]["revoked"]

    start = soon(1)
    meeting = await book(client, staff, city, [room], start, 60)
    conference = conference_of(meeting["id"], start)
    agent = agent_for(str(client.make_url("")).rstrip("/"), token, lead=1.0)
    task = agent.start()
    try:
        await until(lambda: agent.conference == conference, 10)
        await until(lambda: [e.kind for e in events] == ["online"], 2)
        online = events[0]
        assert (online.terminal_id, online.room_id) == (terminal_id, room)
        assert online.agent_version == "suimeet-terminal/0.1.0"

        async def in_conference() -> dict[str, Any]:
            s = (await statuses())[terminal_id]
            return s if s["conference"] == conference and s["media"] else {}

        now = await _poll(in_conference, 5)
        assert now["online"] and now["state"] == "in_conference"
        assert now["agent_version"] == "suimeet-terminal/0.1.0"
        assert now["online_since"] and now["last_seen_at"]
        assert "bitrate_in_bps" in now["media"]
        assert now["agent_media"]["sources"].startswith("video testsrc")

        # the page, for administrators only
        assert (await client.get("/admin/terminals", allow_redirects=False)).status == 302
        await _login(client, staff, Role.STAFF)
        assert (await client.get("/admin/terminals")).status == 403
        client.session.cookie_jar.clear()
        await _login(client, staff, Role.ADMIN)
        page = await client.get("/admin/terminals")
        assert page.status == 200
        html = await page.text()
        assert "会议室终端状态" in html and "白云区视频会议室终端" in html
        assert f'data-terminal="{terminal_id}" class="online"' in html
        assert conference in html and "suimeet-terminal/0.1.0" in html
        assert f'data-terminal="{never_id}" class="offline"' in html and "已吊销" in html
        english = await (await client.get("/admin/terminals?lang=en")).text()
        assert "Room terminals" in english and "online" in english
    finally:
        agent.stop()
        await task

    await until(lambda: [e.kind for e in events] == ["online", "offline"], 5)
    assert events[1].terminal_id == terminal_id and events[1].agent_version is None
    after = (await statuses())[terminal_id]
    assert not after["online"] and after["conference"] is None and after["state"] is None
    assert after["agent_version"] == "suimeet-terminal/0.1.0"  # as last stored
    assert utc(after["last_seen_at"]) >= utc(now["online_since"])
    # the OA webhooks hear of it too: both changes are in the durable outbox
    from scheduling.events import WebhookEvent

    async def outbox() -> list[str]:
        async with db.read() as session:
            rows = await session.scalars(
                select(WebhookEvent.type)
                .where(WebhookEvent.stream == f"terminal:{terminal_id}")
                .order_by(WebhookEvent.id)
            )
            return list(rows.all())

    for _ in range(50):
        if await outbox() == ["terminal.online", "terminal.offline"]:
            break
        await asyncio.sleep(0.1)
    assert await outbox() == ["terminal.online", "terminal.offline"]


async def test_a_failing_event_hook_does_not_break_presence(
    app: web.Application, client: TestClient[Any, Any], db: Database, city: Unit,
    controls: list[Control],
) -> None:  # fmt: skip
    _, _, token = await room_with_terminal(db, city, "花都区视频会议室")
    seen: list[str] = []

    async def broken(event: TerminalEvent) -> None:
        raise RuntimeError("listener bug")

    async def working(event: TerminalEvent) -> None:
        seen.append(event.kind)

    app[TERMINAL_EVENTS].extend([broken, working])
    c = await Control(client, token).connect()
    await until(lambda: seen == ["online"], 2)
    await c.close()
    await until(lambda: seen == ["online", "offline"], 2)


async def _poll(probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            assert value, "condition not met"
            return value
        await asyncio.sleep(0.1)


async def _login(client: TestClient[Any, Any], staff: Staff, role: Role) -> None:
    email, _ = await staff.account(role)
    r = await client.post("/login", data={"email": email, "password": PASSWORD, "next": "/"},
                          allow_redirects=False)  # fmt: skip
    assert r.status == 302, await r.text()
