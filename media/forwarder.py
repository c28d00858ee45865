"""Per-subscriber RTP rewriting: one forwarder feeds one sendonly m-line of a subscriber.

The forwarder takes packets of the publisher's track as parsed by aiortc and sends them
through the subscriber's ``RTCRtpSender`` transport with that sender's SSRC (the one the
server's SDP announced), the subscriber's payload type for the same codec, offsets on
sequence numbers and timestamps (so a change of source stays continuous), and the
subscriber's MID. Packets are stored in the sender's RTP history, so the subscriber's
NACKs are answered by aiortc (with RTX where negotiated). Video starts at a keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCRtpTransceiver
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket
from aiortc.utils import random32, uint16_gt

from media.codecs import codec_fallback_key, codec_key, payload_type_map
from media.internals import SenderState, install_keyframe_hook, negotiated_codecs
from media.messages import MediaKind
from media.stats import RateMeter

logger = logging.getLogger(__name__)

CLOCK_RATES: dict[MediaKind, int] = {"audio": 48000, "video": 90000}

CONFIRM_WINDOW = 1.0
"""A keyframe forwarded this soon after the subscriber's transport came up may have been
dropped by a receiver not yet registered on the subscriber's side (the DTLS server sees the
handshake finish before the client does), so one more keyframe is asked for..."""
CONFIRM_DELAY = 0.4
"""...this many seconds later."""


class KeyframeSource(Protocol):
    """What a forwarder needs from the track it forwards."""

    def request_keyframe(self) -> None: ...


class ParkedTrack(MediaStreamTrack):
    """A track that never yields a frame.

    It keeps the sender's own RTP loop parked on ``recv()`` (with no track at all, aiortc
    polls every 20 ms) and never makes aiortc create an encoder.
    """

    def __init__(self, kind: MediaKind) -> None:
        super().__init__()
        self.kind = kind
        self._id = str(uuid.uuid4())

    async def recv(self) -> Any:
        # Sleeps until the sender's RTP task is cancelled on stop.
        await asyncio.get_running_loop().create_future()


class Forwarder:
    """Rewrites one source's RTP for one subscriber's ``RTCRtpSender``."""

    def __init__(self, transceiver: RTCRtpTransceiver, kind: MediaKind) -> None:
        self.transceiver = transceiver
        self.kind: MediaKind = kind
        self.sender = transceiver.sender
        self.publisher: str | None = None
        self.waiting_keyframe = True
        self.confirm_keyframe_at: float | None = None
        self.bytes_sent = 0
        self.rate = RateMeter()
        self._state = SenderState(self.sender)
        self._ssrc: int = self.sender._ssrc
        self._source: KeyframeSource | None = None
        self._pt_by_key: dict[str, int] = {}
        self._rtx_by_pt: dict[int, int] = {}
        self._pt_cache: dict[int, int | None] = {}
        self._current_pt: int | None = None
        self._clock_rate = CLOCK_RATES[kind]
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_seq: int | None = None
        self._last_ts = 0
        self._last_time = 0.0
        self._warned_codec = False
        self._ready_since: float | None = None
        install_keyframe_hook(self.sender, self._on_keyframe_request)

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid

    @property
    def ready(self) -> bool:
        """True when packets can go out (negotiated, DTLS connected, sender started)."""
        return self._state.started and self.sender.transport.state == "connected"

    @property
    def packets_sent(self) -> int:
        return self._state.packets_sent

    def update_codecs(self) -> None:
        """Snapshot the subscriber's negotiated payload types (after each answer).

        aiortc rewrites ``transceiver._codecs`` with its default numbers while an offer is
        pending, so the forwarder must not read them live.
        """
        if self.transceiver.mid is None:
            return
        self._pt_by_key, self._rtx_by_pt = payload_type_map(negotiated_codecs(self.transceiver))
        self._pt_cache.clear()

    def attach(self, source: KeyframeSource, publisher: str) -> None:
        """Point this m-line at another publisher's track; continuity is kept."""
        self._source = source
        self.publisher = publisher
        self.waiting_keyframe = True
        # msid: a browser groups a publisher's audio and video in one stream (lip sync).
        self.sender._stream_id = publisher
        self.sender._track_id = f"{publisher}-{self.kind}"

    def detach(self) -> None:
        self._source = None
        self.publisher = None
        self.waiting_keyframe = True
        self.confirm_keyframe_at = None

    def _on_keyframe_request(self) -> None:
        # The subscriber sent PLI/FIR: it is for the publisher, not for an encoder here.
        if self._source is not None:
            self._source.request_keyframe()

    def payload_type_for(self, codec: Any) -> int | None:
        pt = self._pt_cache.get(codec.payloadType, -1)
        if pt == -1:
            pt = self._pt_by_key.get(codec_key(codec))
            if pt is None:
                pt = self._pt_by_key.get(codec_fallback_key(codec))
            self._pt_cache[codec.payloadType] = pt
            if pt is None and not self._warned_codec:
                self._warned_codec = True
                logger.warning(
                    "subscriber m-line %s cannot receive %s from %s: dropping",
                    self.mid,
                    codec.mimeType,
                    self.publisher,
                )
        return pt

    async def forward(
        self,
        packet: RtpPacket,
        codec: Any,
        keyframe_start: bool,
        now: float,
        ntp_time: int,
        abs_send_time: int,
    ) -> None:
        """Send one packet of the source to the subscriber (no-op when not ready)."""
        state = self._state
        if not state.started:
            return
        transport = self.sender.transport
        if transport.state != "connected":
            return
        pt = self.payload_type_for(codec)
        if pt is None:
            return
        if self._ready_since is None:
            self._ready_since = now
        if self.waiting_keyframe:
            if not keyframe_start:
                return
            self._restart(packet, now)
            if self.kind == "video" and now - self._ready_since < CONFIRM_WINDOW:
                self.confirm_keyframe_at = now + CONFIRM_DELAY
        if pt != self._current_pt:
            self._current_pt = pt
            state.set_rtx_payload_type(self._rtx_by_pt.get(pt))

        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF
        if self._last_seq is None or uint16_gt(seq, self._last_seq):
            self._last_seq = seq
            self._last_ts = timestamp
            self._last_time = now

        out = RtpPacket(
            payload_type=pt,
            marker=packet.marker,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=self._ssrc,
            payload=packet.payload,
        )
        extensions = out.extensions
        extensions.mid = state.mid
        extensions.abs_send_time = abs_send_time
        extensions.audio_level = packet.extensions.audio_level
        state.history[seq % RTP_HISTORY_SIZE] = out
        data = out.serialize(state.extensions_map)
        try:
            await transport._send_rtp(data)
        except ConnectionError:
            return
        self.bytes_sent += len(data)
        state.record_sent(ntp_time, timestamp, len(packet.payload))

    def _restart(self, packet: RtpPacket, now: float) -> None:
        """Choose offsets so that ``packet`` follows the last packet sent on this m-line."""
        if self._last_seq is None:
            next_seq = random_sequence_number()
            next_ts = random32()
        else:
            next_seq = (self._last_seq + 1) & 0xFFFF
            elapsed = max(1, int((now - self._last_time) * self._clock_rate))
            next_ts = (self._last_ts + elapsed) & 0xFFFFFFFF
        self._seq_offset = (next_seq - packet.sequence_number) & 0xFFFF
        self._ts_offset = (next_ts - packet.timestamp) & 0xFFFFFFFF
        self.waiting_keyframe = False
