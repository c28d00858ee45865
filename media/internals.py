"""Every use of aiortc's private, name-mangled attributes, in one place.

aiortc is pinned exactly (see pyproject.toml); ``tests/media/test_internals.py`` checks
each accessor against real objects so that an aiortc upgrade fails loudly here rather than
silently in production. Name-mangled (``__x``) attributes are only touched here; a few
single-underscore ones that aiortc itself uses across classes (``sender._ssrc``,
``transport._send_rtp``, ``receiver._send_rtcp_pli``, ``receiver._enabled``,
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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

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

    def record_sent(self, ntp_timestamp: int, rtp_timestamp: int, octets: int) -> None:
        """Update the counters aiortc puts in sender reports and ``getStats()``."""
        s = self.sender
        s._RTCRtpSender__ntp_timestamp = ntp_timestamp
        s._RTCRtpSender__rtp_timestamp = rtp_timestamp
        s._RTCRtpSender__octet_count += octets
        s._RTCRtpSender__packet_count += 1

    @property
    def packets_sent(self) -> int:
        return cast(int, self.sender._RTCRtpSender__packet_count)

    @property
    def octets_sent(self) -> int:
        return cast(int, self.sender._RTCRtpSender__octet_count)


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[Any]:
    """The codecs (remote payload types) aiortc negotiated for a transceiver."""
    return list(cast(Any, transceiver)._codecs)


def guard_connect(
    pc: RTCPeerConnection,
    tasks: set[asyncio.Task[Any]],
    on_error: Callable[[BaseException], None],
) -> None:
    """Wrap ``pc.__connect`` so its failures are logged and reported, and its tasks owned.

    aiortc starts ``__connect`` with ``asyncio.ensure_future`` and never looks at the
    result: an exception there (ICE/DTLS start on a closing connection, ...) disappears.
    The running task is added to ``tasks`` so the owner can cancel it on close.
    """
    p: Any = pc
    original: Callable[[], Awaitable[None]] = p._RTCPeerConnection__connect

    async def connect() -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        try:
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
