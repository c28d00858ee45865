"""The byte-level RTP fast path: its hooks into aioice/aiortc/pylibsrtp, and its output.

The hooks are tested one by one (they use private attributes: an upgrade must fail here),
then the forwarded bytes are compared with what aiortc's object path would send.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from types import SimpleNamespace
from typing import Any

import pytest
import uvloop
from aioice.ice import StunProtocol
from aiortc import RTCRtpParameters
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pyee.asyncio import AsyncIOEventEmitter
from pylibsrtp import Policy, Session

from media import MediaConfig
from media.fastpath import RtpSocket, rtp_socket
from media.internals import (
    dtls_internals,
    extension_ids,
    install_datagram_hook,
    install_retransmit_hook,
    raw_udp_socket,
    remove_datagram_hook,
)
from media.rtpheader import build_template
from media.srtp import SrtpBuffer
from tests.media.conftest import LOOPBACK, Harness, close_to, wait_for

RED = (220, 30, 30)
KEY = bytes(range(30))  # AES_CM_128_HMAC_SHA1_80: 16-byte key + 14-byte salt

MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
AST = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


def _session(ssrc_type: int) -> Session:
    policy = Policy(
        key=KEY, ssrc_type=ssrc_type, srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def _rtp(seq: int, payload: bytes, ssrc: int = 0x1234) -> bytes:
    return RtpPacket(
        payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=ssrc, payload=payload
    ).serialize()


# -- SRTP ------------------------------------------------------------------------------


def test_srtp_buffer_round_trips_with_pylibsrtp_sessions() -> None:
    sender = SrtpBuffer(_session(Policy.SSRC_ANY_OUTBOUND))
    receiver = _session(Policy.SSRC_ANY_INBOUND)
    for seq in range(5):
        plain = _rtp(seq, os.urandom(1000))
        sender.buffer[0 : len(plain)] = plain
        protected = sender.protect(len(plain))
        assert protected is not None and protected != plain
        assert receiver.unprotect(protected) == plain

    protector = _session(Policy.SSRC_ANY_OUTBOUND)
    unprotector = SrtpBuffer(_session(Policy.SSRC_ANY_INBOUND))
    for seq in range(5):
        plain = _rtp(seq, os.urandom(1200))
        size = unprotector.unprotect(protector.protect(plain))
        assert unprotector.buffer[0:size] == plain
    assert unprotector.unprotect(b"\x80" + os.urandom(100)) == -1  # fails authentication
    assert unprotector.unprotect(b"\x80" * 2000) == -1  # too long


# -- header templates -------------------------------------------------------------------


def _extensions_map(ids: dict[str, int]) -> HeaderExtensionsMap:
    extensions_map = HeaderExtensionsMap()
    extensions_map.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()]
        )
    )
    return extensions_map


@pytest.mark.parametrize(
    "ids",
    [{MID: 1, AST: 2, LEVEL: 3}, {MID: 4, AST: 9}, {AST: 3}, {}, {MID: 1, LEVEL: 14}],
)
@pytest.mark.parametrize("level", [None, 0x85])
def test_template_bytes_equal_aiortc_serialisation(ids: dict[str, int], level: int | None) -> None:
    extensions_map = _extensions_map(ids)
    template = build_template(
        0xCAFE0001, extension_ids(extensions_map), "3", audio_level=level is not None
    )
    payload = os.urandom(300)
    data = bytearray(template.data + payload)
    data[1], data[2:4], data[4:8] = 0x80 | 111, (65535).to_bytes(2, "big"), (7).to_bytes(4, "big")
    if template.abs_send_time_at:
        data[template.abs_send_time_at : template.abs_send_time_at + 3] = b"\x12\x34\x56"
    if template.audio_level_at and level is not None:
        data[template.audio_level_at] = level

    packet = RtpPacket(
        payload_type=111, marker=1, sequence_number=65535, timestamp=7, ssrc=0xCAFE0001
    )
    packet.payload = payload
    packet.extensions.mid = "3"
    packet.extensions.abs_send_time = 0x123456
    packet.extensions.audio_level = None if level is None else (True, level & 0x7F)
    assert bytes(data) == packet.serialize(extensions_map)


# -- hooks ------------------------------------------------------------------------------


class _Receiver:
    def __init__(self) -> None:
        self.data: list[bytes] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.data.append(data)


async def _datagram_hook_round_trip() -> None:
    loop = asyncio.get_running_loop()
    receiver = _Receiver()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: StunProtocol(receiver),  # type: ignore[arg-type]
        local_addr=("127.0.0.1", 0),
    )
    protocol.local_candidate = SimpleNamespace(component=1)  # type: ignore[assignment]
    address = transport.get_extra_info("sockname")
    hooked: list[bytes] = []
    install_datagram_hook(protocol, lambda data, addr: hooked.append(data))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, remote_addr=address)
    sender.sendto(b"\x80fast")
    for _ in range(100):
        if hooked:
            break
        await asyncio.sleep(0.01)
    remove_datagram_hook(protocol)
    sender.sendto(b"\x80slow")
    for _ in range(100):
        if receiver.data:
            break
        await asyncio.sleep(0.01)
    assert hooked == [b"\x80fast"]
    assert receiver.data == [b"\x80slow"]  # aioice's own handler again
    sender.close()
    transport.close()


async def test_datagram_hook_replaces_aioice_handler_on_asyncio() -> None:
    await _datagram_hook_round_trip()


def test_datagram_hook_replaces_aioice_handler_on_uvloop() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_datagram_hook_round_trip())


async def test_retransmit_hook_fills_aiortc_history_before_answering() -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver("video", direction="sendonly").sender
    sent: list[bytes] = []

    async def capture(data: bytes) -> None:
        sent.append(data)

    sender.transport._send_rtp = capture
    stored = RtpPacket(payload_type=97, sequence_number=300, timestamp=1, ssrc=sender._ssrc)
    stored.payload = b"from the fast path"
    install_retransmit_hook(sender, lambda seq: stored if seq == 300 else None)
    await sender._retransmit(300)
    await sender._retransmit(301)  # unknown: nothing sent
    assert [RtpPacket.parse(d).payload for d in sent] == [b"from the fast path"]
    await pc.close()


async def test_connected_transport_exposes_what_the_fast_path_uses(harness: Harness) -> None:
    await harness.join("alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    participant = harness.engine._participants["alice"]
    dtls = participant.pc.getTransceivers()[0].receiver.transport
    internals = dtls_internals(dtls)
    assert internals is not None
    assert isinstance(internals.rx_srtp, Session) and isinstance(internals.tx_srtp, Session)
    assert internals.protocols and all(isinstance(p, StunProtocol) for p in internals.protocols)
    pair = internals.nominated[1]
    assert pair.protocol in internals.protocols and isinstance(pair.remote_addr, tuple)
    assert raw_udp_socket(pair.protocol.transport) is not None  # asyncio's selector loop
    for name in ("mid", "abs_send_time", "audio_level"):
        assert hasattr(internals.extension_ids, name)
    assert internals.extension_ids.mid  # negotiated by the server's offer


# -- the fast path end to end ---------------------------------------------------------


async def test_media_flows_on_the_fast_path(harness: Harness) -> None:
    await harness.join("alice", color=RED, amplitude=0.3)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await wait_for(lambda: bob.audio_frames_from("alice") > 10)
    participant = harness.engine._participants["alice"]
    published = participant.inbound
    publisher_socket = rtp_socket(participant.pc.getTransceivers()[0].receiver.transport)
    assert publisher_socket is not None
    for track in published.values():
        assert track._socket is publisher_socket
    before = publisher_socket.packets_received
    await asyncio.sleep(0.3)
    assert publisher_socket.packets_received > before + 10  # audio 50/s + video
    forwarders = harness.engine._participants["bob"].forwarders
    assert forwarders and all(f._socket is not None for f in forwarders)
    assert forwarders[0]._socket is not None and forwarders[0]._socket.packets_sent > 10


async def test_forwarded_bytes_are_canonical_and_sequence_numbers_continue(
    harness: Harness,
) -> None:
    await harness.join("alice", color=RED, amplitude=0.3)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    video = next(f for f in harness.engine._participants["bob"].forwarders if f.kind == "video")
    mid = bob.mids_from("alice", "video")[0]
    receiver = next(t.receiver for t in bob.pc.getTransceivers() if t.mid == mid)
    original = receiver._handle_rtp_packet
    received: list[RtpPacket] = []

    async def recording(packet: RtpPacket, arrival_time_ms: int) -> None:
        received.append(packet)
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording
    await wait_for(lambda: len(received) >= 60)
    media = [p for p in received if p.ssrc == video.sender._ssrc]
    seqs = [p.sequence_number for p in media]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
    state_map = video._state.extensions_map
    for packet in media[-20:]:
        sent = video.sent_packet(packet.sequence_number)
        assert sent is not None
        # What the fast path sent is what aiortc's object path would have serialised.
        stored = video._history[packet.sequence_number % len(video._history)]
        assert stored == sent.serialize(state_map)
        assert sent.payload == packet.payload and sent.timestamp == packet.timestamp
        assert packet.extensions.mid == mid


async def test_the_object_path_still_works_when_the_fast_path_is_off() -> None:
    h = Harness(MediaConfig(host_addresses=LOOPBACK, fast_path=False))
    try:
        alice = await h.join("alice", color=RED, amplitude=0.3)
        bob = await h.join("bob")
        await wait_for(lambda: close_to(bob.video_from("alice"), RED))
        await wait_for(lambda: bob.audio_frames_from("alice") > 10)
        for track in h.engine._participants["alice"].inbound.values():
            assert track._socket is None
        for forwarder in h.engine._participants["bob"].forwarders:
            assert forwarder._socket is None and forwarder.packets_sent > 0
        assert alice.pc.connectionState == "connected"
    finally:
        await h.close()


# -- the socket alone: pair changes and consent expiry ------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))


def _pair(port: int) -> Any:
    protocol = StunProtocol(None)  # type: ignore[arg-type]
    protocol.transport = _Transport()  # type: ignore[assignment]
    return SimpleNamespace(protocol=protocol, remote_addr=("127.0.0.1", port))


async def test_socket_follows_the_nominated_pair_and_stops_when_it_goes() -> None:
    dtls = AsyncIOEventEmitter()
    nominated: dict[int, Any] = {}
    internals = SimpleNamespace(
        rx_srtp=_session(Policy.SSRC_ANY_INBOUND),
        tx_srtp=_session(Policy.SSRC_ANY_OUTBOUND),
        nominated=nominated,
        protocols=[],
        extension_ids=None,
    )
    socket = RtpSocket(dtls, internals)  # type: ignore[arg-type]
    receiver = _session(Policy.SSRC_ANY_INBOUND)

    def send(seq: int) -> bool:
        plain = _rtp(seq, b"x" * 50)
        socket.buffer[0 : len(plain)] = plain
        return socket.send(len(plain))

    assert not send(1)  # no pair yet
    first, second = _pair(1000), _pair(2000)
    nominated[1] = first
    assert send(2)
    nominated[1] = second  # aioice nominated another pair
    assert send(3)
    del nominated[1]  # consent expired: aioice cleared its pairs
    assert not send(4)
    assert [a for _, a in first.protocol.transport.sent] == [("127.0.0.1", 1000)]
    assert [a for _, a in second.protocol.transport.sent] == [("127.0.0.1", 2000)]
    decrypted = receiver.unprotect(second.protocol.transport.sent[0][0])
    assert RtpPacket.parse(decrypted).sequence_number == 3
    socket.close()
    assert socket.closed and not send(5)
