"""The ``/ws`` endpoint: one socket from its hello to its goodbye, message by message.

Every client message is parsed and validated once here (:mod:`signaling.protocol`), then
carried out by the hub and its parts. Protocol errors close the socket; user errors (a
:class:`~signaling.errors.SignalingError` without a close code, or a media error) are
answered with an ``error`` message and the socket stays open.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import WebSocketError, WSMsgType, web

from media import MediaError
from media.messages import IceCandidate
from signaling import protocol
from signaling.chat import send_chat, set_hand
from signaling.errors import (
    CLOSE_SERVER,
    ControlRefused,
    ProtocolViolation,
    SignalingError,
    UnsupportedVersion,
)
from signaling.moderation import Actor
from signaling.session import Connection, Session

if TYPE_CHECKING:
    from signaling.hub import ConferenceHub


async def serve_websocket(hub: ConferenceHub, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=protocol.MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    conn = Connection(ws)
    session: Session | None = None
    reason = "closed"
    try:
        hello = await receive_hello(ws)
        grant = await hub.authenticate(hello.token)
        session = await hub.open(grant, conn, hello.client)
        reason = await serve(hub, session, conn)
    except SignalingError as exc:
        reason = exc.code
        conn.close(exc.close_code or CLOSE_SERVER, protocol.error(exc.code, exc.message))
    finally:
        # aiohttp cancels the handler when the peer goes away: the clean-up (engine
        # leave, presence, the writer task) must finish anyway.
        await asyncio.shield(hub.spawn(hub.socket_closed(session, conn, reason)))
    return ws


async def receive_hello(ws: web.WebSocketResponse) -> protocol.Hello:
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


async def serve(hub: ConferenceHub, session: Session, conn: Connection) -> str:
    """Read the socket until it ends; returns why: ``left``, ``closed``, ``replaced``…"""
    async for msg in conn.ws:
        if msg.type == WSMsgType.ERROR:
            # A frame the server refuses (too big, malformed) ends the session; a
            # connection that broke is a network loss (reconnecting).
            return "protocol_error" if isinstance(msg.data, WebSocketError) else "closed"
        if msg.type != WSMsgType.TEXT:
            raise ProtocolViolation("messages are JSON text")
        message = protocol.parse(msg.data)
        if session.conn is not conn:
            return "replaced"  # another socket took over (or it was removed)
        session.heard(ping=isinstance(message, protocol.Ping))
        hub.reconnection.heard(session)
        if isinstance(message, protocol.Leave):
            return "left"
        try:
            await handle(hub, session, message)
        except MediaError as exc:  # a request that failed: tell, stay connected
            session.send_message(protocol.error(exc.code, str(exc)))
        except SignalingError as exc:
            if exc.close_code is not None:
                raise
            session.send_message(protocol.error(exc.code, exc.message))
    return "closed"


async def handle(hub: ConferenceHub, session: Session, message: protocol.AnyClientMessage) -> None:
    if isinstance(message, protocol.Ping):
        session.send_message({"type": "pong", "id": message.id})
        return
    if isinstance(message, protocol.Hello):
        raise ProtocolViolation("'hello' was already received")
    live = hub.live_conference(session.grant.conference)
    if session.state == "lobby" or live is None:
        raise ControlRefused("you are waiting for the chair to let you in", code="forbidden")
    engine = hub.engine
    if isinstance(message, protocol.Answer):
        await engine.answer(session.id, message.sdp)
    elif isinstance(message, protocol.Candidate):
        body = message.candidate
        candidate: IceCandidate | None = None
        if body is not None:
            candidate = {
                "candidate": body.candidate,
                "sdpMid": body.sdpMid,
                "sdpMLineIndex": body.sdpMLineIndex,
            }
        await engine.add_ice_candidate(session.id, candidate)
    elif isinstance(message, protocol.Mute):
        await engine.set_muted(session.id, message.kind, message.muted)
    elif isinstance(message, protocol.Stats):
        sample = await engine.stats(session.id)
        quality = {k: v for k, v in sample.items() if k not in ("conference", "participant")}
        session.send_message({"type": "stats", "quality": quality})
    elif isinstance(message, protocol.Chat):
        send_chat(hub, live, session, message)
    elif isinstance(message, protocol.Hand):
        set_hand(hub, live, session, message.raised)
    elif isinstance(message, protocol.Screen):
        await engine.set_screen_share(session.id, message.sharing)
    elif isinstance(message, protocol.Control):
        # aiohttp cancels the handler when its socket goes away, which "end" or "remove"
        # may do to the chair's own socket: a control is carried out to the end anyway.
        actor = Actor(session)
        control = hub.moderation.control(live, message.action, message.participant, actor)
        await asyncio.shield(hub.spawn(control))
