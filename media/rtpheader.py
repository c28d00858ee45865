"""Per-subscriber RTP header templates for the byte-level forwarder (:mod:`media.forwarder`).

A template is the 12-byte fixed header (version, extension bit, SSRC) plus the header
extension block exactly as aiortc would serialise it for the subscriber's negotiated ids
(MID, abs-send-time, audio level, in aiortc's order); per packet the forwarder only writes
marker/payload type, sequence number, timestamp and the variable extension values at the
offsets recorded here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from aiortc.rtp import pack_header_extensions

_fixed = struct.Struct("!BBHII")
_ext_header = struct.Struct("!HH")
ONE_BYTE_PROFILE = 0xBEDE


@dataclass(frozen=True, slots=True)
class HeaderTemplate:
    data: bytes
    abs_send_time_at: int
    """Offset of the 3-byte abs-send-time value (0: not negotiated)."""
    abs_send_time_word: int
    """The byte before that value, shifted left 24 (write value | word as one "!I")."""
    audio_level_at: int
    """Offset of the audio level byte (0: not present)."""

    @property
    def size(self) -> int:
        return len(self.data)


def build_template(
    ssrc: int, ids: Any, mid: str | None, *, audio_level: bool = False
) -> HeaderTemplate:
    """The header aiortc's ``RtpPacket.serialize`` writes for a forwarded packet.

    ``ids`` is the subscriber's ``HeaderExtensions`` of negotiated ids; abs-send-time is
    always written when negotiated, the audio level only when ``audio_level`` is set.
    """
    elements: list[tuple[int, bytes]] = []
    if mid is not None and ids.mid:
        elements.append((ids.mid, mid.encode("utf8")))
    if ids.abs_send_time:
        elements.append((ids.abs_send_time, b"\x00\x00\x00"))
    if audio_level and ids.audio_level:
        elements.append((ids.audio_level, b"\x00"))
    profile, value = pack_header_extensions(elements)
    first = 0x80 | (0x10 if value else 0)
    data = _fixed.pack(first, 0, 0, 0, ssrc)
    if value:
        data += _ext_header.pack(profile, len(value) >> 2) + value
    offsets: dict[int, int] = {}
    pos = 16
    element_header = 1 if profile == ONE_BYTE_PROFILE else 2
    for x_id, x_value in elements:
        offsets[x_id] = pos + element_header
        pos += element_header + len(x_value)
    ast_at = offsets.get(ids.abs_send_time, 0) if ids.abs_send_time else 0
    level_at = offsets.get(ids.audio_level, 0) if audio_level and ids.audio_level else 0
    return HeaderTemplate(
        data=data,
        abs_send_time_at=ast_at,
        abs_send_time_word=data[ast_at - 1] << 24 if ast_at else 0,
        audio_level_at=level_at,
    )
