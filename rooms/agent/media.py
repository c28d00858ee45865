"""The room's camera and microphone as aiortc tracks, opened for each conference.

``--video`` / ``--audio`` take a source: ``testsrc`` (a solid colour, ``testsrc:R,G,B``, and
a 440 Hz tone: :mod:`signaling.sources`), ``none``, a V4L2 camera (``/dev/video0`` or
``v4l2:/dev/video0``), an ALSA or PulseAudio input (``alsa:hw:0``, ``pulse:default``), or a
media file or URL (played in a loop). Devices are opened when a conference starts and
closed when it ends, so another program can use them in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer

from signaling.sources import ColorTrack, ToneTrack

log = logging.getLogger(__name__)

DEFAULT_COLOUR = (30, 144, 255)


def parse_colour(spec: str) -> tuple[int, int, int]:
    """``testsrc`` → the default colour; ``testsrc:R,G,B`` → that colour."""
    if ":" not in spec:
        return DEFAULT_COLOUR
    parts = [int(p) for p in spec.split(":", 1)[1].split(",")]
    if len(parts) != 3 or not all(0 <= p <= 255 for p in parts):
        raise ValueError(f"a test colour is R,G,B with values 0..255, not {spec!r}")
    return parts[0], parts[1], parts[2]


def _player(spec: str, kind: str) -> MediaPlayer:
    if spec.startswith("/dev/video") or spec.startswith("v4l2:"):
        device = spec.removeprefix("v4l2:")
        return MediaPlayer(device, format="v4l2", options={"video_size": "1280x720"})
    for prefix in ("alsa:", "pulse:"):
        if spec.startswith(prefix):
            return MediaPlayer(spec.removeprefix(prefix), format=prefix[:-1])
    return MediaPlayer(spec, loop=True)


@dataclass
class MediaSources:
    """Opens the configured sources as tracks (audio first) and closes them again."""

    video: str = "testsrc"
    audio: str = "testsrc"
    _players: list[MediaPlayer] = field(default_factory=list)
    _tracks: list[MediaStreamTrack] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.video.startswith("testsrc"):
            parse_colour(self.video)  # fail at start-up, not in the first meeting

    def describe(self) -> str:
        return f"video {self.video}, audio {self.audio}"

    def open(self) -> list[MediaStreamTrack]:
        """Fresh tracks for one conference: audio, then video (aiortc bundles audio first)."""
        self.close()
        players: dict[str, MediaPlayer] = {}
        tracks: list[MediaStreamTrack] = []
        for kind, spec in (("audio", self.audio), ("video", self.video)):
            track: Any = None
            if spec == "none":
                continue
            if spec.startswith("testsrc"):
                track = ToneTrack() if kind == "audio" else ColorTrack(parse_colour(spec))
            else:
                player = players.get(spec) or _player(spec, kind)
                players[spec] = player
                track = player.audio if kind == "audio" else player.video
                if track is None:
                    log.warning("%s source %s has no %s", kind, spec, kind)
                    continue
            tracks.append(track)
        self._players = list(players.values())
        self._tracks = tracks
        return tracks

    def close(self) -> None:
        for track in self._tracks:
            track.stop()
        self._tracks = []
        self._players = []
