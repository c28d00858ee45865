"""A stored meeting as iCalendar sees it: the series and its overridden occurrences.

For the invitation listener, the reminders and the calendar feeds, which all turn rows
(:class:`~scheduling.models.Meeting`, its attendees, rooms and exceptions) into the plain
:class:`~scheduling.itip.CalendarEvent` values that `scheduling.itip` and
`scheduling.feeds` build iCalendar from.

- The series (or single meeting) carries the RRULE and, as EXDATEs, its cancelled
  occurrences; each moved occurrence is an override with the series' UID and its original
  start as RECURRENCE-ID. Every component carries the meeting's SEQUENCE.
- Attendees are the invited people with their answers (an override shows the answer given
  for that occurrence, if any); the chair has ROLE=CHAIR.
- Rooms are attendees with CUTYPE=ROOM at a synthetic address ``room-<id>@<mail domain>``
  (nobody reads that mailbox: it only lets calendar clients show the rooms as resources),
  already ACCEPTED and not asked to answer.
- The ORGANIZER is the organiser by name; its address is the system mailbox when one is
  given (so that calendar clients send their replies to the reply gateway), else the
  organiser's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Person, Room
from scheduling import repository
from scheduling.errors import MeetingNotFound
from scheduling.itip import CalendarEvent, CalendarPerson, Role
from scheduling.models import (
    AttendeeRole,
    ExceptionKind,
    Meeting,
    MeetingStatus,
    Occurrence,
)
from scheduling.rsvp import OccurrenceReply

_ROLES: dict[AttendeeRole, Role] = {
    AttendeeRole.CHAIR: "CHAIR",
    AttendeeRole.REQUIRED: "REQ-PARTICIPANT",
    AttendeeRole.OPTIONAL: "OPT-PARTICIPANT",
}


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where calendar addresses point: the system mailbox and the rooms' mail domain."""

    mail_domain: str
    organizer_email: str | None = None

    def room(self, room_id: int) -> str:
        return f"room-{room_id}@{self.mail_domain}"


@dataclass(frozen=True)
class MeetingCalendar:
    """One meeting's events and the people behind them, loaded in one transaction."""

    meeting: Meeting
    series: CalendarEvent
    overrides: tuple[CalendarEvent, ...]
    people: dict[int, Person]
    occurrences: dict[datetime, Occurrence]

    @property
    def events(self) -> list[CalendarEvent]:
        """The series, then its overridden occurrences: what a REQUEST carries."""
        return [self.series, *self.overrides]

    def occurrence(self, recurrence_id: datetime) -> CalendarEvent:
        """One occurrence as its own component (the override if it has one)."""
        for event in self.overrides:
            if event.recurrence_id == recurrence_id:
                return event
        found = self.occurrences.get(recurrence_id)
        length = self.series.end - self.series.start
        start = found.starts_at if found is not None else recurrence_id
        end = found.ends_at if found is not None else recurrence_id + length
        return replace(
            self.series, rrule=None, exdates=(), recurrence_id=recurrence_id, start=start, end=end
        )

    def person(self, person_id: int) -> CalendarPerson:
        """A person as an attendee (also for people no longer invited: removals)."""
        person = self.people[person_id]
        return CalendarPerson(email=person.email, name=person.name)


async def load(
    session: AsyncSession,
    meeting_id: int,
    addresses: Addresses,
    *,
    extra_people: Sequence[int] = (),
) -> MeetingCalendar:
    """The calendar view of one meeting; ``extra_people`` are loaded too (removed ones)."""
    meeting = await repository.get(session, meeting_id, repository.EVERYTHING)
    if meeting is None:
        raise MeetingNotFound(f"meeting {meeting_id} does not exist")
    return (await load_many(session, [meeting], addresses, extra_people=extra_people))[0]


