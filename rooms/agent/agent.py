"""The terminal agent: a control channel to the server and the room's part in its meetings.

Two loops run side by side. The control loop keeps ``/terminal/ws`` open (reconnecting
with exponential backoff and jitter), takes the room's bookings and ``join`` commands
from it and reports the agent's state every heartbeat. The schedule loop decides with
:func:`rooms.agent.schedule.plan` when to join and leave conferences, from the last
bookings known, so meetings are attended even while the control channel is down.
Everything the agent does is logged with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from rooms.agent import VERSION
from rooms.agent.media import MediaSources
from rooms.agent.schedule import Booking, backoff, plan
from signaling.client import ConferenceClient, ConnectionClosed

log = logging.getLogger(__name__)

CLOSE_ENDED = 4010  # the conference was ended for everyone: do not join it again
CLOSE_REMOVED = 4011  # the chair removed this room: do not join it again either
RETRY_JOIN = 3.0
MAX_SLEEP = 30.0


def ws_base(server: str) -> str:
    """``http://host:port`` → ``ws://host:port`` (``https`` → ``wss``)."""
    server = server.rstrip("/")
    if server.startswith("https://"):
        return "wss://" + server[len("https://") :]
    if server.startswith("http://"):
        return "ws://" + server[len("http://") :]
    return server


