"""One participant's ``RTCPeerConnection`` and its negotiation with the server as offerer.

The server always makes the offers: on join, recvonly audio and video (the participant's
own microphone and camera) plus one sendonly m-line per track already published by the
others; later, a sendonly m-line per new publisher (or an inactive one re-pointed at it).
One negotiation runs at a time: changes made while an offer is pending are collected and
offered once the answer arrives.

WHIP publishers and WHEP viewers are the exception (``mode`` ``publish`` / ``view``): they
offer first, once, and never renegotiate. Their transceivers are made from their offer
(:meth:`Participant.accept_offer`) and stay fixed: a viewer's m-lines are re-pointed at
other publishers inside the SFU (:mod:`media.viewers`), never re-offered.
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
from media.messages import MEDIA_KINDS, IceCandidate, MediaKind, ParticipantMode, TrackInfo
from media.publication import AudioLevelCallback, PublishedTrack

logger = logging.getLogger(__name__)

RECEIVING = ("recvonly", "sendrecv")
SENDING = ("sendonly", "sendrecv")
_ANSWER_ERRORS = (
    ValueError,
    IndexError,
    KeyError,
    InvalidStateError,
    InvalidAccessError,
    OperationError,
    InternalError,
)


def offered_kinds(sdp: str) -> list[MediaKind]:
    """The media kinds of an offer's m-lines, in order; NegotiationError if unusable.

    An offer-first client (WHIP, WHEP) may have at most one audio and one video m-line and
    nothing else: its transceivers are fixed for the whole session.
    """
    kinds: list[MediaKind] = []
    for line in sdp.splitlines():
        if not line.startswith("m="):
            continue
        kind = line[2:].split(" ", 1)[0]
        if kind not in MEDIA_KINDS:
            raise NegotiationError(f"only audio and video m-lines are supported, not {kind!r}")
        media_kind: MediaKind = "audio" if kind == "audio" else "video"
        if media_kind in kinds:
            raise NegotiationError(f"at most one {kind} m-line is supported")
        kinds.append(media_kind)
    if not kinds:
        raise NegotiationError("the offer has no audio or video m-line")
    return kinds


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
        mode: ParticipantMode = "full",
    ) -> None:
        self.conference_id = conference_id
        self.id = participant_id
        self.mode: ParticipantMode = mode
        self.follow: str | None = None
        """A viewer's chosen publisher (None: the active speaker)."""
        self.view_source: str | None = None
        """The publisher a viewer's m-lines are fed from now."""
        self.closed = False
        self._config = config
        self._on_audio_level = on_audio_level
        self._on_connection_state = on_connection_state
        self._lock = asyncio.Lock()
        self._needs_offer = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connect_error: BaseException | None = None
        self.pc = RTCPeerConnection(rtc_configuration(config))
        guard_connect(self.pc, self._tasks, self._connect_failed)
        self.pc.on("connectionstatechange", self._state_changed)

        self.inbound: dict[MediaKind, PublishedTrack] = {}
        self._inbound_transceivers: dict[MediaKind, Any] = {}
        self.forwarders: list[Forwarder] = []
        if mode == "full":
            for kind in MEDIA_KINDS:
                self._add_uplink(kind)

    @property
    def subscribes(self) -> bool:
        """True if new publications are offered to this participant (not WHIP/WHEP)."""
        return self.mode == "full"

    def _add_uplink(self, kind: MediaKind) -> None:
        """A recvonly m-line for the participant's own microphone or camera."""
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        transceiver.setCodecPreferences(preferred_codecs(kind, self._config.video_codecs))
        self.inbound[kind] = PublishedTrack(
            self.id,
            kind,
            transceiver.receiver,
            keyframe_interval=self._config.keyframe_request_interval,
            remb=self._config.remb,
            on_audio_level=self._on_audio_level,
            fast_path=self._config.fast_path,
        )
        self._inbound_transceivers[kind] = transceiver

    def _add_fixed_downlink(self, kind: MediaKind) -> None:
        """A sendonly m-line of a viewer, fed by whichever publisher it follows."""
        transceiver = self.pc.addTransceiver(ParkedTrack(kind), direction="sendonly")
        transceiver.setCodecPreferences(preferred_codecs(kind, self._config.video_codecs))
        self.forwarders.append(Forwarder(transceiver, kind))

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
            except _ANSWER_ERRORS as exc:
                raise NegotiationError(f"cannot apply answer: {exc}") from exc
            for forwarder in self.forwarders:
                forwarder.update_codecs()
            return [
                kind
                for kind in MEDIA_KINDS
                if self._inbound_transceivers[kind].currentDirection in RECEIVING
            ]

    async def accept_offer(self, sdp: str) -> tuple[str, list[MediaKind]]:
        """Answer an offer-first client (``publish`` or ``view`` mode), once.

        Returns the answer SDP and the kinds a publisher now sends. Raises
        NegotiationError for a bad or unusable offer, or a second one.
        """
        if self.mode == "full":
            raise NegotiationError("this participant answers the server's offers")
        if len(sdp) > self._config.max_sdp_length:
            raise NegotiationError("offer SDP is too long")
        kinds = offered_kinds(sdp)
        async with self._lock:
            if self.closed:
                raise NegotiationError("participant is closed")
            if self.pc.remoteDescription is not None:
                raise NegotiationError("renegotiation is not supported for this client")
            for kind in kinds:
                if self.mode == "publish":
                    self._add_uplink(kind)
                else:
                    self._add_fixed_downlink(kind)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
                with host_addresses(self._config.host_addresses):
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
            except _ANSWER_ERRORS as exc:
                raise NegotiationError(f"cannot answer the offer: {exc}") from exc
            for forwarder in self.forwarders:
                forwarder.update_codecs()
            sending = [
                kind
                for kind, t in self._inbound_transceivers.items()
                if t.currentDirection in RECEIVING
            ]
            receiving = [f for f in self.forwarders if f.transceiver.currentDirection in SENDING]
            if self.mode == "publish" and not sending:
                raise NegotiationError("the offer sends no audio or video (use sendonly)")
            if self.mode == "view" and not receiving:
                raise NegotiationError("the offer receives no audio or video (use recvonly)")
            return str(self.pc.localDescription.sdp), sending

    def _bundle_mid(self) -> str | None:
        """The mid of the first m-line: its transport carries every m-line (max-bundle)."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is not None:
                return str(transceiver.mid)
        return None

    async def add_ice_candidate(self, candidate: IceCandidate | None) -> None:
        if self.closed:
            return
        if self.pc.remoteDescription is None:
            raise NegotiationError("candidate before the answer")
        if candidate is None or not candidate.get("candidate"):
            await self.pc.addIceCandidate(None)
            return
        parsed = parse_candidate(candidate, self._bundle_mid())
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
