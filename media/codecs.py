"""Codec identity across peer connections: browsers pick their own payload type numbers,
so the engine matches codecs by name (and, for H.264, packetization mode and profile)."""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from media.messages import MediaKind


def codec_key(codec: Any) -> str:
    """Exact identity: ``audio/opus``, ``video/vp8``, ``video/h264;1;42e0``."""
    mime = str(codec.mimeType).lower()
    if mime == "video/h264":
        params = codec.parameters
        mode = str(params.get("packetization-mode", "0"))
        profile = str(params.get("profile-level-id", "42e01f")).lower()[:4]
        return f"{mime};{mode};{profile}"
    return mime


def codec_fallback_key(codec: Any) -> str:
    """Looser identity used when no exact match exists (H.264 of another profile)."""
    mime = str(codec.mimeType).lower()
    if mime == "video/h264":
        return f"{mime};{codec.parameters.get('packetization-mode', '0')}"
    return mime


def payload_type_map(codecs: list[Any]) -> tuple[dict[str, int], dict[int, int]]:
    """From negotiated codecs: key -> payload type, and payload type -> its RTX type."""
    by_key: dict[str, int] = {}
    rtx: dict[int, int] = {}
    for codec in codecs:
        if is_rtx(codec):
            apt = codec.parameters.get("apt")
            if isinstance(apt, int):
                rtx[apt] = codec.payloadType
            continue
        by_key.setdefault(codec_key(codec), codec.payloadType)
    for codec in codecs:
        if not is_rtx(codec):
            by_key.setdefault(codec_fallback_key(codec), codec.payloadType)
    return by_key, rtx


def preferred_codecs(kind: MediaKind, video_codecs: tuple[str, ...]) -> list[RTCRtpCodecCapability]:
    """Codecs the server offers: Opus for audio; the configured video codecs, plus RTX."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    if kind == "audio":
        return [c for c in capabilities if c.mimeType.lower() == "audio/opus"]
    chosen: list[RTCRtpCodecCapability] = []
    for name in video_codecs:
        mime = f"video/{name}".lower()
        chosen.extend(c for c in capabilities if c.mimeType.lower() == mime)
    chosen.extend(c for c in capabilities if c.mimeType.lower() == "video/rtx")
    return chosen
