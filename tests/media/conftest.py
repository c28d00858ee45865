"""Real aiortc clients on loopback, joined to a real MediaEngine (no mocks of aiortc).

A ``Harness`` plays the signalling layer: it relays the engine's offers to each client
and the clients' answers back, like ``signaling`` will over WebSocket.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from av import AudioFrame, VideoFrame

from media import MediaConfig, MediaEngine
from media.ice import host_addresses
from media.internals import guard_connect
from media.messages import MediaEvent, OfferMessage

LOOPBACK = ["127.0.0.1"]
WIDTH, HEIGHT = 160, 120


class ColorTrack(VideoStreamTrack):
    """Frames of one solid RGB colour (30 fps, small, cheap to encode)."""

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self.rgb = rgb
        image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        image[:, :] = rgb
        self._image = image

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone at ``amplitude`` (0: silence), 20 ms mono frames at 48 kHz."""

    def __init__(self, amplitude: float) -> None:
        super().__init__()
        self.set_amplitude(amplitude)

    def set_amplitude(self, amplitude: float) -> None:
        t = np.arange(960) / 48000
        wave = amplitude * 32767 * np.sin(2 * math.pi * 440 * t)
        self._samples = wave.astype(np.int16).reshape(1, -1)

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # keeps the real-time pacing
        out = AudioFrame.from_ndarray(self._samples, format="s16", layout="mono")
        out.sample_rate = 48000
        # aiortc's silence source counts 8 kHz samples: re-express its clock at 48 kHz.
        assert frame.pts is not None and frame.time_base is not None
        out.pts = int(frame.pts * frame.time_base * 48000)
        out.time_base = fractions.Fraction(1, 48000)
        return out


