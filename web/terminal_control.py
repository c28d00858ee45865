"""The terminal control channel (``GET /terminal/ws``): presence of room terminals and pushes.

For the terminal agent (``rooms.agent``) and for administrators. An agent authenticates
with its token (``Authorization: Bearer smr_…`` on the upgrade request), says ``hello``,
and stays connected; the server pushes its room's upcoming bookings at once and again
whenever a change of a meeting touches the room (after the change commits), and tells it
to ``join`` now when a meeting is convened. The agent reports its state every
``heartbeat`` seconds. Messages are documented in ``docs/terminals.md``.

Presence is kept in memory (live details: conference, media statistics) and in
``terminal_presence`` (online since, last seen, version). Going online or offline is an
event for the hooks in :data:`TERMINAL_EVENTS` (a later webhook feature listens there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import utcnow
from rooms.presence import PresenceStore
from scheduling.aftercommit import after_commit
from scheduling.changes import MeetingChange
from scheduling.room_agenda import BookedOccurrence, RoomAgenda, rooms_touched
from web.auth import Access, authorize

log = logging.getLogger(__name__)

VERSION = 1
HEARTBEAT = 10.0
"""Seconds between two ``status`` reports of an agent (told to it in ``welcome``)."""
PERSIST_EVERY = 60.0
"""``last_seen_at`` is written at most this often per terminal (it is fresh in memory)."""
HELLO_TIMEOUT = 10.0
MAX_MESSAGE = 64 * 1024
CLOSE_PROTOCOL, CLOSE_REVOKED, CLOSE_REPLACED, CLOSE_SHUTDOWN = 4000, 4003, 4009, 4503
TERMINALS_ONLY = Access(terminal=True)


@dataclass(frozen=True, slots=True)
class TerminalEvent:
    """A terminal's agent came online or went offline."""

    kind: Literal["online", "offline"]
    terminal_id: int
    room_id: int
    at: datetime
    agent_version: str | None


TerminalEventHook = Callable[[TerminalEvent], Awaitable[None]]
TERMINAL_EVENTS: web.AppKey[list[TerminalEventHook]] = web.AppKey("terminal_events")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hello(_In):
    type: Literal["hello"]
    version: int
    agent: Annotated[str, Field(min_length=1, max_length=100)]


class Status(_In):
    type: Literal["status"]
    state: Literal["idle", "joining", "in_conference", "leaving"]
    conference: Annotated[str, Field(max_length=100)] | None = None
    participant: Annotated[str, Field(max_length=64)] | None = None
    media: dict[str, Any] = Field(default_factory=dict)


class Ping(_In):
    type: Literal["ping"]
    id: Annotated[int, Field(ge=0)] | None = None


_messages: TypeAdapter[Any] = TypeAdapter(
    Annotated[Hello | Status | Ping, Field(discriminator="type")]
)


class ProtocolError(Exception):
    """The agent broke the protocol: answered with an ``error``, then the socket closes."""


def parse(text: str) -> Hello | Status | Ping:
    try:
        message: Hello | Status | Ping = _messages.validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolError(f"bad message: {where}: {first['msg']}") from None
    return message


def booking_json(b: BookedOccurrence) -> dict[str, Any]:
    return {
        "conference": b.conference,
        "meeting_id": b.meeting_id,
        "title": b.title,
        "starts_at": b.starts_at.isoformat(),
        "ends_at": b.ends_at.isoformat(),
    }


@dataclass(eq=False)
class Connection:
    """One connected agent."""

    terminal_id: int
    room_id: int
    name: str
    room_name: str
    token_prefix: str
    ws: web.WebSocketResponse
    agent_version: str
    online_since: datetime
    last_seen: datetime
    state: str = "idle"
    conference: str | None = None
    participant: str | None = None
    media: dict[str, Any] = field(default_factory=dict)
    persisted_at: float = field(default_factory=time.monotonic)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> bool:
        if self.ws.closed:
            return False
        text = json.dumps({**message, "server_time": utcnow().isoformat()}, ensure_ascii=False)
        async with self._lock:
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        return True


