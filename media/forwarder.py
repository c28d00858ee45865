"""Per-subscriber RTP rewriting: one forwarder feeds one sendonly m-line of a subscriber.

The forwarder takes packets of the publisher's track as parsed by aiortc and sends them
through the subscriber's ``RTCRtpSender`` transport with that sender's SSRC (the one the
server's SDP announced), the subscriber's payload type for the same codec, offsets on
sequence numbers and timestamps (so a change of source stays continuous), and the
subscriber's MID. Packets are stored in a history from which aiortc answers the
subscriber's NACKs (with RTX where negotiated). Video starts at a keyframe.

Two ways out, with the same rewriting rules: :meth:`Forwarder.forward_bytes` (the fast path,
:mod:`media.fastpath`: a per-subscriber header template, encrypted in place and sent on the
nominated ICE pair; sender-report counters synced every :data:`SR_SYNC_INTERVAL`) and
:meth:`Forwarder.forward` (aiortc's ``RtpPacket`` and ``transport._send_rtp``).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import uuid
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCRtpTransceiver
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, RtpPacket
from aiortc.utils import random32, uint16_gt

from media.codecs import codec_fallback_key, codec_key, payload_type_map
from media.fastpath import RtpSocket, rtp_socket
from media.internals import (
    SenderState,
    extension_ids,
    install_keyframe_hook,
    install_retransmit_hook,
    negotiated_codecs,
)
from media.messages import MediaKind, TrackSource
from media.rtpheader import HeaderTemplate, build_template
from media.stats import RateMeter

logger = logging.getLogger(__name__)

CLOCK_RATES: dict[MediaKind, int] = {"audio": 48000, "video": 90000}

CONFIRM_WINDOW = 1.0
"""A keyframe forwarded this soon after the subscriber's transport came up may have been
dropped by a receiver not yet registered on the subscriber's side (the DTLS server sees the
handshake finish before the client does), so one more keyframe is asked for..."""
CONFIRM_DELAY = 0.4
"""...this many seconds later."""
SR_SYNC_INTERVAL = 0.2
"""Seconds between updates of the sender's report counters from the fast path."""
NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01

_pack_head = struct.Struct("!BHI").pack_into
_pack_word = struct.Struct("!I").pack_into
_pack_byte = struct.Struct("!B").pack_into


def ntp_time() -> int:
    """Now as a 64-bit NTP timestamp (aiortc's ``clock.current_ntp_time``, cheaper)."""
    return int((time.time() + NTP_EPOCH_OFFSET) * 4294967296)


