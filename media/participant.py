"""One participant's ``RTCPeerConnection`` and its negotiation with the server as offerer.

The server always makes the offers: on join, recvonly audio and video (the participant's
own microphone and camera) plus one sendonly m-line per track already published by the
others; later, a sendonly m-line per new publisher (or an inactive one re-pointed at it).
A screen share adds a second recvonly video m-line (source ``"screen"``), set inactive
when the share stops and made recvonly again by the next one. One negotiation runs at a
time: changes made while an offer is pending are collected and offered once the answer
arrives.

A participant's uplinks are keyed by *source* (``"microphone"``, ``"camera"``,
``"screen"``), not by kind: camera and screen are both video.

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
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InternalError, InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.sdp import SessionDescription

from media.codecs import preferred_codecs
from media.config import MediaConfig
from media.errors import NegotiationError
from media.forwarder import Forwarder, ParkedTrack
from media.ice import host_addresses, parse_candidate
from media.internals import (
    guard_connect,
    negotiated_codecs,
    receiver_state,
    reserve_payload_types,
    route_ssrcs,
)
from media.messages import (
    DEFAULT_SOURCE,
    MEDIA_KINDS,
    SOURCE_KIND,
    IceCandidate,
    MediaKind,
    ParticipantMode,
    TrackInfo,
    TrackSource,
)
from media.publication import AudioLevelCallback, PublishedTrack

logger = logging.getLogger(__name__)

RECEIVING = ("recvonly", "sendrecv")
CONNECT_WAIT = 5.0
"""Seconds an answer opening a new uplink waits for a connection attempt in progress."""
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


def announced_ssrcs(sdp: str) -> dict[str, tuple[list[int], dict[int, int]]]:
    """Per mid: the SSRCs a description announces, and its RTX SSRC -> media SSRC pairs."""
    found: dict[str, tuple[list[int], dict[int, int]]] = {}
    for media in SessionDescription.parse(sdp).media:
        if media.rtp.muxId is None:
            continue
        rtx = {
            int(group.items[1]): int(group.items[0])
            for group in media.ssrc_group
            if group.semantic == "FID" and len(group.items) == 2
        }
        found[media.rtp.muxId] = ([s.ssrc for s in media.ssrc], rtx)
    return found


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
        self._connect_lock = asyncio.Lock()
        """Held while aiortc's ``__connect`` runs (see :meth:`_pause_connect`)."""
        self._needs_offer = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connect_error: BaseException | None = None
        self.pc = RTCPeerConnection(rtc_configuration(config))
        guard_connect(self.pc, self._tasks, self._connect_failed, self._connect_lock)
        self.pc.on("connectionstatechange", self._state_changed)

        self.inbound: dict[TrackSource, PublishedTrack] = {}
        """The participant's own tracks by source (published or not yet / no longer)."""
        self._uplinks: dict[TrackSource, RTCRtpTransceiver] = {}
        self.forwarders: list[Forwarder] = []
        if mode == "full":
            for kind in MEDIA_KINDS:
                self._add_uplink(DEFAULT_SOURCE[kind])

    @property
    def subscribes(self) -> bool:
        """True if new publications are offered to this participant (not WHIP/WHEP)."""
        return self.mode == "full"

    @property
    def sharing_screen(self) -> bool:
        """True from ``set_screen_share(True)`` until ``set_screen_share(False)``."""
        transceiver = self._uplinks.get("screen")
        return transceiver is not None and transceiver.direction == "recvonly"

    def _add_uplink(self, source: TrackSource) -> RTCRtpTransceiver:
        """A recvonly m-line for the participant's own microphone, camera or screen."""
        kind = SOURCE_KIND[source]
        transceiver = self.pc.addTransceiver(kind, direction="recvonly")
        transceiver.setCodecPreferences(preferred_codecs(kind, self._config.video_codecs))
        self.inbound[source] = PublishedTrack(
            self.id,
            kind,
            transceiver.receiver,
            keyframe_interval=self._config.keyframe_request_interval,
            remb=self._config.remb,
            on_audio_level=self._on_audio_level,
            fast_path=self._config.fast_path,
            source=source,
        )
        self._uplinks[source] = transceiver
        return transceiver

    def set_screen_share(self, sharing: bool) -> bool:
        """Open (recvonly) or close (inactive) the screen uplink; True if that changed.

        The first share adds the m-line; later ones re-enable it. The change goes out with
        the next offer (:attr:`needs_offer`).
        """
        if self.closed:
            raise NegotiationError("participant is closed")
        if self.mode != "full":
            raise NegotiationError("this client does not renegotiate")
        if sharing == self.sharing_screen:
            return False
        transceiver = self._uplinks.get("screen")
        if not sharing:
            if transceiver is not None:
                transceiver.direction = "inactive"
        else:
            if transceiver is None:
                transceiver = self._add_uplink("screen")
            else:
                transceiver.direction = "recvonly"
            # Until the answer tells aiortc the screen's SSRCs, its packets must not be
            # taken for the camera's (same payload types): make that guess ambiguous.
            camera_codecs = negotiated_codecs(self._uplinks["camera"])
            reserve_payload_types(transceiver.receiver, [c.payloadType for c in camera_codecs])
        self._needs_offer = True
        return True

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
        """What each negotiated m-line carries, in m-line order (see :class:`TrackInfo`)."""
        uplinks = {id(t): source for source, t in self._uplinks.items()}
        forwarders = {id(f.transceiver): f for f in self.forwarders}
        infos: list[TrackInfo] = []
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid
            if mid is None:
                continue
            kind: MediaKind = "audio" if transceiver.kind == "audio" else "video"
            source: TrackSource | None = uplinks.get(id(transceiver))
            publisher: str | None = None
            if source is not None:
                if transceiver.direction not in RECEIVING:
                    source = None
            elif (forwarder := forwarders.get(id(transceiver))) is not None:
                track = forwarder.source
                if track is not None and forwarder.publisher is not None:
                    publisher, source = forwarder.publisher, track.source
            else:
                continue
            infos.append(TrackInfo(mid=mid, kind=kind, publisher=publisher, source=source))
        return infos

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

    async def apply_answer(self, sdp: str) -> list[TrackSource]:
        """Apply the answer; returns the sources the participant now sends to the server."""
        if len(sdp) > self._config.max_sdp_length:
            raise NegotiationError("answer SDP is too long")
        async with self._lock:
            if self.closed:
                raise NegotiationError("participant is closed")
            if self.pc.signalingState != "have-local-offer":
                raise NegotiationError("no offer is waiting for an answer")
            paused = await self._pause_connect()
            try:
                if self.closed:  # while waiting for the connection
                    raise NegotiationError("participant is closed")
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except _ANSWER_ERRORS as exc:
                raise NegotiationError(f"cannot apply answer: {exc}") from exc
            finally:
                if paused:
                    self._connect_lock.release()
            for forwarder in self.forwarders:
                forwarder.update_codecs()
            # A share stopped while its offer was out is not received, whatever the answer.
            receiving = [
                source
                for source, t in self._uplinks.items()
                if t.direction in RECEIVING and t.currentDirection in RECEIVING
            ]
            self._claim_ssrcs(sdp, receiving)
            return receiving

    async def _pause_connect(self) -> bool:
        """Before an answer that can open a new receiving m-line (a first screen share),
        wait for aiortc's running ``__connect`` and keep the next one from starting until
        the answer is applied (see :func:`media.internals.guard_connect`); True if paused.

        Bounded: a connection whose ICE never completes must not hold answers forever (it
        keeps waiting for remote candidates); the answer then goes ahead unguarded.
        """
        if not any(
            t.currentDirection is None and t.direction in RECEIVING for t in self._uplinks.values()
        ):
            return False
        if not self._connect_lock.locked():
            await self._connect_lock.acquire()  # free: returns at once, no other task runs
            return True
        try:
            await asyncio.wait_for(self._connect_lock.acquire(), CONNECT_WAIT)
        except TimeoutError:
            logger.warning("%s: connection still not up, applying the answer anyway", self.id)
            return False
        return True

    def _claim_ssrcs(self, sdp: str, sources: list[TrackSource]) -> None:
        """Tell aiortc's RTP router every SSRC the answer announces for each uplink.

        aiortc learns a receiver's media SSRC only when the receiver starts and never its
        RTX SSRC: it routes unknown SSRCs by payload type, which is ambiguous (packets are
        dropped) once camera and screen arrive on one connection with the same payload
        types. A share that comes back with new SSRCs is also routed by this.
        """
        announced = announced_ssrcs(sdp)
        for source in sources:
            transceiver = self._uplinks[source]
            ssrcs, rtx = announced.get(str(transceiver.mid), ([], {}))
            if ssrcs:
                route_ssrcs(transceiver.receiver, ssrcs)
                receiver_state(transceiver.receiver).rtx_ssrc.update(rtx)

    async def accept_offer(self, sdp: str) -> tuple[str, list[TrackSource]]:
        """Answer an offer-first client (``publish`` or ``view`` mode), once.

        Returns the answer SDP and the sources a publisher now sends (a WHIP client's audio
        is its ``"microphone"``, its video its ``"camera"``). Raises
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
                    self._add_uplink(DEFAULT_SOURCE[kind])
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
                source for source, t in self._uplinks.items() if t.currentDirection in RECEIVING
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
