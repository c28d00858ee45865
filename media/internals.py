"""Every use of aiortc's private, name-mangled attributes, in one place.

aiortc is pinned exactly (see pyproject.toml); ``tests/media/test_internals.py`` checks
each accessor against real objects so that an aiortc upgrade fails loudly here rather than
silently in production. Name-mangled (``__x``) attributes are only touched here; a few
single-underscore ones that aiortc itself uses across classes (``sender._ssrc``,
``transport._send_rtp``, ``receiver._send_rtcp_pli``, ``receiver._enabled``, ``sender._enabled``,
``sender._stream_id``/``_track_id``) are used directly and covered by the same tests.

Hooks:

* ``RTCRtpReceiver._handle_rtp_packet`` is replaced on the instance (``RtpRouter`` calls it
  for every parsed RTP packet): the replacement keeps aiortc's receive statistics, NACK and
  REMB generation (re-implemented on the receiver's own private objects) and skips the
  jitter buffer and decoder.
* ``RTCRtpSender._send_keyframe`` is replaced on the instance: a subscriber's PLI/FIR only
  sets an encoder flag in aiortc; the engine routes it to the publisher instead.
* The sender's RTP history, header-extension map, MID, RTX payload type and sender-report
  counters are written directly by the forwarder, so NACK/RTX and RTCP SR keep working for
  packets that never went through the sender's encoder loop.
* ``RTCPeerConnection.__connect`` (started with an unchecked ``ensure_future``) is wrapped
  to log and report its exceptions instead of losing them.
* RTP fast path (:mod:`media.fastpath`): ``datagram_received`` is replaced on the instances
  of aioice's ``StunProtocol`` (``dtls.transport._connection._protocols``); the SRTP
  contexts are read from ``dtls._rx_srtp`` / ``dtls._tx_srtp`` (pylibsrtp ``Session._srtp``);
  packets are sent on the nominated pair (``connection._nominated``, on the UDP socket
  ``transport._sock`` of asyncio's selector loop when there is one); header extension ids
  come from ``HeaderExtensionsMap.__ids``; ``RTCRtpSender._retransmit`` is wrapped on the
  instance so that subscriber NACKs are answered from the fast path's history.
* ``RtpRouter`` (``dtls._rtp_router``): a participant's uplink SSRCs (media and RTX) are
  written into its ``ssrc_table`` after each answer, and a new screen uplink is registered
  for the camera's payload types before its offer goes out, because aiortc otherwise routes unknown
  SSRCs by payload type, which takes a screen's first packets for the camera's and drops
  RTX once two video uplinks share the payload types.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensionsMap, RtpPacket

logger = logging.getLogger(__name__)

RtpHandler = Callable[[RtpPacket, int], Awaitable[None]]


@dataclass(slots=True)
class ReceiverState:
    """The private objects of one ``RTCRtpReceiver`` a forwarding hook needs.

    All of them are created in ``RTCRtpReceiver.__init__`` and only mutated afterwards, so
    they can be captured once.
    """

    receiver: Any
    codecs: dict[int, Any]
    """payload type -> RTCRtpCodecParameters, filled by ``receive()``."""
    rtx_ssrc: dict[int, int]
    remote_streams: dict[int, Any]
    """ssrc -> aiortc.rtcrtpreceiver.StreamStatistics (feeds RTCP RR and getStats)."""
    active_ssrc: dict[int, Any]
    nack_generator: Any | None
    bitrate_estimator: Any | None

    def rtcp_ssrc(self) -> int | None:
        return cast(int | None, self.receiver._RTCRtpReceiver__rtcp_ssrc)


def receiver_state(receiver: RTCRtpReceiver) -> ReceiverState:
    r: Any = receiver
    return ReceiverState(
        receiver=r,
        codecs=r._RTCRtpReceiver__codecs,
        rtx_ssrc=r._RTCRtpReceiver__rtx_ssrc,
        remote_streams=r._RTCRtpReceiver__remote_streams,
        active_ssrc=r._RTCRtpReceiver__active_ssrc,
        nack_generator=r._RTCRtpReceiver__nack_generator,
        bitrate_estimator=r._RTCRtpReceiver__remote_bitrate_estimator,
    )


def route_ssrcs(receiver: RTCRtpReceiver, ssrcs: Iterable[int]) -> None:
    """Make the RTP router of ``receiver``'s transport deliver ``ssrcs`` to it.

    Packets of these SSRCs are still dropped until ``receiver`` has started (aiortc checks
    that the payload type is one the receiver registered).
    """
    router = cast(Any, receiver.transport)._rtp_router
    for ssrc in ssrcs:
        router.ssrc_table[ssrc] = receiver


def reserve_payload_types(receiver: RTCRtpReceiver, payload_types: Iterable[int]) -> None:
    """Register ``receiver`` for ``payload_types`` on its transport's RTP router now.

    aiortc gives a packet of an unknown SSRC to the receiver of its payload type when only
    one receiver has it; with ``receiver`` registered too, such packets are dropped until
    their SSRC is known (:func:`route_ssrcs`), whenever the other receiver registers.
    """
    router = cast(Any, receiver.transport)._rtp_router
    for payload_type in payload_types:
        router.payload_type_table.setdefault(payload_type, set()).add(receiver)


def install_rtp_hook(receiver: RTCRtpReceiver, handler: RtpHandler) -> None:
    """Route every RTP packet of ``receiver`` to ``handler`` instead of the decoder path."""
    cast(Any, receiver)._handle_rtp_packet = handler


def install_keyframe_hook(sender: RTCRtpSender, handler: Callable[[], None]) -> None:
    """Call ``handler`` when the remote end of ``sender`` sends a PLI or FIR."""
    cast(Any, sender)._send_keyframe = handler


class SenderState:
    """Private state of one ``RTCRtpSender`` that a forwarder writes to."""

    __slots__ = ("history", "sender")

    def __init__(self, sender: RTCRtpSender) -> None:
        self.sender: Any = sender
        self.history: dict[int, RtpPacket] = cast(Any, sender)._RTCRtpSender__rtp_history

    @property
    def started(self) -> bool:
        """True once ``send()`` ran (parameters, extension ids and MID are known)."""
        return cast(bool, self.sender._RTCRtpSender__started)

    @property
    def mid(self) -> str | None:
        return cast(str | None, self.sender._RTCRtpSender__mid)

    @property
    def extensions_map(self) -> HeaderExtensionsMap:
        return cast(HeaderExtensionsMap, self.sender._RTCRtpSender__rtp_header_extensions_map)

    def set_rtx_payload_type(self, payload_type: int | None) -> None:
        """RTX payload type used to answer NACKs (must match the forwarded codec)."""
        self.sender._RTCRtpSender__rtx_payload_type = payload_type

    def record_sent(
        self, ntp_timestamp: int, rtp_timestamp: int, octets: int, packets: int = 1
    ) -> None:
        """Update the counters aiortc puts in sender reports and ``getStats()``.

        ``ntp_timestamp`` and ``rtp_timestamp`` must describe the same instant (the last
        packet sent); the fast path calls this for several packets at once.
        """
        s = self.sender
        s._RTCRtpSender__ntp_timestamp = ntp_timestamp
        s._RTCRtpSender__rtp_timestamp = rtp_timestamp
        s._RTCRtpSender__octet_count += octets
        s._RTCRtpSender__packet_count += packets

    @property
    def packets_sent(self) -> int:
        return cast(int, self.sender._RTCRtpSender__packet_count)

    @property
    def octets_sent(self) -> int:
        return cast(int, self.sender._RTCRtpSender__octet_count)


def install_retransmit_hook(
    sender: RTCRtpSender, lookup: Callable[[int], RtpPacket | None]
) -> None:
    """Before aiortc answers a NACK for ``seq``, put ``lookup(seq)`` in its RTP history.

    The fast path keeps its own history (bytes); aiortc's ``_retransmit`` then builds the
    retransmission (RTX where negotiated) from the packet as usual.
    """
    s: Any = sender
    original: Callable[[int], Awaitable[None]] = type(sender)._retransmit.__get__(sender)
    history: dict[int, RtpPacket] = s._RTCRtpSender__rtp_history

    async def retransmit(sequence_number: int) -> None:
        packet = lookup(sequence_number)
        if packet is not None:
            history[sequence_number % RTP_HISTORY_SIZE] = packet
        await original(sequence_number)

    s._retransmit = retransmit


@dataclass(slots=True)
class DtlsInternals:
    """What the RTP fast path needs from one connected ``RTCDtlsTransport``."""

    rx_srtp: Any
    """pylibsrtp ``Session`` decrypting what the remote end sends."""
    tx_srtp: Any
    connection: Any
    """aioice ``Connection`` (ICE) under the DTLS transport."""
    protocols: list[Any]
    """aioice ``StunProtocol`` per local candidate; their transports are UDP sockets."""
    nominated: dict[int, Any]
    """component -> nominated ``CandidatePair`` (emptied when consent expires)."""
    extension_ids: Any
    """aiortc ``HeaderExtensions`` holding the negotiated header-extension ids."""


def dtls_internals(dtls: RTCDtlsTransport) -> DtlsInternals | None:
    """The private objects of a DTLS transport, or None before its SRTP keys exist."""
    d: Any = dtls
    if d._rx_srtp is None or d._tx_srtp is None:
        return None
    connection = d.transport._connection
    return DtlsInternals(
        rx_srtp=d._rx_srtp,
        tx_srtp=d._tx_srtp,
        connection=connection,
        protocols=connection._protocols,
        nominated=connection._nominated,
        extension_ids=extension_ids(d._rtp_header_extensions_map),
    )


def dtls_is_connected(dtls: RTCDtlsTransport) -> bool:
    return cast(Any, dtls)._state is DtlsState.CONNECTED


def extension_ids(extensions_map: HeaderExtensionsMap) -> Any:
    """The ``HeaderExtensions`` of ids (``mid``, ``abs_send_time``, ``audio_level``...)."""
    return cast(Any, extensions_map)._HeaderExtensionsMap__ids


def srtp_context(session: Any) -> Any:
    """The libsrtp ``srtp_t`` of a pylibsrtp ``Session``."""
    return session._srtp[0]


def install_datagram_hook(protocol: Any, handler: Callable[[bytes, Any], None]) -> None:
    """Make the event loop deliver ``protocol``'s datagrams to ``handler`` (on the instance)."""
    protocol.datagram_received = handler