class Client:
    """One aiortc peer that joins through the engine, publishes and decodes what it gets."""

    def __init__(
        self,
        harness: Harness,
        name: str,
        *,
        color: tuple[int, int, int] | None = None,
        amplitude: float | None = None,
        munge: Callable[[str], str] | None = None,
        video_codec: str | None = None,
    ) -> None:
        self.harness = harness
        self.name = name
        self.munge = munge
        self.video_codec = video_codec
        # MAX_BUNDLE: with aiortc's default (balanced), a second m-line of one kind in the
        # first offer is left on a discarded transport and never receives anything.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        # Audio first, like the server's m-lines: aiortc mis-bundles otherwise.
        self.outgoing: list[MediaStreamTrack] = []
        if amplitude is not None:
            self.outgoing.append(ToneTrack(amplitude))
        if color is not None:
            self.outgoing.append(ColorTrack(color))
        self.tracks: dict[str, str | None] = {}  # mid -> publisher
        self.sources: dict[str, str | None] = {}  # mid -> source (own uplinks too)
        self.frames: dict[str, int] = {}  # mid -> frames decoded
        self.first_frame_at: dict[str, float] = {}
        self.colors: dict[str, tuple[float, float, float]] = {}
        self.offers: asyncio.Queue[OfferMessage] = asyncio.Queue()
        self.offers_handled = 0
        self._readers: list[asyncio.Task[None]] = []
        self._negotiator: asyncio.Task[None] | None = None
        self._added = False
        self.pc.on("track", self._on_track)
        self.connect_errors: list[BaseException] = []
        self._connect_tasks: set[asyncio.Task[Any]] = set()
        guard_connect(self.pc, self._connect_tasks, self.connect_errors.append)

    # -- signalling ------------------------------------------------------------------

    async def join(self, conference: str = "c1") -> None:
        offer = await self.harness.engine.join(conference, self.name)
        await self.handle_offer(offer)
        self._negotiator = asyncio.get_running_loop().create_task(self._negotiate())

    async def _negotiate(self) -> None:
        while True:
            offer = await self.offers.get()
            await self.handle_offer(offer)

    async def handle_offer(self, offer: OfferMessage) -> None:
        sdp = offer["sdp"] if self.munge is None else self.munge(offer["sdp"])
        if not self._added:
            # Added before the first offer is applied, so they take its first m-line of
            # their kind (the server's recvonly ones) and codec preferences apply.
            self._added = True
            if not any(t.kind == "audio" for t in self.outgoing):
                # The first transceiver owns the bundle transport: keep it audio (m-line 0).
                self.pc.addTransceiver("audio", direction="recvonly")
            for track in self.outgoing:
                sender = self.pc.addTrack(track)
                if self.video_codec and track.kind == "video":
                    transceiver = next(t for t in self.pc.getTransceivers() if t.sender is sender)
                    caps = [
                        c
                        for c in sender.getCapabilities("video").codecs
                        if c.mimeType.lower() == f"video/{self.video_codec}".lower()
                    ]
                    transceiver.setCodecPreferences(caps)
        with host_addresses(LOOPBACK):
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await self.before_answer(offer)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        for info in offer["tracks"]:
            self.tracks[info["mid"]] = info["publisher"]
            self.sources[info["mid"]] = info["source"]
        await self.harness.engine.answer(self.name, self.pc.localDescription.sdp)
        self.offers_handled += 1

    async def before_answer(self, offer: OfferMessage) -> None:
        """Called with the offer applied, before the answer is made (subclasses attach
        tracks to new uplink m-lines here)."""

    # -- media -----------------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        self._readers.append(asyncio.get_running_loop().create_task(self._read(mid, track)))

    async def _read(self, mid: str, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[mid] = self.frames.get(mid, 0) + 1
                self.first_frame_at.setdefault(mid, time.monotonic())
                if isinstance(frame, VideoFrame):
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w, _ = rgb.shape
                    center = rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
                    mean = center.reshape(-1, 3).mean(axis=0)
                    self.colors[mid] = (float(mean[0]), float(mean[1]), float(mean[2]))
        except MediaStreamError:
            pass

    def set_amplitude(self, amplitude: float) -> None:
        for track in self.outgoing:
            if isinstance(track, ToneTrack):
                track.set_amplitude(amplitude)

    def mids_from(self, publisher: str, kind: str | None = None) -> list[str]:
        kinds = {t.mid: t.kind for t in self.pc.getTransceivers()}
        return [
            mid
            for mid, p in self.tracks.items()
            if p == publisher and (kind is None or kinds.get(mid) == kind)
        ]

    def video_from(self, publisher: str) -> tuple[float, float, float] | None:
        for mid in self.mids_from(publisher, "video"):
            if mid in self.colors:
                return self.colors[mid]
        return None

    def audio_frames_from(self, publisher: str) -> int:
        return sum(self.frames.get(mid, 0) for mid in self.mids_from(publisher, "audio"))

    async def close(self) -> None:
        tasks = [*self._readers]
        if self._negotiator is not None:
            tasks.append(self._negotiator)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pc.close()
        for track in self.outgoing:
            track.stop()


class Harness:
    """The engine plus its clients; records every event the engine emits."""

    def __init__(self, config: MediaConfig) -> None:
        self.events: list[MediaEvent] = []
        self.engine = MediaEngine(config, on_event=self._on_event)
        self.clients: dict[str, Client] = {}

    def _on_event(self, event: MediaEvent) -> None:
        self.events.append(event)
        if event["type"] == "offer":
            client = self.clients.get(event["participant"])
            if client is not None:
                client.offers.put_nowait(event)

    def client(self, name: str, **kwargs: Any) -> Client:
        client = Client(self, name, **kwargs)
        self.clients[name] = client
        return client

    async def join(self, name: str, **kwargs: Any) -> Client:
        client = self.client(name, **kwargs)
        await client.join()
        return client

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self.events if e["type"] == kind]

    async def close(self) -> None:
        for client in list(self.clients.values()):
            await client.close()
        await self.engine.close()


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02
) -> Any:
    """Poll ``predicate`` until it returns something truthy (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def wait_async(
    predicate: Callable[[], Awaitable[Any]], timeout: float = 10.0, interval: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def close_to(color: tuple[float, float, float] | None, rgb: tuple[int, int, int]) -> bool:
    return color is not None and all(abs(a - b) <= 30 for a, b in zip(color, rgb, strict=True))


def remap_payload_types(sdp: str, mapping: dict[int, int]) -> str:
    """Renumber payload types in an SDP (m= lines, rtpmap, fmtp, rtcp-fb, apt=)."""

    def pt(match: re.Match[str]) -> str:
        value = int(match.group(2))
        return f"{match.group(1)}{mapping.get(value, value)}"

    lines = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            head, *pts = line.split(" ")
            fixed = [head, *pts[:2], *(str(mapping.get(int(p), int(p))) for p in pts[2:])]
            line = " ".join(fixed)
        else:
            line = re.sub(r"^(a=(?:rtpmap|fmtp|rtcp-fb):)(\d+)", pt, line)
            line = re.sub(r"(apt=)(\d+)", pt, line)
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness(MediaConfig(host_addresses=LOOPBACK, speaker_hold=0.2))
    try:
        yield h
    finally:
        await h.close()
