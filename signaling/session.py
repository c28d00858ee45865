"""One participant as the hub sees it: what its token granted, and its socket if it has one.

Browsers and terminals talk over a WebSocket (a :class:`Connection`: an ordered outgoing
queue drained by a writer task). A participant keeps its id and its :class:`Session` across
reconnections: while it is ``reconnecting`` it has no connection, and a new socket of the
same identity is attached to it again. WHIP publishers and WHEP viewers never have a
socket: they offered over HTTP once and are told nothing afterwards, so messages for them
are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from media.messages import ParticipantStats
from signaling import protocol
from signaling.errors import CLOSE_NORMAL, CLOSE_SERVER
from signaling.hooks import ParticipantRef

log = logging.getLogger(__name__)

ClientKind = Literal["browser", "terminal", "whip", "whep", "guest", "bot"]
SessionState = Literal["lobby", "connected", "reconnecting"]
MAX_QUEUED = 2000  # messages waiting for a slow socket before it is dropped
STALL_AFTER = 5.0  # a pinging session silent this long is shown as reconnecting
FLUSH_TIMEOUT = 5.0  # how long a closing socket may take to send what is queued


@dataclass(frozen=True)
class JoinGrant:
    """What a valid token lets its holder do: join ``conference`` as ``identity``."""

    conference: str
    identity: str  # stable across reconnections: "person:12", "terminal:3", "guest:…"
    name: str
    kind: ClientKind = "browser"
    role: Literal["chair", "participant"] = "participant"
    title: str = ""
    ends_at: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # for the callbacks' own use


class Connection:
    """One WebSocket: an ordered outgoing queue drained by a writer task.

    Whoever serves the socket owns the connection and calls :meth:`finish` when done.
    """

    def __init__(self, ws: web.WebSocketResponse, label: str = "") -> None:
        self.ws = ws
        self.close_code: int | None = None
        self._closing = False
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"ws-writer-{label}")

    @property
    def open(self) -> bool:
        return not self._closing and not self.ws.closed

    def send(self, text: str) -> None:
        if self._closing:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("a participant is not reading; dropping its socket")
            self.close(CLOSE_SERVER)
            return
        self._queue.put_nowait(text)

    def close(self, code: int, reason: dict[str, Any] | None = None) -> None:
        """Send ``reason`` (if any) after what is queued, then close the socket with ``code``."""
        if self._closing:
            return
        if reason is not None:
            self._queue.put_nowait(protocol.dumps(reason))
        self.close_code = code
        self._closing = True
        self._queue.put_nowait(None)

    async def _write(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                await self.ws.close(code=self.close_code or CLOSE_NORMAL)
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def finish(self) -> None:
        """Flush, close the socket and end the writer (idempotent)."""
        self.close(self.close_code or CLOSE_NORMAL)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._writer), FLUSH_TIMEOUT)
        if not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if not self.ws.closed:
            await self.ws.close(code=self.close_code or CLOSE_NORMAL)


class Session:
    """One participant, from its first hello (or lobby wait) until it is gone for good."""

    def __init__(self, participant: str, grant: JoinGrant, conn: Connection | None) -> None:
        self.id = participant
        self.grant = grant
        self.conn = conn
        self.has_socket = conn is not None  # False: a WHIP/WHEP participant (no socket, ever)
        self.state: SessionState = "connected"
        self.joined_at = datetime.now(UTC)
        self.muted = {"audio": False, "video": False}
        self.published: set[str] = set()  # "audio", "video", "screen"
        self.last_seen = time.monotonic()
        self.pinged = False  # the watchdog only watches sessions that ping
        self.last_stats: ParticipantStats | None = None
        self.grace: asyncio.Task[None] | None = None
        self.media_lock = asyncio.Lock()  # a release and a resume of its media never overlap
        self.client = "unknown"  # the hello's client text, for logs

    @property
    def socket_open(self) -> bool:
        return self.conn is not None and self.conn.open

    @property
    def is_chair(self) -> bool:
        return self.grant.role == "chair"

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.grant.name,
            "kind": self.grant.kind,
            "role": self.grant.role,
            "state": "reconnecting" if self.state == "reconnecting" else "connected",
            "audio_muted": self.muted["audio"],
            "video_muted": self.muted["video"],
            "published": sorted(self.published),
        }

    def ref(self) -> ParticipantRef:
        grant = self.grant
        return ParticipantRef(
            self.id, grant.identity, grant.name, grant.role, grant.kind, grant.meta
        )

    def send(self, text: str) -> None:
        if self.conn is not None:
            self.conn.send(text)

    def send_message(self, message: dict[str, Any]) -> None:
        self.send(protocol.dumps(message))

    def heard(self, *, ping: bool = False) -> None:
        """A message arrived from the client."""
        self.last_seen = time.monotonic()
        self.pinged = self.pinged or ping

    def stalled(self, now: float) -> bool:
        """True if a connected, pinging session has been silent too long."""
        return (
            self.state == "connected"
            and self.pinged
            and self.conn is not None
            and now - self.last_seen > STALL_AFTER
        )

    def close(self, code: int, reason: dict[str, Any] | None = None) -> None:
        """Close the socket (after ``reason``) and forget it; the socket's owner finishes it."""
        if self.conn is not None:
            self.conn.close(code, reason)
            self.conn = None

    def cancel_grace(self) -> None:
        if self.grace is not None and self.grace is not asyncio.current_task():
            self.grace.cancel()
        self.grace = None