class KeyframeSource(Protocol):
    """What a forwarder needs from the track it forwards."""

    source: TrackSource

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
        self._started = False
        # fast path
        self._socket: RtpSocket | None = None
        self._templates: tuple[HeaderTemplate, HeaderTemplate] | None = None
        self._history: list[bytes | None] = [None] * RTP_HISTORY_SIZE
        self._unsynced_packets = 0
        self._unsynced_octets = 0
        self._sync_at = 0.0
        install_keyframe_hook(self.sender, self._on_keyframe_request)
        install_retransmit_hook(self.sender, self._history_packet)

    @property
    def mid(self) -> str | None:
        return self.transceiver.mid

    @property
    def ready(self) -> bool:
        """True when packets can go out (negotiated, DTLS connected, sender started, and
        the m-line's negotiated direction sends: a re-used inactive m-line is not ready
        until the subscriber has answered the offer that re-enables it)."""
        return (
            self._state.started
            and self.sender._enabled
            and self.sender.transport.state == "connected"
        )

    @property
    def last_sequence_number(self) -> int | None:
        """Highest sequence number sent on this m-line so far (subscriber's numbering)."""
        return self._last_seq

    def sent_packet(self, sequence_number: int) -> RtpPacket | None:
        """A recently sent packet, as a retransmission would resend it (either path)."""
        packet = self._history_packet(sequence_number)
        if packet is None:
            stored = self._state.history.get(sequence_number % RTP_HISTORY_SIZE)
            if stored is not None and stored.sequence_number == sequence_number:
                packet = stored
        return packet

    @property
    def packets_sent(self) -> int:
        return self._state.packets_sent + self._unsynced_packets

    @property
    def source(self) -> KeyframeSource | None:
        """The track this m-line forwards now (None: detached)."""
        return self._source

    def update_codecs(self) -> None:
        """Snapshot the subscriber's negotiated payload types (after each answer).

        aiortc rewrites ``transceiver._codecs`` with its default numbers while an offer is
        pending, so the forwarder must not read them live.
        """
        if self.transceiver.mid is None:
            return
        self._pt_by_key, self._rtx_by_pt = payload_type_map(negotiated_codecs(self.transceiver))
        self._pt_cache.clear()
        self._templates = None  # extension ids may have changed

    def attach(self, source: KeyframeSource, publisher: str) -> None:
        """Point this m-line at another publisher's track; continuity is kept."""
        self._source = source
        self.publisher = publisher
        self.waiting_keyframe = True
        # msid: a browser groups a publisher's microphone and camera in one stream (lip
        # sync); a screen share is a stream of its own. Track ids are unique per source.
        track = source.source
        self.sender._stream_id = f"{publisher}-screen" if track == "screen" else publisher
        self.sender._track_id = f"{publisher}-{track}"

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

    def forward_bytes(
        self,
        payload: bytes,
        codec: Any,
        marker: int,
        sequence_number: int,
        timestamp: int,
        audio_level: int | None,
        keyframe_start: bool,
        now: float,
        abs_send_time: int,
    ) -> None:
        """Send one packet of the source on the fast path (no-op when not ready).

        ``audio_level`` is the raw RFC 6464 byte (V bit and level) or None.
        """
        socket = self._socket
        if socket is None or socket.closed:
            socket = self._connect()
            if socket is None:
                return
        pt = self._admit(codec, keyframe_start, sequence_number, timestamp, now)
        if pt is None:
            return
        seq = (sequence_number + self._seq_offset) & 0xFFFF
        ts = (timestamp + self._ts_offset) & 0xFFFFFFFF
        last = self._last_seq
        if last is None or uint16_gt(seq, last):
            self._last_seq = seq
            self._last_ts = ts
            self._last_time = now

        templates = self._templates
        if templates is None:
            templates = self._build_templates()
        template = templates[audio_level is not None]
        buffer = socket.buffer
        size = len(template.data)
        end = size + len(payload)
        buffer[0:size] = template.data
        _pack_head(buffer, 1, (marker << 7) | pt, seq, ts)
        if template.abs_send_time_at:
            _pack_word(
                buffer, template.abs_send_time_at - 1, template.abs_send_time_word | abs_send_time
            )
        if template.audio_level_at:
            _pack_byte(buffer, template.audio_level_at, audio_level)
        buffer[size:end] = payload
        self._history[seq % RTP_HISTORY_SIZE] = buffer[0:end]
        if not socket.send(end):
            return
        self.bytes_sent += end
        self._unsynced_packets += 1
        self._unsynced_octets += len(payload)
        if now >= self._sync_at:
            self._sync_at = now + SR_SYNC_INTERVAL
            self._state.record_sent(ntp_time(), ts, self._unsynced_octets, self._unsynced_packets)
            self._unsynced_packets = self._unsynced_octets = 0

    async def forward(
        self,
        packet: RtpPacket,
        codec: Any,
        keyframe_start: bool,
        now: float,
        ntp_time: int,
        abs_send_time: int,
    ) -> None:
        """Send one packet of the source through aiortc's objects (no-op when not ready)."""
        transport = self.sender.transport
        if transport.state != "connected":
            return
        pt = self._admit(codec, keyframe_start, packet.sequence_number, packet.timestamp, now)
        if pt is None:
            return
        state = self._state
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
        self._history[seq % RTP_HISTORY_SIZE] = None
        data = out.serialize(state.extensions_map)
        try:
            await transport._send_rtp(data)
        except ConnectionError:
            return
        self.bytes_sent += len(data)
        state.record_sent(ntp_time, timestamp, len(packet.payload))

    def _admit(
        self, codec: Any, keyframe_start: bool, sequence_number: int, timestamp: int, now: float
    ) -> int | None:
        """The subscriber's payload type for this packet, or None if it is not sent."""
        if not self._started:
            if not self._state.started:
                return None
            self._started = True
        if not self.sender._enabled:
            # The subscriber has not re-enabled this m-line yet and would drop the packet
            # (a keyframe lost there leaves it frozen): wait, and then for a keyframe.
            return None
        pt = self._pt_cache.get(codec.payloadType, -1)
        if pt == -1:
            pt = self.payload_type_for(codec)
        if pt is None:
            return None
        if self._ready_since is None:
            self._ready_since = now
        if self.waiting_keyframe:
            if not keyframe_start:
                return None
            self._restart(sequence_number, timestamp, now)
            if self.kind == "video" and now - self._ready_since < CONFIRM_WINDOW:
                self.confirm_keyframe_at = now + CONFIRM_DELAY
        if pt != self._current_pt:
            self._current_pt = pt
            self._state.set_rtx_payload_type(self._rtx_by_pt.get(pt))
        return pt

    def _restart(self, sequence_number: int, timestamp: int, now: float) -> None:
        """Choose offsets so that this packet follows the last packet sent on this m-line."""
        if self._last_seq is None:
            next_seq = random_sequence_number()
            next_ts = random32()
        else:
            next_seq = (self._last_seq + 1) & 0xFFFF
            elapsed = max(1, int((now - self._last_time) * self._clock_rate))
            next_ts = (self._last_ts + elapsed) & 0xFFFFFFFF
        self._seq_offset = (next_seq - sequence_number) & 0xFFFF
        self._ts_offset = (next_ts - timestamp) & 0xFFFFFFFF
        self.waiting_keyframe = False

    def _connect(self) -> RtpSocket | None:
        """The fast-path socket of the subscriber's transport, once it is connected."""
        socket = self._socket = rtp_socket(self.sender.transport)
        return socket

    def _build_templates(self) -> tuple[HeaderTemplate, HeaderTemplate]:
        ids = extension_ids(self._state.extensions_map)
        mid = self._state.mid
        self._templates = (
            build_template(self._ssrc, ids, mid),
            build_template(self._ssrc, ids, mid, audio_level=True),
        )
        return self._templates

    def _history_packet(self, sequence_number: int) -> RtpPacket | None:
        """A packet the fast path sent with this sequence number, for a retransmission."""
        data = self._history[sequence_number % RTP_HISTORY_SIZE]
        if data is None or (data[2] << 8) | data[3] != sequence_number:
            return None
        return RtpPacket.parse(data, self._state.extensions_map)
