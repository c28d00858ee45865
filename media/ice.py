"""ICE details the engine controls: which host addresses it offers, which candidates it accepts.

aioice discovers host addresses with ``aioice.ice.get_host_addresses``, which skips
127.0.0.1: on a loopback-only machine aiortc would offer no candidate at all. The engine
replaces that function once with a wrapper that consults a context variable, so the
override applies only to gathering started inside :func:`host_addresses` (the engine's own
``setLocalDescription`` calls, and the tasks they spawn, which copy the context); every
other aiortc user in the process keeps aioice's behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import aioice.ice
from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from media.errors import NegotiationError
from media.messages import IceCandidate

logger = logging.getLogger(__name__)

# Per-context (not global) state: set only for the duration of a `host_addresses` block.
_HOST_ADDRESSES: ContextVar[tuple[str, ...] | None] = ContextVar(
    "media_ice_host_addresses", default=None
)
_MARKER = "_media_host_address_override"


def install_host_address_override() -> None:
    """Wrap ``aioice.ice.get_host_addresses`` (idempotent; a no-op outside overrides)."""
    current = cast(Callable[[bool, bool], list[str]], aioice.ice.get_host_addresses)
    if getattr(current, _MARKER, False):
        return
    original = current

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        override = _HOST_ADDRESSES.get()
        if override is None:
            return original(use_ipv4, use_ipv6)
        return [address for address in override if (use_ipv6 if ":" in address else use_ipv4)]

    setattr(get_host_addresses, _MARKER, True)
    aioice.ice.get_host_addresses = get_host_addresses


@contextmanager
def host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Make ICE gathering started in this block offer exactly ``addresses`` (None: default)."""
    if addresses is None:
        yield
        return
    install_host_address_override()
    token = _HOST_ADDRESSES.set(tuple(addresses))
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)


def parse_candidate(message: IceCandidate, bundle_mid: str | None) -> RTCIceCandidate | None:
    """Turn a trickled candidate into aiortc's type, or None if it must be dropped.

    All m-lines share one transport (max-bundle) and aiortc only feeds candidates to the
    m-line that owns it, so the candidate is re-addressed to the bundle's first mid.
    ``.local`` (mDNS) candidates are dropped: resolving them would send multicast off the
    machine; the browser is still reached through peer-reflexive candidates.
    """
    line = message.get("candidate", "")
    if not isinstance(line, str):
        raise NegotiationError("candidate must be a string")
    line = line.strip()
    if line.startswith("a="):
        line = line[2:]
    if line.startswith("candidate:"):
        line = line[len("candidate:") :]
    if len(line.split()) < 8:  # aiortc only asserts this
        raise NegotiationError("invalid ICE candidate: too few fields")
    try:
        candidate: Any = candidate_from_sdp(line)
    except (ValueError, IndexError) as exc:
        raise NegotiationError(f"invalid ICE candidate: {exc}") from exc
    if str(candidate.ip).lower().endswith(".local"):
        logger.debug("dropping mDNS candidate %s", candidate.ip)
        return None
    candidate.sdpMid = bundle_mid
    candidate.sdpMLineIndex = 0
    return cast(RTCIceCandidate, candidate)
