"""One participant as the hub sees it: what its token granted, and its socket if it has one.

Browsers and terminals talk over a WebSocket (an ordered outgoing queue drained by a writer
task). WHIP publishers and WHEP viewers have no socket: they offered over HTTP once and
are told nothing afterwards, so messages for them are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from signaling import protocol
from signaling.errors import CLOSE_NORMAL, CLOSE_SERVER

log = logging.getLogger(__name__)

ClientKind = Literal["browser", "terminal", "whip", "whep", "guest", "bot"]
MAX_QUEUED = 2000  # messages waiting for a slow socket before it is dropped


@dataclass(frozen=True)
class JoinGrant:
    """What a valid token lets its holder do: join ``conference`` as ``identity``."""

    conference: str
    identity: str  # stable across reconnections: "person:12", "terminal:3", ...
    name: str
    kind: ClientKind = "browser"
    role: Literal["chair", "participant"] = "participant"
    title: str = ""
    ends_at: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)  # for the callbacks' own use


class Session:
    """One participant: an ordered outgoing queue drained by a writer task, if it has a socket."""

    def __init__(
        self, participant: str, grant: JoinGrant, ws: web.WebSocketResponse | None
    ) -> None:
        self.id = participant
        self.grant = grant
        self.ws = ws
        self.joined_at = datetime.now(UTC)
        self.muted = {"audio": False, "video": False}
        self.published: set[str] = set()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer = (
            asyncio.create_task(self._write(ws), name=f"ws-writer-{participant}")
            if ws is not None
            else None
        )
        self.close_code: int | None = None

    @property
    def has_socket(self) -> bool:
        return self.ws is not None

    @property
    def socket_open(self) -> bool:
        return self.ws is not None and not self.ws.closed

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.grant.name,
            "kind": self.grant.kind,
            "role": self.grant.role,
            "audio_muted": self.muted["audio"],
            "video_muted": self.muted["video"],
            "published": sorted(self.published),
        }

    def send(self, text: str) -> None:
        if self._writer is None:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("participant %s is not reading; dropping its socket", self.id)
            self.close_code = CLOSE_SERVER
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(text)

    async def _write(self, ws: web.WebSocketResponse) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                await ws.close(code=self.close_code or CLOSE_NORMAL)
                return
            try:
                await ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def close(self, code: int, reason: dict[str, Any] | None = None) -> None:
        """Send ``reason`` (if any) after what is queued, then close the socket."""
        if self._writer is None:
            return
        if reason is not None:
            self.send(protocol.dumps(reason))
        self.close_code = code
        self._queue.put_nowait(None)

    async def stop(self) -> None:
        if self._writer is None:
            return
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer

    async def close_socket(self) -> None:
        """Close the socket now if the writer did not (no-op without one)."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.close(code=self.close_code or CLOSE_NORMAL)
