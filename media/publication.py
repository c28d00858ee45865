"""One track a participant publishes, and its fan-out to the subscribers' forwarders.

The receiver's RTP handler is replaced (see :mod:`media.internals`) by
:meth:`PublishedTrack.handle_rtp`, which keeps what aiortc's receive path does for the
network (receiver statistics for RTCP RR, NACK, REMB) and then hands the packet, still
encoded, to every forwarder. Keyframe requests (PLI) to the publisher are sent from this
packet path, rate limited, whenever a forwarder waits for a keyframe or a subscriber asked.

With the fast path (:mod:`media.fastpath`), the first packet of each media SSRC arrives
here through aiortc, and from then on that SSRC is routed to :meth:`PublishedTrack.
receive_bytes`, which does the same work on the decrypted bytes (receiver statistics, NACK,
REMB, keyframe gate) without building ``RtpPacket`` objects. RTX and anything the fast path
does not route keep arriving through aiortc; both paths send through the forwarders' fast
sender (:meth:`~media.forwarder.Forwarder.forward_bytes`).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import RTCRtpReceiver, clock
from aiortc.codecs import is_rtx
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unwrap_rtx

from media.fastpath import RtpSocket, rtp_socket
from media.forwarder import Forwarder, ntp_time
from media.internals import install_rtp_hook, receiver_state
from media.keyframes import KeyframeRequestLimiter, is_keyframe_start
from media.messages import DEFAULT_SOURCE, MediaKind, TrackSource
from media.stats import RateMeter

logger = logging.getLogger(__name__)

AudioLevelCallback = Callable[[str, int, float], None]
PacketTap = Callable[[bytes, str, int, int, int, float], None]
"""Sees every packet of a track that is forwarded (published, not muted; RTX unwrapped):
(payload, codec name, sequence number, timestamp, SSRC, arrival ``time.monotonic()``).
Called on the event loop: it must return at once and never raise (see media.recording)."""

_unpack_fixed = struct.Struct("!HII").unpack_from  # sequence number, timestamp, SSRC
_unpack_ext = struct.Struct("!HH").unpack_from


class _PacketFields:
    """What aiortc's ``StreamStatistics.add`` and ``NackGenerator.add`` read of a packet."""

    __slots__ = ("sequence_number", "ssrc", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0
        self.ssrc = 0


class PublishedTrack:
    """A participant's microphone or camera as received by the server."""

    def __init__(
        self,
        publisher: str,
        kind: MediaKind,
        receiver: RTCRtpReceiver,
        *,
        keyframe_interval: float,
        remb: bool,
        on_audio_level: AudioLevelCallback | None,
        fast_path: bool = True,
        source: TrackSource | None = None,
    ) -> None:
        self.publisher = publisher
        self.kind: MediaKind = kind
        self.source: TrackSource = source or DEFAULT_SOURCE[kind]
        """``"microphone"``, ``"camera"`` or ``"screen"`` (default: by kind)."""
        self.published = False
        self.muted = False
        self.codec_name: str | None = None
        self.bytes_received = 0
        self.packets_forwarded = 0
        self.keyframe_requests = 0
        self.rate = RateMeter()
        self._rx = receiver_state(receiver)
        self._forwarders: tuple[Forwarder, ...] = ()
        self._limiter = KeyframeRequestLimiter(keyframe_interval)
        self._keyframe_wanted = False
        self._remb = remb
        self._on_audio_level = on_audio_level
        self._closed = False
        self._fast_path = fast_path
        self._socket: RtpSocket | None = None
        self._fields: Any = _PacketFields()  # duck-typed RtpPacket for aiortc's counters
        self._tasks: set[asyncio.Task[None]] = set()
        self.taps: list[PacketTap] = []
        """Packet taps (a recording); empty, they cost one test per packet."""
        install_rtp_hook(receiver, self.handle_rtp)

    @property
    def forwarders(self) -> tuple[Forwarder, ...]:
        return self._forwarders

    @property
    def clock_rate(self) -> int:
        return 48000 if self.kind == "audio" else 90000

    def media_streams(self) -> list[Any]:
        """aiortc ``StreamStatistics`` of the media SSRCs received (RTX streams excluded)."""
        rtx = self._rx.rtx_ssrc
        return [s for ssrc, s in list(self._rx.remote_streams.items()) if ssrc not in rtx]

    def attach(self, forwarder: Forwarder) -> None:
        if forwarder not in self._forwarders:
            self._forwarders = (*self._forwarders, forwarder)
            forwarder.attach(self, self.publisher)

    def detach(self, forwarder: Forwarder) -> None:
        if forwarder in self._forwarders:
            self._forwarders = tuple(f for f in self._forwarders if f is not forwarder)
            forwarder.detach()

    def detach_all(self) -> list[Forwarder]:
        forwarders = list(self._forwarders)
        for forwarder in forwarders:
            self.detach(forwarder)
        return forwarders

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (sent with the next packet, rate limited)."""
        if self.kind == "video":
            self._keyframe_wanted = True

    def close(self) -> None:
        self._closed = True
        self.detach_all()
        self._on_audio_level = None
        if self._socket is not None:
            self._socket.unroute(self.receive_bytes)
            self._socket = None

    async def handle_rtp(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        """Replacement of ``RTCRtpReceiver._handle_rtp_packet`` (called by aiortc)."""
        rx = self._rx
        receiver = rx.receiver
        if self._closed or not receiver._enabled:
            return

        estimator = rx.bitrate_estimator
        if self._remb and estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
            )
            rtcp_ssrc = rx.rtcp_ssrc()
            if rtcp_ssrc is not None and remb is not None:
                await receiver._send_rtcp(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                    )
                )

        codec = rx.codecs.get(packet.payload_type)
        if codec is None:
            return
        stream = rx.remote_streams.get(packet.ssrc)
        if stream is None:
            stream = rx.remote_streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        self.bytes_received += len(packet.payload) + packet.padding_size

        if is_rtx(codec):
            original_ssrc = rx.rtx_ssrc.get(packet.ssrc)
            apt = codec.parameters.get("apt")
            if (
                original_ssrc is None
                or len(packet.payload) < 2
                or not isinstance(apt, int)
                or apt not in rx.codecs
            ):
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original_ssrc)
            codec = rx.codecs[apt]

        nack = rx.nack_generator
        if nack is not None and nack.add(packet):
            await receiver._send_rtcp_nack(packet.ssrc, sorted(nack.missing))
        if self._fast_path and packet.ssrc not in rx.rtx_ssrc:
            self._route(packet.ssrc)

        if not packet.payload:  # padding only (bandwidth probing)
            return
        now = time.monotonic()
        level = packet.extensions.audio_level
        keyframe = self._gate(codec, packet.payload, packet.ssrc, level and level[1], now)
        if keyframe is None:
            return
        for tap in self.taps:
            tap(
                packet.payload,
                codec.name,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
                now,
            )
        if not self._forwarders:
            return
        ntp = clock.current_ntp_time() if not self._fast_path else ntp_time()
        abs_send_time = (ntp >> 14) & 0x00FFFFFF
        if self._fast_path:
            raw_level = None if level is None else (0x80 if level[0] else 0) | level[1]
            for forwarder in self._forwarders:
                forwarder.forward_bytes(
                    packet.payload,
                    codec,
                    packet.marker,
                    packet.sequence_number,
                    packet.timestamp,
                    raw_level,
                    keyframe,
                    now,
                    abs_send_time,
                )
        else:
            for forwarder in self._forwarders:
                await forwarder.forward(packet, codec, keyframe, now, ntp, abs_send_time)
        self.packets_forwarded += 1

    def receive_bytes(self, buffer: Any, cdata: Any, size: int) -> None:
        """Fast-path receive: one decrypted RTP packet of a routed SSRC (bytes at offset 0)."""
        rx = self._rx
        if self._closed or not rx.receiver._enabled:
            return
        first, second = cdata[0], cdata[1]
        codec = rx.codecs.get(second & 0x7F)
        if codec is None or codec.name == "rtx":  # RTX on a media SSRC: not forwarded as is
            return
        seq, timestamp, ssrc = _unpack_fixed(buffer, 2)
        start = 12 + 4 * (first & 0x0F)
        abs_send_time = level = None
        if first & 0x10:
            if start + 4 > size:
                return
            profile, words = _unpack_ext(buffer, start)
            ext_start = start + 4
            start = ext_start + 4 * words
            if start > size:
                return
            if self.kind == "audio" or (self._remb and rx.bitrate_estimator is not None):
                abs_send_time, level = self._extensions(cdata, ext_start, start, profile)
        end = size
        if first & 0x20:
            end -= cdata[size - 1]
            if end < start:
                return

        fields = self._fields
        fields.sequence_number, fields.timestamp, fields.ssrc = seq, timestamp, ssrc
        stream = rx.remote_streams.get(ssrc)
        if stream is None:
            stream = rx.remote_streams[ssrc] = StreamStatistics(codec.clockRate)
        stream.add(fields)
        self.bytes_received += size - start

        estimator = rx.bitrate_estimator
        if self._remb and estimator is not None and abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=abs_send_time,
                arrival_time_ms=clock.current_ms(),
                payload_size=size - start,
                ssrc=ssrc,
            )
            rtcp_ssrc = rx.rtcp_ssrc()
            if rtcp_ssrc is not None and remb is not None:
                self._spawn(
                    rx.receiver._send_rtcp(
                        RtcpPsfbPacket(
                            fmt=RTCP_PSFB_APP,
                            ssrc=rtcp_ssrc,
                            media_ssrc=0,
                            fci=pack_remb_fci(*remb),
                        )
                    )
                )
        nack = rx.nack_generator
        if nack is not None:
            if nack.max_seq is not None and not nack.missing and seq == (nack.max_seq + 1) & 0xFFFF:
                nack.max_seq = seq  # in order, nothing missing: what add() would do, cheaper
            elif nack.add(fields):
                self._spawn(rx.receiver._send_rtcp_nack(ssrc, sorted(nack.missing)))

        if end == start:  # padding only (bandwidth probing)
            return
        payload: bytes = buffer[start:end]
        now = time.monotonic()
        keyframe = self._gate(codec, payload, ssrc, None if level is None else level & 0x7F, now)
        if keyframe is None:
            return
        if self.taps:
            for tap in self.taps:
                tap(payload, codec.name, seq, timestamp, ssrc, now)
        forwarders = self._forwarders
        if not forwarders:
            return
        abs_send_time = (ntp_time() >> 14) & 0x00FFFFFF
        marker = second >> 7
        for forwarder in forwarders:
            forwarder.forward_bytes(
                payload, codec, marker, seq, timestamp, level, keyframe, now, abs_send_time
            )
        self.packets_forwarded += 1

    def _extensions(
        self, cdata: Any, start: int, stop: int, profile: int
    ) -> tuple[int | None, int | None]:
        """abs-send-time and the raw audio level byte from a header extension block."""
        socket = self._socket
        if socket is None:
            return None, None
        ids = socket.extension_ids
        ast_id, level_id = ids.abs_send_time, ids.audio_level
        abs_send_time = level = None
        one_byte = profile == 0xBEDE
        if not one_byte and profile & 0xFFF0 != 0x1000:
            return None, None
        pos = start
        while pos < stop:
            header = cdata[pos]
            if header == 0:  # padding
                pos += 1
                continue
            if one_byte:
                x_id, length, value = header >> 4, (header & 0x0F) + 1, pos + 1
                if x_id == 15:
                    break
            else:
                if pos + 1 >= stop:
                    break
                x_id, length, value = header, cdata[pos + 1], pos + 2
            if value + length > stop:
                break
            if x_id == ast_id and length == 3:
                abs_send_time = (cdata[value] << 16) | (cdata[value + 1] << 8) | cdata[value + 2]
            elif x_id == level_id and length >= 1:
                level = cdata[value]
            pos = value + length
        return abs_send_time, level

    def _route(self, ssrc: int) -> None:
        """Take ``ssrc`` onto the fast path once the transport is connected."""
        socket = self._socket
        if socket is not None and not socket.closed and socket.routed(ssrc):
            return
        socket = rtp_socket(self._rx.receiver.transport)
        if socket is not None:
            socket.route(ssrc, self.receive_bytes)
            self._socket = socket
            logger.debug("fast path for %s %s (ssrc %s)", self.publisher, self.kind, ssrc)

    def _gate(
        self, codec: Any, payload: bytes, ssrc: int, level: int | None, now: float
    ) -> bool | None:
        """Whether a packet is forwarded (None: no) and starts a keyframe; asks for PLI."""
        self.codec_name = codec.name
        if level is not None and self._on_audio_level is not None and not self.muted:
            self._on_audio_level(self.publisher, level, now)
        if self.muted or not self.published:
            return None
        if self.kind != "video":
            return True
        wanted = self._keyframe_wanted
        for forwarder in self._forwarders:
            confirm_at = forwarder.confirm_keyframe_at
            if confirm_at is not None and now >= confirm_at:
                forwarder.confirm_keyframe_at = None
                wanted = self._keyframe_wanted = True
            elif not wanted and forwarder.waiting_keyframe and forwarder.ready:
                wanted = True
        if not wanted:
            return False
        keyframe = is_keyframe_start(codec.name, payload)
        if not keyframe and self._limiter.allow(now):
            self._keyframe_wanted = False
            self.keyframe_requests += 1
            logger.debug("PLI to %s (ssrc %s)", self.publisher, ssrc)
            self._spawn(self._rx.receiver._send_rtcp_pli(ssrc))
        return keyframe

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run an RTCP send of aiortc's (they are coroutines) from the packet path."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
