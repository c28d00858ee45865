"""What saving a meeting would do: the checks, the occurrences, the clashes and warnings.

For the meetings service, which plans inside its write transaction and then writes (or, for
a dry run, only reports). A :class:`MeetingDraft` arrives shape-checked by `web`; this
module applies the rules of scheduling: time zone, end after start, at most
:data:`MAX_DURATION` per occurrence, not in the past (:data:`GRACE`), a valid recurrence,
referenced units, people and rooms that exist, and whole units expanded to their people.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import CompoundSelect, bindparam, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Person, Room, Unit
from scheduling import bookings, recurrence, repository
from scheduling.bookings import Clash, Wanted
from scheduling.errors import InvalidMeeting, RoomConflict
from scheduling.models import (
    MAX_OCCURRENCE_LENGTH,
    AttendeeRole,
    ExceptionKind,
    Meeting,
    MeetingMode,
)
from scheduling.passcodes import check_passcode, new_passcode
from scheduling.recurrence import Instance
from scheduling.repository import BusyPerson

GRACE = timedelta(minutes=5)
MAX_DURATION = MAX_OCCURRENCE_LENGTH
MAX_ATTENDEES = 2000
_ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class Invitee:
    """A person to invite; ``via_unit_id`` when they came in with their whole unit."""

    person_id: int
    role: AttendeeRole = AttendeeRole.REQUIRED
    via_unit_id: int | None = None


@dataclass(frozen=True, slots=True)
class MeetingDraft:
    """Everything the secretariat decides about a meeting (times aware, any zone)."""

    title: str
    unit_id: int
    organiser_id: int
    start: datetime
    end: datetime
    tzid: str
    agenda: str = ""
    chair_id: int | None = None
    rrule: str | None = None
    mode: MeetingMode = MeetingMode.VIDEO
    doc_ref: str | None = None
    reminder_minutes: int = 15
    room_ids: tuple[int, ...] = ()
    invitees: tuple[Invitee, ...] = ()
    unit_ids: tuple[int, ...] = ()  # invite every person of these units (as required)
    # what guests type to ask to join (None: no guests); a new meeting gets a random one
    passcode: str | None = field(default_factory=new_passcode)

    @classmethod
    def of(cls, meeting: Meeting) -> MeetingDraft:
        """The draft a stored meeting (with its attendees and rooms loaded) was saved from."""
        return cls(
            title=meeting.title,
            unit_id=meeting.unit_id,
            organiser_id=meeting.organiser_id,
            start=meeting.starts_at,
            end=meeting.ends_at,
            tzid=meeting.tzid,
            agenda=meeting.agenda,
            chair_id=meeting.chair_id,
            rrule=meeting.rrule,
            mode=meeting.mode,
            doc_ref=meeting.doc_ref,
            reminder_minutes=meeting.reminder_minutes,
            room_ids=tuple(r.room_id for r in meeting.rooms),
            invitees=tuple(
                Invitee(a.person_id, a.role, a.via_unit_id)
                for a in meeting.attendees
                if a.role != AttendeeRole.CHAIR
            ),
            passcode=meeting.passcode,
        )

    def timing(self) -> tuple[datetime, datetime, str, str | None]:
        return (self.start, self.end, self.tzid, self.rrule)


@dataclass(frozen=True, slots=True)
class Plan:
    """A checked draft (UTC times, canonical RRULE) and what saving it would mean."""

    draft: MeetingDraft
    attendees: dict[int, Invitee]
    instances: list[Instance]
    wanted: list[Wanted]
    clashes: list[Clash]  # listed by a dry run only: a write learns them from reserve()
    warnings: list[BusyPerson]


def room_conflict(clashes: Iterable[Clash]) -> RoomConflict:
    listed = [
        {
            "meeting_id": c.meeting_id,
            "title": c.title,
            "room_id": c.room_id,
            "room_name": c.room_name,
            "start_utc": c.starts_at.strftime(_ISO_UTC),
            "end_utc": c.ends_at.strftime(_ISO_UTC),
        }
        for c in clashes
    ]
    names = sorted({str(c["room_name"]) for c in listed})
    return RoomConflict(
        f"already booked at that time: {', '.join(names)}" if names else "a room is taken",
        fields={"room_ids": "a room is already booked at that time"},
        conflicts=listed,
    )


def checked_times(draft: MeetingDraft) -> MeetingDraft:
    """The draft with UTC times (whole seconds) and a canonical RRULE, or InvalidMeeting.

    A time without a UTC offset is local time in the meeting's ``tzid``.
    """
    try:
        zone = ZoneInfo(draft.tzid)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidMeeting(
            f"unknown time zone {draft.tzid!r}", fields={"tzid": "not an IANA time zone name"}
        ) from None
    start, end = (
        (t if t.tzinfo is not None else t.replace(tzinfo=zone)).astimezone(UTC)
        for t in (draft.start, draft.end)
    )
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if end <= start:
        raise InvalidMeeting("the end must be after the start", fields={"end": "not after start"})
    if end - start > MAX_DURATION:
        raise InvalidMeeting(
            "a meeting (or one occurrence) lasts at most 24 hours",
            fields={"end": "more than 24 hours after the start"},
        )
    check_passcode(draft.passcode)
    rule = recurrence.normalise(draft.rrule, start, draft.tzid) if draft.rrule else None
    return replace(draft, start=start, end=end, rrule=rule)


def check_not_past(start: datetime, now: datetime, field: str = "start") -> None:
    if start < now - GRACE:
        raise InvalidMeeting("the meeting would start in the past", fields={field: "in the past"})


# One round trip for the three tables, on every booking; built once (building and keying it
# took longer than running it).
_KNOWN: CompoundSelect[str, int] = union_all(
    *(
        select(literal_column(f"'{kind}'").label("kind"), model.id).where(
            model.id.in_(bindparam(kind, expanding=True))
        )
        for kind, model in (("p", Person), ("u", Unit), ("r", Room))
    )
)


async def check_references(session: AsyncSession, draft: MeetingDraft) -> None:
    """Every unit, person and room the draft names exists; else InvalidMeeting per field."""
    people = {draft.organiser_id, *(i.person_id for i in draft.invitees)}
    if draft.chair_id is not None:
        people.add(draft.chair_id)
    units = {draft.unit_id, *draft.unit_ids}
    params = {"p": sorted(people), "u": sorted(units), "r": sorted(set(draft.room_ids))}
    rows = (await (await session.connection()).execute(_KNOWN, params)).all()
    known_people = {i for k, i in rows if k == "p"}
    known_units = {i for k, i in rows if k == "u"}
    known_rooms = {i for k, i in rows if k == "r"}
    fields: dict[str, str] = {}
    for name, ids, known, noun in (
        ("unit_id", {draft.unit_id}, known_units, "unit"),
        ("organiser_id", {draft.organiser_id}, known_people, "person"),
        ("chair_id", {draft.chair_id} - {None}, known_people, "person"),
        ("attendees", {i.person_id for i in draft.invitees}, known_people, "person"),
        ("unit_ids", set(draft.unit_ids), known_units, "unit"),
        ("room_ids", set(draft.room_ids), known_rooms, "room"),
    ):
        missing = sorted(i for i in ids - known if i is not None)
        if missing:
            fields[name] = f"no such {noun}: {', '.join(map(str, missing))}"
    if fields:
        raise InvalidMeeting("the meeting refers to what does not exist", fields=fields)


async def attendees_of(session: AsyncSession, draft: MeetingDraft) -> dict[int, Invitee]:
    """Invitees by person: units' people, then explicit invitees, then the chair, win."""
    found: dict[int, Invitee] = {}
    if draft.unit_ids:
        rows = await session.execute(
            select(Person.id, Person.unit_id)
            .where(Person.unit_id.in_(sorted(set(draft.unit_ids))))
            .limit(MAX_ATTENDEES + 1)
        )
        for person_id, unit_id in rows:
            found[person_id] = Invitee(person_id, AttendeeRole.REQUIRED, unit_id)
    for invitee in draft.invitees:
        found[invitee.person_id] = invitee
    if draft.chair_id is not None:
        found[draft.chair_id] = Invitee(draft.chair_id, AttendeeRole.CHAIR)
    if len(found) > MAX_ATTENDEES:
        raise InvalidMeeting(
            f"at most {MAX_ATTENDEES} attendees",
            fields={"attendees": f"more than {MAX_ATTENDEES} people (with the units')"},
        )
    return found