async def load_many(
    session: AsyncSession,
    meetings: Sequence[Meeting],
    addresses: Addresses,
    *,
    extra_people: Sequence[int] = (),
) -> list[MeetingCalendar]:
    """The calendar views of meetings loaded with their details (``repository.with_details``)."""
    ids = [m.id for m in meetings]
    person_ids = set(extra_people)
    room_ids: set[int] = set()
    for meeting in meetings:
        person_ids.add(meeting.organiser_id)
        person_ids.update(a.person_id for a in meeting.attendees)
        room_ids.update(r.room_id for r in meeting.rooms)
    people = {
        p.id: p
        for p in await session.scalars(select(Person).where(Person.id.in_(sorted(person_ids))))
    }
    rooms = {r.id: r for r in await session.scalars(select(Room).where(Room.id.in_(room_ids)))}
    # Occurrences are rewritten with Core statements: refresh what the session may hold.
    occurrences: dict[int, dict[datetime, Occurrence]] = {i: {} for i in ids}
    found = await session.scalars(
        select(Occurrence)
        .where(Occurrence.meeting_id.in_(ids))
        .execution_options(populate_existing=True)
    )
    for occurrence in found:
        occurrences[occurrence.meeting_id][occurrence.recurrence_id] = occurrence
    answers: dict[int, dict[tuple[int, datetime], str]] = {i: {} for i in ids}
    for reply in await session.scalars(
        select(OccurrenceReply).where(OccurrenceReply.meeting_id.in_(ids))
    ):
        answers[reply.meeting_id][(reply.person_id, reply.recurrence_id)] = reply.partstat.value
    return [
        _calendar(m, people, rooms, occurrences[m.id], answers[m.id], addresses) for m in meetings
    ]


def _calendar(
    meeting: Meeting,
    people: dict[int, Person],
    rooms: dict[int, Room],
    occurrences: dict[datetime, Occurrence],
    answers: dict[tuple[int, datetime], str],
    addresses: Addresses,
) -> MeetingCalendar:
    organiser = people[meeting.organiser_id]
    organizer = CalendarPerson(
        email=addresses.organizer_email or organiser.email, name=organiser.name
    )
    booked = [rooms[r.room_id] for r in meeting.rooms if r.room_id in rooms]
    resources = [
        CalendarPerson(
            email=addresses.room(room.id), name=room.name, role="NON-PARTICIPANT",
            partstat="ACCEPTED", cutype="ROOM", rsvp=False,
        )
        for room in booked
    ]  # fmt: skip
    location = "、".join(
        f"{room.name}（{room.location}）" if room.location else room.name for room in booked
    )

    def attendees(recurrence_id: datetime | None) -> tuple[CalendarPerson, ...]:
        invited = []
        for attendee in meeting.attendees:
            person = people[attendee.person_id]
            partstat = attendee.partstat.value
            if recurrence_id is not None:
                partstat = answers.get((attendee.person_id, recurrence_id), partstat)
            invited.append(
                CalendarPerson(
                    email=person.email, name=person.name, role=_ROLES[attendee.role],
                    partstat=partstat,  # type: ignore[arg-type]  # PartStat values are iTIP's
                )
            )  # fmt: skip
        return (*invited, *resources)

    recurring = meeting.rrule is not None
    cancelled = [e.recurrence_id for e in meeting.exceptions if e.kind == ExceptionKind.CANCELLED]
    series = CalendarEvent(
        uid=meeting.uid,
        sequence=meeting.sequence,
        title=meeting.title,
        start=meeting.starts_at,
        end=meeting.ends_at,
        organizer=organizer,
        attendees=attendees(None),
        description=meeting.agenda,
        location=location,
        tzid=meeting.tzid,
        rrule=meeting.rrule,
        exdates=cancelled if recurring else (),
        status="CANCELLED" if meeting.status == MeetingStatus.CANCELLED else "CONFIRMED",
        doc_ref=meeting.doc_ref,
        created=meeting.created_at,
        last_modified=meeting.updated_at,
    )
    overrides = tuple(
        replace(
            series, rrule=None, exdates=(), recurrence_id=e.recurrence_id, start=e.starts_at,
            end=e.ends_at, attendees=attendees(e.recurrence_id),
        )
        for e in meeting.exceptions
        if recurring and e.kind == ExceptionKind.MOVED and e.starts_at and e.ends_at
    )  # fmt: skip
    return MeetingCalendar(meeting, series, overrides, people, occurrences)
