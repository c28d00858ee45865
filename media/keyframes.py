"""Keyframe detection from RTP payloads, and the rate limit on keyframe requests.

A new subscriber can only decode from a keyframe, so forwarders drop packets until one
starts; the detection reads only the RTP payload headers (no decoding).
"""

from __future__ import annotations

H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def is_vp8_keyframe_start(payload: bytes) -> bool:
    """True if ``payload`` (RFC 7741) is the first packet of a VP8 keyframe."""
    if len(payload) < 2:
        return False
    first = payload[0]
    extended = first & 0x80
    start_of_partition = first & 0x10
    partition_id = first & 0x07
    if not start_of_partition or partition_id != 0:
        return False
    pos = 1
    if extended:
        ext = payload[pos]
        pos += 1
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if pos >= len(payload):
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX
            pos += 1
    if pos >= len(payload):
        return False
    # VP8 payload header: P bit (0 = key frame) is the lowest bit of the first byte.
    return not payload[pos] & 0x01


def is_h264_keyframe_start(payload: bytes) -> bool:
    """True if ``payload`` (RFC 6184) starts an IDR picture (or its SPS)."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_NAL_IDR, H264_NAL_SPS):
        return True
    if nal_type == H264_STAP_A:
        pos = 1
        while pos + 2 < len(payload):
            size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if size == 0 or pos >= len(payload):
                return False
            if payload[pos] & 0x1F in (H264_NAL_IDR, H264_NAL_SPS):
                return True
            pos += size
        return False
    if nal_type == H264_FU_A and len(payload) >= 2:
        fu_header = payload[1]
        return bool(fu_header & 0x80) and fu_header & 0x1F == H264_NAL_IDR
    return False


def is_keyframe_start(codec_name: str, payload: bytes) -> bool:
    """Dispatch on codec name (``VP8``, ``H264``); other codecs never gate (audio)."""
    name = codec_name.upper()
    if name == "VP8":
        return is_vp8_keyframe_start(payload)
    if name == "H264":
        return is_h264_keyframe_start(payload)
    return True


class KeyframeRequestLimiter:
    """Lets one keyframe request through per ``interval`` seconds (per publisher track)."""

    __slots__ = ("_interval", "_last")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last: float | None = None

    def allow(self, now: float) -> bool:
        if self._last is not None and now - self._last < self._interval:
            return False
        self._last = now
        return True
