"""A room's agenda as its terminal needs it: the live bookings from now on, soonest first.

For the terminal control channel in `web`, which pushes this list to a room's terminal
when it connects and again whenever a change of a meeting touches the room
(:func:`rooms_touched`). Only bookings that will really happen are listed: not of a
cancelled meeting or occurrence, and not over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database
from scheduling.changes import MeetingChange
from scheduling.models import (
    MAX_OCCURRENCE_LENGTH,
    Booking,
    Meeting,
    MeetingRoom,
    MeetingStatus,
    Occurrence,
)

DEFAULT_HORIZON = timedelta(hours=36)
MAX_LISTED = 50


def conference_id(meeting_id: int, recurrence_id: datetime) -> str:
    """The id of an occurrence's conference (as :class:`scheduling.admission.Admission`)."""
    return f"{meeting_id}@{recurrence_id.strftime('%Y%m%dT%H%M%SZ')}"


@dataclass(frozen=True, slots=True)
class BookedOccurrence:
    """One occurrence a room is booked for (times in UTC)."""

    room_id: int
    meeting_id: int
    recurrence_id: datetime
    title: str
    starts_at: datetime
    ends_at: datetime

    @property
    def conference(self) -> str:
        return conference_id(self.meeting_id, self.recurrence_id)


async def booked(
    session: AsyncSession,
    room_ids: Iterable[int],
    now: datetime,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    limit: int = MAX_LISTED,
) -> dict[int, list[BookedOccurrence]]:
    """Live bookings of these rooms not over at ``now`` and starting before ``now + horizon``."""
    ids = sorted(set(room_ids))
    found: dict[int, list[BookedOccurrence]] = {room_id: [] for room_id in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(
            Booking.room_id,
            Booking.meeting_id,
            Booking.recurrence_id,
            Meeting.title,
            Booking.starts_at,
            Booking.ends_at,
        )
        .join(Meeting, Meeting.id == Booking.meeting_id)
        .join(
            Occurrence,
            (Occurrence.meeting_id == Booking.meeting_id)
            & (Occurrence.recurrence_id == Booking.recurrence_id),
        )
        .where(
            Booking.room_id.in_(ids),
            Booking.ends_at > now,
            Booking.starts_at > now - MAX_OCCURRENCE_LENGTH,  # lets the index bound the scan
            Booking.starts_at < now + horizon,
            Meeting.status != MeetingStatus.CANCELLED,
            Occurrence.cancelled.is_(False),
        )
        .order_by(Booking.room_id, Booking.starts_at)
    )
    for row in rows:
        listed = found[row[0]]
        if len(listed) < limit:
            listed.append(BookedOccurrence(*row))
    return found


async def rooms_touched(session: AsyncSession, change: MeetingChange) -> set[int]:
    """Rooms whose agenda a change may have altered: the meeting's rooms and removed ones."""
    rooms = set(
        (
            await session.scalars(
                select(MeetingRoom.room_id).where(MeetingRoom.meeting_id == change.meeting_id)
            )
        ).all()
    )
    return rooms | set(change.removed_room_ids)


class RoomAgenda:
    """Reads rooms' agendas over one :class:`Database`."""

    def __init__(self, db: Database, *, horizon: timedelta = DEFAULT_HORIZON) -> None:
        self.db = db
        self.horizon = horizon

    async def of_rooms(
        self, room_ids: Iterable[int], now: datetime
    ) -> dict[int, list[BookedOccurrence]]:
        async with self.db.read() as session:
            return await booked(session, room_ids, now, horizon=self.horizon)
