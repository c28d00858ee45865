"""A Python participant of the conference protocol, with an aiortc peer connection.

Used by the room terminal agent, by tests and by benchmarks: it connects to ``/ws``, says
hello with a join token, answers the server's offers (publishing its own tracks on the
uplink m-lines the server opened for them: microphone, camera, and screen while sharing)
and collects what the others send. It pings every 2 s, so the server notices a stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
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
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.ice import host_addresses
from signaling import protocol

log = logging.getLogger(__name__)

PING_INTERVAL = 2.0
# Close codes after which a client must not connect again by itself (PROTOCOL.md).
FINAL_CLOSE_CODES = frozenset({1000, 4001, 4003, 4004, 4009, 4010, 4011})
UPLINK_SOURCE = {"audio": "microphone", "video": "camera"}


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
        ping_interval: float | None = PING_INTERVAL,
    ) -> None:
        self.ws_url = ws_url
        self.token = token
        self.tracks = list(tracks)
        self.client_name = client_name
        self.host_addresses = list(host_addresses) if host_addresses is not None else None
        self.on_track = on_track
        self.ping_interval = ping_interval
        self.welcome: dict[str, Any] = {}
        self.participant: str | None = None
        self.messages: list[dict[str, Any]] = []
        self.remote_tracks: dict[str, tuple[str | None, MediaStreamTrack]] = {}
        self.mids: dict[str, str | None] = {}  # mid -> publishing participant
        self.sources: dict[str, str | None] = {}  # mid -> source of what it carries
        self.closed: ConnectionClosed | None = None
        self.screen: MediaStreamTrack | None = None
        self._pc: RTCPeerConnection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._attached: set[str] = set()  # mids carrying one of self.tracks
        self._screen_mid: str | None = None
        self._ping_ids = itertools.count(1)

    @property
    def pc(self) -> RTCPeerConnection:
        assert self._pc is not None, "not connected"
        return self._pc

    async def connect(self, timeout: float = 15.0, *, wait: bool = True) -> dict[str, Any]:
        """Join; return the welcome message (raise :class:`ConnectionClosed` if refused).

        ``wait=False`` returns right after the hello (e.g. for a guest that waits in the
        lobby: watch for ``lobby`` and ``welcome`` messages yourself).
        """
        self._session = aiohttp.ClientSession()
        # autoclose=False: the reader sees the server's close frame and keeps its code even
        # when the server has dropped the connection before our reply could go out.
        self._ws = await self._session.ws_connect(
            self.ws_url,
            heartbeat=20.0,
            max_msg_size=protocol.MAX_MESSAGE_BYTES,
            autoclose=False,
        )
        self.closed = None
        await self.send(
            {
                "type": "hello",
                "version": protocol.VERSION,
                "token": self.token,
                "client": self.client_name,
            }
        )
        self._reader = asyncio.create_task(self._read(), name="conference-client-reader")
        if self.ping_interval is not None:
            self._pinger = asyncio.create_task(self._ping(), name="conference-client-pinger")
        if not wait:
            return {}
        welcome = await self.wait_for(lambda m: m["type"] == "welcome", timeout=timeout)
        return welcome

    async def reconnect(self, timeout: float = 15.0) -> dict[str, Any]:
        """Drop this socket and peer connection (without ``leave``) and join again with the
        same token and tracks: within the server's grace it is the same participant
        (``welcome.resumed``). Messages received so far are kept."""
        if self._pc is not None:
            # aiortc stops a sender's track when its connection closes: keep ours live.
            for transceiver in self._pc.getTransceivers():
                transceiver.sender.replaceTrack(None)
        await self.close()
        self.mids.clear()
        self.sources.clear()
        self.remote_tracks.clear()
        self._attached.clear()
        self._screen_mid = None
        count = len(self.messages)
        await self.connect(timeout, wait=False)
        welcome = await self.wait_for(
            lambda m: m["type"] == "welcome" and any(m is x for x in self.messages[count:]),
            timeout,
        )
        if self.screen is not None:  # the new connection starts without the screen uplink
            await self.send({"type": "screen", "sharing": True})
        return welcome

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def mute(self, kind: str, muted: bool) -> None:
        await self.send({"type": "mute", "kind": kind, "muted": muted})

    async def chat(self, text: str, to: str | None = None) -> None:
        await self.send({"type": "chat", "text": text, "to": to})

    async def raise_hand(self, raised: bool = True) -> None:
        await self.send({"type": "hand", "raised": raised})

    async def control(self, action: str, participant: str | None = None) -> None:
        """A chair control (see PROTOCOL.md); the server answers ``error forbidden`` to
        anyone but a chair."""
        await self.send({"type": "control", "action": action, "participant": participant})

    async def share_screen(self, track: MediaStreamTrack) -> None:
        """Publish ``track`` as a screen share: the server re-offers with a screen uplink."""
        self.screen = track
        await self.send({"type": "screen", "sharing": True})

    async def stop_screen(self) -> None:
        self.screen = None
        if self._pc is not None and self._screen_mid is not None:
            for transceiver in self._pc.getTransceivers():
                if transceiver.mid == self._screen_mid:
                    transceiver.sender.replaceTrack(None)  # stop sending at once
        await self.send({"type": "screen", "sharing": False})

    async def leave(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError, AssertionError):
            await self.send({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        """Close the socket and the peer connection (idempotent)."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        for task in (self._pinger, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pinger = self._reader = None
        if self._pc is not None:
            await self._pc.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stop_pinging(self) -> None:
        """Stop the periodic pings (to test what the server makes of a silent client)."""
        if self._pinger is not None:
            self._pinger.cancel()

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

    async def _ping(self) -> None:
        assert self.ping_interval is not None
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.send({"type": "ping", "id": next(self._ping_ids)})
            except (ConnectionError, RuntimeError, AssertionError):
                return

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        error: dict[str, Any] | None = None
        code: int | None = None
        try:
            while True:
                msg = await ws.receive()
                if msg.type == aiohttp.WSMsgType.CLOSE:
                    code = msg.data
                    with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                        await ws.close(code=aiohttp.WSCloseCode.OK)
                    break
                if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
                if msg.type == aiohttp.WSMsgType.ERROR:
                    log.info("conference connection lost: %s", msg.data)
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(msg.data)
                if message.get("type") == "error":
                    error = message
                try:
                    await self._dispatch(message)
                except (ConnectionError, aiohttp.ClientError) as exc:
                    # e.g. an answer to an offer that crossed a close: read what follows
                    log.info("could not act on %s: %s", message.get("type"), exc)
                async with self._changed:
                    self.messages.append(message)
                    self._changed.notify_all()
        except (ConnectionError, aiohttp.ClientError) as exc:
            log.info("conference connection lost: %s", exc)
        except Exception:
            log.exception("conference client failed while reading")
        finally:
            async with self._changed:
                self.closed = ConnectionClosed(code or ws.close_code, error)
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
            if self._pc is not None:
                await self._pc.close()
            self._pc = RTCPeerConnection(
                RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
            )
            self._pc.on("track", self._track)
        elif kind == "offer":
            await self._answer(message)

    async def _answer(self, offer: dict[str, Any]) -> None:
        pc = self.pc
        uplinks: dict[str, str] = {}  # source -> mid
        for info in offer.get("tracks", []):
            self.mids[info["mid"]] = info["participant"]
            self.sources[info["mid"]] = info.get("source")
            if info["participant"] is None and info.get("source"):
                uplinks[info["source"]] = info["mid"]
        with host_addresses(self.host_addresses):
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            self._attach_tracks(pc, uplinks)
            await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "answer", "sdp": pc.localDescription.sdp})
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            mid = transceiver.mid
            if mid is not None and track is not None and mid in self.mids:
                self.remote_tracks[mid] = (self.mids[mid], track)

    def _attach_tracks(self, pc: RTCPeerConnection, uplinks: dict[str, str]) -> None:
        """Put our tracks on the uplink m-lines named for their source; the screen uplink
        sends while sharing and is answered inactive otherwise."""
        if not uplinks:  # a server that does not name its uplinks: the first m-lines
            if not self._attached:
                self._attached.add("*")
                for track in self.tracks:
                    pc.addTrack(track)
            return
        by_mid = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
        for track in self.tracks:
            mid = uplinks.get(UPLINK_SOURCE.get(track.kind, ""))
            if mid is not None and mid in by_mid and mid not in self._attached:
                self._send_on(by_mid[mid], track)
                self._attached.add(mid)
        mid = uplinks.get("screen")
        if mid is not None and mid in by_mid:
            self._screen_mid = mid
            if self.screen is not None:
                self._send_on(by_mid[mid], self.screen)
            else:
                by_mid[mid].direction = "inactive"

    @staticmethod
    def _send_on(transceiver: RTCRtpTransceiver, track: MediaStreamTrack) -> None:
        if transceiver.sender.track is not track:
            transceiver.sender.replaceTrack(track)
        transceiver.direction = "sendrecv"  # answered sendonly to the server's recvonly

    def _track(self, track: MediaStreamTrack) -> None:
        mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), None)
        publisher = self.mids.get(mid) if mid else None
        if mid is not None:
            self.remote_tracks[mid] = (publisher, track)
        if self.on_track is not None:
            self.on_track(publisher, track)
