"""A real conference hub on loopback with token → grant tables instead of the database.

The hooks keep what they are told (activities, recordings opened and closed) in lists, and
recordings go to a temporary directory.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiortc import MediaStreamTrack

from media import MediaConfig
from media.messages import RecordingManifest
from signaling.client import ConferenceClient
from signaling.errors import JoinRefused, NotNow
from signaling.hooks import Activity, ConferenceHooks, ParticipantRef, RecordingTarget
from signaling.hub import ConferenceHub, JoinGrant, PresenceEvent
from signaling.session import ClientKind
from signaling.sources import mean_rgb

LOOPBACK = ["127.0.0.1"]


class Fixture:
    def __init__(self, directory: Path) -> None:
        self.grants: dict[str, JoinGrant] = {}
        self.closed_tokens: set[str] = set()
        self.presence: list[PresenceEvent] = []
        self.activities: list[Activity] = []
        self.opened: list[tuple[str, ParticipantRef | None, Mapping[str, Any]]] = []
        self.closed: list[
            tuple[RecordingTarget, RecordingManifest, Mapping[str, ParticipantRef]]
        ] = []
        self.directory = directory
        self.storage_fails = False
        self._recordings = itertools.count(1)
        self.hooks = ConferenceHooks(
            on_activity=self.on_activity,
            open_recording=self.open_recording,
            close_recording=self.close_recording,
        )
        self.hub = ConferenceHub(
            MediaConfig(host_addresses=LOOPBACK),
            self.authenticate,
            on_presence=self.on_presence,
            hooks=self.hooks,
        )
        self.server: TestServer | None = None
        self.clients: list[ConferenceClient] = []

    async def authenticate(self, token: str) -> JoinGrant:
        if token in self.closed_tokens:
            raise NotNow("the meeting has ended", code="ended")
        grant = self.grants.get(token)
        if grant is None:
            raise JoinRefused("unknown token")
        return grant

    async def on_presence(self, event: PresenceEvent) -> None:
        self.presence.append(event)

    async def on_activity(self, activity: Activity) -> None:
        self.activities.append(activity)

    async def open_recording(
        self, conference: str, by: ParticipantRef | None, meta: Mapping[str, Any]
    ) -> RecordingTarget:
        if self.storage_fails:
            raise OSError("no space left on device")
        self.opened.append((conference, by, meta))
        number = next(self._recordings)
        return RecordingTarget(str(number), str(self.directory / f"recording-{number}"))

    async def close_recording(
        self,
        target: RecordingTarget,
        manifest: RecordingManifest,
        participants: Mapping[str, ParticipantRef],
    ) -> None:
        self.closed.append((target, manifest, participants))

    def grant(
        self,
        token: str,
        conference: str = "c1",
        name: str | None = None,
        *,
        role: str = "participant",
        kind: ClientKind = "browser",
    ) -> str:
        identity = kind if kind in ("guest", "terminal") else "person"
        self.grants[token] = JoinGrant(
            conference=conference,
            identity=f"{identity}:{token}",
            name=name or token,
            kind=kind,
            role="chair" if role == "chair" else "participant",
            title="测试会议",
            meta={"meeting_id": 7},
        )
        return token

    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/ws")).replace("http://", "ws://")

    def client(self, token: str, *tracks: MediaStreamTrack) -> ConferenceClient:
        c = ConferenceClient(self.url(), token, tracks=tracks, host_addresses=LOOPBACK)
        self.clients.append(c)
        return c


@pytest.fixture
async def conf(tmp_path: Path) -> AsyncIterator[Fixture]:
    fx = Fixture(tmp_path)
    app = web.Application()
    app.router.add_get("/ws", fx.hub.websocket)
    fx.server = TestServer(app, host="127.0.0.1")
    await fx.server.start_server()
    yield fx
    for c in fx.clients:
        await c.close()
    await fx.hub.close()
    await fx.server.close()


async def received_color(
    client: ConferenceClient, publisher: str, timeout: float = 15.0
) -> tuple[float, float, float]:
    """Decode frames of ``publisher``'s video at ``client`` until one arrives."""

    async def first() -> tuple[float, float, float]:
        while True:
            for _mid, (who, track) in list(client.remote_tracks.items()):
                if who == publisher and track.kind == "video":
                    frame = await track.recv()
                    return mean_rgb(frame)  # type: ignore[arg-type]
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(first(), timeout)


def close_enough(a: tuple[float, ...], b: tuple[int, ...], tolerance: float = 30) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


async def packets_from(client: ConferenceClient, publisher: str, source: str) -> int:
    """RTP packets ``client`` has received on the m-lines that carry ``publisher``'s
    ``source`` ("microphone", "camera", "screen")."""
    total = 0
    for transceiver in client.pc.getTransceivers():
        mid = transceiver.mid
        if mid is None or client.mids.get(mid) != publisher or client.sources.get(mid) != source:
            continue
        for stats in (await transceiver.receiver.getStats()).values():
            if stats.type == "inbound-rtp":
                total += stats.packetsReceived
    return total


async def flowing(
    client: ConferenceClient, publisher: str, source: str, timeout: float = 15.0
) -> None:
    """Wait until packets of ``publisher``'s ``source`` keep arriving at ``client``."""

    first = await packets_from(client, publisher, source)
    for _ in range(int(timeout / 0.1)):
        if await packets_from(client, publisher, source) >= first + 10:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no {source} of {publisher} arrives")


async def stopped(client: ConferenceClient, publisher: str, source: str) -> bool:
    """True if (after what was in flight) no packet of ``publisher``'s ``source`` arrives
    at ``client`` for a second."""
    await asyncio.sleep(0.5)
    before = await packets_from(client, publisher, source)
    await asyncio.sleep(1.0)
    return await packets_from(client, publisher, source) - before <= 2


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the condition did not come true")


Predicate = Callable[[dict[str, Any]], bool]


def of_type(kind: str, **fields: Any) -> Predicate:
    """A ``wait_for`` predicate: a message of type ``kind`` with these field values."""
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


def newer(client: ConferenceClient, predicate: Predicate) -> Predicate:
    """``predicate``, for messages ``client`` receives from now on only."""
    count = len(client.messages)
    return lambda m: predicate(m) and any(m is x for x in client.messages[count:])


__all__: list[Any] = [
    "Fixture",
    "close_enough",
    "eventually",
    "flowing",
    "newer",
    "of_type",
    "packets_from",
    "received_color",
    "stopped",
]
