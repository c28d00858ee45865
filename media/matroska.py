"""Matroska files of frames that are already encoded (Opus, VP8, H.264): nothing is decoded
or encoded here, for :mod:`media.recording`.

A :class:`TrackFile` holds one track; its header (codec parameters) is made from the track's
first frame: the OpusHead, the VP8 picture size, the H.264 SPS and PPS. :func:`combine`
copies the first stream of several files into one file, packet for packet.
"""

from __future__ import annotations

import heapq
import io
import logging
import os
import re
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

logger = logging.getLogger(__name__)

CODECS = ("opus", "vp8", "h264")
MILLISECONDS = Fraction(1, 1000)
"""The time base of every file (Matroska's own default)."""
_TEMPLATE_ENCODERS = {"opus": "libopus", "vp8": "libvpx", "h264": "libx264"}
_OPUS_HEAD = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 0, 48000, 0, 0)
"""RFC 7845 identification header: version 1, 2 channels (WebRTC's opus/48000/2), no
pre-skip, 48 kHz, 0 dB, mapping family 0."""
_H264_IDR, _H264_SPS, _H264_PPS = 5, 7, 8
_START_CODE = re.compile(b"\x00\x00\x01")
_DEFAULT_SIZE = (640, 480)


def is_keyframe(codec: str, frame: bytes) -> bool:
    """True if ``frame`` decodes on its own (audio: always)."""
    if codec == "vp8":
        return bool(frame) and not frame[0] & 0x01  # frame tag: P bit 0 is a key frame
    if codec == "h264":
        return any(nal[0] & 0x1F == _H264_IDR for nal in nal_units(frame))
    return True


def can_start(codec: str, frame: bytes) -> bool:
    """True if a file can start with this keyframe (H.264: it carries SPS and PPS)."""
    if codec != "h264":
        return True
    types = {nal[0] & 0x1F for nal in nal_units(frame)}
    return _H264_SPS in types and _H264_PPS in types


class TrackFile:
    """One Matroska file with one stream, written a frame at a time (blocking calls)."""

    def __init__(self, path: Path, codec: str, first_frame: bytes, title: str) -> None:
        """Create the file for ``codec``; ``first_frame`` (a keyframe) gives the header."""
        self.path = path
        container: Any = av.open(str(path), "w", format="matroska")
        try:
            self._stream = _mux_stream(container, codec)
            context = self._stream.codec_context
            if codec == "opus":
                context.sample_rate = 48000
                context.layout = "stereo"
                context.extradata = _OPUS_HEAD
            else:
                try:
                    width, height = (vp8_dimensions if codec == "vp8" else h264_dimensions)(
                        first_frame
                    )
                except ValueError:  # decoders read the picture size in the stream itself
                    logger.warning("%s: picture size unknown", path.name, exc_info=True)
                    width, height = _DEFAULT_SIZE
                context.width, context.height = width, height
                if codec == "h264":
                    context.extradata = b"".join(
                        b"\x00\x00\x00\x01" + nal
                        for nal in nal_units(first_frame)
                        if nal[0] & 0x1F in (_H264_SPS, _H264_PPS)
                    )
            self._stream.time_base = MILLISECONDS
            self._stream.metadata["title"] = title
        except BaseException:
            container.close()
            raise
        self._container = container

    def write(self, frame: bytes, pts_ms: int, keyframe: bool) -> None:
        """Append a frame (``pts_ms`` increasing); raises av.FFmpegError or OSError."""
        packet = av.Packet(frame)
        packet.stream = self._stream
        packet.time_base = MILLISECONDS
        packet.pts = packet.dts = pts_ms
        packet.is_keyframe = keyframe
        self._container.mux(packet)

    def close(self) -> None:
        """Write the index and close (errors are logged: the frames are on disk already)."""
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            logger.exception("cannot finish %s", self.path.name)


def _mux_stream(container: Any, codec: str) -> Any:
    """A stream of ``container`` for already encoded ``codec`` packets (no codec opened).

    It copies an unopened encoder context of a scratch container: PyAV has no other public
    way to give a muxed stream codec parameters such as extradata (OpusHead, SPS/PPS).
    """
    scratch: Any = av.open(io.BytesIO(), "w", format="matroska")
    try:
        template = scratch.add_stream(_TEMPLATE_ENCODERS[codec])
        return container.add_stream_from_template(template, opaque=True)
    finally:
        scratch.close()


def nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex-B H.264 access unit (aiortc's depayloader output)."""
    for nal in _START_CODE.split(data):
        nal = nal.rstrip(b"\x00")  # a 4-byte start code leaves a zero on the previous unit
        if nal:
            yield nal


# -- the combined file -------------------------------------------------------------------


def combine(files: list[Path], output: Path, titles: list[str] | None = None) -> None:
    """Copy the first stream of each file into ``output`` (stream i from file i),
    interleaved by decode time; nothing is decoded. Blocking: run it in a thread."""
    inputs: list[Any] = []
    temporary = output.with_name(output.name + ".tmp")
    try:
        for path in files:
            inputs.append(av.open(str(path)))
        with av.open(str(temporary), "w", format="matroska") as out:
            streams = []
            for index, source in enumerate(inputs):
                stream = out.add_stream_from_template(source.streams[0], opaque=True)
                if titles is not None:
                    stream.metadata["title"] = titles[index]
                streams.append(stream)
            for index, packet in _interleaved(inputs):
                packet.stream = streams[index]
                out.mux(packet)
        os.replace(temporary, output)
    finally:
        for source in inputs:
            source.close()
        temporary.unlink(missing_ok=True)


def _interleaved(inputs: list[Any]) -> Iterator[tuple[int, Any]]:
    """(input index, packet) of every input's first stream by decode time, ties in order."""

    def packets(index: int, source: Any) -> Iterator[tuple[int, int, Any]]:
        for packet in source.demux(source.streams[0]):
            if packet.dts is not None:  # None: the demuxer's end-of-stream marker
                yield round(packet.dts * packet.time_base * 1000), index, packet

    merged = heapq.merge(*(packets(i, s) for i, s in enumerate(inputs)), key=lambda t: t[:2])
    for _, index, packet in merged:
        yield index, packet


# -- picture sizes from the bitstream ----------------------------------------------------


def vp8_dimensions(frame: bytes) -> tuple[int, int]:
    """Width and height from a VP8 keyframe's header (RFC 6386, 9.1)."""
    if len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
        raise ValueError("not a VP8 keyframe")
    width, height = struct.unpack_from("<HH", frame, 6)
    return width & 0x3FFF, height & 0x3FFF


def h264_dimensions(access_unit: bytes) -> tuple[int, int]:
    """Width and height from the SPS in an Annex-B access unit (ITU-T H.264, 7.3.2.1.1)."""
    sps = next((n for n in nal_units(access_unit) if n[0] & 0x1F == _H264_SPS), None)
    if sps is None:
        raise ValueError("no SPS")
    bits = _BitReader(sps[1:].replace(b"\x00\x00\x03", b"\x00\x00"))
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma, separate_planes = 1, 0
    if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
        chroma = bits.ue()
        if chroma == 3:
            separate_planes = bits.u(1)
        bits.ue()  # bit depths
        bits.ue()
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for index in range(12 if chroma == 3 else 8):
                if bits.u(1):
                    bits.skip_scaling_list(16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs, height_units = bits.ue() + 1, bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    width, height = 16 * width_mbs, 16 * height_units * (2 - frame_mbs_only)
    if bits.u(1):  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        if chroma == 0 or separate_planes:
            unit_x, unit_y = 1, 2 - frame_mbs_only
        else:
            unit_x = 1 if chroma == 3 else 2
            unit_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * unit_x
        height -= (top + bottom) * unit_y
    return width, height


class _BitReader:
    """Big-endian bits and Exp-Golomb codes of an RBSP."""

    __slots__ = ("_pos", "_size", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._size = 8 * len(data)
        self._pos = 0

    def u(self, bits: int) -> int:
        self._pos += bits
        if self._pos > self._size:
            raise ValueError("truncated SPS")
        return (self._value >> (self._size - self._pos)) & ((1 << bits) - 1)

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)

    def skip_scaling_list(self, size: int) -> None:
        last = next_scale = 8
        for _ in range(size):
            if next_scale:
                next_scale = (last + self.se()) % 256
            last = next_scale or last
