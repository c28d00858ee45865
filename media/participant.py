"""One participant's ``RTCPeerConnection`` and its negotiation with the server as offerer.

The server always makes the offers: on join, recvonly audio and video (the participant's
own microphone and camera) plus one sendonly m-line per track already published by the
others; later, a sendonly m-line per new publisher (or an inactive one re-pointed at it).
One negotiation runs at a time: changes made while an offer is pending are collected and
offered once the answer arrives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.codecs import preferred_codecs
from media.config import MediaConfig
from media.errors import NegotiationError
from media.forwarder import Forwarder, ParkedTrack
from media.ice import host_addresses, parse_candidate
from media.internals import guard_connect
from media.messages import MEDIA_KINDS, IceCandidate, MediaKind, TrackInfo
from media.publication import AudioLevelCallback, PublishedTrack

logger = logging.getLogger(__name__)

RECEIVING = ("recvonly", "sendrecv")


def rtc_configuration(config: MediaConfig) -> RTCConfiguration:
    servers = [
        RTCIceServer(
            urls=server["urls"],
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in config.ice_servers
    ]
    # iceServers=[] explicitly: aiortc's default (None) means a public STUN server.
    return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class Participant:
    """A browser, terminal or client connected to one conference through one connection."""

    def __init__(
        self,
        conference_id: str,
        participant_id: str,
        config: MediaConfig,
        *,
        on_connection_state: Callable[[Participant, str], None],
        on_audio_level: AudioLevelCallback,
    ) -> None:
        self.conference_id = conference_id
        self.id = participant_id
        self.closed = False
        self._config = config
        self._on_connection_state = on_connection_state
        self._lock = asyncio.Lock()
        self._needs_offer = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connect_error: BaseException | None = None
        self.pc = RTCPeerConnection(rtc_configuration(config))
        guard_connect(self.pc, self._tasks, self._connect_failed)
        self.pc.on("connectionstatechange", self._state_changed)

        self.inbound: dict[MediaKind, PublishedTrack] = {}
        for kind in MEDIA_KINDS:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(preferred_codecs(kind, config.video_codecs))
            self.inbound[kind] = PublishedTrack(
                participant_id,
                kind,
                transceiver.receiver,
                keyframe_interval=config.keyframe_request_interval,
                remb=config.remb,
                on_audio_level=on_audio_level,
            )
        self._inbound_transceivers: dict[MediaKind, Any] = {
            kind: t for kind, t in zip(MEDIA_KINDS, self.pc.getTransceivers(), strict=True)
        }
        self.forwarders: list[Forwarder] = []

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    def _state_changed(self) -> None:
        if not self.closed:
            self._on_connection_state(self, self.pc.connectionState)

    def _connect_failed(self, exc: BaseException) -> None:
        self.connect_error = exc
        if not self.closed:
            self._on_connection_state(self, "failed")

    # -- subscriptions -------------------------------------------------------------

    def subscribe(self, track: PublishedTrack) -> Forwarder:
        """Receive ``track``: re-point an inactive m-line of its kind, or add one."""
        if self.closed:
            raise NegotiationError("participant is closed")
        for forwarder in self.forwarders:
            if forwarder.kind == track.kind and forwarder.publisher is None:
                forwarder.transceiver.direction = "sendonly"
                break
        else:
            transceiver = self.pc.addTransceiver(ParkedTrack(track.kind), direction="sendonly")
            transceiver.setCodecPreferences(preferred_codecs(track.kind, self._config.video_codecs))
            forwarder = Forwarder(transceiver, track.kind)
            self.forwarders.append(forwarder)
        track.attach(forwarder)
        self._needs_offer = True
        return forwarder

    def unsubscribe(self, forwarder: Forwarder) -> None:
        """Stop feeding an m-line; it becomes inactive and can be reused."""
        forwarder.transceiver.direction = "inactive"
        self._needs_offer = True

    def track_infos(self) -> list[TrackInfo]:
        return [
            TrackInfo(mid=f.mid, kind=f.kind, publisher=f.publisher)
            for f in self.forwarders
            if f.mid is not None
        ]

    # -- negotiation ---------------------------------------------------------------

    @property
    def needs_offer(self) -> bool:
        return self._needs_offer and not self.closed

    async def create_offer(self) -> str | None:
        """A new local offer, or None if one is already pending (it will follow the answer)."""
        async with self._lock:
            if self.closed:
                return None
            if self.pc.signalingState != "stable":
                self._needs_offer = True
                return None
            self._needs_offer = False
            try:
                with host_addresses(self._config.host_addresses):
                    await self.pc.setLocalDescription(await self.pc.createOffer())
            except (InvalidStateError, InternalError, ValueError) as exc:
                raise NegotiationError(f"cannot create offer: {exc}") from exc
            return str(self.pc.localDescription.sdp)

    async def apply_answer(self, sdp: str) -> list[MediaKind]:
        """Apply the answer; returns the kinds the participant now sends to the server."""
        if len(sdp) > self._config.max_sdp_length:
            raise NegotiationError("answer SDP is too long")
        async with self._lock:
            if self.closed:
                raise NegotiationError("participant is closed")
            if self.pc.signalingState != "have-local-offer":
                raise NegotiationError("no offer is waiting for an answer")
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except (
                ValueError,
                IndexError,
                KeyError,
                InvalidStateError,
                InvalidAccessError,
                OperationError,
                InternalError,
            ) as exc:
                raise NegotiationError(f"cannot apply answer: {exc}") from exc
            for forwarder in self.forwarders:
                forwarder.update_codecs()
            return [
                kind
                for kind in MEDIA_KINDS
                if self._inbound_transceivers[kind].currentDirection in RECEIVING
            ]

    async def add_ice_candidate(self, candidate: IceCandidate | None) -> None:
        if self.closed:
            return
        if self.pc.remoteDescription is None:
            raise NegotiationError("candidate before the answer")
        if candidate is None or not candidate.get("candidate"):
            await self.pc.addIceCandidate(None)
            return
        parsed = parse_candidate(candidate, self._inbound_transceivers["audio"].mid)
        if parsed is not None:
            await self.pc.addIceCandidate(parsed)

    # -- lifetime ------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection and drop every hook, forwarder and task (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for track in self.inbound.values():
            track.close()
        for forwarder in self.forwarders:
            forwarder.detach()
        try:
            # Shielded: cancelling a waiter would cancel aiortc's shared "closed" future
            # and make its own pending close() task fail.
            await asyncio.shield(self.pc.close())
        except Exception:  # aiortc may fail half-way through on a broken transport
            logger.warning("error closing peer connection of %s", self.id, exc_info=True)
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.forwarders.clear()
        self.pc.remove_all_listeners()
