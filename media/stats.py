"""Per-participant media statistics as plain dicts, from aiortc's RTCP-fed reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from media.messages import InboundStats, OutboundStats, ParticipantStats

if TYPE_CHECKING:
    from media.participant import Participant


MIN_WINDOW = 1.0
"""Samples closer together than this return the previous figure (no noisy bitrates)."""


@dataclass(slots=True)
class RateMeter:
    """Bitrate of a byte counter between samples at least :data:`MIN_WINDOW` apart."""

    last_bytes: int = 0
    last_time: float = field(default_factory=time.monotonic)
    last_bps: int = 0

    def sample(self, total_bytes: int, now: float) -> int:
        elapsed = now - self.last_time
        if elapsed < MIN_WINDOW:
            if self.last_bps or elapsed <= 0:
                return self.last_bps
            # Nothing measured yet: the average so far is better than zero.
            return max(0, int((total_bytes - self.last_bytes) * 8 / elapsed))
        self.last_bps = max(0, int((total_bytes - self.last_bytes) * 8 / elapsed))
        self.last_bytes, self.last_time = total_bytes, now
        return self.last_bps


def loss_fraction(lost: int, received: int) -> float:
    """Share of expected packets that were lost (0..1)."""
    expected = lost + received
    if expected <= 0 or lost <= 0:
        return 0.0
    return lost / expected


async def participant_stats(participant: Participant) -> ParticipantStats:
    """Sample one participant: what it sends (inbound) and what it receives (outbound)."""
    now = time.monotonic()
    inbound: list[InboundStats] = []
    lost_in = received_in = 0
    bitrate_in = 0
    for source, track in participant.inbound.items():
        streams = track.media_streams()
        if not streams and not track.published:
            continue
        received = sum(s.packets_received for s in streams)
        lost = sum(max(0, s.packets_lost) for s in streams)
        jitter = max((s.jitter for s in streams), default=0)
        bps = track.rate.sample(track.bytes_received, now)
        lost_in += lost
        received_in += received
        bitrate_in += bps
        inbound.append(
            InboundStats(
                kind=track.kind,
                source=source,
                codec=track.codec_name,
                packets_received=received,
                packets_lost=lost,
                jitter_ms=round(jitter * 1000 / track.clock_rate, 3),
                bitrate_bps=bps,
                muted=track.muted,
            )
        )

    outbound: list[OutboundStats] = []
    rtts: list[float] = []
    lost_out = sent_out = 0
    reported = False
    bitrate_out = 0
    for forwarder in list(participant.forwarders):
        remote = None
        for stat in (await forwarder.sender.getStats()).values():
            if getattr(stat, "type", None) == "remote-inbound-rtp":
                remote = stat
        bps = forwarder.rate.sample(forwarder.bytes_sent, now)
        bitrate_out += bps
        clock_rate = 48000 if forwarder.kind == "audio" else 90000
        rtt_ms = None
        feeding = forwarder.source
        entry = OutboundStats(
            mid=forwarder.mid,
            kind=forwarder.kind,
            publisher=forwarder.publisher,
            source=feeding.source if feeding is not None else None,
            packets_sent=forwarder.packets_sent,
            bytes_sent=forwarder.bytes_sent,
            packets_lost=None,
            fraction_lost=None,
            jitter_ms=None,
            rtt_ms=None,
            bitrate_bps=bps,
        )
        if remote is not None:
            reported = True
            if remote.roundTripTime is not None:
                rtt_ms = round(remote.roundTripTime * 1000, 3)
                rtts.append(rtt_ms)
            entry["packets_lost"] = max(0, remote.packetsLost)
            entry["fraction_lost"] = round(remote.fractionLost / 256, 4)
            entry["jitter_ms"] = round(remote.jitter * 1000 / clock_rate, 3)
            entry["rtt_ms"] = rtt_ms
            lost_out += max(0, remote.packetsLost)
            sent_out += forwarder.packets_sent
        outbound.append(entry)

    return ParticipantStats(
        conference=participant.conference_id,
        participant=participant.id,
        connection_state=participant.connection_state,
        rtt_ms=round(sum(rtts) / len(rtts), 3) if rtts else None,
        bitrate_in_bps=bitrate_in,
        bitrate_out_bps=bitrate_out,
        packet_loss_in=round(loss_fraction(lost_in, received_in), 4),
        packet_loss_out=round(loss_fraction(lost_out, sent_out - lost_out), 4)
        if reported
        else None,
        inbound=inbound,
        outbound=outbound,
    )
