"""One track a participant publishes, and its fan-out to the subscribers' forwarders.

The receiver's RTP handler is replaced (see :mod:`media.internals`) by
:meth:`PublishedTrack.handle_rtp`, which keeps what aiortc's receive path does for the
network (receiver statistics for RTCP RR, NACK, REMB) and then hands the packet, still
encoded, to every forwarder. Keyframe requests (PLI) to the publisher are sent from this
packet path, rate limited, whenever a forwarder waits for a keyframe or a subscriber asked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver, clock
from aiortc.codecs import is_rtx
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unwrap_rtx

from media.forwarder import Forwarder
from media.internals import install_rtp_hook, receiver_state
from media.keyframes import KeyframeRequestLimiter, is_keyframe_start
from media.messages import MediaKind
from media.stats import RateMeter

logger = logging.getLogger(__name__)

AudioLevelCallback = Callable[[str, int, float], None]


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
    ) -> None:
        self.publisher = publisher
        self.kind: MediaKind = kind
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

        if not packet.payload:  # padding only (bandwidth probing)
            return
        self.codec_name = codec.name
        now = time.monotonic()
        level = packet.extensions.audio_level
        if level is not None and self._on_audio_level is not None and not self.muted:
            self._on_audio_level(self.publisher, level[1], now)
        if self.muted or not self.published:
            return

        forwarders = self._forwarders
        keyframe = True
        if self.kind == "video":
            wanted = self._keyframe_wanted
            for forwarder in forwarders:
                confirm_at = forwarder.confirm_keyframe_at
                if confirm_at is not None and now >= confirm_at:
                    forwarder.confirm_keyframe_at = None
                    wanted = self._keyframe_wanted = True
                elif not wanted and forwarder.waiting_keyframe and forwarder.ready:
                    wanted = True
            if wanted:
                keyframe = is_keyframe_start(codec.name, packet.payload)
                if not keyframe and self._limiter.allow(now):
                    self._keyframe_wanted = False
                    self.keyframe_requests += 1
                    logger.debug("PLI to %s (ssrc %s)", self.publisher, packet.ssrc)
                    await receiver._send_rtcp_pli(packet.ssrc)
            else:
                keyframe = False
        if not forwarders:
            return
        ntp_time = clock.current_ntp_time()
        abs_send_time = (ntp_time >> 14) & 0x00FFFFFF
        for forwarder in forwarders:
            await forwarder.forward(packet, codec, keyframe, now, ntp_time, abs_send_time)
        self.packets_forwarded += 1
