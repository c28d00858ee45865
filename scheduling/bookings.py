"""Room bookings: one row per room per occurrence, never two overlapping for one room.

For the meetings service (and the benchmark), always inside its write transaction.
Intervals are half-open, ``[starts_at, ends_at)``: back-to-back meetings do not clash.

How the rule holds under concurrent requests:

- PostgreSQL: :func:`lock_rooms` first takes a transaction-scoped advisory lock per room (in
  room order), so writers of one room queue up and each checks after the previous one
  committed: the loser gets a clean list of clashes. Without it, two transactions inserting
  overlapping rows wait on each other inside the exclusion constraint and PostgreSQL breaks
  the deadlock only after ``deadlock_timeout`` (1 s): 50 racing requests took 40 s. The
  exclusion constraint ``ex_bookings_room_time`` (migration 0002) stays the guarantee: an
  overlapping INSERT fails with SQLSTATE 23P01, raised here as :class:`BookingRace` (the
  caller rolls back and lists the clashes afresh).
- SQLite: the database has one writer at a time and :meth:`rooms.db.Database.write` begins
  every write ``IMMEDIATE``, so the check below and the insert are one atomic step.

Both backends run the check before inserting, which names the clashing meetings in the
common case. The hot path is SQLAlchemy Core (one SELECT, one multi-row INSERT): RECIPES.md
measured ORM unit-of-work flushes at several times the CPU per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Room
from scheduling.models import MAX_OCCURRENCE_LENGTH, Booking, Meeting

EXCLUSION_VIOLATION = "23P01"
DEADLOCK = "40P01"
_LOCK_SPACE = 0x5342  # first key of our advisory locks on rooms ("SB": SuiMeet bookings)
MAX_LISTED = 50

_bookings = cast(Table, Booking.__table__)
_meetings = cast(Table, Meeting.__table__)
_rooms = cast(Table, Room.__table__)


@dataclass(frozen=True, slots=True)
class Wanted:
    """A room wanted for one occurrence (times in UTC)."""

    room_id: int
    recurrence_id: datetime
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Clash:
    """An existing booking in the way of a wanted one."""

    meeting_id: int
    title: str
    room_id: int
    room_name: str
    starts_at: datetime
    ends_at: datetime


class BookingRace(Exception):  # a signal to the service, not a domain error
    """PostgreSQL refused an overlapping booking that committed since the check."""

    def __init__(self, meeting_id: int, wanted: Sequence[Wanted]) -> None:
        super().__init__(f"a booking of meeting {meeting_id} raced another")
        self.meeting_id = meeting_id
        self.wanted = wanted


async def clashes(
    session: AsyncSession,
    wanted: Sequence[Wanted],
    *,
    exclude_meeting_id: int | None = None,
    limit: int = MAX_LISTED,
) -> list[Clash]:
    """Existing bookings overlapping any wanted one (other than the meeting's own)."""
    if not wanted:
        return []
    room_ids = sorted({w.room_id for w in wanted})
    low = min(w.starts_at for w in wanted)
    high = max(w.ends_at for w in wanted)
    b = _bookings.c
    stmt = (
        select(b.meeting_id, _meetings.c.title, b.room_id, _rooms.c.name, b.starts_at, b.ends_at)
        .join(_meetings, _meetings.c.id == b.meeting_id)
        .join(_rooms, _rooms.c.id == b.room_id)
        .where(b.room_id.in_(room_ids), b.starts_at < high, b.ends_at > low)
        .where(b.starts_at > low - MAX_OCCURRENCE_LENGTH)
        .order_by(b.starts_at, b.room_id)
    )
    if exclude_meeting_id is not None:
        stmt = stmt.where(b.meeting_id != exclude_meeting_id)
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    if len(wanted) == 1:  # the query was exact
        return [Clash(*row) for row in rows[:limit]]
    by_room: dict[int, list[Wanted]] = defaultdict(list)
    for w in wanted:
        by_room[w.room_id].append(w)
    found: list[Clash] = []
    for row in rows:
        clash = Clash(*row)
        if any(
            w.starts_at < clash.ends_at and clash.starts_at < w.ends_at
            for w in by_room[clash.room_id]
        ):
            found.append(clash)
            if len(found) >= limit:
                break
    return found


async def book(session: AsyncSession, meeting_id: int, wanted: Sequence[Wanted]) -> None:
    """Insert the bookings (call :func:`clashes` first); raises :class:`BookingRace`."""
    if not wanted:
        return
    rows = [
        {
            "room_id": w.room_id,
            "meeting_id": meeting_id,
            "recurrence_id": w.recurrence_id,
            "starts_at": w.starts_at,
            "ends_at": w.ends_at,
        }
        for w in wanted
    ]
    try:
        await session.execute(insert(_bookings), rows)
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION:
            raise BookingRace(meeting_id, wanted) from exc
        raise
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == DEADLOCK:
            raise BookingRace(meeting_id, wanted) from exc
        raise


async def lock_rooms(session: AsyncSession, room_ids: Iterable[int]) -> None:
    """Queue behind other writers of these rooms until the transaction ends (PostgreSQL).

    On SQLite the write transaction already holds the only write lock.
    """
    ids = sorted(set(room_ids))
    if not ids or session.get_bind().dialect.name != "postgresql":
        return
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, r) FROM unnest(CAST(:ids AS integer[])) AS r"),
        {"space": _LOCK_SPACE, "ids": ids},
    )


async def release(
    session: AsyncSession,
    meeting_id: int,
    recurrence_ids: Iterable[datetime] | None = None,
    *,
    room_ids: Iterable[int] | None = None,
    since: datetime | None = None,
) -> None:
    """Free a meeting's bookings: all, or of some occurrences, rooms, or from ``since`` on."""
    stmt = delete(_bookings).where(_bookings.c.meeting_id == meeting_id)
    if recurrence_ids is not None:
        stmt = stmt.where(_bookings.c.recurrence_id.in_(list(recurrence_ids)))
    if room_ids is not None:
        stmt = stmt.where(_bookings.c.room_id.in_(list(room_ids)))
    if since is not None:
        stmt = stmt.where(_bookings.c.recurrence_id >= since)
    await session.execute(stmt)
