"""Real aiortc peers exchange audio and video through the engine, forwarded as RTP."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest
from aiortc import rtcrtpreceiver, rtcrtpsender

from tests.media.conftest import Harness, close_to, remap_payload_types, wait_for

RED = (220, 30, 30)
BLUE = (30, 30, 220)
GREEN = (30, 200, 40)


async def test_two_participants_receive_each_others_video_and_audio(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED, amplitude=0.3)
    bob = await harness.join("bob", color=BLUE, amplitude=0.3)

    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    await wait_for(lambda: bob.audio_frames_from("alice") > 10)
    await wait_for(lambda: alice.audio_frames_from("bob") > 10)
    published = {(e["participant"], e["kind"]) for e in harness.events_of("track_published")}
    assert published == {(p, k) for p in ("alice", "bob") for k in ("audio", "video")}


async def test_three_participants_each_see_the_two_others(harness: Harness) -> None:
    colors = {"alice": RED, "bob": BLUE, "carol": GREEN}
    clients = {
        name: await harness.join(name, color=rgb, amplitude=0.2) for name, rgb in colors.items()
    }

    for name, client in clients.items():
        for other, rgb in colors.items():
            if other != name:
                await wait_for(lambda c=client, o=other, x=rgb: close_to(c.video_from(o), x))
                await wait_for(lambda c=client, o=other: c.audio_frames_from(o) > 5)
    # Nobody receives their own media back.
    for name, client in clients.items():
        assert client.mids_from(name) == []


async def test_the_server_never_decodes_nor_encodes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server-side receivers never get a decoder, server-side senders never an encoder,
    and what a subscriber receives is byte for byte what the publisher sent."""
    decoder_queues: list[Any] = []
    encoder_senders: list[Any] = []
    real_get_decoder = rtcrtpreceiver.get_decoder
    real_get_encoder = rtcrtpsender.get_encoder

    def counting_get_decoder(codec: Any) -> Any:
        decoder_queues.append(sys._getframe(1).f_locals.get("input_q"))
        return real_get_decoder(codec)

    def counting_get_encoder(codec: Any) -> Any:
        encoder_senders.append(sys._getframe(1).f_locals.get("self"))
        return real_get_encoder(codec)

    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", counting_get_decoder)
    monkeypatch.setattr(rtcrtpsender, "get_encoder", counting_get_encoder)

    alice = await harness.join("alice", color=RED, amplitude=0.3)
    sent: set[bytes] = set()
    received: set[bytes] = set()
    alice_transport = alice.pc.getTransceivers()[0].sender.transport
    original_send = alice_transport._send_rtp

    async def recording_send(data: bytes) -> None:
        if data[1] & 0x7F == 97:  # VP8 as negotiated with alice (RTCP has PT >= 200)
            sent.add(_rtp_payload(data))
        await original_send(data)

    alice_transport._send_rtp = recording_send
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await wait_for(lambda: bob.audio_frames_from("alice") > 10)

    video_mid = bob.mids_from("alice", "video")[0]
    receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == video_mid)
    original_handle = receiver._handle_rtp_packet

    async def recording_handle(packet: Any, arrival_time_ms: int) -> None:
        received.add(packet.payload)
        await original_handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording_handle
    await wait_for(lambda: len(received) >= 20)
    assert received <= sent

    server_queues = {
        id(t.receiver._RTCRtpReceiver__decoder_queue)
        for p in harness.engine._participants.values()
        for t in p.pc.getTransceivers()
    }
    server_senders = {
        id(t.sender) for p in harness.engine._participants.values() for t in p.pc.getTransceivers()
    }
    assert decoder_queues, "the clients decode (sanity check of the instrumentation)"
    assert not server_queues & {id(q) for q in decoder_queues}
    assert encoder_senders, "the clients encode (sanity check of the instrumentation)"
    assert not server_senders & {id(s) for s in encoder_senders}


def _rtp_payload(data: bytes) -> bytes:
    cc = data[0] & 0x0F
    pos = 12 + 4 * cc
    if data[0] & 0x10:
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 4 + 4 * length
    return data[pos:]


async def test_late_joiner_gets_a_keyframe_quickly(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    # aiortc's encoder makes a keyframe only every ~100 s: carol depends on the PLI path.
    published = harness.engine._participants["alice"].inbound["camera"]
    requests_before = published.keyframe_requests
    joined = time.monotonic()
    carol = await harness.join("carol")
    await wait_for(lambda: close_to(carol.video_from("alice"), RED), timeout=5)
    mid = carol.mids_from("alice", "video")[0]
    assert carol.first_frame_at[mid] - joined < 3.0
    assert published.keyframe_requests > requests_before
    assert alice.pc.connectionState == "connected"


async def test_payload_types_are_mapped_by_codec_name(harness: Harness) -> None:
    """Bob numbers Opus 111, VP8 120 and its RTX 121; alice keeps aiortc's 96/97/98."""
    mapping = {96: 111, 97: 120, 98: 121}
    await harness.join("alice", color=RED, amplitude=0.3)
    bob = await harness.join(
        "bob", color=BLUE, amplitude=0.3, munge=lambda sdp: remap_payload_types(sdp, mapping)
    )
    alice = harness.clients["alice"]

    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await wait_for(lambda: bob.audio_frames_from("alice") > 10)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    await wait_for(lambda: alice.audio_frames_from("bob") > 10)
    forwarders = harness.engine._participants["bob"].forwarders
    assert {f.kind: f.payload_type_for(_codec(f.kind)) for f in forwarders} == {
        "audio": 111,
        "video": 120,
    }


def _codec(kind: str) -> Any:
    from aiortc.codecs import CODECS

    return CODECS[kind][0]


async def test_h264_publisher_is_forwarded(harness: Harness) -> None:
    await harness.join("terminal", color=GREEN, video_codec="H264")
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("terminal"), GREEN))
    assert harness.engine._participants["terminal"].inbound["camera"].codec_name == "H264"


async def test_subscriber_pli_reaches_the_publisher(harness: Harness) -> None:
    await harness.join("alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    published = harness.engine._participants["alice"].inbound["camera"]
    await wait_for(lambda: published.keyframe_requests >= 1)
    # Let the rate limit (one request per 300 ms) pass before the subscriber asks.
    await asyncio.sleep(harness.engine.config.keyframe_request_interval + 0.05)
    before = published.keyframe_requests
    mid = bob.mids_from("alice", "video")[0]
    receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == mid)
    ssrc = next(iter(receiver._RTCRtpReceiver__remote_streams))
    await receiver._send_rtcp_pli(ssrc)
    await wait_for(lambda: published.keyframe_requests > before, timeout=3)


async def test_subscriber_nack_is_answered_from_the_forwarded_history(harness: Harness) -> None:
    await harness.join("alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    forwarder = next(f for f in harness.engine._participants["bob"].forwarders if f.kind == "video")
    latest = forwarder.last_sequence_number
    assert latest is not None
    sent = forwarder.sent_packet(latest)
    assert sent is not None and sent.ssrc == forwarder.sender._ssrc

    mid = bob.mids_from("alice", "video")[0]
    receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == mid)
    streams = receiver._RTCRtpReceiver__remote_streams
    media_ssrc = forwarder.sender._ssrc
    rtx_ssrc = forwarder.sender._rtx_ssrc
    assert rtx_ssrc not in streams
    await receiver._send_rtcp_nack(media_ssrc, [latest])
    await wait_for(lambda: rtx_ssrc in streams, timeout=3)
