"""Live conferences: WebSocket sessions of participants, relayed to and from the SFU engine.

The hub never touches the database: whoever builds it (``web``) hands it an
``authenticate`` callback that turns a join token into a :class:`JoinGrant` (or refuses),
an ``on_presence`` callback that hears every join and leave (attendance), and
:class:`ConferenceHooks` that keep chat, chair controls and recordings. A conference opens at
its first hello and is forgotten when its last participant is gone.

A participant whose socket goes away without ``leave`` (or whose media fails) is
``reconnecting`` for ``reconnect_grace`` seconds: its media is released at once, the others
see ``participant_state``, and a hello of the same identity gets the same participant id
back. Only when the grace is over does it leave (``participant_left``, presence "left").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from media import MediaConfig, MediaEngine, MediaError
from media.messages import MediaEvent, ParticipantStats
from signaling import protocol
from signaling.conference import LiveConference
from signaling.endpoint import serve_websocket
from signaling.errors import (
    CLOSE_ENDED,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_SERVER,
    ControlRefused,
    NotNow,
    Removed,
    SignalingError,
)
from signaling.hooks import Activity, ConferenceHooks
from signaling.lobby import Admissions, lobby_reason
from signaling.media_events import offer_message, relay_media_event
from signaling.moderation import Actor, Moderation
from signaling.reconnect import Reconnection
from signaling.recorder import Recorder
from signaling.session import Connection, JoinGrant, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PresenceEvent:
    """A participant joined or left (with its last quality sample when it left)."""

    kind: Literal["joined", "left"]
    conference: str
    participant: str
    grant: JoinGrant
    at: datetime
    reason: str | None = None
    stats: ParticipantStats | None = None


Authenticate = Callable[[str], Awaitable[JoinGrant]]
PresenceListener = Callable[[PresenceEvent], Awaitable[None]]


def bye(reason: str) -> dict[str, Any]:
    return {"type": "bye", "reason": reason}


class ConferenceHub:
    """Every live conference of this server, over one :class:`MediaEngine`."""

    def __init__(
        self,
        config: MediaConfig,
        authenticate: Authenticate,
        *,
        on_presence: PresenceListener | None = None,
        client_ice_servers: list[dict[str, Any]] | None = None,
        hooks: ConferenceHooks | None = None,
        reconnect_grace: float = 30.0,
        lobby_timeout: float = 600.0,
    ) -> None:
        self.engine = MediaEngine(config, on_event=self._on_media_event)
        self.hooks = hooks or ConferenceHooks()
        self.authenticate = authenticate
        self._on_presence = on_presence
        self._client_ice_servers = client_ice_servers or []
        self._sessions: dict[str, Session] = {}  # participants of every conference
        self._live: dict[str, LiveConference] = {}
        self._ended: dict[str, datetime | None] = {}
        """Conferences the chair ended, until their scheduled end: joins are refused."""
        self._tasks: set[asyncio.Future[None]] = set()
        self.moderation = Moderation(self)
        self.admissions = Admissions(self, lobby_timeout)
        self.reconnection = Reconnection(self, reconnect_grace)
        self.recorder = Recorder(self.engine, self.hooks, self.spawn, self._state_changed)

    # -- queries -----------------------------------------------------------------------

    def conferences(self) -> dict[str, list[dict[str, Any]]]:
        """Live conferences and their participants (for administrators)."""
        return {conf: self.participants(conf) for conf, live in self._live.items() if live.members}

    def participants(self, conference: str) -> list[dict[str, Any]]:
        live = self._live.get(conference)
        members = live.members if live is not None else {}
        return [members[p].info() for p in sorted(members)]

    def is_connected(self, conference: str, identity: str) -> bool:
        live = self._live.get(conference)
        return live is not None and identity in live.identities

    def session_of(self, participant: str) -> Session | None:
        return self._sessions.get(participant)

    def all_sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def live_conference(self, conference: str) -> LiveConference | None:
        return self._live.get(conference)

    def state(self, conference: str) -> dict[str, Any]:
        """Chair-controlled state: ``{"live", "locked", "recording", "hands", "lobby"}``."""
        live = self._live.get(conference)
        if live is None:
            return {"live": False, "locked": False, "recording": False, "hands": [], "lobby": []}
        return live.state()

    # -- operators over REST ------------------------------------------------------------

    async def control(
        self, conference: str, action: str, participant: str | None, *, operator: str
    ) -> None:
        """Carry out a chair control as ``operator`` (e.g. "admin@city").

        Raises :class:`ControlRefused` with code ``not_found`` (no such live conference,
        participant or lobby entry), ``invalid_request`` or ``unavailable``.
        """
        live = self._live.get(conference)
        if live is None:
            raise ControlRefused(f"conference {conference!r} is not live", code="not_found")
        await self.moderation.control(live, action, participant, Actor(None, operator))

    # -- participants over WebSocket ------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler of ``/ws``: one participant, from hello to goodbye."""
        self.reconnection.start()
        return await serve_websocket(self, request)

    async def open(self, grant: JoinGrant, conn: Connection, client: str) -> Session:
        """A hello: resume the identity's participant, or wait in the lobby, or join."""
        live = self._live_for(grant)
        why = live.removed.get(grant.identity)
        if why is not None:
            self.forget_if_idle(live)
            raise Removed(f"the chair {why} you in this conference", code=why)
        existing = live.of_identity(grant.identity)
        if existing is not None and existing.has_socket:
            await self.reconnection.resume(live, existing, conn, grant, client)
            return existing
        if existing is not None:  # an offer-first participant of the same identity
            await self.remove(existing, "replaced")
            live = self._live_for(grant)  # (forgotten if that was the last one)
        waiting = live.lobby.of_identity(grant.identity)
        if waiting is not None:  # a reload while waiting: the new socket waits instead
            live.lobby.pop(waiting.session.id)
            waiting.session.close(CLOSE_REPLACED, bye("replaced"))
        session = Session(secrets.token_hex(6), grant, conn)
        session.client = client
        reason = lobby_reason(grant, live.locked)
        if reason is not None:
            self.admissions.wait(live, session, reason)
        else:
            await self.join(live, session)
        return session

    # -- joining -------------------------------------------------------------------------

    async def join(self, live: LiveConference, session: Session) -> None:
        """A newcomer (or a guest just admitted) joins: welcome, announce, offer."""
        self._enter(live, session)
        await self.media_join(session)

    def _enter(self, live: LiveConference, session: Session) -> None:
        """Register a newcomer, welcome it and announce it."""
        session.state = "connected"
        session.joined_at = datetime.now(UTC)
        self._sessions[session.id] = session
        live.add(session)
        self.welcome(live, session, resumed=False)
        self.broadcast(
            live.id, {"type": "participant_joined", "participant": session.info()}, skip=session.id
        )
        grant = session.grant
        log.info(
            "%s (%s, %s) joined conference %s with %s",
            session.id,
            grant.identity,
            grant.kind,
            live.id,
            session.client,
        )
        self._presence(PresenceEvent("joined", live.id, session.id, grant, session.joined_at))

    def welcome(self, live: LiveConference, session: Session, *, resumed: bool) -> None:
        grant = session.grant
        session.send_message(
            {
                "type": "welcome",
                "version": protocol.VERSION,
                "resumed": resumed,
                "participant": session.info(),
                "conference": {
                    "id": live.id,
                    "title": grant.title,
                    "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
                    "locked": live.locked,
                    "recording": live.recording is not None,
                },
                "participants": [s.info() for s in live.members.values() if s is not session],
                "hands": live.hands.queue(),
                "active_speaker": self.engine.active_speaker(live.id),
                "ice_servers": self._client_ice_servers,
            }
        )
        if session.is_chair:
            session.send_message(live.lobby.queue_message())

    async def media_join(self, session: Session) -> None:
        """Give the participant a (new) peer connection and send its first offer."""
        try:
            offer = await self.engine.join(session.grant.conference, session.id)
        except MediaError as exc:
            if self._sessions.get(session.id) is session:  # not removed meanwhile
                log.warning("no media connection for %s: %s", session.id, exc)
                session.close(CLOSE_SERVER, protocol.error("media_failed", str(exc)))
                await self.remove(session, "failed")
            return
        for kind, muted in session.muted.items():
            if muted:  # a mute (by itself or the chair) outlives a reconnection
                with contextlib.suppress(MediaError):
                    await self.engine.set_muted(session.id, kind, True)
        session.send_message(offer_message(offer))

    # -- leaving -------------------------------------------------------------------------

    async def socket_closed(self, session: Session | None, conn: Connection, reason: str) -> None:
        """A socket is done: the participant left, is removed, or is reconnecting."""
        if session is not None:
            live = self._live.get(session.grant.conference)
            if session.state == "lobby":
                if live is not None:
                    self.admissions.left(live, session, reason)
            elif self._sessions.get(session.id) is session and session.conn is conn:
                if reason == "closed" and self.reconnection.grace > 0:
                    await self.reconnection.suspend(session)
                else:
                    await self.remove(session, reason)
            elif live is not None:
                self.forget_if_idle(live)
        await conn.finish()

    async def remove(
        self,
        session: Session,
        reason: str,
        *,
        close: tuple[int, dict[str, Any]] | None = None,
    ) -> None:
        """Take a participant out for good: ``participant_left`` and presence "left"."""
        if self._sessions.get(session.id) is not session:
            return
        del self._sessions[session.id]
        session.cancel_grace()
        conference = session.grant.conference
        live = self._live.get(conference)
        had_hand = live is not None and session.id in live.hands
        if live is not None:
            live.discard(session)
        code, message = close if close is not None else (CLOSE_NORMAL, None)
        session.close(code, message)
        stats = session.last_stats
        if session.state == "connected":
            with contextlib.suppress(MediaError):
                stats = await self.engine.stats(session.id)
        await self.engine.leave(session.id)
        self.broadcast(
            conference, {"type": "participant_left", "participant": session.id, "reason": reason}
        )
        if had_hand and live is not None:
            self.broadcast(conference, live.hands.message())
        log.info("%s left conference %s (%s)", session.id, conference, reason)
        self._presence(
            PresenceEvent(
                "left",
                conference,
                session.id,
                session.grant,
                datetime.now(UTC),
                reason=reason,
                stats=stats,
            )
        )
        if live is not None:
            self.forget_if_idle(live)

    def mark_ended(self, conference: str, until: datetime | None) -> None:
        """Refuse joins of ``conference`` until ``until`` (None: while this process runs)."""
        now = datetime.now(UTC)
        for other, end in list(self._ended.items()):  # forget the ones that are over
            if end is not None and end <= now:
                del self._ended[other]
        self._ended[conference] = until

    def _live_for(self, grant: JoinGrant) -> LiveConference:
        """The grant's live conference, opened now if nobody is in it yet."""
        if grant.conference in self._ended:
            until = self._ended[grant.conference]
            if until is None or until > datetime.now(UTC):
                raise NotNow("the chair ended this conference for everyone", code="ended")
            del self._ended[grant.conference]
        live = self._live.get(grant.conference)
        if live is None:
            live = self._live[grant.conference] = LiveConference(grant.conference, grant.meta)
        return live

    def forget_if_idle(self, live: LiveConference) -> None:
        if live.idle and self._live.get(live.id) is live:
            del self._live[live.id]

    # -- offer-first participants (WHIP publishers, WHEP viewers) over HTTP ---------------

    async def join_offer(
        self,
        grant: JoinGrant,
        offer_sdp: str,
        mode: Literal["publish", "view"],
        *,
        follow: str | None = None,
        client: str = "http",
    ) -> tuple[str, str]:
        """Admit a participant that offered first and has no socket: (its id, answer SDP).

        The others see it join like anyone else (it never waits in the lobby). Raises
        ``media.MediaError`` (the session is gone again) if the offer cannot be answered.
        """
        existing = self._live_for(grant).of_identity(grant.identity)
        if existing is not None:
            await self.remove(existing, "replaced", close=(CLOSE_REPLACED, bye("replaced")))
        live = self._live_for(grant)
        session = Session(secrets.token_hex(6), grant, None)
        session.client = client
        self._enter(live, session)
        try:
            answer = await self.engine.join_with_offer(
                grant.conference, session.id, offer_sdp, mode, follow=follow
            )
        except MediaError:
            await self.remove(session, "failed")
            raise
        if mode == "publish":
            session.published.update(answer["kinds"])
        return session.id, answer["sdp"]

    async def leave_offer(self, participant: str, reason: str = "left") -> bool:
        """Remove an offer-first participant; False if it is not here (any more)."""
        session = self._sessions.get(participant)
        if session is None or session.has_socket:
            return False
        await self.remove(session, reason)
        return True

    # -- media events ---------------------------------------------------------------------

    def _on_media_event(self, event: MediaEvent) -> None:
        relay_media_event(self, event)

    # -- telling people --------------------------------------------------------------------

    def broadcast(
        self, conference: str, message: dict[str, Any], *, skip: str | None = None
    ) -> None:
        """Send ``message`` to every participant of ``conference`` (serialised once)."""
        live = self._live.get(conference)
        if live is None:
            return
        text = protocol.dumps(message)
        for participant, session in live.members.items():
            if participant != skip:
                session.send(text)

    def to_chairs(self, live: LiveConference, message: dict[str, Any]) -> None:
        text = protocol.dumps(message)
        for session in live.chairs():
            session.send(text)

    def _state_changed(self, live: LiveConference) -> None:
        self.broadcast(live.id, live.state_message())
        self.forget_if_idle(live)

    def report(self, activity: Activity) -> None:
        """Hand a chat message or a control to ``hooks.on_activity`` (never blocks)."""
        listener = self.hooks.on_activity
        if listener is None:
            return

        async def notify() -> None:
            try:
                await listener(activity)
            except Exception:  # keeping the log must not break the conference
                log.exception(
                    "activity listener failed on %s in %s", activity.kind, activity.conference
                )

        self.spawn(notify())

    def _presence(self, event: PresenceEvent) -> None:
        listener = self._on_presence
        if listener is None:
            return

        async def notify() -> None:
            try:
                await listener(event)
            except Exception:  # attendance must not break the conference
                log.exception("presence listener failed for %s", event.participant)

        self.spawn(notify())

    def spawn(self, coro: Awaitable[None]) -> asyncio.Future[None]:
        """Run ``coro`` in the background; :meth:`close` waits for it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here even if its awaiter went away
        if error is not None and not isinstance(error, (SignalingError, MediaError)):
            log.error("conference hub task failed", exc_info=error)

    # -- lifetime --------------------------------------------------------------------------

    async def end_conference(self, conference: str, reason: str = "ended") -> int:
        """Tell everyone in ``conference`` (and its lobby) it is over and disconnect them."""
        live = self._live.get(conference)
        if live is None:
            return 0
        for entry in live.lobby.entries():
            live.lobby.pop(entry.session.id)
            entry.session.close(CLOSE_ENDED, bye(reason))
        sessions = list(live.members.values())
        for session in sessions:
            await self.remove(session, reason, close=(CLOSE_ENDED, bye(reason)))
        self.forget_if_idle(live)
        return len(sessions)

    async def close(self) -> None:
        """Disconnect everyone, close the engine, wait for background work (idempotent)."""
        await self.reconnection.close()
        for conference in list(self._live):
            await self.end_conference(conference, "server_shutdown")
        for session in list(self._sessions.values()):
            await self.remove(session, "server_shutdown")
        await self.engine.close()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


__all__ = ["CLOSE_PROTOCOL", "ConferenceHub", "JoinGrant", "PresenceEvent"]