def _check_own_overlap(instances: list[Instance]) -> None:
    live = sorted((i for i in instances if not i.cancelled), key=lambda i: i.starts_at)
    for before, after in pairwise(live):
        if after.starts_at < before.ends_at:
            raise InvalidMeeting(
                "two occurrences of the series would overlap",
                fields={"start": f"the occurrence at {after.starts_at.isoformat()} overlaps"},
            )


async def plan(
    session: AsyncSession, draft: MeetingDraft, current: Meeting | None, *, dry_run: bool = False
) -> Plan:
    """Check ``draft`` (times already checked) and find its busy attendees.

    ``current``: the stored meeting being changed (its exceptions still apply where they
    match an occurrence; its own bookings are not clashes). A ``dry_run`` lists the room
    clashes too; a write leaves them to :func:`bookings.reserve`, which checks and books in
    one step once the meeting is written (a clash then rolls the whole change back).
    """
    await check_references(session, draft)
    attendees = await attendees_of(session, draft)
    exceptions = [
        (e.recurrence_id, e.kind == ExceptionKind.CANCELLED, e.starts_at, e.ends_at)
        for e in (current.exceptions if current is not None else ())
    ]
    instances = recurrence.expand(draft.start, draft.end, draft.tzid, draft.rrule, exceptions)
    _check_own_overlap(instances)
    live = [i for i in instances if not i.cancelled]
    wanted = [
        Wanted(room_id, i.recurrence_id, i.starts_at, i.ends_at)
        for room_id in sorted(set(draft.room_ids))
        for i in live
    ]
    exclude = current.id if current is not None else None
    clashes = []
    if dry_run:
        clashes = await bookings.clashes(session, wanted, exclude_meeting_id=exclude)
    warnings = await repository.busy_people(
        session,
        sorted(attendees),
        [(i.starts_at, i.ends_at) for i in live],
        exclude_meeting_id=exclude,
    )
    return Plan(draft, attendees, instances, wanted, clashes, warnings)
