"""One live conference as the hub sees it: its participants and its conference-level state.

That state is what the chair controls: whether the conference is locked, who waits in the
lobby, the queue of raised hands, the identities removed or refused (they stay out until
the conference is over), and the recording under way. A conference opens with its first
hello and is forgotten when nobody is in it, waits for it, or is recording it any more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from signaling.chat import HandQueue, RateLimiter
from signaling.hooks import ParticipantRef, RecordingTarget
from signaling.lobby import Lobby
from signaling.session import Session

RemovalReason = Literal["removed", "refused"]


@dataclass
class Recording:
    """A recording under way: where it goes, who started it, and who took part."""

    target: RecordingTarget
    started_by: ParticipantRef | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    participants: dict[str, ParticipantRef] = field(default_factory=dict)


class LiveConference:
    """Participants (connected or reconnecting) and the chair-controlled state of one conference."""

    def __init__(self, conference_id: str, meta: Mapping[str, Any]) -> None:
        self.id = conference_id
        self.meta = meta  # the first grant's meta (meeting id, …), for open_recording
        self.members: dict[str, Session] = {}
        self.identities: dict[str, str] = {}  # identity -> participant id
        self.lobby = Lobby()
        self.hands = HandQueue()
        self.chat_limits = RateLimiter()
        self.locked = False
        self.recording: Recording | None = None
        self.recording_pending = False  # a record_start is waiting for open_recording
        self.removed: dict[str, RemovalReason] = {}  # identity -> why it stays out

    @property
    def idle(self) -> bool:
        """Nobody in it, nobody waiting, nothing being recorded: it can be forgotten."""
        return (
            not self.members
            and not len(self.lobby)
            and self.recording is None
            and not self.recording_pending
        )

    def add(self, session: Session) -> None:
        self.members[session.id] = session
        self.identities[session.grant.identity] = session.id
        if self.recording is not None:
            self.recording.participants[session.id] = session.ref()

    def discard(self, session: Session) -> None:
        if self.members.get(session.id) is session:
            del self.members[session.id]
        if self.identities.get(session.grant.identity) == session.id:
            del self.identities[session.grant.identity]
        self.hands.lower(session.id)
        self.chat_limits.forget(session.id)

    def of_identity(self, identity: str) -> Session | None:
        participant = self.identities.get(identity)
        return self.members.get(participant) if participant is not None else None

    def chairs(self) -> list[Session]:
        return [s for s in self.members.values() if s.is_chair]

    def state_message(self) -> dict[str, Any]:
        return {
            "type": "conference_state",
            "locked": self.locked,
            "recording": self.recording is not None,
        }

    def state(self) -> dict[str, Any]:
        """For the REST operator endpoint."""
        return {
            "live": True,
            "locked": self.locked,
            "recording": self.recording is not None,
            "hands": self.hands.queue(),
            "lobby": self.lobby.waiting(),
        }
