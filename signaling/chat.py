"""Chat (to everyone or to one participant) and the queue of raised hands of a conference.

Chat messages are delivered to everyone, or only to the sender and the recipient when
private, and handed to ``hooks.on_activity`` to be kept with the meeting. A participant may
send at most :data:`RATE_LIMIT` messages per :data:`RATE_WINDOW` seconds. Hands are kept in
the order they were raised; the chair sees the queue (everyone does) and may lower one.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from signaling import protocol
from signaling.errors import ControlRefused
from signaling.hooks import Activity
from signaling.session import Session

if TYPE_CHECKING:
    from signaling.conference import LiveConference
    from signaling.hub import ConferenceHub

RATE_LIMIT = 5
RATE_WINDOW = 5.0


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def forget(self, key: str) -> None:
        self._events.pop(key, None)


def chat_text(text: str) -> str:
    """The text as delivered (trimmed), or ``invalid_request`` if empty or too long."""
    text = text.strip()
    if not text:
        raise ControlRefused("a chat message needs some text", code="invalid_request")
    if len(text) > protocol.MAX_CHAT_TEXT:
        raise ControlRefused(
            f"a chat message has at most {protocol.MAX_CHAT_TEXT} characters",
            code="invalid_request",
        )
    return text


def chat_message(sender: Session, recipient: Session | None, text: str) -> dict[str, Any]:
    return {
        "type": "chat",
        "id": secrets.token_hex(8),
        "from": sender.id,
        "from_name": sender.grant.name,
        "to": recipient.id if recipient is not None else None,
        "text": text,
        "sent_at": datetime.now(UTC).isoformat(),
    }


def send_chat(
    hub: ConferenceHub, live: LiveConference, sender: Session, message: protocol.Chat
) -> None:
    """Deliver a chat message (to everyone, or to the sender and its recipient) and keep it."""
    text = chat_text(message.text)
    recipient: Session | None = None
    if message.to is not None:
        recipient = live.members.get(message.to)
        if recipient is None:
            raise ControlRefused(f"no participant {message.to!r} here", code="not_found")
    if not live.chat_limits.allow(sender.id):
        raise ControlRefused("too many chat messages; wait a moment", code="rate_limited")
    chat = chat_message(sender, recipient, text)
    if recipient is None:
        hub.broadcast(live.id, chat)
    else:
        sender.send_message(chat)
        if recipient is not sender:
            recipient.send_message(chat)
    hub.report(
        Activity(
            kind="chat",
            conference=live.id,
            at=datetime.fromisoformat(chat["sent_at"]),
            actor=sender.ref(),
            operator_name=None,
            action=None,
            target=recipient.ref() if recipient is not None else None,
            text=text,
        )
    )


def set_hand(hub: ConferenceHub, live: LiveConference, session: Session, raised: bool) -> None:
    """Raise or lower ``session``'s own hand; everyone gets the queue when it changes."""
    changed = live.hands.raise_hand(session) if raised else live.hands.lower(session.id)
    if changed:
        hub.broadcast(live.id, live.hands.message())


@dataclass(frozen=True)
class RaisedHand:
    participant: str
    name: str
    raised_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "participant": self.participant,
            "name": self.name,
            "raised_at": self.raised_at.isoformat(),
        }


class HandQueue:
    """Raised hands, oldest first."""

    def __init__(self) -> None:
        self._hands: dict[str, RaisedHand] = {}  # insertion order is the queue's order

    def raise_hand(self, session: Session) -> bool:
        """Raise ``session``'s hand; False if it was already raised (keeps its place)."""
        if session.id in self._hands:
            return False
        self._hands[session.id] = RaisedHand(session.id, session.grant.name, datetime.now(UTC))
        return True

    def lower(self, participant: str) -> bool:
        """Lower a hand; False if it was not raised."""
        return self._hands.pop(participant, None) is not None

    def __contains__(self, participant: object) -> bool:
        return participant in self._hands

    def queue(self) -> list[dict[str, Any]]:
        return [hand.as_json() for hand in self._hands.values()]

    def message(self) -> dict[str, Any]:
        return {"type": "hands", "queue": self.queue()}
