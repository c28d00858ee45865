"""What the hub tells (and asks) whoever built it, beyond presence: chat and chair controls to
keep with the meeting, and where to write a recording.

``web`` builds :class:`ConferenceHooks` with its own callables; the hub never touches the
database. Every callable is optional: a missing ``on_activity`` keeps nothing, a missing
``open_recording`` refuses recording (error ``unavailable``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from media.messages import RecordingManifest


@dataclass(frozen=True)
class ParticipantRef:
    """A participant as the hooks see it (``meta`` is its :class:`JoinGrant`'s meta)."""

    id: str
    identity: str
    name: str
    role: str
    kind: str
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Activity:
    """A chat message or a chair control, to be kept with the meeting."""

    kind: Literal["chat", "control"]
    conference: str
    at: datetime
    actor: ParticipantRef | None  # None: an operator acting over REST (see operator_name)
    operator_name: str | None  # "admin@city" for REST actions, else None
    action: str | None  # control: "mute", "mute_all", ...; chat: None
    target: ParticipantRef | None  # control target / private-chat recipient
    text: str | None  # chat text


@dataclass(frozen=True)
class RecordingTarget:
    """Where a recording goes: web's recording row id and the directory it created."""

    id: str
    directory: str


ActivityListener = Callable[[Activity], Awaitable[None]]
OpenRecording = Callable[
    [str, ParticipantRef | None, Mapping[str, Any]], Awaitable[RecordingTarget]
]
CloseRecording = Callable[
    [RecordingTarget, RecordingManifest, Mapping[str, ParticipantRef]], Awaitable[None]
]


@dataclass(frozen=True)
class ConferenceHooks:
    """Optional async callbacks of the hub.

    - ``on_activity(activity)``: every chat message and every chair control (store them).
    - ``open_recording(conference, started_by, meta)``: create the recording row and its
      directory; ``started_by`` is None when an operator started it over REST; ``meta`` is
      the conference's meta (any grant's meta). Raise to refuse.
    - ``close_recording(target, manifest, participants)``: the recording is finished;
      ``participants`` maps every participant id of the manifest to who it was. A
      recording that the engine could not start after ``open_recording`` is closed at once
      with a manifest without tracks (``bytes`` 0): it failed.
    """

    on_activity: ActivityListener | None = None
    open_recording: OpenRecording | None = None
    close_recording: CloseRecording | None = None


__all__ = [
    "Activity",
    "ActivityListener",
    "CloseRecording",
    "ConferenceHooks",
    "OpenRecording",
    "ParticipantRef",
    "RecordingTarget",
]
