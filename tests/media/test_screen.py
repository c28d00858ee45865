"""Screen sharing: a second video uplink (source "screen"), forwarded like any other track.

Real aiortc peers: the sharer attaches a "display" track to the uplink m-line the server's
offer names ``source: "screen"``, as the browser does with getDisplayMedia.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import RTCRtpTransceiver
from aiortc.rtp import RtpPacket

from media import InvalidRequest
from media.fastpath import rtp_socket
from media.internals import receiver_state
from media.messages import OfferMessage
from media.participant import Participant
from tests.media.conftest import Client, ColorTrack, Harness, close_to, wait_async, wait_for
from tests.media.test_offer_first import OfferClient

RED = (220, 30, 30)
BLUE = (30, 30, 220)
YELLOW = (230, 200, 40)


class SharingClient(Client):
    """A client that sends a known colour on its screen uplink whenever one is offered."""

    def __init__(self, harness: Harness, name: str, **kwargs: Any) -> None:
        super().__init__(harness, name, **kwargs)
        self.screen = ColorTrack(YELLOW)
        self.answer_shares = asyncio.Event()
        """Cleared: an offer that opens the screen uplink waits here before its answer."""
        self.answer_shares.set()
        self.answer_all = asyncio.Event()
        """Cleared: every offer waits here before its answer."""
        self.answer_all.set()

    async def before_answer(self, offer: OfferMessage) -> None:
        await self.answer_all.wait()
        for info in offer["tracks"]:
            if info["publisher"] is None and info["source"] == "screen":
                await self.answer_shares.wait()
                transceiver = self.transceiver(info["mid"])
                if transceiver.sender.track is None:
                    transceiver.sender.replaceTrack(self.screen)
                transceiver.direction = "sendonly"

    def transceiver(self, mid: str) -> RTCRtpTransceiver:
        return next(t for t in self.pc.getTransceivers() if t.mid == mid)

    async def close(self) -> None:
        await super().close()
        self.screen.stop()


async def join_sharing(harness: Harness, name: str, **kwargs: Any) -> SharingClient:
    client = SharingClient(harness, name, **kwargs)
    harness.clients[name] = client
    await client.join()
    return client


def mid_of(client: Client, publisher: str | None, source: str) -> str | None:
    return next(
        (
            mid
            for mid, p in client.tracks.items()
            if p == publisher and client.sources.get(mid) == source
        ),
        None,
    )


def server(harness: Harness, name: str) -> Participant:
    return harness.engine._participants[name]


def frames_grow(client: Client, mid: str, by: int = 5) -> Callable[[], bool]:
    start = client.frames.get(mid, 0)
    return lambda: client.frames.get(mid, 0) >= start + by


def offers_to(harness: Harness, name: str) -> list[dict[str, Any]]:
    return [e for e in harness.events_of("offer") if e["participant"] == name]


def sources_of(events: list[dict[str, Any]], participant: str) -> list[tuple[str, str]]:
    return [(e["kind"], e["source"]) for e in events if e["participant"] == participant]


async def test_screen_share_reaches_the_others_and_stops_and_comes_back(harness: Harness) -> None:
    alice = await join_sharing(harness, "alice", color=RED, amplitude=0.3)
    bob = await harness.join("bob", color=BLUE, amplitude=0.3)
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    camera_mid = mid_of(bob, "alice", "camera")
    assert camera_mid is not None and mid_of(bob, "alice", "microphone") is not None
    # Alice's first offer named her own uplinks by source, with no publisher.
    uplinks = {i["source"]: i["kind"] for i in offers_to(harness, "alice")[0]["tracks"]}
    assert {s: k for s, k in uplinks.items() if s in ("microphone", "camera")} == {
        "microphone": "audio",
        "camera": "video",
    }
    assert "screen" not in uplinks

    # Start: a third uplink m-line, recvonly, named "screen" in a re-offer.
    handled = alice.offers_handled
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: alice.offers_handled > handled)
    screen_uplink = mid_of(alice, None, "screen")
    assert screen_uplink is not None
    infos = server(harness, "alice").track_infos()
    own = {i["source"]: (i["mid"], i["kind"]) for i in infos if i["publisher"] is None}
    assert own["screen"] == (screen_uplink, "video")
    assert set(own) == {"microphone", "camera", "screen"}
    assert ("video", "screen") in sources_of(harness.events_of("track_published"), "alice")

    # Bob gets a second video track from alice, marked "screen", showing the screen.
    await wait_for(lambda: mid_of(bob, "alice", "screen") is not None)
    screen_mid = mid_of(bob, "alice", "screen")
    assert screen_mid is not None and screen_mid != camera_mid
    await wait_for(lambda: close_to(bob.colors.get(screen_mid), YELLOW))
    await wait_for(frames_grow(bob, camera_mid))
    assert close_to(bob.colors.get(camera_mid), RED)
    bob_infos = {i["mid"]: i for i in server(harness, "bob").track_infos()}
    assert (bob_infos[screen_mid]["kind"], bob_infos[screen_mid]["source"]) == ("video", "screen")
    assert bob_infos[camera_mid]["source"] == "camera"

    # Stats carry the source both ways.
    sample = await harness.engine.stats("alice")
    assert {(s["kind"], s["source"]) for s in sample["inbound"]} == {
        ("audio", "microphone"),
        ("video", "camera"),
        ("video", "screen"),
    }
    bob_sample = await harness.engine.stats("bob")
    assert ("alice", "screen") in {(s["publisher"], s["source"]) for s in bob_sample["outbound"]}

    # Stop: unpublished, alice's screen m-line goes inactive, bob's m-line is freed.
    offers_before = len(offers_to(harness, "alice"))
    await harness.engine.set_screen_share("alice", False)
    assert sources_of(harness.events_of("track_unpublished"), "alice") == [("video", "screen")]
    await wait_for(lambda: len(offers_to(harness, "alice")) > offers_before)
    await wait_for(lambda: alice.transceiver(screen_uplink).currentDirection == "inactive")
    uplink = server(harness, "alice")._uplinks["screen"]
    await wait_for(lambda: uplink.currentDirection == "inactive")
    assert uplink.direction == "inactive" and uplink.mid == screen_uplink
    assert server(harness, "alice").inbound["screen"].published is False
    stopped = {i["mid"]: i for i in server(harness, "alice").track_infos()}
    assert (stopped[screen_uplink]["publisher"], stopped[screen_uplink]["source"]) == (None, None)
    await wait_for(lambda: mid_of(bob, "alice", "screen") is None)
    assert (bob.tracks[screen_mid], bob.sources[screen_mid]) == (None, None)
    await wait_for(frames_grow(bob, camera_mid, by=10))  # frames in flight are decoded
    frozen = bob.frames.get(screen_mid, 0)
    await wait_for(frames_grow(bob, camera_mid, by=10))  # the camera keeps going...
    assert bob.frames.get(screen_mid, 0) == frozen  # ...the screen does not

    # Share again: the same uplink m-line is re-enabled; bob sees the screen again.
    transceivers = len(server(harness, "alice").pc.getTransceivers())
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: mid_of(bob, "alice", "screen") is not None)
    assert mid_of(alice, None, "screen") == screen_uplink
    assert len(server(harness, "alice").pc.getTransceivers()) == transceivers
    again = mid_of(bob, "alice", "screen")
    assert again is not None
    await wait_for(frames_grow(bob, again, by=10))
    assert close_to(bob.colors.get(again), YELLOW)
    published = sources_of(harness.events_of("track_published"), "alice")
    assert published.count(("video", "screen")) == 2


async def test_a_re_enabled_m_line_gets_the_screen_only_once_the_subscriber_answers(
    harness: Harness,
) -> None:
    """Sharing again re-points the subscriber's inactive m-line at the screen at once, but
    the subscriber drops packets on it until it has answered the offer re-enabling it (a
    keyframe lost there froze the picture): nothing is sent before, and the screen shows
    soon after."""
    await join_sharing(harness, "alice", color=RED)
    bob = await join_sharing(harness, "bob")
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: mid_of(bob, "alice", "screen") is not None)
    mid = mid_of(bob, "alice", "screen") or ""
    await wait_for(lambda: close_to(bob.colors.get(mid), YELLOW))
    await harness.engine.set_screen_share("alice", False)
    await wait_for(lambda: bob.transceiver(mid).currentDirection == "inactive")
    await wait_for(lambda: bob.offers.empty())

    bob.answer_all.clear()
    await harness.engine.set_screen_share("alice", True)
    screen = server(harness, "alice").inbound["screen"]
    await wait_for(lambda: screen.published)
    forwarder = next(f for f in server(harness, "bob").forwarders if f.source is screen)
    assert forwarder.mid == mid  # the inactive m-line is reused
    sent = forwarder.packets_sent
    forwarded = screen.packets_forwarded
    await wait_for(lambda: screen.packets_forwarded > forwarded + 15)
    assert forwarder.packets_sent == sent
    bob.answer_all.set()
    await wait_for(frames_grow(bob, mid, by=5), timeout=5)
    assert close_to(bob.colors.get(mid), YELLOW)


async def test_screen_share_requests_are_idempotent(harness: Harness) -> None:
    alice = await join_sharing(harness, "alice", color=RED)
    await harness.join("bob")
    await wait_for(lambda: server(harness, "alice").inbound["camera"].published)
    await wait_for(lambda: alice.offers_handled >= 1 and alice.offers.empty())
    offers = len(offers_to(harness, "alice"))
    await harness.engine.set_screen_share("alice", False)  # not sharing: nothing to do
    assert len(offers_to(harness, "alice")) == offers
    await harness.engine.set_screen_share("alice", True)
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: server(harness, "alice").inbound["screen"].published)
    assert len(offers_to(harness, "alice")) == offers + 1
    await harness.engine.set_screen_share("alice", True)
    assert len(offers_to(harness, "alice")) == offers + 1
    published = sources_of(harness.events_of("track_published"), "alice")
    assert published.count(("video", "screen")) == 1


async def test_late_joiner_receives_an_ongoing_screen_share(harness: Harness) -> None:
    await join_sharing(harness, "alice", color=RED)
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: server(harness, "alice").inbound["screen"].published)
    carol = await harness.join("carol")
    await wait_for(lambda: mid_of(carol, "alice", "screen") is not None)
    screen_mid = mid_of(carol, "alice", "screen")
    await wait_for(lambda: close_to(carol.colors.get(screen_mid or ""), YELLOW))
    camera_mid = mid_of(carol, "alice", "camera")
    assert camera_mid is not None
    await wait_for(lambda: close_to(carol.colors.get(camera_mid), RED))


async def test_screen_uplink_works_on_the_fast_path_and_gets_its_retransmissions(
    harness: Harness,
) -> None:
    """Camera and screen have the same payload types on one transport: every packet, RTX
    included, must still reach the right track (aiortc alone routes RTX by payload type)."""
    alice = await join_sharing(harness, "alice", color=RED)
    bob = await harness.join("bob")
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: mid_of(bob, "alice", "screen") is not None)
    screen_mid = mid_of(bob, "alice", "screen")
    await wait_for(lambda: close_to(bob.colors.get(screen_mid or ""), YELLOW))

    sharer = server(harness, "alice")
    camera, screen = sharer.inbound["camera"], sharer.inbound["screen"]
    socket = rtp_socket(sharer.pc.getTransceivers()[0].receiver.transport)
    assert socket is not None and screen._socket is socket and camera._socket is socket
    forwarded = screen.packets_forwarded
    await wait_for(lambda: screen.packets_forwarded > forwarded + 10)
    camera_ssrcs = set(receiver_state(sharer._uplinks["camera"].receiver).remote_streams)
    screen_ssrcs = set(receiver_state(sharer._uplinks["screen"].receiver).remote_streams)
    assert camera_ssrcs and screen_ssrcs and not camera_ssrcs & screen_ssrcs

    for source in ("camera", "screen"):
        sender = alice.transceiver(mid_of(alice, None, source) or "").sender
        rx = receiver_state(sharer._uplinks[source].receiver)
        rtx_ssrc = sender._rtx_ssrc
        assert rx.rtx_ssrc.get(rtx_ssrc) == sender._ssrc
        history = sender._RTCRtpSender__rtp_history
        sequence_number = next(iter(history.values())).sequence_number
        await sender._retransmit(sequence_number)
        await wait_for(lambda rx=rx, ssrc=rtx_ssrc: ssrc in rx.remote_streams, timeout=3)


@pytest.mark.parametrize("connected", [False, True])
async def test_an_unknown_ssrc_is_not_taken_for_the_camera_once_a_share_is_offered(
    harness: Harness, connected: bool
) -> None:
    """Between the share's offer and its answer the server does not know the screen's
    SSRC; its first packets must not be forwarded as the camera (same payload type),
    whether the share starts before or after the camera's receiver is running."""
    alice = await join_sharing(harness, "alice", color=RED)
    alice.answer_shares.clear()
    sharer = server(harness, "alice")
    camera = sharer._uplinks["camera"].receiver
    router = camera.transport._rtp_router

    def vp8() -> int:
        return next(pt for pt, c in receiver_state(camera).codecs.items() if c.name == "VP8")

    if connected:
        await wait_for(lambda: receiver_state(camera).remote_streams)
        assert router.route_rtp(RtpPacket(payload_type=vp8(), ssrc=0x5EED0001)) is camera
    await harness.engine.set_screen_share("alice", True)
    await wait_for(lambda: receiver_state(camera).remote_streams)
    assert router.route_rtp(RtpPacket(payload_type=vp8(), ssrc=0x5EED0002)) is None

    alice.answer_shares.set()
    screen = sharer._uplinks["screen"].receiver
    await wait_for(lambda: sharer.inbound["screen"].published)
    await wait_for(lambda: receiver_state(screen).remote_streams)
    camera_ssrcs = set(receiver_state(camera).remote_streams)
    screen_ssrcs = set(receiver_state(screen).remote_streams)
    assert camera_ssrcs and screen_ssrcs and not camera_ssrcs & screen_ssrcs


