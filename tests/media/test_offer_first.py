"""Offer-first clients (WHIP publishers, WHEP viewers) through a real engine and aiortc peers.

They offer once and never renegotiate: a publisher's tracks reach everyone else; a viewer's
fixed m-lines are fed by the active speaker (or a chosen publisher), switched inside the SFU.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from av import VideoFrame

from media import NegotiationError
from media.ice import host_addresses
from media.messages import ParticipantMode
from tests.media.conftest import LOOPBACK, ColorTrack, Harness, ToneTrack, close_to, wait_for

RED = (220, 30, 30)
BLUE = (30, 30, 220)


class OfferClient:
    """An aiortc peer that offers first, like a WHIP encoder or a WHEP player."""

    def __init__(self, harness: Harness, name: str) -> None:
        self.harness = harness
        self.name = name
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.frames: dict[str, int] = {"audio": 0, "video": 0}
        self.color: tuple[float, float, float] | None = None
        self.answer: dict[str, Any] = {}
        self._readers: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    async def start(self, mode: ParticipantMode, follow: str | None = None) -> None:
        with host_addresses(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await self.harness.engine.join_with_offer(
            "c1", self.name, self.pc.localDescription.sdp, mode, follow=follow
        )
        self.answer = dict(answer)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def publish(self, color: tuple[int, int, int], amplitude: float) -> None:
        self.pc.addTrack(ToneTrack(amplitude))  # audio first: the bundle's transport
        self.pc.addTrack(ColorTrack(color))
        await self.start("publish")

    async def view(self, follow: str | None = None) -> None:
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        await self.start("view", follow)

    def _on_track(self, track: Any) -> None:
        self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if isinstance(frame, VideoFrame):
                    rgb = frame.to_ndarray(format="rgb24")
                    mean = rgb.reshape(-1, 3).mean(axis=0)
                    self.color = (float(mean[0]), float(mean[1]), float(mean[2]))
        except MediaStreamError:
            pass

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        await self.pc.close()


@pytest.fixture
async def offerers(harness: Harness) -> AsyncIterator[list[OfferClient]]:
    made: list[OfferClient] = []
    yield made
    for client in made:
        await client.close()


def new(harness: Harness, made: list[OfferClient], name: str) -> OfferClient:
    client = OfferClient(harness, name)
    made.append(client)
    return client


async def test_a_whip_publisher_reaches_the_others_and_receives_nothing(
    harness: Harness, offerers: list[OfferClient]
) -> None:
    alice = await harness.join("alice")
    encoder = new(harness, offerers, "encoder")
    await encoder.publish(RED, 0.3)

    assert sorted(encoder.answer["kinds"]) == ["audio", "video"]
    assert "a=recvonly" in encoder.answer["sdp"] and "a=sendonly" not in encoder.answer["sdp"]
    await wait_for(lambda: close_to(alice.video_from("encoder"), RED))
    await wait_for(lambda: alice.audio_frames_from("encoder") > 5)
    # alice publishes later: the encoder is never offered her tracks
    late = await harness.join("bob", color=BLUE, amplitude=0.2)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    assert not [e for e in harness.events_of("offer") if e["participant"] == "encoder"]
    assert close_to(late.video_from("encoder"), RED) or await wait_for(
        lambda: close_to(late.video_from("encoder"), RED)
    )


async def test_a_whep_viewer_follows_the_active_speaker(
    harness: Harness, offerers: list[OfferClient]
) -> None:
    alice = await harness.join("alice", color=RED, amplitude=0.5)
    bob = await harness.join("bob", color=BLUE, amplitude=0.0)
    viewer = new(harness, offerers, "viewer")
    await viewer.view()
    assert sorted(viewer.answer["kinds"]) == ["audio", "video"]
    await wait_for(lambda: harness.engine.active_speaker("c1") == "alice")
    await wait_for(lambda: close_to(viewer.color, RED))
    await wait_for(lambda: viewer.frames["audio"] > 5)

    alice.set_amplitude(0.0)
    bob.set_amplitude(0.5)
    await wait_for(lambda: harness.engine.active_speaker("c1") == "bob")
    # the switch keeps the stream decodable: a keyframe of the new source is asked for
    await wait_for(lambda: close_to(viewer.color, BLUE), timeout=5)
    assert harness.engine.view_source("viewer") == "bob"


async def test_a_whep_viewer_can_follow_one_participant_and_outlives_its_source(
    harness: Harness, offerers: list[OfferClient]
) -> None:
    await harness.join("alice", color=RED, amplitude=0.5)
    await harness.join("bob", color=BLUE, amplitude=0.0)
    viewer = new(harness, offerers, "viewer")
    await viewer.view(follow="bob")
    await wait_for(lambda: close_to(viewer.color, BLUE))

    harness.engine.set_view_source("viewer", "alice")
    await wait_for(lambda: close_to(viewer.color, RED), timeout=5)
    harness.engine.set_view_source("viewer", "bob")
    await wait_for(lambda: close_to(viewer.color, BLUE), timeout=5)

    await harness.clients["bob"].close()
    await harness.engine.leave("bob")
    await wait_for(lambda: close_to(viewer.color, RED), timeout=5)
    frames = viewer.frames["video"]
    await wait_for(lambda: viewer.frames["video"] > frames + 10)


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (["video", "video"], "at most one video"),
        ([], "only audio and video m-lines"),
    ],
)
async def test_unusable_offers_are_refused_and_leave_nothing_behind(
    harness: Harness, offerers: list[OfferClient], kinds: list[str], message: str
) -> None:
    client = new(harness, offerers, "encoder")
    for kind in kinds:
        client.pc.addTransceiver(kind, direction="sendonly")
    if not kinds:
        client.pc.createDataChannel("chat")
    with pytest.raises(NegotiationError, match=message):
        await client.start("publish")
    assert harness.engine.participants("c1") == []


async def test_a_viewer_that_receives_nothing_is_refused(
    harness: Harness, offerers: list[OfferClient]
) -> None:
    client = new(harness, offerers, "viewer")
    client.pc.addTransceiver(ColorTrack(RED), direction="sendonly")
    with pytest.raises(NegotiationError, match="receives no audio or video"):
        await client.start("view")
