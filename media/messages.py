"""The engine's message vocabulary: plain data in and out, JSON-ready.

Every value is a ``str``, ``int``, ``float``, ``bool``, ``None``, list or dict, so that the
engine can later run in a worker process and talk to the signalling layer over a pipe.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

MediaKind = Literal["audio", "video"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("audio", "video")

TrackSource = Literal["microphone", "camera", "screen"]
"""What a published track carries: a participant publishes at most one track per source."""
TRACK_SOURCES: tuple[TrackSource, ...] = ("microphone", "camera", "screen")
SOURCE_KIND: dict[TrackSource, MediaKind] = {
    "microphone": "audio",
    "camera": "video",
    "screen": "video",
}
DEFAULT_SOURCE: dict[MediaKind, TrackSource] = {"audio": "microphone", "video": "camera"}
"""The source of a participant's only track of a kind (``set_muted(kind)``, WHIP, WHEP)."""

ParticipantMode = Literal["full", "publish", "view"]
"""``full``: the server offers (browsers, terminals); ``publish`` (WHIP) and ``view`` (WHEP):
the client offered first, once, and its m-lines never change."""


class IceCandidate(TypedDict):
    """A trickled ICE candidate, as the browser's ``RTCIceCandidateInit``."""

    candidate: str
    sdpMid: NotRequired[str | None]
    sdpMLineIndex: NotRequired[int | None]


class TrackInfo(TypedDict):
    """What one m-line of a participant's connection carries.

    A forwarded m-line: ``publisher`` and the source of the publisher's track it carries.
    The participant's own uplink: ``publisher`` None and the source the participant should
    send on it (``"screen"``: attach the display track here). Inactive m-lines (unused
    forwarders, a stopped screen share): ``publisher`` and ``source`` None.
    """

    mid: str
    kind: MediaKind
    publisher: str | None
    source: TrackSource | None


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
    source: TrackSource


class TrackUnpublishedEvent(TypedDict):
    type: Literal["track_unpublished"]
    conference: str
    participant: str
    kind: MediaKind
    source: TrackSource


class TrackMutedEvent(TypedDict):
    type: Literal["track_muted"]
    conference: str
    participant: str
    kind: MediaKind
    source: TrackSource
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


class RecordedTrack(TypedDict):
    """One published track in a recording (see :class:`RecordingManifest`)."""

    participant: str
    kind: MediaKind
    source: TrackSource
    codec: str
    """``"opus"``, ``"vp8"`` or ``"h264"``."""
    file: str
    """The per-track file, relative to the recording's directory."""
    stream: int
    """Index of this track's stream in the combined ``recording.mkv``."""
    start_offset_s: float
    """First packet, in seconds after the recording started."""
    frames: int
    """Frames written."""


class RecordingManifest(TypedDict):
    """What a finished recording holds (also written as ``manifest.json``)."""

    directory: str
    file: str
    """The combined Matroska file, relative to ``directory`` (``"recording.mkv"``)."""
    started_at: str
    """ISO 8601, UTC."""
    stopped_at: str
    duration_s: float
    bytes: int
    """Size of ``recording.mkv``."""
    tracks: list[RecordedTrack]


class RecordingStoppedEvent(TypedDict):
    """A conference's recording stopped (explicitly, or when its last participant left)."""

    type: Literal["recording_stopped"]
    conference: str
    manifest: RecordingManifest


MediaEvent = (
    OfferMessage
    | TrackPublishedEvent
    | TrackUnpublishedEvent
    | TrackMutedEvent
    | ActiveSpeakerEvent
    | ConnectionStateEvent
    | ParticipantLeftEvent
    | RecordingStoppedEvent
)


class InboundStats(TypedDict):
    """One track the participant sends to the server."""

    kind: MediaKind
    source: TrackSource
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
    source: TrackSource | None
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
