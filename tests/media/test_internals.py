"""One test per aiortc/aioice internal the engine hooks: they fail loudly on an upgrade."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from typing import Any

import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RTCP_PSFB_PLI, HeaderExtensionsMap, RtcpPsfbPacket, RtpPacket

from media.forwarder import Forwarder, ParkedTrack
from media.ice import host_addresses
from media.internals import (
    SenderState,
    connect_is_guarded,
    guard_connect,
    install_keyframe_hook,
    install_rtp_hook,
    negotiated_codecs,
    receiver_state,
)


def _pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def test_pinned_versions() -> None:
    assert aiortc.__version__ == "1.16.0"
    assert version("aioice") == "0.13.0"
    assert version("pylibsrtp") == "1.0.0"


async def test_receiver_private_state_is_where_the_hook_expects_it() -> None:
    pc = _pc()
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    state = receiver_state(receiver)
    assert state.codecs == {} and state.rtx_ssrc == {} and state.remote_streams == {}
    assert isinstance(state.nack_generator, NackGenerator)
    assert state.bitrate_estimator is not None
    assert state.rtcp_ssrc() == pc.getTransceivers()[0].sender._ssrc
    assert "clockrate" in inspect.signature(StreamStatistics).parameters
    for name in ("_send_rtcp", "_send_rtcp_nack", "_send_rtcp_pli"):
        assert inspect.iscoroutinefunction(getattr(receiver, name))
    assert receiver._enabled is True
    await pc.close()


async def test_rtp_router_calls_the_replaced_receiver_handler() -> None:
    pc = _pc()
    receiver = pc.addTransceiver("audio", direction="recvonly").receiver
    seen: list[tuple[int, int]] = []

    async def handler(packet: RtpPacket, arrival_time_ms: int) -> None:
        seen.append((packet.ssrc, arrival_time_ms))

    install_rtp_hook(receiver, handler)
    transport = receiver.transport
    transport._rtp_router.register_receiver(receiver, ssrcs=[1234], payload_types=[96])
    packet = RtpPacket(payload_type=96, sequence_number=1, timestamp=2, ssrc=1234, payload=b"x")
    await transport._handle_rtp_data(packet.serialize(), arrival_time_ms=42)
    assert seen == [(1234, 42)]
    await pc.close()


async def test_sender_pli_calls_the_keyframe_hook() -> None:
    pc = _pc()
    sender = pc.addTransceiver("video", direction="sendonly").sender
    calls: list[bool] = []
    install_keyframe_hook(sender, lambda: calls.append(True))
    await sender._handle_rtcp_packet(
        RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc)
    )
    assert calls == [True]
    await pc.close()


async def test_sender_private_state_is_where_the_forwarder_expects_it() -> None:
    pc = _pc()
    transceiver = pc.addTransceiver(ParkedTrack("video"), direction="sendonly")
    sender = transceiver.sender
    state = SenderState(sender)
    assert state.history == {} and state.started is False and state.mid is None
    assert isinstance(state.extensions_map, HeaderExtensionsMap)
    assert sender._RTCRtpSender__rtx_payload_type is None
    state.set_rtx_payload_type(98)
    assert sender._RTCRtpSender__rtx_payload_type == 98
    state.record_sent(ntp_timestamp=5, rtp_timestamp=6, octets=100)
    assert (state.packets_sent, state.octets_sent) == (1, 100)
    stats = await sender.getStats()
    outbound = next(s for s in stats.values() if s.type == "outbound-rtp")
    assert (outbound.packetsSent, outbound.bytesSent) == (1, 100)
    assert inspect.iscoroutinefunction(sender.transport._send_rtp)
    assert inspect.iscoroutinefunction(sender._retransmit)
    assert negotiated_codecs(transceiver) == []
    assert isinstance(sender._ssrc, int) and isinstance(sender._rtx_ssrc, int)
    Forwarder(transceiver, "video")  # installs its hooks without error
    await pc.close()


async def test_sender_history_answers_nack_from_forwarded_packets() -> None:
    pc = _pc()
    sender = pc.addTransceiver("video", direction="sendonly").sender
    state = SenderState(sender)
    sent: list[bytes] = []

    async def capture(data: bytes) -> None:
        sent.append(data)

    sender.transport._send_rtp = capture
    packet = RtpPacket(payload_type=97, sequence_number=7, timestamp=1, ssrc=sender._ssrc)
    packet.payload = b"payload"
    state.history[7] = packet
    await sender._retransmit(7)
    assert RtpPacket.parse(sent[0]).payload == b"payload"
    await pc.close()


async def test_connect_errors_are_reported_instead_of_lost() -> None:
    offerer, answerer = _pc(), _pc()
    errors: list[BaseException] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def broken_connect() -> None:
        raise RuntimeError("boom")

    answerer._RTCPeerConnection__connect = broken_connect
    guard_connect(answerer, tasks, errors.append)
    assert connect_is_guarded(answerer)
    offerer.addTransceiver("audio")
    with host_addresses(["127.0.0.1"]):
        await offerer.setLocalDescription(await offerer.createOffer())
    # aiortc schedules `self.__connect()` here: the guarded instance attribute runs.
    await answerer.setRemoteDescription(
        RTCSessionDescription(sdp=offerer.localDescription.sdp, type="offer")
    )
    for _ in range(50):
        if errors:
            break
        await asyncio.sleep(0.01)
    assert [str(e) for e in errors] == ["boom"]
    assert not tasks
    await offerer.close()
    await answerer.close()


async def test_host_address_override_is_what_aioice_gathers_with() -> None:
    assert "get_host_addresses" in aioice.ice.Connection.gather_candidates.__code__.co_names
    pc = _pc()
    pc.addTransceiver("audio")
    with host_addresses(["127.0.0.1"]):
        await pc.setLocalDescription(await pc.createOffer())
    assert " 127.0.0.1 " in pc.localDescription.sdp
    await pc.close()

    outside = _pc()
    outside.addTransceiver("audio")
    await outside.setLocalDescription(await outside.createOffer())
    assert " 127.0.0.1 " not in outside.localDescription.sdp
    await outside.close()


@pytest.mark.parametrize(
    "name", ["_RTCPeerConnection__connect", "_RTCPeerConnection__configuration"]
)
def test_peer_connection_private_names_exist(name: str) -> None:
    pc = _pc()
    assert hasattr(pc, name)
