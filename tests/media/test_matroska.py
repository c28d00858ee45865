"""Matroska files of encoded frames: headers read from the bitstream, files that decode."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from media.matroska import (
    TrackFile,
    can_start,
    combine,
    h264_dimensions,
    is_keyframe,
    vp8_dimensions,
)


def encode(codec: str, width: int, height: int, frames: int = 3, **options: str) -> list[bytes]:
    """Frames of a grey picture, encoded with PyAV (the test's own encoder)."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = options.pop("pix_fmt", "yuv420p")
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = options
    out: list[bytes] = []
    for index in range(frames):
        frame = av.VideoFrame(width, height, encoder.pix_fmt)
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = index
        out += [bytes(p) for p in encoder.encode(frame)]
    out += [bytes(p) for p in encoder.encode(None)]
    return out


@pytest.mark.parametrize(
    ("width", "height", "options"),
    [
        (160, 120, {"profile": "baseline"}),
        (162, 122, {"profile": "baseline"}),  # cropped to an odd macroblock edge
        (1920, 1080, {"profile": "high"}),
        (640, 360, {"profile": "high444", "pix_fmt": "yuv444p"}),
        (160, 120, {"profile": "high", "x264-params": "cqm=jvt:interlaced=1"}),
    ],
)
def test_h264_picture_size_is_read_from_the_sps(
    width: int, height: int, options: dict[str, str]
) -> None:
    first = encode("libx264", width, height, preset="ultrafast", **options)[0]
    assert is_keyframe("h264", first) and can_start("h264", first)
    assert h264_dimensions(first) == (width, height)


def test_vp8_picture_size_and_keyframes() -> None:
    frames = encode("libvpx", 322, 242)
    assert vp8_dimensions(frames[0]) == (322, 242)
    assert [is_keyframe("vp8", f) for f in frames] == [True] + [False] * (len(frames) - 1)
    with pytest.raises(ValueError):
        vp8_dimensions(frames[1])


def test_h264_without_parameter_sets_cannot_start_a_file() -> None:
    idr = b"\x00\x00\x00\x01\x65\x88\x84"
    assert is_keyframe("h264", idr) and not can_start("h264", idr)
    with pytest.raises(ValueError):
        h264_dimensions(idr)


def test_track_files_combine_into_one_that_decodes(tmp_path: Path) -> None:
    clips = {  # WebRTC sends no B-frames: pts is dts
        "vp8": encode("libvpx", 96, 64, 10),
        "h264": encode("libx264", 96, 64, 10, preset="ultrafast", tune="zerolatency"),
    }
    paths = []
    for offset, (codec, frames) in enumerate(clips.items()):
        path = tmp_path / f"{codec}.mkv"
        file = TrackFile(path, codec, frames[0], title=codec)
        for index, frame in enumerate(frames):
            file.write(frame, 500 * offset + 33 * index, is_keyframe(codec, frame))
        file.close()
        paths.append(path)
    combine(paths, tmp_path / "both.mkv", ["first", "second"])

    with av.open(str(tmp_path / "both.mkv")) as container:
        streams = container.streams
        assert [(s.codec_context.name, s.metadata["title"]) for s in streams] == [
            ("vp8", "first"),
            ("h264", "second"),
        ]
        assert [(s.codec_context.width, s.codec_context.height) for s in streams] == [(96, 64)] * 2
        dts = [p.dts for p in container.demux() if p.dts is not None]
        assert dts == sorted(dts)
    with av.open(str(tmp_path / "both.mkv")) as container:
        decoded = {0: 0, 1: 0}
        for packet in container.demux():
            for frame in packet.decode():
                assert isinstance(frame, av.VideoFrame)
                assert abs(float(np.mean(frame.to_ndarray(format="gray"))) - 128) < 8
                decoded[packet.stream.index] += 1
    assert decoded == {0: 10, 1: 10}