def remove_datagram_hook(protocol: Any) -> None:
    vars(protocol).pop("datagram_received", None)


def raw_udp_socket(transport: Any) -> socket.socket | None:
    """The ``socket.socket`` under an asyncio (selector) datagram transport, else None.

    Sending on it directly skips the transport's Python wrapper; uvloop's transports have
    no such attribute (their ``sendto`` is already native).
    """
    sock = getattr(transport, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    """The codecs (remote payload types) aiortc negotiated for a transceiver."""
    return list(cast(Any, transceiver)._codecs)


def guard_connect(
    pc: RTCPeerConnection,
    tasks: set[asyncio.Task[Any]],
    on_error: Callable[[BaseException], None],
    lock: asyncio.Lock | None = None,
) -> None:
    """Wrap ``pc.__connect`` so its failures are logged and reported, and its tasks owned.

    aiortc starts ``__connect`` with ``asyncio.ensure_future`` and never looks at the
    result: an exception there (ICE/DTLS start on a closing connection, ...) disappears.
    The running task is added to ``tasks`` so the owner can cancel it on close.

    ``lock``, if given, is held while ``__connect`` runs; hold it around
    ``setRemoteDescription`` too. Interleaved, the two fail: an answer that makes a new
    m-line receiving sets its direction before it replaces the remote description, and a
    ``__connect`` still running from the previous round then looks the m-line up in the
    old description (IndexError, and the connection is reported failed).
    """
    p: Any = pc
    original: Callable[[], Awaitable[None]] = p._RTCPeerConnection__connect

    async def connect() -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
            if lock is None:
                await original()
            else:
                async with lock:
                    await original()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("peer connection failed to connect: %r", exc, exc_info=True)
            on_error(exc)
        finally:
            if task is not None:
                tasks.discard(task)

    p._RTCPeerConnection__connect = connect


def connect_is_guarded(pc: RTCPeerConnection) -> bool:
    """True if :func:`guard_connect` is in place (used by tests)."""
    return "_RTCPeerConnection__connect" in vars(pc)
