"""Room bookings: one row per room per occurrence, never two overlapping for one room.

For the meetings service (and the benchmark), always inside its write transaction.
Intervals are half-open, ``[starts_at, ends_at)``: back-to-back meetings do not clash.

:func:`reserve` is the write path: it books the wanted rooms, or books nothing and returns
what is in the way. How the rule holds under concurrent requests:

- PostgreSQL: one statement takes a transaction-scoped advisory lock per room (in room
  order, as :func:`lock_rooms` does), checks, and inserts unless something clashes
  (``INSERT … SELECT … WHERE NOT EXISTS``), returning the clashes: one round trip besides
  BEGIN and COMMIT. Its text never changes (arrays, not a placeholder per row), so asyncpg
  prepares it once per connection. The locks make writers of one room queue up: without
  them, two transactions inserting overlapping rows can wait on each other inside the
  exclusion constraint, and PostgreSQL breaks that deadlock only after ``deadlock_timeout``
  (1 s): 50 racing requests took 40 s. The exclusion constraint ``ex_bookings_room_time``
  (migration 0002) is the guarantee: a writer that waited for a lock checked with the
  snapshot its statement began with, so it may miss the booking just committed by the
  writer before it; its INSERT then fails with SQLSTATE 23P01, raised here as
  :class:`BookingRace` (the caller rolls back and lists the clashes afresh). Only losers of
  a race for the same room take that path.
- SQLite: the database has one writer at a time and :meth:`rooms.db.Database.write` begins
  every write ``IMMEDIATE``, so the check (:func:`clashes`) and the insert (:func:`book`)
  are one atomic step; both run in-process, a second statement costs no network trip.

Everything here is SQLAlchemy Core on the session's connection: RECIPES.md measured ORM
unit-of-work flushes at several times the CPU per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, cast

from sqlalchemy import Integer, String, Table, delete, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import UTCDateTime
from rooms.models import Room
from scheduling.models import MAX_OCCURRENCE_LENGTH, Booking, Meeting

EXCLUSION_VIOLATION = "23P01"
DEADLOCK = "40P01"
_LOCK_SPACE = 0x5342  # first key of our advisory locks on rooms ("SB": SuiMeet bookings)
MAX_LISTED = 50

_bookings = cast(Table, Booking.__table__)
_meetings = cast(Table, Meeting.__table__)
_rooms = cast(Table, Room.__table__)

_LOCK_ROOMS = text(
    "SELECT pg_advisory_xact_lock(:space, r) FROM unnest(CAST(:ids AS integer[])) AS r"
)

# PostgreSQL: lock, check and insert in one statement. The wanted rows come in room order and
# each takes its room's lock (again for the same room: a no-op) before anything reads them.
_RESERVE = text(
    """
    WITH wanted AS (
        SELECT w.* FROM unnest(CAST(:room_ids AS integer[]),
                               CAST(:recurrence_ids AS timestamptz[]),
                               CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
            AS w (room_id, recurrence_id, starts_at, ends_at)
        CROSS JOIN LATERAL (SELECT pg_advisory_xact_lock(:space, w.room_id)) AS locked
    ), clash AS (
        SELECT DISTINCT b.meeting_id, b.room_id, b.starts_at, b.ends_at
        FROM wanted AS w
        JOIN bookings AS b ON b.room_id = w.room_id
            AND b.starts_at < w.ends_at AND b.ends_at > w.starts_at
            AND b.starts_at > w.starts_at - CAST(:longest AS interval)
    ), booked AS (
        INSERT INTO bookings (room_id, meeting_id, recurrence_id, starts_at, ends_at)
        SELECT room_id, :meeting_id, recurrence_id, starts_at, ends_at FROM wanted
        WHERE NOT EXISTS (SELECT FROM clash)
    )
    SELECT c.meeting_id, m.title, c.room_id, r.name, c.starts_at, c.ends_at
    FROM clash AS c
    JOIN meetings AS m ON m.id = c.meeting_id
    JOIN rooms AS r ON r.id = c.room_id
    ORDER BY c.starts_at, c.room_id
    LIMIT :listed
    """
).columns(
    meeting_id=Integer,
    title=String,
    room_id=Integer,
    name=String,
    starts_at=UTCDateTime(),
    ends_at=UTCDateTime(),
)

_INSERT = insert(_bookings)


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


async def reserve(session: AsyncSession, meeting_id: int, wanted: Sequence[Wanted]) -> list[Clash]:
    """Book ``wanted`` for the meeting, or nothing if a booking is in the way: its clashes.

    The meeting's own earlier bookings count as clashes: :func:`release` them first.
    Raises :class:`BookingRace` if PostgreSQL's constraint refuses what the check let by.
    """
    if not wanted:
        return []
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        found = await clashes(session, wanted)
        if not found:
            await book(session, meeting_id, wanted)
        return found
    wanted = sorted(wanted, key=lambda w: (w.room_id, w.starts_at))
    params = {
        "space": _LOCK_SPACE,
        "room_ids": [w.room_id for w in wanted],
        "recurrence_ids": [w.recurrence_id for w in wanted],
        "starts": [w.starts_at for w in wanted],
        "ends": [w.ends_at for w in wanted],
        "longest": MAX_OCCURRENCE_LENGTH,
        "meeting_id": meeting_id,
        "listed": MAX_LISTED,
    }
    try:
        rows = (await conn.execute(_RESERVE, params)).all()
    except DBAPIError as exc:
        _raise_race(exc, meeting_id, wanted)
    return [Clash(*row) for row in rows]


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
    rows = (await (await session.connection()).execute(stmt)).all()
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
    """Insert the bookings unchecked (:func:`reserve` checks); raises :class:`BookingRace`."""
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
        await (await session.connection()).execute(_INSERT, rows)
    except DBAPIError as exc:
        _raise_race(exc, meeting_id, wanted)


def _raise_race(exc: DBAPIError, meeting_id: int, wanted: Sequence[Wanted]) -> NoReturn:
    state = getattr(exc.orig, "sqlstate", None)
    if (isinstance(exc, IntegrityError) and state == EXCLUSION_VIOLATION) or state == DEADLOCK:
        raise BookingRace(meeting_id, wanted) from exc
    raise exc


async def lock_rooms(session: AsyncSession, room_ids: Iterable[int]) -> None:
    """Queue behind other writers of these rooms until the transaction ends (PostgreSQL).

    On SQLite the write transaction already holds the only write lock.
    """
    ids = sorted(set(room_ids))
    conn = await session.connection()
    if ids and conn.dialect.name == "postgresql":
        await conn.execute(_LOCK_ROOMS, {"space": _LOCK_SPACE, "ids": ids})


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