class TerminalRegistry:
    """Every connected terminal agent of this server, and the pushes to them."""

    def __init__(
        self, presence: PresenceStore, agenda: RoomAgenda, hooks: list[TerminalEventHook]
    ) -> None:
        self.presence = presence
        self.agenda = agenda
        self.hooks = hooks
        self.connections: dict[int, Connection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    # -- pushes -----------------------------------------------------------------------

    def in_rooms(self, room_ids: Iterable[int]) -> list[Connection]:
        wanted = set(room_ids)
        return [c for c in self.connections.values() if c.room_id in wanted]

    async def push_bookings(self, room_ids: Iterable[int], reason: str) -> int:
        """Send the current bookings to every connected terminal of these rooms."""
        targets = self.in_rooms(room_ids)
        if not targets:
            return 0
        agendas = await self.agenda.of_rooms({c.room_id for c in targets}, utcnow())
        sent = 0
        for conn in targets:
            listed = [booking_json(b) for b in agendas.get(conn.room_id, [])]
            if await conn.send({"type": "bookings", "reason": reason, "bookings": listed}):
                sent += 1
        log.info("pushed bookings (%s) to %s terminal(s) of rooms %s", reason, sent, room_ids)
        return sent

    async def command_join(
        self, room_ids: Iterable[int], conference: str, title: str, reason: str
    ) -> list[int]:
        """Tell every connected terminal of these rooms to join ``conference`` now."""
        told = []
        for conn in self.in_rooms(room_ids):
            message = {"type": "join", "conference": conference, "title": title, "reason": reason}
            if await conn.send(message):
                told.append(conn.terminal_id)
        log.info("told terminals %s to join %s (%s)", told, conference, reason)
        return told

    async def meeting_changed(self, session: AsyncSession, change: MeetingChange) -> None:
        """Meeting change listener: push the touched rooms' bookings once committed."""
        rooms = await rooms_touched(session, change)
        if rooms:
            after_commit(session, lambda: self.spawn(self.push_bookings(rooms, change.kind)))

    # -- the socket ---------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /terminal/ws``: one agent, from hello until it goes away."""
        who = await authorize(request, TERMINALS_ONLY)
        assert who.terminal_id is not None and who.room_id is not None
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        ws = web.WebSocketResponse(heartbeat=2 * HEARTBEAT, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        conn: Connection | None = None
        try:
            hello = await self._hello(ws)
            conn = await self._online(who.terminal_id, token, hello, ws)
            if conn is None:
                await _close(ws, CLOSE_REVOKED, "revoked", "the terminal is revoked")
                return ws
            await self._serve(conn)
        except ProtocolError as exc:
            await _close(ws, CLOSE_PROTOCOL, "protocol_error", str(exc))
        finally:
            if conn is not None:
                # aiohttp cancels the handler when the peer goes away: going offline (the
                # stored presence, the event) must finish anyway.
                offline = asyncio.ensure_future(self._offline(conn))
                self._tasks.add(offline)
                offline.add_done_callback(self._done)
                await asyncio.shield(offline)
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> Hello:
        try:
            msg = await ws.receive(timeout=HELLO_TIMEOUT)
        except TimeoutError:
            raise ProtocolError("no hello within 10 s") from None
        if msg.type != WSMsgType.TEXT:
            raise ProtocolError("the first message must be a text 'hello'")
        hello = parse(msg.data)
        if not isinstance(hello, Hello):
            raise ProtocolError("the first message must be 'hello'")
        if hello.version != VERSION:
            raise ProtocolError(f"protocol version {hello.version} is not spoken here ({VERSION})")
        return hello

    async def _online(
        self, terminal_id: int, token: str, hello: Hello, ws: web.WebSocketResponse
    ) -> Connection | None:
        now = utcnow()
        row = await self.presence.came_online(terminal_id, hello.agent, now)
        if row is None:
            return None
        previous = self.connections.get(terminal_id)
        conn = Connection(
            terminal_id, row.room.id, row.terminal.name, row.room.name,
            row.terminal.token_prefix, ws, hello.agent, now, now,
        )  # fmt: skip
        self.connections[terminal_id] = conn
        if previous is not None:
            await _close(previous.ws, CLOSE_REPLACED, "replaced", "connected again elsewhere")
        log.info("terminal %s (%s) online with %s", terminal_id, conn.room_name, hello.agent)
        await conn.send(
            {
                "type": "welcome",
                "version": VERSION,
                "heartbeat": HEARTBEAT,
                "terminal": {"id": terminal_id, "name": conn.name, "room_id": conn.room_id,
                             "room_name": conn.room_name},
            }
        )  # fmt: skip
        await self.push_bookings([conn.room_id], "connected")
        self._event(TerminalEvent("online", terminal_id, conn.room_id, now, hello.agent))
        return conn

    async def _serve(self, conn: Connection) -> None:
        async for msg in conn.ws:
            if msg.type != WSMsgType.TEXT:
                raise ProtocolError("messages are JSON text")
            message = parse(msg.data)
            conn.last_seen = utcnow()
            if isinstance(message, Hello):
                raise ProtocolError("'hello' was already received")
            if isinstance(message, Ping):
                await conn.send({"type": "pong", "id": message.id})
                continue
            changed = message.conference != conn.conference or message.state != conn.state
            conn.state, conn.conference = message.state, message.conference
            conn.participant, conn.media = message.participant, message.media
            if changed:
                log.info("terminal %s is %s %s", conn.terminal_id, conn.state, conn.conference)
            if changed or time.monotonic() - conn.persisted_at >= PERSIST_EVERY:
                conn.persisted_at = time.monotonic()
                valid = await self.presence.seen(
                    conn.terminal_id, conn.token_prefix, conn.last_seen, conn.conference
                )
                if not valid:
                    await _close(conn.ws, CLOSE_REVOKED, "revoked", "the token was revoked")
                    return

    async def _offline(self, conn: Connection) -> None:
        if self.connections.get(conn.terminal_id) is not conn:
            return  # replaced by a newer connection: still online
        del self.connections[conn.terminal_id]
        now = utcnow()
        with contextlib.suppress(Exception):  # the database may be closing with the app
            await self.presence.went_offline(conn.terminal_id, now)
        log.info("terminal %s (%s) offline", conn.terminal_id, conn.room_name)
        self._event(TerminalEvent("offline", conn.terminal_id, conn.room_id, now, None))

    # -- events and tasks -------------------------------------------------------------------

    def _event(self, event: TerminalEvent) -> None:
        for hook in list(self.hooks):
            self.spawn(_call(hook, event))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._closing:
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("terminal channel task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Close every agent's socket (they reconnect to the next server) and wait."""
        for conn in list(self.connections.values()):
            await _close(conn.ws, CLOSE_SHUTDOWN, "server_shutdown", "the server is stopping")
        self._closing = True
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def _call(hook: TerminalEventHook, event: TerminalEvent) -> None:
    try:
        await hook(event)
    except Exception:  # a listener must not break presence
        log.exception("terminal event hook failed on %s", event.kind)


async def _close(ws: web.WebSocketResponse, code: int, reason: str, message: str) -> None:
    if ws.closed:
        return
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(json.dumps({"type": "error", "code": reason, "message": message}))
    await ws.close(code=code, message=reason.encode())
