"""Settings of the SFU engine, passed in by whoever builds a :class:`~media.engine.MediaEngine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict


class IceServer(TypedDict, total=False):
    """One STUN/TURN server, shaped like the browser's ``RTCIceServer``."""

    urls: str | list[str]
    username: str
    credential: str


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """How the engine's peer connections behave.

    The defaults never contact a third party: no public STUN server is configured.
    """

    ice_servers: list[IceServer] = field(default_factory=list)
    """STUN/TURN servers the server side uses; empty by default (host candidates only)."""

    host_addresses: list[str] | None = None
    """Addresses offered as host ICE candidates instead of the machine's interfaces.

    ``None`` keeps aioice's discovery (which skips 127.0.0.1); ``["127.0.0.1"]`` makes a
    loopback-only machine reachable (tests, single-host deployments behind a proxy).
    """

    video_codecs: tuple[str, ...] = ("VP8", "H264")
    """Video codecs offered, in order of preference (subset of VP8, H264)."""

    keyframe_request_interval: float = 0.3
    """Minimum seconds between two keyframe requests (PLI) sent to one publisher track."""

    remb: bool = True
    """Send receiver-estimated bandwidth (REMB) to video publishers, as aiortc does."""

    fast_path: bool = True
    """Forward RTP as bytes (SRTP in place, sent on the ICE pair: :mod:`media.fastpath`).

    ``False`` keeps every packet on aiortc's ``RtpPacket`` objects (slower; for comparison
    and as a fallback if a hooked internal misbehaves).
    """

    speaker_threshold: float = 40.0
    """Smoothed activity (127 - level in -dBov) a participant needs to become the speaker."""

    speaker_margin: float = 8.0
    """How much louder a challenger must be than the current speaker to take over."""

    speaker_hold: float = 0.5
    """Minimum seconds between two changes of the active speaker."""

    speaker_smoothing: float = 0.15
    """Weight of each new audio-level sample in the exponential moving average."""

    max_sdp_length: int = 64 * 1024
    """Answers longer than this are refused before parsing."""
