"""Keeping a participant's place while its connection is gone (network loss, a reload).

A socket that closes without ``leave``, media that fails, or a pinging session silent for
:data:`~signaling.session.STALL_AFTER` seconds make a participant ``reconnecting``: the
others get ``participant_state``. A closed socket's media is released at once (its tracks
are unpublished). The same identity saying ``hello`` within the grace gets the same
participant id back (``welcome.resumed``) and a fresh offer, and the others see
``participant_state connected`` — never a leave and a join, and attendance hears nothing.
When the grace is over it leaves for good (``participant_left`` reason ``closed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from media import MediaError
from signaling import protocol
from signaling.conference import LiveConference
from signaling.errors import CLOSE_REPLACED, CLOSE_SERVER, NotNow
from signaling.session import Connection, JoinGrant, Session

if TYPE_CHECKING:
    from signaling.hub import ConferenceHub

log = logging.getLogger(__name__)

WATCHDOG_PERIOD = 1.0


class Reconnection:
    """Grace periods and the stall watchdog of one hub (``grace`` <= 0: no grace at all)."""

    def __init__(self, hub: ConferenceHub, grace: float) -> None:
        self._hub = hub
        self.grace = grace
        self._watchdog: asyncio.Task[None] | None = None

    async def resume(
        self,
        live: LiveConference,
        session: Session,
        conn: Connection,
        grant: JoinGrant,
        client: str,
    ) -> None:
        """The same identity again: its participant id back, a welcome and a fresh offer."""
        session.cancel_grace()
        session.close(CLOSE_REPLACED, {"type": "bye", "reason": "replaced"})  # an old socket
        session.conn = conn
        session.grant = grant
        session.client = client
        session.pinged = False
        session.heard()
        was = session.state
        session.state = "connected"
        async with session.media_lock:
            if self._hub.session_of(session.id) is not session:
                raise NotNow("this conference has ended for you", code="ended")
            self._hub.welcome(live, session, resumed=True)
            await self._hub.media_join(session)
        if was == "reconnecting":
            self.announce(session)
        log.info("%s is back in %s with %s (was %s)", session.id, live.id, client, was)

    async def suspend(self, session: Session) -> None:
        """Its socket went away without ``leave``: release its media and wait for it."""
        session.conn = None
        self.lost(session)
        async with session.media_lock:
            if session.conn is not None:  # it came back meanwhile
                return
            with contextlib.suppress(MediaError):
                session.last_stats = await self._hub.engine.stats(session.id)
            await self._hub.engine.leave(session.id)
        if session.conn is None and session.grace is None:
            log.info("%s is reconnecting to %s", session.id, session.grant.conference)
            session.grace = asyncio.create_task(self._expire(session), name=f"grace-{session.id}")

    def media_failed(self, session: Session) -> None:
        """Its media connection failed under a live socket: closing the socket tells the
        client to connect again (and starts the grace)."""
        if session.conn is None:
            return
        self.lost(session)
        session.conn.close(
            CLOSE_SERVER,
            protocol.error("media_failed", "the media connection was lost; join again"),
        )

    def lost(self, session: Session) -> None:
        if session.state == "connected":
            session.state = "reconnecting"
            self.announce(session)

    def heard(self, session: Session) -> None:
        """A message from a session the watchdog marked reconnecting: it is back."""
        if session.state == "reconnecting" and session.conn is not None:
            session.state = "connected"
            self.announce(session)

    def announce(self, session: Session) -> None:
        state = "reconnecting" if session.state == "reconnecting" else "connected"
        self._hub.broadcast(
            session.grant.conference,
            {"type": "participant_state", "participant": session.id, "state": state},
            skip=session.id,
        )

    async def _expire(self, session: Session) -> None:
        await asyncio.sleep(self.grace)
        session.grace = None
        if session.conn is None and session.state == "reconnecting":
            await self._hub.remove(session, "closed")

    # -- the stall watchdog --------------------------------------------------------------

    def start(self) -> None:
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name="reconnection-watchdog")

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCHDOG_PERIOD)
            now = time.monotonic()
            for session in self._hub.all_sessions():
                if session.stalled(now):
                    log.info("%s went silent; shown as reconnecting", session.id)
                    self.lost(session)
