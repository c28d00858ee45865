"""The engine's message vocabulary: plain data in and out, JSON-ready.

Every value is a ``str``, ``int``, ``float``, ``bool``, ``None``, list or dict, so that the
engine can later run in a worker process and talk to the signalling layer over a pipe.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

MediaKind = Literal["audio", "video"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("audio", "video")

ParticipantMode = Literal["full", "publish", "view"]
"""``full``: the server offers (browsers, terminals); ``publish`` (WHIP) and ``view`` (WHEP):
the client offered first, once, and its m-lines never change."""


class IceCandidate(TypedDict):
    """A trickled ICE candidate, as the browser's ``RTCIceCandidateInit``."""

    candidate: str
    sdpMid: NotRequired[str | None]
    sdpMLineIndex: NotRequired[int | None]


class TrackInfo(TypedDict):
    """Which publisher feeds one of the subscriber's m-lines (``publisher`` None: inactive)."""

    mid: str
    kind: MediaKind
    publisher: str | None


class OfferMessage(TypedDict):
    """An SDP offer for one participant; the answer goes back through ``engine.answer``."""

    type: Literal["offer"]
    conference: str
    participant: str
    sdp: str
    tracks: list[TrackInfo]


class AnswerMessage(TypedDict):
    """The server's SDP answer to an offer-first client (WHIP publisher, WHEP viewer)."""

    type: Literal["answer"]
    conference: str
    participant: str
    sdp: str
    kinds: list[MediaKind]
    """What the client sends (publish) or receives (view), as negotiated."""


class TrackPublishedEvent(TypedDict):
    type: Literal["track_published"]
    conference: str
    participant: str
    kind: MediaKind


class TrackUnpublishedEvent(TypedDict):
    type: Literal["track_unpublished"]
    conference: str
    participant: str
    kind: MediaKind


class TrackMutedEvent(TypedDict):
    type: Literal["track_muted"]
    conference: str
    participant: str
    kind: MediaKind
    muted: bool


class ActiveSpeakerEvent(TypedDict):
    type: Literal["active_speaker"]
    conference: str
    participant: str | None


class ConnectionStateEvent(TypedDict):
    type: Literal["connection_state"]
    conference: str
    participant: str
    state: str


LeaveReason = Literal["left", "failed", "closed", "replaced", "engine_closed"]


class ParticipantLeftEvent(TypedDict):
    type: Literal["participant_left"]
    conference: str
    participant: str
    reason: LeaveReason


MediaEvent = (
    OfferMessage
    | TrackPublishedEvent
    | TrackUnpublishedEvent
    | TrackMutedEvent
    | ActiveSpeakerEvent
    | ConnectionStateEvent
    | ParticipantLeftEvent
)


class InboundStats(TypedDict):
    """One track the participant sends to the server."""

    kind: MediaKind
    codec: str | None
    packets_received: int
    packets_lost: int
    jitter_ms: float
    bitrate_bps: int
    muted: bool


class OutboundStats(TypedDict):
    """One track the server sends to the participant (another participant's media)."""

    mid: str | None
    kind: MediaKind
    publisher: str | None
    packets_sent: int
    bytes_sent: int
    packets_lost: int | None
    fraction_lost: float | None
    jitter_ms: float | None
    rtt_ms: float | None
    bitrate_bps: int


class ParticipantStats(TypedDict):
    """A sample of one participant's media quality (loss as a fraction 0..1)."""

    conference: str
    participant: str
    connection_state: str
    rtt_ms: float | None
    bitrate_in_bps: int
    bitrate_out_bps: int
    packet_loss_in: float
    packet_loss_out: float | None
    inbound: list[InboundStats]
    outbound: list[OutboundStats]