async def test_a_viewer_keeps_the_camera_while_the_publisher_shares(harness: Harness) -> None:
    await join_sharing(harness, "alice", color=RED, amplitude=0.3)
    viewer = OfferClient(harness, "viewer")
    try:
        await viewer.view(follow="alice")
        await wait_for(lambda: close_to(viewer.color, RED))
        await harness.engine.set_screen_share("alice", True)
        await wait_for(lambda: server(harness, "alice").inbound["screen"].published)
        frames = viewer.frames["video"]
        await wait_for(lambda: viewer.frames["video"] > frames + 10)
        assert close_to(viewer.color, RED)
    finally:
        await viewer.close()


@pytest.mark.parametrize("mode", ["publish", "view"])
async def test_offer_first_clients_cannot_share_a_screen(harness: Harness, mode: str) -> None:
    client = OfferClient(harness, "whip")
    try:
        if mode == "publish":
            await client.publish(RED, 0.3)
        else:
            await harness.join("alice", color=RED)
            await client.view()
        with pytest.raises(InvalidRequest):
            await harness.engine.set_screen_share("whip", True)
        with pytest.raises(InvalidRequest):
            await harness.engine.set_screen_share("whip", False)
    finally:
        await client.close()


async def test_whip_tracks_are_microphone_and_camera(harness: Harness) -> None:
    bob = await harness.join("bob")
    client = OfferClient(harness, "whip")
    try:
        await client.publish(BLUE, 0.3)
        await wait_for(lambda: close_to(bob.video_from("whip"), BLUE))
        assert sorted(sources_of(harness.events_of("track_published"), "whip")) == [
            ("audio", "microphone"),
            ("video", "camera"),
        ]
        assert {bob.sources[m] for m in bob.mids_from("whip")} == {"microphone", "camera"}

        async def both_sources_in_stats() -> bool:
            sample = await harness.engine.stats("whip")
            found = {(s["kind"], s["source"]) for s in sample["inbound"]}
            return found == {("audio", "microphone"), ("video", "camera")}

        await wait_async(both_sources_in_stats)
    finally:
        await client.close()
