"""Keyframe detection on real encoder output, and the keyframe request rate limit."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from av import VideoFrame

from media.keyframes import KeyframeRequestLimiter, is_keyframe_start


def _frames(encoder: object, count: int, keyframe_at: int) -> list[list[bytes]]:
    image = np.zeros((120, 160, 3), dtype=np.uint8)
    out = []
    for i in range(count):
        image[:, :, 0] = (i * 40) % 256
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=(i == keyframe_at))  # type: ignore[attr-defined]
        out.append(payloads)
    return out


@pytest.mark.parametrize(("codec", "encoder"), [("VP8", Vp8Encoder), ("H264", H264Encoder)])
def test_only_the_first_packet_of_a_keyframe_starts_a_keyframe(codec: str, encoder: type) -> None:
    frames = _frames(encoder(), 5, keyframe_at=3)
    starts = [[is_keyframe_start(codec, p) for p in payloads] for payloads in frames]
    for index, flags in enumerate(starts):
        if index in (0, 3):
            assert flags[0], f"frame {index} is a keyframe"
            assert not any(flags[1:])
        else:
            assert not any(flags), f"frame {index} is a delta frame"


def test_audio_never_waits_for_a_keyframe() -> None:
    assert is_keyframe_start("opus", b"\x01\x02")


@pytest.mark.parametrize("payload", [b"", b"\x10", b"\x90\x80", b"\x1c\xff\xff"])
def test_truncated_payloads_are_not_keyframes(payload: bytes) -> None:
    assert not is_keyframe_start("VP8", payload)
    assert not is_keyframe_start("H264", payload[:1] if payload else b"")


def test_keyframe_requests_are_rate_limited() -> None:
    limiter = KeyframeRequestLimiter(0.3)
    assert limiter.allow(10.0)
    assert not limiter.allow(10.1)
    assert not limiter.allow(10.29)
    assert limiter.allow(10.31)
