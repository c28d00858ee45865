"""Queries over meetings, for the meetings and availability services (never commits).

Who may see what is decided here too, so every list and lookup applies it the same way:
the secretariat, administrators and integration keys see every meeting; other staff only
the meetings they organise, chair or are invited to (:class:`Viewer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from scheduling.models import (
    MAX_OCCURRENCE_LENGTH,
    Attendee,
    Meeting,
    MeetingRoom,
    MeetingStatus,
    Occurrence,
    PartStat,
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: everything (``sees_all``) or what ``person_id`` takes part in."""

    person_id: int | None = None
    sees_all: bool = False

    def condition(self) -> ColumnElement[bool]:
        if self.sees_all:
            return Meeting.id.is_not(None)
        if self.person_id is None:
            return Meeting.id.is_(None)
        return or_(
            Meeting.organiser_id == self.person_id,
            Meeting.chair_id == self.person_id,
            exists().where(Attendee.meeting_id == Meeting.id, Attendee.person_id == self.person_id),
        )


EVERYTHING = Viewer(sees_all=True)


@dataclass(frozen=True, slots=True)
class MeetingQuery:
    """Filters of the meeting list; ``starts_from``/``starts_to`` match any occurrence."""

    starts_from: datetime | None = None
    starts_to: datetime | None = None
    unit_id: int | None = None
    room_id: int | None = None
    person_id: int | None = None
    status: MeetingStatus | None = None
    search: str | None = None
    sort: str = "starts_at"  # "starts_at", "id", "-" in front for descending
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class BusyPerson:
    """A person taken by an occurrence of another meeting."""

    person_id: int
    meeting_id: int
    title: str
    starts_at: datetime
    ends_at: datetime


# Built once: building and keying a statement of this size costs more CPU than running it.
_BUSY = (
    select(Attendee.person_id, Meeting.id, Meeting.title, Occurrence.starts_at, Occurrence.ends_at)
    .join(Meeting, Meeting.id == Attendee.meeting_id)
    .join(Occurrence, Occurrence.meeting_id == Meeting.id)
    .where(
        Attendee.person_id.in_(bindparam("person_ids", expanding=True)),
        Attendee.partstat != PartStat.DECLINED,
        Meeting.status != MeetingStatus.CANCELLED,
        Occurrence.cancelled.is_(False),
        Occurrence.starts_at < bindparam("high"),
        Occurrence.ends_at > bindparam("low"),
        Occurrence.starts_at > bindparam("earliest"),
    )
    .order_by(Occurrence.starts_at, Attendee.person_id)
)
_BUSY_ELSEWHERE = _BUSY.where(Meeting.id != bindparam("exclude_meeting_id"))


def with_details(stmt: Select[Meeting]) -> Select[Meeting]:
    return stmt.options(
        selectinload(Meeting.attendees),
        selectinload(Meeting.rooms),
        selectinload(Meeting.exceptions),
    )


async def get(
    session: AsyncSession, meeting_id: int, viewer: Viewer, *, for_update: bool = False
) -> Meeting | None:
    stmt = with_details(select(Meeting).where(Meeting.id == meeting_id, viewer.condition()))
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).one_or_none()


def _overlapping(low: datetime | None, high: datetime | None) -> ColumnElement[bool]:
    conditions = [Occurrence.meeting_id == Meeting.id]
    if low is not None:
        conditions.append(Occurrence.ends_at > low)
        conditions.append(Occurrence.starts_at > low - MAX_OCCURRENCE_LENGTH)
    if high is not None:
        conditions.append(Occurrence.starts_at < high)
    return exists().where(and_(*conditions))


async def list_meetings(
    session: AsyncSession, query: MeetingQuery, viewer: Viewer
) -> tuple[Sequence[Meeting], int]:
    conditions: list[ColumnElement[bool]] = [viewer.condition()]
    if query.starts_from is not None or query.starts_to is not None:
        conditions.append(_overlapping(query.starts_from, query.starts_to))
    if query.unit_id is not None:
        conditions.append(Meeting.unit_id == query.unit_id)
    if query.status is not None:
        conditions.append(Meeting.status == query.status)
    if query.room_id is not None:
        conditions.append(
            exists().where(
                MeetingRoom.meeting_id == Meeting.id, MeetingRoom.room_id == query.room_id
            )
        )
    if query.person_id is not None:
        pid = query.person_id
        conditions.append(
            or_(
                Meeting.organiser_id == pid,
                Meeting.chair_id == pid,
                exists().where(Attendee.meeting_id == Meeting.id, Attendee.person_id == pid),
            )
        )
    if query.search:
        pattern = f"%{query.search}%"
        conditions.append(or_(Meeting.title.ilike(pattern), Meeting.doc_ref.ilike(pattern)))
    base = select(Meeting).where(*conditions)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    column = Meeting.starts_at if query.sort.lstrip("-") == "starts_at" else Meeting.id
    order = column.desc() if query.sort.startswith("-") else column.asc()
    rows = await session.scalars(
        with_details(base.order_by(order, Meeting.id).limit(query.limit).offset(query.offset))
    )
    return rows.all(), int(total or 0)


async def occurrences(
    session: AsyncSession,
    meeting_ids: Sequence[int] | None,
    low: datetime,
    high: datetime,
    viewer: Viewer,
    *,
    room_id: int | None = None,
    person_id: int | None = None,
    limit: int = 2000,
) -> Sequence[tuple[Occurrence, Meeting]]:
    """Occurrences overlapping ``[low, high)``, with their meeting, in time order."""
    stmt = (
        select(Occurrence, Meeting)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(Occurrence.ends_at > low, Occurrence.starts_at < high, viewer.condition())
        .where(Occurrence.starts_at > low - MAX_OCCURRENCE_LENGTH)
        .order_by(Occurrence.starts_at, Occurrence.meeting_id)
        .limit(limit)
    )
    if meeting_ids is not None:
        stmt = stmt.where(Occurrence.meeting_id.in_(list(meeting_ids)))
    if room_id is not None:
        stmt = stmt.where(
            exists().where(MeetingRoom.meeting_id == Meeting.id, MeetingRoom.room_id == room_id)
        )
    if person_id is not None:
        stmt = stmt.where(
            exists().where(Attendee.meeting_id == Meeting.id, Attendee.person_id == person_id)
        )
    return [(o, m) for o, m in (await session.execute(stmt)).all()]


async def busy_people(
    session: AsyncSession,
    person_ids: Sequence[int],
    intervals: Sequence[tuple[datetime, datetime]],
    *,
    exclude_meeting_id: int | None = None,
    limit: int = 500,
) -> list[BusyPerson]:
    """Live occurrences of other meetings these people attend (not declined) that overlap."""
    if not person_ids or not intervals:
        return []
    low = min(s for s, _ in intervals)
    params = {
        "person_ids": sorted(set(person_ids)),
        "low": low,
        "high": max(e for _, e in intervals),
        "earliest": low - MAX_OCCURRENCE_LENGTH,
    }
    stmt = _BUSY
    if exclude_meeting_id is not None:
        stmt = _BUSY_ELSEWHERE
        params["exclude_meeting_id"] = exclude_meeting_id
    found: list[BusyPerson] = []
    for row in (await (await session.connection()).execute(stmt, params)).all():
        busy = BusyPerson(*row)
        if any(s < busy.ends_at and busy.starts_at < e for s, e in intervals):
            found.append(busy)
            if len(found) >= limit:
                break
    return found
