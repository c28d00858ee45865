"""Free/busy of rooms and people, and the slot finder, for the secretariat's booking page.

A room is busy while it is booked; a person while an occurrence of a meeting they attend
runs (cancelled meetings and occurrences, and meetings they declined, do not count). Busy
intervals name their meeting only where the viewer may see it (:class:`Viewer`); otherwise
they are anonymous "busy" blocks.

The slot finder merges the busy time of every room and person asked about and offers the
earliest starts, on a grid of ``step`` minutes of local time, where the whole duration is
free, optionally only within working hours (08:30–18:00 local time, Monday to Friday).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from rooms.db import Database
from scheduling import bookings, repository
from scheduling.bookings import Wanted
from scheduling.models import Meeting
from scheduling.repository import EVERYTHING, Viewer


@dataclass(frozen=True, slots=True)
class Busy:
    """A busy interval (UTC); ``meeting_id``/``title`` are None where not visible."""

    starts_at: datetime
    ends_at: datetime
    meeting_id: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class FreeBusy:
    rooms: dict[int, list[Busy]]
    people: dict[int, list[Busy]]


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """When meetings are normally held, in local time."""

    opens: time = time(8, 30)
    closes: time = time(18, 0)
    weekdays: frozenset[int] = field(default_factory=lambda: frozenset(range(5)))  # Mon–Fri


OFFICE_HOURS = WorkingHours()


class Availability:
    """Free/busy and free slots over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def free_busy(
        self,
        room_ids: Sequence[int],
        person_ids: Sequence[int],
        low: datetime,
        high: datetime,
        viewer: Viewer = EVERYTHING,
    ) -> FreeBusy:
        async with self.db.read() as session:
            held = await bookings.clashes(
                session, [Wanted(r, low, low, high) for r in room_ids], limit=100_000
            )
            taken = await repository.busy_people(session, person_ids, [(low, high)], limit=100_000)
            ids = {c.meeting_id for c in held} | {b.meeting_id for b in taken}
            visible = ids
            if not viewer.sees_all and ids:
                visible = set(
                    (
                        await session.scalars(
                            select(Meeting.id).where(Meeting.id.in_(ids), viewer.condition())
                        )
                    ).all()
                )
        rooms: dict[int, list[Busy]] = {r: [] for r in room_ids}
        for c in held:
            shown = c.meeting_id in visible
            rooms[c.room_id].append(
                Busy(c.starts_at, c.ends_at, c.meeting_id if shown else None,
                     c.title if shown else None)
            )  # fmt: skip
        people: dict[int, list[Busy]] = {p: [] for p in person_ids}
        for b in taken:
            shown = b.meeting_id in visible
            people[b.person_id].append(
                Busy(b.starts_at, b.ends_at, b.meeting_id if shown else None,
                     b.title if shown else None)
            )  # fmt: skip
        return FreeBusy(rooms, people)

    async def slots(
        self,
        room_ids: Sequence[int],
        person_ids: Sequence[int],
        duration: timedelta,
        low: datetime,
        high: datetime,
        *,
        tzid: str,
        hours: WorkingHours | None = OFFICE_HOURS,
        step: timedelta = timedelta(minutes=30),
        count: int = 5,
    ) -> list[tuple[datetime, datetime]]:
        """The earliest ``count`` starts in ``[low, high)`` where everyone is free."""
        found = await self.free_busy(room_ids, person_ids, low, high)
        busy = [(b.starts_at, b.ends_at) for v in (found.rooms, found.people)
                for intervals in v.values() for b in intervals]  # fmt: skip
        return find_slots(
            busy, duration, low, high, zone=ZoneInfo(tzid), hours=hours, step=step, count=count
        )


def merge(intervals: Sequence[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching intervals joined, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _windows(
    low: datetime, high: datetime, zone: ZoneInfo, hours: WorkingHours | None
) -> Iterator[tuple[datetime, datetime]]:
    if hours is None:
        yield low, high
        return
    day = low.astimezone(zone).date()
    while True:
        opens = datetime.combine(day, hours.opens, tzinfo=zone).astimezone(UTC)
        if opens >= high:
            return
        closes = datetime.combine(day, hours.closes, tzinfo=zone).astimezone(UTC)
        if day.weekday() in hours.weekdays and closes > low:
            yield max(opens, low), min(closes, high)
        day += timedelta(days=1)


def _align(moment: datetime, zone: ZoneInfo, step: timedelta) -> datetime:
    """The first grid point (every ``step`` from local midnight) at or after ``moment``."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    since = local - midnight
    steps = -(-since // step)  # ceiling division of timedeltas
    return (midnight + steps * step).astimezone(UTC)


def find_slots(
    busy: Sequence[tuple[datetime, datetime]],
    duration: timedelta,
    low: datetime,
    high: datetime,
    *,
    zone: ZoneInfo,
    hours: WorkingHours | None,
    step: timedelta,
    count: int,
) -> list[tuple[datetime, datetime]]:
    """Pure slot search over merged busy intervals (see :meth:`Availability.slots`)."""
    merged = merge(busy)
    ends = [e for _, e in merged]
    found: list[tuple[datetime, datetime]] = []
    for opens, closes in _windows(low, high, zone, hours):
        start = _align(opens, zone, step)
        while start + duration <= closes and len(found) < count:
            end = start + duration
            i = bisect_right(ends, start)  # first busy interval ending after start
            if i < len(merged) and merged[i][0] < end:
                start = _align(merged[i][1], zone, step)
                continue
            found.append((start, end))
            start += step
        if len(found) >= count:
            break
    return found
