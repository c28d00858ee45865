"""Synthetic media sources: a solid-colour test pattern and a tone.

Room terminals without a camera publish these (``--video testsrc``), and tests use them
because a known colour and level can be checked at the far end.
"""

from __future__ import annotations

import fractions
import math

import numpy as np
from aiortc import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame


class ColorTrack(VideoStreamTrack):
    """Frames of one solid RGB colour at 30 fps."""

    def __init__(self, rgb: tuple[int, int, int], width: int = 320, height: int = 240) -> None:
        super().__init__()
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:, :] = rgb
        self.rgb = rgb
        self._image = image

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (``amplitude`` 0..1; 0 is silence), 20 ms mono frames at 48 kHz."""

    def __init__(self, amplitude: float = 0.3) -> None:
        super().__init__()
        t = np.arange(960) / 48000
        wave = amplitude * 32767 * np.sin(2 * math.pi * 440 * t)
        self._samples = wave.astype(np.int16).reshape(1, -1)

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # keeps real-time pacing
        out = AudioFrame.from_ndarray(self._samples, format="s16", layout="mono")
        out.sample_rate = 48000
        # aiortc's silence source counts 8 kHz samples: re-express its clock at 48 kHz.
        assert frame.pts is not None and frame.time_base is not None
        out.pts = int(frame.pts * frame.time_base * 48000)
        out.time_base = fractions.Fraction(1, 48000)
        return out


def mean_rgb(frame: VideoFrame) -> tuple[float, float, float]:
    """The mean colour of a decoded frame (to check what arrived)."""
    image = frame.to_ndarray(format="rgb24")
    r, g, b = (float(image[:, :, c].mean()) for c in range(3))
    return r, g, b
