"""When the agent should be in which conference: a pure function of time and bookings.

For :class:`rooms.agent.agent.TerminalAgent`, which calls :func:`plan` whenever something
changes (bookings pushed, a join command, a conference ended, the clock reached a wake
time) and does what it says. Kept free of I/O so that every case is a unit test.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Booking:
    """One occurrence the room is booked for, as the server pushed it."""

    conference: str
    title: str
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Booking:
        return cls(
            conference=str(data["conference"]),
            title=str(data.get("title", "")),
            starts_at=datetime.fromisoformat(data["starts_at"]),
            ends_at=datetime.fromisoformat(data["ends_at"]),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """Leave the current conference (and why), join one, and when to look again."""

    leave: str | None = None
    join: str | None = None
    wake_at: datetime | None = None


def plan(
    now: datetime,
    bookings: Sequence[Booking],
    current: str | None,
    current_ends_at: datetime | None,
    *,
    lead: timedelta,
    forced: str | None = None,
    refused: frozenset[str] = frozenset(),
    commanded: str | None = None,
) -> Decision:
    """What to do at ``now``.

    In a conference: stay until its end (back-to-back meetings follow one another); leave
    when it is over, when its booking disappeared (cancelled, moved away, released), or
    when the server told the room to join another one (``forced``). Not in one: join the
    ``forced`` conference, else the booking that is on (from ``lead`` before its start),
    earliest start first, as the server's admission chooses. ``refused``: conferences not
    to join again (ended for everyone). ``commanded``: the current conference was joined on
    the server's ``join`` command; it is kept without a booking (the push of its booking may
    come after the command) until its end or until the server closes it.
    """
    by_id = {b.conference: b for b in bookings}
    upcoming = [b.starts_at - lead for b in bookings if b.starts_at - lead > now]
    if current is not None:
        booking = by_id.get(current)
        ends_at = booking.ends_at if booking is not None else current_ends_at
        if forced is not None and forced != current:
            return Decision(leave=f"told to join {forced}", join=forced)
        if booking is None and forced != current and current != commanded:
            return Decision(leave="its booking is gone (cancelled, moved or released)")
        if ends_at is not None and now >= ends_at:
            return Decision(leave="the meeting is over")
        return Decision(wake_at=min([*([ends_at] if ends_at else []), *upcoming], default=None))
    if forced is not None and forced not in refused:
        return Decision(join=forced)
    on = sorted(
        (
            b
            for b in bookings
            if b.starts_at - lead <= now < b.ends_at and b.conference not in refused
        ),
        key=lambda b: b.starts_at,
    )
    if on:
        return Decision(join=on[0].conference)
    return Decision(wake_at=min(upcoming, default=None))


def backoff(attempt: int, *, base: float = 1.0, cap: float = 60.0) -> float:
    """Seconds before reconnection ``attempt`` (0, 1, ...): exponential, half of it jitter."""
    delay = min(cap, base * 2**attempt)
    return float(delay / 2 + random.uniform(0, delay / 2))
