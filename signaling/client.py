"""A Python participant of the conference protocol, with an aiortc peer connection.

Used by the room terminal agent, by tests and by benchmarks: it connects to ``/ws``, says
hello with a join token, answers the server's offers (publishing its own tracks on the
m-lines the server opened for them) and collects what the others send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.ice import host_addresses
from signaling import protocol

log = logging.getLogger(__name__)


class ConnectionClosed(Exception):
    """The server closed the WebSocket (``code``) or refused the join (``error``)."""

    def __init__(self, code: int | None, error: dict[str, Any] | None) -> None:
        super().__init__(f"closed with {code}: {error}")
        self.code = code
        self.error = error


class ConferenceClient:
    """One participant: ``await connect()``, then watch ``messages`` and ``remote_tracks``."""

    def __init__(
        self,
        ws_url: str,
        token: str,
        *,
        tracks: Sequence[MediaStreamTrack] = (),
        client_name: str = "suimeet-python",
        host_addresses: Sequence[str] | None = None,
        on_track: Callable[[str | None, MediaStreamTrack], None] | None = None,
    ) -> None:
        self.ws_url = ws_url
        self.token = token
        self.tracks = list(tracks)
        self.client_name = client_name
        self.host_addresses = list(host_addresses) if host_addresses is not None else None
        self.on_track = on_track
        self.welcome: dict[str, Any] = {}
        self.participant: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.remote_tracks: dict[str, tuple[str | None, MediaStreamTrack]] = {}
        self.mids: dict[str, str | None] = {}  # mid -> publishing participant
        self.closed: ConnectionClosed | None = None
        self._pc: RTCPeerConnection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._published = False

    @property
    def pc(self) -> RTCPeerConnection:
        assert self._pc is not None, "not connected"
        return self._pc

    async def connect(self, timeout: float = 15.0) -> dict[str, Any]:
        """Join; return the welcome message (raise :class:`ConnectionClosed` if refused)."""
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(
            self.ws_url, heartbeat=20.0, max_msg_size=protocol.MAX_MESSAGE_BYTES
        )
        await self.send(
            {
                "type": "hello",
                "version": protocol.VERSION,
                "token": self.token,
                "client": self.client_name,
            }
        )
        self._reader = asyncio.create_task(self._read(), name="conference-client-reader")
        await self.wait_for(lambda m: m["type"] == "welcome", timeout=timeout)
        return self.welcome

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def mute(self, kind: str, muted: bool) -> None:
        await self.send({"type": "mute", "kind": kind, "muted": muted})

    async def leave(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, AssertionError):
            await self.send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        """Close the socket and the peer connection (idempotent)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pc is not None:
            await self._pc.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first message (received so far or later) that satisfies ``predicate``."""

        def found() -> dict[str, Any] | None:
            for message in self.messages:
                if predicate(message):
                    return message
            if self.closed is not None:
                raise self.closed
            return None

        async with self._changed:
            result = await asyncio.wait_for(self._changed.wait_for(found), timeout)
        assert result is not None
        return result

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def _read(self) -> None:
        assert self._ws is not None
        error: dict[str, Any] | None = None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                if message.get("type") == "error":
                    error = message
                await self._dispatch(message)
                async with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
        except (ConnectionError, aiohttp.ClientError) as exc:
            log.info("conference connection lost: %s", exc)
        except Exception:
            log.exception("conference client failed while reading")
        finally:
            async with self._changed:
                self.closed = ConnectionClosed(self._ws.close_code, error)
                self._changed.notify_all()

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "welcome":
            self.welcome = message
            self.participant = message["participant"]["id"]
            servers = [
                RTCIceServer(
                    urls=s["urls"], username=s.get("username"), credential=s.get("credential")
                )
                for s in message.get("ice_servers", [])
            ]
            self._pc = RTCPeerConnection(
                RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            self._pc.on("track", self._track)
        elif kind == "offer":
            await self._answer(message)

    async def _answer(self, offer: dict[str, Any]) -> None:
        pc = self.pc
        for info in offer.get("tracks", []):
            self.mids[info["mid"]] = info["participant"]
        with host_addresses(self.host_addresses):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            if not self._published:
                self._published = True
                for track in self.tracks:
                    pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "answer", "sdp": pc.localDescription.sdp})
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            mid = transceiver.mid
            if mid is not None and track is not None and mid in self.mids:
                self.remote_tracks[mid] = (self.mids[mid], track)

    def _track(self, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        publisher = self.mids.get(mid) if mid else None
        if mid is not None:
            self.remote_tracks[mid] = (publisher, track)
        if self.on_track is not None:
            self.on_track(publisher, track)