class TerminalAgent:
    """Attends the meetings of one room's terminal until :meth:`stop`."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        sources: MediaSources | None = None,
        lead: float = 5.0,
        host_addresses: Sequence[str] | None = None,
        reconnect_base: float = 1.0,
        reconnect_cap: float = 60.0,
    ) -> None:
        base = ws_base(server)
        self.control_url = f"{base}/terminal/ws"
        self.conference_url = f"{base}/ws"
        self.token = token
        self.sources = sources or MediaSources()
        self.lead = timedelta(seconds=lead)
        self.host_addresses = list(host_addresses) if host_addresses is not None else None
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.bookings: list[Booking] = []
        self.connected = False
        self.conference: str | None = None
        self.history: list[tuple[str, str, datetime]] = []
        """("joined" | "left", conference, server time): what the agent did, for tests."""
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self._client: ConferenceClient | None = None
        self._leaving: ConferenceClient | None = None
        self._ends_at: datetime | None = None
        self._forced: str | None = None
        self._commanded: str | None = None  # the current conference was joined on command
        self._refused: set[str] = set()
        self._retry_at: datetime | None = None
        self._offset = timedelta(0)  # server clock - local clock
        self._heartbeat = 10.0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._drains: set[asyncio.Task[None]] = set()

    # -- lifetime -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The server's time, as estimated from its messages."""
        return datetime.now(UTC) + self._offset

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancellation)."""
        log.info(
            "terminal agent %s for %s (%s)", VERSION, self.control_url, self.sources.describe()
        )
        self._tasks = [
            asyncio.create_task(self._control_loop(), name="terminal-control"),
            asyncio.create_task(self._schedule_loop(), name="terminal-schedule"),
        ]
        try:
            await self._stopping.wait()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._leave("the agent is stopping")

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(), name="terminal-agent")

    def stop(self) -> None:
        self._stopping.set()

    # -- control channel ------------------------------------------------------------------

    async def _control_loop(self) -> None:
        attempt = 0
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.ws_connect(
                        self.control_url, headers=headers, heartbeat=20.0
                    ) as ws:
                        self._ws = ws
                        await self._send({"type": "hello", "version": 1, "agent": VERSION})
                        attempt = await self._control_session(ws, attempt)
                except aiohttp.WSServerHandshakeError as exc:
                    level = logging.ERROR if exc.status in (401, 403) else logging.WARNING
                    log.log(level, "the server refused the control channel: HTTP %s", exc.status)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.warning("control channel unavailable: %s", exc or type(exc).__name__)
                finally:
                    self._ws = None
                    if self.connected:
                        log.info("control channel lost; keeping the last bookings known")
                    self.connected = False
                delay = backoff(attempt, base=self.reconnect_base, cap=self.reconnect_cap)
                attempt += 1
                log.info("reconnecting to the control channel in %.1f s", delay)
                await asyncio.sleep(delay)

    async def _control_session(self, ws: aiohttp.ClientWebSocketResponse, attempt: int) -> int:
        reporter: asyncio.Task[None] | None = None
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                if "server_time" in message:
                    server = datetime.fromisoformat(message["server_time"])
                    self._offset = server - datetime.now(UTC)
                kind = message.get("type")
                if kind == "welcome":
                    attempt = 0
                    self.connected = True
                    self._heartbeat = float(message.get("heartbeat", 10.0))
                    room = message["terminal"]["room_name"]
                    log.info("control channel up: terminal of %s", room)
                    reporter = asyncio.create_task(self._report_loop(), name="terminal-status")
                elif kind == "bookings":
                    self.bookings = [Booking.from_json(b) for b in message["bookings"]]
                    log.info(
                        "bookings (%s): %s", message.get("reason"),
                        ", ".join(f"{b.title} {b.starts_at:%H:%M:%S}–{b.ends_at:%H:%M:%S}"
                                  for b in self.bookings) or "none",
                    )  # fmt: skip
                    self._wake.set()
                elif kind == "join":
                    log.info("told to join %s now (%s)", message["conference"], message["reason"])
                    self._forced = str(message["conference"])
                    self._refused.discard(self._forced)
                    self._retry_at = None
                    self._wake.set()
                elif kind == "error":
                    log.warning("control channel error: %s", message.get("message"))
        finally:
            if reporter is not None:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        return attempt

    async def _send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_str(json.dumps(message))

    async def _report_loop(self) -> None:
        while True:
            await self.report()
            await asyncio.sleep(self._heartbeat)

    async def report(self) -> None:
        """Tell the server what the agent is doing now."""
        client = self._client
        await self._send(
            {
                "type": "status",
                "state": "in_conference" if self.conference else "idle",
                "conference": self.conference,
                "participant": client.participant if client is not None else None,
                "media": {
                    "frames_received": dict(self.frames),
                    "remote_tracks": len(client.remote_tracks) if client is not None else 0,
                    "sources": self.sources.describe(),
                },
            }
        )

    # -- conferences ------------------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            self._wake.clear()
            now = self.now()
            decision = plan(
                now, self.bookings, self.conference, self._ends_at, lead=self.lead,
                forced=self._forced, refused=frozenset(self._refused), commanded=self._commanded,
            )  # fmt: skip
            if decision.leave is not None:
                await self._leave(decision.leave)
                continue  # decide again at once: the next meeting may be on
            wake_at = decision.wake_at
            if decision.join is not None:
                if self._retry_at is None or now >= self._retry_at:
                    await self._join(decision.join)
                    continue
                wake_at = self._retry_at
            timeout = MAX_SLEEP
            if wake_at is not None:
                timeout = min(MAX_SLEEP, max(0.05, (wake_at - self.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _join(self, conference: str) -> None:
        booking = next((b for b in self.bookings if b.conference == conference), None)
        why = "told to" if conference == self._forced else "its booking is on"
        title = booking.title if booking else conference
        log.info("joining %s «%s» (%s)", conference, title, why)
        client = ConferenceClient(
            self.conference_url, self.token, tracks=self.sources.open(), client_name=VERSION,
            host_addresses=self.host_addresses, on_track=self._on_track,
        )  # fmt: skip
        try:
            welcome = await client.connect()
        except (ConnectionClosed, aiohttp.ClientError, OSError, TimeoutError) as exc:
            await client.close()
            self.sources.close()
            self._retry_at = self.now() + timedelta(seconds=RETRY_JOIN)
            log.warning("could not join %s (%s); trying again shortly", conference, exc)
            return
        joined = str(welcome["conference"]["id"])
        if joined != conference:
            log.info("the server placed the room in %s", joined)
        ends_at = welcome["conference"].get("ends_at")
        self._client, self.conference = client, joined
        self._ends_at = datetime.fromisoformat(ends_at) if ends_at else None
        self._retry_at = None
        if self._forced in (conference, joined):
            self._forced = None
            self._commanded = joined
        self.history.append(("joined", joined, self.now()))
        log.info("in conference %s as %s", joined, client.participant)
        self._drains.add(asyncio.create_task(self._watch(client)))
        await self.report()

    async def _watch(self, client: ConferenceClient) -> None:
        """Wake the schedule when the server ends our participation."""
        with contextlib.suppress(TimeoutError):
            await client.wait_until(lambda: client.closed is not None, timeout=1e9)
        if self._client is client and client.closed is not None and self._leaving is not client:
            if client.closed.code in (CLOSE_ENDED, CLOSE_REMOVED) and self.conference is not None:
                self._refused.add(self.conference)
            log.info("the server closed conference %s (%s)", self.conference, client.closed.code)
            await self._drop(client)
            self._retry_at = self.now() + timedelta(seconds=RETRY_JOIN)
            self._wake.set()

    async def _leave(self, reason: str) -> None:
        client = self._client
        if client is None:
            return
        log.info("leaving %s: %s", self.conference, reason)
        self._leaving = client
        await client.leave()
        await self._drop(client)
        await self.report()

    async def _drop(self, client: ConferenceClient) -> None:
        if self._client is not client:
            return
        if self.conference is not None:
            self.history.append(("left", self.conference, self.now()))
        self._client, self.conference, self._ends_at = None, None, None
        self._commanded = None
        await client.close()
        self.sources.close()
        current = asyncio.current_task()
        drains = [t for t in self._drains if t is not current]
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        self._drains = {t for t in self._drains if t is current}

    def _on_track(self, publisher: str | None, track: MediaStreamTrack) -> None:
        log.info("receiving %s from %s", track.kind, publisher)
        self._drains.add(asyncio.create_task(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Consume what others send (a real terminal would render it)."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames[track.kind] = self.frames.get(track.kind, 0) + 1
