"""Shared set-up of the room terminal tests: rooms with terminals, meetings, agents, a proxy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from rooms.agent.agent import TerminalAgent
from rooms.agent.media import MediaSources
from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Room, Unit
from tests.conftest import Staff

LOOPBACK = ["127.0.0.1"]


async def room_with_terminal(db: Database, unit: Unit, name: str) -> tuple[int, int, str]:
    """(room id, terminal id, terminal token)."""
    directory = Directory(db)
    room = await directory.create(Room, {"unit_id": unit.id, "name": name})
    issued = await directory.create_terminal({"room_id": room.id, "name": f"{name}终端"})
    return room.id, issued.terminal.id, issued.token


async def book(
    client: TestClient[Any, Any],
    staff: Staff,
    unit: Unit,
    rooms: list[int],
    start: datetime,
    seconds: float,
    *,
    people: list[int] | None = None,
    title: str = "区长视频会议",
    role: Role = Role.SECRETARIAT,
) -> dict[str, Any]:
    body = {
        "title": title,
        "unit_id": unit.id,
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=seconds)).isoformat(),
        "attendees": [{"person_id": p} for p in people or []],
        "room_ids": rooms,
    }
    r = await client.post("/api/v1/meetings", json=body, headers=await staff.headers(role))
    assert r.status == 201, await r.text()
    meeting: dict[str, Any] = await r.json()
    return meeting


def soon(seconds: float) -> datetime:
    """A whole second at least ``seconds`` from now (meetings are stored to the second)."""
    return (datetime.now(UTC) + timedelta(seconds=seconds + 1)).replace(microsecond=0)


def conference_of(meeting_id: int, start: datetime) -> str:
    return f"{meeting_id}@{start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def agent_for(
    base_url: str, token: str, colour: tuple[int, int, int] = (30, 144, 255), lead: float = 1.0
) -> TerminalAgent:
    return TerminalAgent(
        base_url,
        token,
        sources=MediaSources(video="testsrc:{},{},{}".format(*colour), audio="testsrc"),
        lead=lead,
        host_addresses=LOOPBACK,
        reconnect_base=0.2,
        reconnect_cap=0.5,
    )


async def until(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


class Proxy:
    """A TCP forwarder on loopback that can be unplugged (the terminal's network fails)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def plug(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def unplug(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        dst.close()


class HttpOfferer:
    """A WHIP encoder or WHEP player: aiortc offering over plain HTTP (aiohttp), no signalling.

    ``publish`` sends a test pattern and a tone (audio first: the bundle's transport);
    ``view`` receives audio and video and records the decoded frames and the last colour.
    """

    def __init__(self, base_url: str, token: str) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection
        from aiortc.rtcconfiguration import RTCBundlePolicy

        self.base_url = base_url.rstrip("/")
        self.token = token
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.location: str | None = None
        self.etag: str | None = None
        self.headers: dict[str, str] = {}
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.colour: tuple[float, float, float] | None = None
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def auth(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    async def offer(self) -> str:
        from media.ice import host_addresses

        with host_addresses(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def post(self, endpoint: str, sdp: str | None = None) -> tuple[int, str]:
        """POST the offer; on 201 apply the answer. (status, body)."""
        import aiohttp
        from aiortc import RTCSessionDescription

        sdp = sdp if sdp is not None else await self.offer()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.base_url + endpoint,
                data=sdp.encode(),
                headers=self.auth(**{"Content-Type": "application/sdp"}),
            ) as r,
        ):
            body = await r.text()
            self.headers = dict(r.headers)
            if r.status == 201:
                self.location = r.headers["Location"]
                self.etag = r.headers.get("ETag")
                answer = RTCSessionDescription(body, "answer")
                await self.pc.setRemoteDescription(answer)
            return r.status, body

    async def publish(self, colour: tuple[int, int, int]) -> tuple[int, str]:
        from signaling.sources import ColorTrack, ToneTrack

        self.pc.addTrack(ToneTrack())
        self.pc.addTrack(ColorTrack(colour))
        return await self.post("/whip")

    async def view(self, query: str = "") -> tuple[int, str]:
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        return await self.post("/whep" + query)

    async def request(
        self, method: str, path: str | None = None, body: str = "", **headers: str
    ) -> tuple[int, str]:
        import aiohttp

        url = self.base_url + (path or self.location or "")
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, url, data=body.encode(), headers=self.auth(**headers)) as r,
        ):
            self.headers = dict(r.headers)
            return r.status, await r.text()

    def _on_track(self, track: Any) -> None:
        self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError
        from av import VideoFrame

        from signaling.sources import mean_rgb

        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, VideoFrame):
                    self.colour = mean_rgb(frame)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.pc.close()


def near(rgb: Any, want: tuple[int, int, int], tolerance: float = 30) -> bool:
    return rgb is not None and all(abs(a - b) <= tolerance for a, b in zip(rgb, want, strict=True))
