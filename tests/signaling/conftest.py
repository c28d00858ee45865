"""A real conference hub on loopback with token → grant tables instead of the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiortc import MediaStreamTrack

from media import MediaConfig
from signaling.client import ConferenceClient
from signaling.errors import JoinRefused, NotNow
from signaling.hub import ConferenceHub, JoinGrant, PresenceEvent
from signaling.sources import mean_rgb

LOOPBACK = ["127.0.0.1"]


class Fixture:
    def __init__(self) -> None:
        self.grants: dict[str, JoinGrant] = {}
        self.closed_tokens: set[str] = set()
        self.presence: list[PresenceEvent] = []
        self.hub = ConferenceHub(
            MediaConfig(host_addresses=LOOPBACK), self.authenticate, on_presence=self.on_presence
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

    def grant(self, token: str, conference: str = "c1", name: str | None = None) -> str:
        self.grants[token] = JoinGrant(
            conference=conference, identity=f"person:{token}", name=name or token, title="测试会议"
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
async def conf() -> AsyncIterator[Fixture]:
    fx = Fixture()
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


__all__: list[Any] = ["Fixture", "close_enough", "received_color"]
