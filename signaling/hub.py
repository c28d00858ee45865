"""Live conferences: WebSocket sessions of participants, relayed to and from the SFU engine.

The hub never touches the database: whoever builds it (``web``) hands it an
``authenticate`` callback that turns a join token into a :class:`JoinGrant` (or refuses),
and a ``on_presence`` callback that hears every join and leave (attendance). A conference
opens at its first join and is forgotten when its last participant leaves.
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

from aiohttp import WSMsgType, web

from media import MediaConfig, MediaEngine, MediaError
from media.messages import IceCandidate, MediaEvent, ParticipantStats
from signaling import protocol
from signaling.errors import (
    CLOSE_ENDED,
    CLOSE_NORMAL,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_SERVER,
    ProtocolViolation,
    SignalingError,
    UnsupportedVersion,
)
from signaling.session import JoinGrant, Session

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


def uplink_sections(sdp: str) -> list[tuple[str, str]]:
    """(mid, kind) of each audio/video m-section the offer marks ``recvonly``."""
    found = []
    for section in sdp.split("\nm=")[1:]:
        lines = [line.strip() for line in section.splitlines()]
        kind = lines[0].split(" ", 1)[0]
        mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
        if kind in ("audio", "video") and mid is not None and "a=recvonly" in lines:
            found.append((mid, kind))
    return found


class ConferenceHub:
    """Every live conference of this server, over one :class:`MediaEngine`."""

    def __init__(
        self,
        config: MediaConfig,
        authenticate: Authenticate,
        *,
        on_presence: PresenceListener | None = None,
        client_ice_servers: list[dict[str, Any]] | None = None,
    ) -> None:
        self.engine = MediaEngine(config, on_event=self._on_media_event)
        self._authenticate = authenticate
        self._on_presence = on_presence
        self._client_ice_servers = client_ice_servers or []
        self._sessions: dict[str, Session] = {}
        self._identities: dict[tuple[str, str], str] = {}
        self._conferences: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- queries -----------------------------------------------------------------------

    def conferences(self) -> dict[str, list[dict[str, Any]]]:
        """Live conferences and their participants (for administrators)."""
        return {
            conf: [self._sessions[p].info() for p in sorted(ids)]
            for conf, ids in self._conferences.items()
        }

    def participants(self, conference: str) -> list[dict[str, Any]]:
        return [self._sessions[p].info() for p in sorted(self._conferences.get(conference, ()))]

    def is_connected(self, conference: str, identity: str) -> bool:
        return (conference, identity) in self._identities

    # -- the WebSocket endpoint ----------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """aiohttp handler of ``/ws``: one participant, from hello to goodbye."""
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=protocol.MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        session: Session | None = None
        reason = "closed"
        try:
            hello = await self._receive_hello(ws)
            grant = await self._authenticate(hello.token)
            session = await self._admit(ws, grant, hello)
            reason = await self._serve(session)
        except SignalingError as exc:
            reason = exc.code
            if exc.close_code is not None and not ws.closed:
                await ws.send_str(protocol.dumps(protocol.error(exc.code, exc.message)))
                await ws.close(code=exc.close_code, message=exc.code.encode()[:120])
        finally:
            if session is not None:
                # aiohttp cancels the handler when the peer goes away: the clean-up
                # (engine leave, presence "left", the writer task) must finish anyway.
                removal = asyncio.ensure_future(self._remove(session, reason))
                self._tasks.add(removal)
                removal.add_done_callback(self._tasks.discard)
                await asyncio.shield(removal)
        return ws

    async def _receive_hello(self, ws: web.WebSocketResponse) -> protocol.Hello:
        try:
            msg = await ws.receive(timeout=protocol.HELLO_TIMEOUT)
        except TimeoutError:
            raise ProtocolViolation("no hello within the time allowed") from None
        if msg.type != WSMsgType.TEXT:
            raise ProtocolViolation("the first message must be a text 'hello'")
        hello = protocol.parse(msg.data)
        if not isinstance(hello, protocol.Hello):
            raise ProtocolViolation("the first message must be 'hello'")
        if hello.version not in protocol.SUPPORTED_VERSIONS:
            raise UnsupportedVersion(
                f"protocol version {hello.version} is not supported; this server speaks "
                f"{sorted(protocol.SUPPORTED_VERSIONS)}"
            )
        return hello

    async def _admit(
        self, ws: web.WebSocketResponse, grant: JoinGrant, hello: protocol.Hello
    ) -> Session:
        session = await self._enter(grant, ws, hello.client)
        try:
            offer = await self.engine.join(grant.conference, session.id)
        except MediaError as exc:
            raise SignalingError(str(exc), code=exc.code) from exc
        session.send(protocol.dumps(self._offer_message(offer)))
        return session

    async def _enter(
        self, grant: JoinGrant, ws: web.WebSocketResponse | None, client: str
    ) -> Session:
        """Register a participant (replacing its identity's previous one) and announce it."""
        key = (grant.conference, grant.identity)
        previous = self._identities.get(key)
        if previous is not None and previous in self._sessions:
            # The same person again (a reload, a network blip): the new one wins.
            old = self._sessions[previous]
            await old.close(CLOSE_REPLACED, {"type": "bye", "reason": "replaced"})
            await self._remove(old, "replaced")
        participant = secrets.token_hex(6)
        session = Session(participant, grant, ws)
        others = [self._sessions[p].info() for p in self._conferences.get(grant.conference, ())]
        self._sessions[participant] = session
        self._identities[key] = participant
        self._conferences.setdefault(grant.conference, set()).add(participant)
        session.send(
            protocol.dumps(
                {
                    "type": "welcome",
                    "version": protocol.VERSION,
                    "participant": session.info(),
                    "conference": {
                        "id": grant.conference,
                        "title": grant.title,
                        "ends_at": grant.ends_at.isoformat() if grant.ends_at else None,
                    },
                    "participants": others,
                    "active_speaker": self.engine.active_speaker(grant.conference),
                    "ice_servers": self._client_ice_servers,
                }
            )
        )
        self._broadcast(
            grant.conference,
            {"type": "participant_joined", "participant": session.info()},
            skip=participant,
        )
        log.info(
            "%s (%s, %s) joined conference %s with %s",
            participant,
            grant.identity,
            grant.kind,
            grant.conference,
            client,
        )
        self._presence(
            PresenceEvent("joined", grant.conference, participant, grant, session.joined_at)
        )
        return session

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

        The others see it join like anyone else. Raises ``media.MediaError`` (the session
        is gone again) if the offer cannot be answered.
        """
        session = await self._enter(grant, None, client)
        try:
            answer = await self.engine.join_with_offer(
                grant.conference, session.id, offer_sdp, mode, follow=follow
            )
        except MediaError:
            await self._remove(session, "failed")
            raise
        if mode == "publish":
            session.published.update(answer["kinds"])
        return session.id, answer["sdp"]

    async def leave_offer(self, participant: str, reason: str = "left") -> bool:
        """Remove an offer-first participant; False if it is not here (any more)."""
        session = self._sessions.get(participant)
        if session is None or session.has_socket:
            return False
        await self._remove(session, reason)
        return True

    def session_of(self, participant: str) -> Session | None:
        return self._sessions.get(participant)

    async def _serve(self, session: Session) -> str:
        assert session.ws is not None
        async for msg in session.ws:
            if msg.type == WSMsgType.ERROR:
                return "closed"
            if msg.type != WSMsgType.TEXT:
                raise ProtocolViolation("messages are JSON text")
            message = protocol.parse(msg.data)
            try:
                if isinstance(message, protocol.Leave):
                    return "left"
                await self._handle(session, message)
            except MediaError as exc:  # a request that failed: tell, stay connected
                session.send(protocol.dumps(protocol.error(exc.code, str(exc))))
        return "closed"

    async def _handle(
        self,
        session: Session,
        message: protocol.AnyClientMessage,
    ) -> None:
        if isinstance(message, protocol.Answer):
            await self.engine.answer(session.id, message.sdp)
        elif isinstance(message, protocol.Candidate):
            body = message.candidate
            candidate: IceCandidate | None = None
            if body is not None:
                candidate = {
                    "candidate": body.candidate,
                    "sdpMid": body.sdpMid,
                    "sdpMLineIndex": body.sdpMLineIndex,
                }
            await self.engine.add_ice_candidate(session.id, candidate)
        elif isinstance(message, protocol.Mute):
            await self.engine.set_muted(session.id, message.kind, message.muted)
        elif isinstance(message, protocol.Ping):
            session.send(protocol.dumps({"type": "pong", "id": message.id}))
        elif isinstance(message, protocol.Stats):
            sample = await self.engine.stats(session.id)
            quality = {k: v for k, v in sample.items() if k not in ("conference", "participant")}
            session.send(protocol.dumps({"type": "stats", "quality": quality}))
        else:
            raise ProtocolViolation("'hello' was already received")

    async def _remove(self, session: Session, reason: str) -> None:
        if self._sessions.pop(session.id, None) is None:
            return
        conference = session.grant.conference
        key = (conference, session.grant.identity)
        if self._identities.get(key) == session.id:
            del self._identities[key]
        members = self._conferences.get(conference)
        if members is not None:
            members.discard(session.id)
            if not members:
                del self._conferences[conference]
        stats: ParticipantStats | None = None
        with contextlib.suppress(MediaError):
            stats = await self.engine.stats(session.id)
        await self.engine.leave(session.id)
        if session.socket_open:
            await session.close(CLOSE_NORMAL)
        await session.stop()
        await session.close_socket()
        self._broadcast(
            conference, {"type": "participant_left", "participant": session.id, "reason": reason}
        )
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

    # -- media events ---------------------------------------------------------------------

    @staticmethod
    def _offer_message(offer: Any) -> dict[str, Any]:
        forwarded = {
            t["mid"]: {"mid": t["mid"], "kind": t["kind"], "participant": t["publisher"]}
            for t in offer["tracks"]
        }
        # The m-lines the server only receives on are the participant's own uplink.
        for mid, kind in uplink_sections(offer["sdp"]):
            forwarded.setdefault(mid, {"mid": mid, "kind": kind, "participant": None})
        return {"type": "offer", "sdp": offer["sdp"], "tracks": list(forwarded.values())}

    def _on_media_event(self, event: MediaEvent) -> None:
        conference = event["conference"]
        if event["type"] == "offer":
            session = self._sessions.get(event["participant"])
            if session is not None:
                session.send(protocol.dumps(self._offer_message(event)))
        elif event["type"] in ("track_published", "track_unpublished"):
            session = self._sessions.get(event["participant"])
            if session is not None:
                if event["type"] == "track_published":
                    session.published.add(event["kind"])
                else:
                    session.published.discard(event["kind"])
            self._broadcast(
                conference,
                {"type": event["type"], "participant": event["participant"], "kind": event["kind"]},
            )
        elif event["type"] == "track_muted":
            session = self._sessions.get(event["participant"])
            if session is not None:
                session.muted[event["kind"]] = event["muted"]
            self._broadcast(
                conference,
                {
                    "type": "mute",
                    "participant": event["participant"],
                    "kind": event["kind"],
                    "muted": event["muted"],
                },
            )
        elif event["type"] == "active_speaker":
            self._broadcast(
                conference, {"type": "active_speaker", "participant": event["participant"]}
            )
        elif event["type"] == "connection_state":
            session = self._sessions.get(event["participant"])
            if session is not None:
                session.send(protocol.dumps({"type": "connection_state", "state": event["state"]}))
        elif event["type"] == "participant_left":
            # The media connection failed or closed under a live socket: end the session;
            # the client joins again.
            session = self._sessions.get(event["participant"])
            if session is not None and not session.has_socket:
                self._spawn(self._remove(session, event["reason"]))
            elif session is not None and event["reason"] in ("failed", "closed"):
                self._spawn(
                    session.close(
                        CLOSE_SERVER,
                        protocol.error("media_failed", "the media connection was lost; join again"),
                    )
                )

    def _broadcast(
        self, conference: str, message: dict[str, Any], *, skip: str | None = None
    ) -> None:
        text = protocol.dumps(message)  # serialised once for every recipient
        for participant in self._conferences.get(conference, ()):
            if participant != skip:
                self._sessions[participant].send(text)

    def _presence(self, event: PresenceEvent) -> None:
        if self._on_presence is not None:
            self._spawn(self._notify(event))

    async def _notify(self, event: PresenceEvent) -> None:
        assert self._on_presence is not None
        try:
            await self._on_presence(event)
        except Exception:  # attendance must not break the conference
            log.exception("presence listener failed for %s", event.participant)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifetime --------------------------------------------------------------------------

    async def end_conference(self, conference: str, reason: str = "ended") -> int:
        """Tell everyone in ``conference`` it is over and disconnect them."""
        sessions = [self._sessions[p] for p in self._conferences.get(conference, ())]
        for session in sessions:
            if session.has_socket:
                await session.close(CLOSE_ENDED, {"type": "bye", "reason": reason})
            else:
                await self._remove(session, reason)
        return len(sessions)

    async def close(self) -> None:
        """Disconnect everyone, close the engine, wait for background work (idempotent)."""
        for conference in list(self._conferences):
            await self.end_conference(conference, "server_shutdown")
        for session in list(self._sessions.values()):
            await self._remove(session, "server_shutdown")
        await self.engine.close()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


__all__ = ["CLOSE_PROTOCOL", "ConferenceHub", "JoinGrant", "PresenceEvent"]
