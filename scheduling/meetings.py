"""The meetings service: create, change and cancel meetings and their occurrences.

For `web` (the REST API and the secretariat's pages) and other services. One write
transaction per use case: the meeting, its attendees, occurrences and room bookings change
together, the change listeners (:mod:`scheduling.changes`) run inside the same transaction,
and a clash of rooms refuses the whole change (:class:`~scheduling.errors.RoomConflict`).

"This and following" splits the series: the original ends just before the chosen
occurrence (UNTIL) and the rest becomes a new meeting with a new UID. iCalendar's
RANGE=THISANDFUTURE would keep one UID, but Outlook and Google Calendar handle it poorly
(they drop or duplicate occurrences), while two plain series work everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import uuid4

from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database, utcnow
from scheduling import bookings, planning, recurrence, repository
from scheduling.bookings import BookingRace, Clash
from scheduling.changes import ChangeKind, ChangeListener, MeetingChange, notify
from scheduling.errors import InvalidMeeting, MeetingClosed, MeetingNotFound
from scheduling.models import (
    Attendee,
    ExceptionKind,
    Meeting,
    MeetingException,
    MeetingRoom,
    MeetingStatus,
    Occurrence,
    PartStat,
)
from scheduling.planning import MeetingDraft, Plan
from scheduling.recurrence import Instance
from scheduling.repository import EVERYTHING, BusyPerson, MeetingQuery, Viewer

T = TypeVar("T")
_meetings = cast(Table, Meeting.__table__)
_attendees = cast(Table, Attendee.__table__)
_rooms = cast(Table, MeetingRoom.__table__)
_exceptions = cast(Table, MeetingException.__table__)
_occurrences = cast(Table, Occurrence.__table__)
_INSERT_MEETING = insert(_meetings).returning(_meetings.c.id)
_COPIED = ("title", "agenda", "unit_id", "organiser_id", "chair_id", "tzid", "rrule", "mode",
           "doc_ref", "reminder_minutes", "passcode")  # fmt: skip


def _copied(draft: MeetingDraft) -> dict[str, Any]:
    """The meeting columns a (checked) draft decides."""
    values = {name: getattr(draft, name) for name in _COPIED}
    values["starts_at"], values["ends_at"] = draft.start, draft.end
    return values


@dataclass(frozen=True, slots=True)
class Saved:
    """A saved meeting and the attendees busy elsewhere at its times (warnings)."""

    meeting: Meeting
    warnings: list[BusyPerson]


@dataclass(frozen=True, slots=True)
class Check:
    """What saving would meet, without saving: room clashes and busy attendees."""

    clashes: list[Clash]
    warnings: list[BusyPerson]


class MeetingService:
    """Use cases of meetings over one :class:`Database`, with the change listeners."""

    def __init__(
        self,
        db: Database,
        listeners: list[ChangeListener] | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.listeners = listeners if listeners is not None else []
        self.clock = clock

    # --- reading ------------------------------------------------------------------------
    async def get(self, meeting_id: int, viewer: Viewer = EVERYTHING) -> Meeting:
        async with self.db.read() as session:
            return await self._get(session, meeting_id, viewer)

    async def list_meetings(
        self, query: MeetingQuery, viewer: Viewer = EVERYTHING
    ) -> tuple[Sequence[Meeting], int]:
        async with self.db.read() as session:
            return await repository.list_meetings(session, query, viewer)

    async def occurrences(
        self,
        low: datetime,
        high: datetime,
        viewer: Viewer = EVERYTHING,
        *,
        meeting_id: int | None = None,
        room_id: int | None = None,
        person_id: int | None = None,
    ) -> Sequence[tuple[Occurrence, Meeting]]:
        """Occurrences in ``[low, high)``: of one meeting, or all the viewer may see."""
        async with self.db.read() as session:
            if meeting_id is not None:
                await self._get(session, meeting_id, viewer)
            ids = [meeting_id] if meeting_id is not None else None
            return await repository.occurrences(
                session, ids, low, high, viewer, room_id=room_id, person_id=person_id
            )

    # --- whole meetings -----------------------------------------------------------------
    async def check(self, draft: MeetingDraft, meeting_id: int | None = None) -> Check:
        """Clashes and warnings of creating ``draft`` (or of changing ``meeting_id``)."""
        async with self.db.read() as session:
            current = await self._editable(session, meeting_id) if meeting_id else None
            checked = planning.checked_times(draft)
            if current is None or checked.timing() != MeetingDraft.of(current).timing():
                planning.check_not_past(checked.start, self.clock())
            found = await planning.plan(session, checked, current, dry_run=True)
            return Check(found.clashes, found.warnings)

    async def check_update(self, meeting_id: int, changes: Mapping[str, Any]) -> Check:
        async with self.db.read() as session:
            draft = replace(MeetingDraft.of(await self._editable(session, meeting_id)), **changes)
        return await self.check(draft, meeting_id)

    async def create(self, draft: MeetingDraft, actor: str) -> Saved:
        async def run(session: AsyncSession) -> Saved:
            checked = planning.checked_times(draft)
            planning.check_not_past(checked.start, self.clock())
            found = await planning.plan(session, checked, None)
            meeting = await self._insert(session, found, actor)
            await self._emit(session, "created", meeting, actor, added=tuple(found.attendees))
            return Saved(meeting, found.warnings)

        return await self._write(run)

    async def update(self, meeting_id: int, changes: Mapping[str, Any], actor: str) -> Saved:
        """Change the whole meeting or series; ``changes`` are fields of MeetingDraft."""

        async def run(session: AsyncSession) -> Saved:
            meeting = await self._editable(session, meeting_id, for_update=True)
            return await self._update(session, meeting, changes, actor)

        return await self._write(run)

    async def cancel(self, meeting_id: int, actor: str) -> Meeting:
        """Cancel the meeting (every occurrence) and free its rooms; again is a no-op."""

        async def run(session: AsyncSession) -> Meeting:
            meeting = await self._get(session, meeting_id, EVERYTHING, for_update=True)
            if meeting.status == MeetingStatus.CANCELLED:
                return meeting
            self._check_open(meeting)
            await self._cancel(session, meeting, actor)
            return meeting

        return await self._write(run)

    # --- occurrences of a series --------------------------------------------------------
    async def cancel_occurrence(
        self, meeting_id: int, recurrence_id: datetime, actor: str
    ) -> Meeting:
        async def run(session: AsyncSession) -> Meeting:
            meeting, occurrence = await self._occurrence(session, meeting_id, recurrence_id)
            if occurrence.cancelled:
                return meeting
            await self._set_exception(session, meeting, recurrence_id, ExceptionKind.CANCELLED)
            occurrence.cancelled = True
            await bookings.release(session, meeting.id, [recurrence_id])
            meeting.sequence += 1
            await self._emit(session, "occurrence_cancelled", meeting, actor, rid=recurrence_id)
            return meeting

        return await self._write(run)

    async def move_occurrence(
        self, meeting_id: int, recurrence_id: datetime, start: datetime, end: datetime, actor: str
    ) -> Saved:
        """Give one occurrence its own start and end (a RECURRENCE-ID override)."""

        async def run(session: AsyncSession) -> Saved:
            meeting, occurrence = await self._occurrence(session, meeting_id, recurrence_id)
            if occurrence.cancelled:
                raise MeetingClosed("this occurrence is cancelled")
            whole = replace(MeetingDraft.of(meeting), start=start, end=end, rrule=None)
            checked = planning.checked_times(whole)
            planning.check_not_past(checked.start, self.clock())
            await self._set_exception(
                session, meeting, recurrence_id, ExceptionKind.MOVED, checked.start, checked.end
            )
            found = await planning.plan(session, MeetingDraft.of(meeting), meeting)
            meeting.sequence += 1
            await self._materialise(session, meeting.id, found, fresh=False)
            await self._emit(session, "occurrence_updated", meeting, actor, rid=recurrence_id)
            mine = [w for w in found.warnings if w.starts_at < checked.end]
            return Saved(meeting, [w for w in mine if w.ends_at > checked.start])

        return await self._write(run)

    async def cancel_following(
        self, meeting_id: int, recurrence_id: datetime, actor: str
    ) -> Meeting:
        """Cancel this occurrence and all after it: the series ends before it."""

        async def run(session: AsyncSession) -> Meeting:
            meeting, _ = await self._occurrence(session, meeting_id, recurrence_id)
            if recurrence_id <= meeting.starts_at:
                await self._cancel(session, meeting, actor)
            else:
                await self._truncate(session, meeting, recurrence_id, actor)
            return meeting

        return await self._write(run)

    async def split(
        self, meeting_id: int, recurrence_id: datetime, changes: Mapping[str, Any], actor: str
    ) -> Saved:
        """Change this occurrence and all after it: they become a new series (new UID).

        From the first occurrence this is :meth:`update` of the whole series.
        """

        async def run(session: AsyncSession) -> Saved:
            meeting, _ = await self._occurrence(session, meeting_id, recurrence_id)
            if recurrence_id <= meeting.starts_at:
                return await self._update(session, meeting, changes, actor)
            original = MeetingDraft.of(meeting)
            assert original.rrule is not None  # _occurrence allows series only
            count_before = sum(
                1 for i in recurrence.expand(*original.timing()) if i.recurrence_id < recurrence_id
            )
            carried = [
                MeetingException(
                    recurrence_id=e.recurrence_id, kind=e.kind, starts_at=e.starts_at,
                    ends_at=e.ends_at,
                )
                for e in meeting.exceptions
                if e.recurrence_id >= recurrence_id
            ]  # fmt: skip
            await self._truncate(session, meeting, recurrence_id, actor)
            tail_draft = replace(
                original,
                start=recurrence_id,
                end=recurrence_id + (original.end - original.start),
                rrule=recurrence.tail(original.rrule, count_before),
            )
            checked = planning.checked_times(replace(tail_draft, **changes))
            planning.check_not_past(checked.start, self.clock())
            tail = Meeting(exceptions=carried, split_from_id=meeting.id)
            found = await planning.plan(session, checked, tail)
            tail = await self._insert(session, found, actor, tail)
            await self._emit(session, "created", tail, actor, added=tuple(found.attendees))
            return Saved(tail, found.warnings)

        return await self._write(run)

    # --- internals ----------------------------------------------------------------------
    async def _write(self, run: Callable[[AsyncSession], Awaitable[T]]) -> T:
        try:
            return await self.db.transact(run)
        except BookingRace as race:
            # PostgreSQL refused a booking that raced ours; name who holds the rooms now.
            async with self.db.read() as session:
                found = await bookings.clashes(
                    session, race.wanted, exclude_meeting_id=race.meeting_id
                )
            raise planning.room_conflict(found) from None

    async def _update(
        self, session: AsyncSession, meeting: Meeting, changes: Mapping[str, Any], actor: str
    ) -> Saved:
        before = MeetingDraft.of(meeting)
        checked = planning.checked_times(replace(before, **changes))
        retimed = checked.timing() != before.timing()
        if retimed:
            planning.check_not_past(checked.start, self.clock())
        found = await planning.plan(session, checked, meeting)
        removed_rooms = tuple(sorted(set(before.room_ids) - set(checked.room_ids)))
        significant = retimed or set(before.room_ids) != set(checked.room_ids)
        added, removed = await self._apply(session, meeting, found, reset_answers=retimed)
        if significant:
            meeting.sequence += 1
        await self._materialise(session, meeting.id, found, fresh=False)
        await self._emit(
            session, "updated", meeting, actor, significant=significant, added=added,
            removed=removed, removed_rooms=removed_rooms,
        )  # fmt: skip
        return Saved(meeting, found.warnings)

    async def _get(
        self, session: AsyncSession, meeting_id: int, viewer: Viewer, *, for_update: bool = False
    ) -> Meeting:
        meeting = await repository.get(session, meeting_id, viewer, for_update=for_update)
        if meeting is None:
            raise MeetingNotFound(f"meeting {meeting_id} does not exist")
        return meeting

    @staticmethod
    def _check_open(meeting: Meeting) -> None:
        if meeting.status in (MeetingStatus.CANCELLED, MeetingStatus.ENDED):
            raise MeetingClosed(f"the meeting is {meeting.status.value} and cannot be changed")

    async def _editable(
        self, session: AsyncSession, meeting_id: int, *, for_update: bool = False
    ) -> Meeting:
        meeting = await self._get(session, meeting_id, EVERYTHING, for_update=for_update)
        self._check_open(meeting)
        return meeting

    async def _occurrence(
        self, session: AsyncSession, meeting_id: int, recurrence_id: datetime
    ) -> tuple[Meeting, Occurrence]:
        meeting = await self._editable(session, meeting_id, for_update=True)
        if meeting.rrule is None:
            raise InvalidMeeting(
                "the meeting does not recur: change or cancel the meeting itself",
                fields={"recurrence_id": "not a recurring meeting"},
            )
        occurrence = await session.get(Occurrence, (meeting.id, recurrence_id))
        if occurrence is None:
            raise MeetingNotFound(f"meeting {meeting_id} has no occurrence {recurrence_id}")
        if occurrence.ends_at <= self.clock():
            raise InvalidMeeting("this occurrence is over", fields={"recurrence_id": "in the past"})
        return meeting, occurrence

    async def _insert(
        self, session: AsyncSession, found: Plan, actor: str, split: Meeting | None = None
    ) -> Meeting:
        """Write a new meeting, its rows and bookings (Core: no unit of work on this path).

        ``split``: the unsaved tail of a series split, with the exceptions it carries.
        Returns the meeting as written, a copy attached to no session.
        """
        now = self.clock()
        exceptions = list(split.exceptions) if split is not None else []
        values: dict[str, Any] = {
            **_copied(found.draft),
            "uid": f"{uuid4()}@suimeet",
            "sequence": 0,
            "status": MeetingStatus.SCHEDULED,
            "split_from_id": split.split_from_id if split is not None else None,
            "created_by": actor,
            "created_at": now,
            "updated_at": now,
        }
        conn = await session.connection()
        meeting_id: int = (await conn.execute(_INSERT_MEETING, values)).scalar_one()
        attendees = [
            Attendee(meeting_id=meeting_id, person_id=i.person_id, role=i.role,
                     via_unit_id=i.via_unit_id, partstat=PartStat.NEEDS_ACTION)
            for i in found.attendees.values()
        ]  # fmt: skip
        room_ids = sorted(set(found.draft.room_ids))
        rooms = [MeetingRoom(meeting_id=meeting_id, room_id=r) for r in room_ids]
        valid = {i.recurrence_id for i in found.instances}
        exceptions = [e for e in exceptions if e.recurrence_id in valid]
        for table, rows, columns in (
            (_attendees, attendees, ("meeting_id", "person_id", "role", "via_unit_id", "partstat")),
            (_rooms, rooms, ("meeting_id", "room_id")),
            (_exceptions, exceptions, ("recurrence_id", "kind", "starts_at", "ends_at")),
        ):
            if rows:
                params = [{c: getattr(row, c) for c in columns} for row in rows]
                for p in params:
                    p["meeting_id"] = meeting_id
                await conn.execute(insert(table), params)
        await self._materialise(session, meeting_id, found, fresh=True)
        return Meeting(
            id=meeting_id, **values, attendees=attendees, rooms=rooms, exceptions=exceptions
        )

    async def _apply(
        self, session: AsyncSession, meeting: Meeting, found: Plan, *, reset_answers: bool
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Copy the plan onto the row; returns the people (added, removed)."""
        draft = found.draft
        for name, value in _copied(draft).items():
            setattr(meeting, name, value)
        meeting.updated_at = self.clock()
        current = {a.person_id: a for a in meeting.attendees}
        for person_id, attendee in current.items():
            if person_id not in found.attendees:
                meeting.attendees.remove(attendee)
        for person_id, invitee in found.attendees.items():
            kept = current.get(person_id)
            if kept is None:
                meeting.attendees.append(
                    Attendee(person_id=person_id, role=invitee.role,
                             via_unit_id=invitee.via_unit_id, partstat=PartStat.NEEDS_ACTION)
                )  # fmt: skip
                continue
            kept.role, kept.via_unit_id = invitee.role, invitee.via_unit_id
            if reset_answers:
                kept.partstat = PartStat.NEEDS_ACTION
        rooms = {r.room_id: r for r in meeting.rooms}
        for room_id, row in rooms.items():
            if room_id not in draft.room_ids:
                meeting.rooms.remove(row)
        for room_id in sorted(set(draft.room_ids) - set(rooms)):
            meeting.rooms.append(MeetingRoom(room_id=room_id))
        valid = {i.recurrence_id for i in found.instances}
        for exception in list(meeting.exceptions):
            if exception.recurrence_id not in valid:
                meeting.exceptions.remove(exception)
        added = tuple(sorted(set(found.attendees) - set(current)))
        return added, tuple(sorted(set(current) - set(found.attendees)))

    async def _materialise(
        self, session: AsyncSession, meeting_id: int, found: Plan, *, fresh: bool
    ) -> None:
        """Rewrite the meeting's occurrences and bookings from the plan; a clash refuses."""
        await self._write_occurrences(session, meeting_id, found.instances, fresh=fresh)
        if not fresh:
            await bookings.release(session, meeting_id)
        clashes = await bookings.reserve(session, meeting_id, found.wanted)
        if clashes:
            raise planning.room_conflict(clashes)

    @staticmethod
    async def _write_occurrences(
        session: AsyncSession, meeting_id: int, instances: list[Instance], *, fresh: bool
    ) -> None:
        conn = await session.connection()
        if not fresh:
            await session.flush()
            await conn.execute(delete(_occurrences).where(_occurrences.c.meeting_id == meeting_id))
        rows = [
            {"meeting_id": meeting_id, "recurrence_id": i.recurrence_id,
             "starts_at": i.starts_at, "ends_at": i.ends_at, "cancelled": i.cancelled}
            for i in instances
        ]  # fmt: skip
        await conn.execute(insert(_occurrences), rows)

    async def _set_exception(
        self,
        session: AsyncSession,
        meeting: Meeting,
        recurrence_id: datetime,
        kind: ExceptionKind,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> None:
        row = next((e for e in meeting.exceptions if e.recurrence_id == recurrence_id), None)
        if row is None:
            row = MeetingException(recurrence_id=recurrence_id)
            meeting.exceptions.append(row)
        row.kind, row.starts_at, row.ends_at = kind, starts_at, ends_at
        meeting.updated_at = self.clock()
        await session.flush()

    async def _cancel(self, session: AsyncSession, meeting: Meeting, actor: str) -> None:
        meeting.status = MeetingStatus.CANCELLED
        meeting.sequence += 1
        meeting.updated_at = self.clock()
        await bookings.release(session, meeting.id)
        await self._emit(session, "cancelled", meeting, actor)

    async def _truncate(
        self, session: AsyncSession, meeting: Meeting, recurrence_id: datetime, actor: str
    ) -> None:
        """End the series just before ``recurrence_id`` (its later occurrences go)."""
        assert meeting.rrule is not None
        meeting.rrule = recurrence.truncate(meeting.rrule, recurrence_id)
        for exception in list(meeting.exceptions):
            if exception.recurrence_id >= recurrence_id:
                meeting.exceptions.remove(exception)
        meeting.sequence += 1
        meeting.updated_at = self.clock()
        await session.flush()
        await session.execute(
            delete(_occurrences).where(
                _occurrences.c.meeting_id == meeting.id,
                _occurrences.c.recurrence_id >= recurrence_id,
            )
        )
        await bookings.release(session, meeting.id, since=recurrence_id)
        await self._emit(session, "updated", meeting, actor)

    async def _emit(
        self,
        session: AsyncSession,
        kind: ChangeKind,
        meeting: Meeting,
        actor: str,
        *,
        rid: datetime | None = None,
        significant: bool = True,
        added: tuple[int, ...] = (),
        removed: tuple[int, ...] = (),
        removed_rooms: tuple[int, ...] = (),
    ) -> None:
        change = MeetingChange(
            kind=kind, meeting_id=meeting.id, recurrence_id=rid, significant=significant,
            added_person_ids=added, removed_person_ids=removed, removed_room_ids=removed_rooms,
            actor=actor,
        )  # fmt: skip
        await notify(self.listeners, session, change)
