"""Who may join which conference, and when: the rules behind every join token.

A conference is one occurrence of a meeting. It can be joined from ``early`` before the
occurrence starts until it ends; a cancelled meeting or occurrence refuses everyone. People
must be invited (as attendees, or as the organiser or chair); a room terminal joins the
occurrence its room is booked for now. Operators (staff accounts with the role admin or
secretariat) may join any conference, invited or not, and always as chair. A guest (someone
who typed the meeting's passcode, see :mod:`scheduling.passcodes`) joins the occurrence
open now while the meeting still has a passcode; the hub keeps guests in the lobby until a
chair admits them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database
from rooms.models import Account, Person, Role, Room, Terminal
from scheduling.errors import SchedulingError
from scheduling.models import (
    Attendee,
    AttendeeRole,
    Booking,
    Meeting,
    MeetingStatus,
    Occurrence,
)

DEFAULT_EARLY = timedelta(minutes=15)
OPERATOR_ROLES = (Role.ADMIN, Role.SECRETARIAT)
_CONFERENCE_TIME = "%Y%m%dT%H%M%SZ"


class AdmissionRefused(SchedulingError):
    """The caller may not join now; ``code`` is one of the reasons below."""

    # also: "too_early", "ended", "cancelled", "no_meeting_now", "guests_not_allowed"
    code = "not_invited"


@dataclass(frozen=True, slots=True)
class Admission:
    """The occurrence someone may join now, and as whom."""

    meeting_id: int
    recurrence_id: datetime
    title: str
    starts_at: datetime
    ends_at: datetime
    identity: str
    name: str
    chair: bool
    person_id: int | None = None
    terminal_id: int | None = None
    room_id: int | None = None

    @property
    def conference(self) -> str:
        """The conference id of this occurrence (stable: meeting and original start)."""
        return conference_id(self.meeting_id, self.recurrence_id)


def conference_id(meeting_id: int, recurrence_id: datetime) -> str:
    """The conference id of an occurrence: ``<meeting id>@<original start, UTC>``."""
    return f"{meeting_id}@{recurrence_id.astimezone(UTC).strftime(_CONFERENCE_TIME)}"


def parse_conference(conference: str) -> tuple[int, datetime] | None:
    """The meeting id and occurrence (RECURRENCE-ID) of a conference id, or None."""
    head, _, tail = conference.partition("@")
    if not head.isdigit() or len(head) > 18:
        return None
    try:
        moment = datetime.strptime(tail, _CONFERENCE_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(head), moment


class Admissions:
    """Checks join requests against meetings, invitations and bookings."""

    def __init__(self, db: Database, *, early: timedelta = DEFAULT_EARLY) -> None:
        self.db = db
        self.early = early

    async def person(self, meeting_id: int, person_id: int, now: datetime) -> Admission:
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
            person = await session.get(Person, person_id)
            if meeting is None or person is None:
                raise AdmissionRefused("this link does not open any meeting")
            attendee = await session.scalar(
                select(Attendee).where(
                    Attendee.meeting_id == meeting_id, Attendee.person_id == person_id
                )
            )
            operator = await session.scalar(
                select(Account.id).where(
                    Account.person_id == person_id,
                    Account.active.is_(True),
                    Account.role.in_(OPERATOR_ROLES),
                )
            )
            invited = attendee is not None or person_id in (meeting.organiser_id, meeting.chair_id)
            if not invited and operator is None:
                raise AdmissionRefused("you are not invited to this meeting")
            if meeting.status == MeetingStatus.CANCELLED:
                raise AdmissionRefused("the meeting was cancelled", code="cancelled")
            occurrence = await self._current(session, meeting_id, now)
            chair = (
                operator is not None
                or person_id == meeting.chair_id
                or (attendee is not None and attendee.role == AttendeeRole.CHAIR)
            )
            return Admission(
                meeting.id,
                occurrence.recurrence_id,
                meeting.title,
                occurrence.starts_at,
                occurrence.ends_at,
                f"person:{person.id}",
                person.name,
                chair,
                person_id=person.id,
            )

    async def guest(self, meeting_id: int, guest_id: str, name: str, now: datetime) -> Admission:
        """The occurrence a guest of ``meeting_id`` may join now (never as chair)."""
        async with self.db.read() as session:
            meeting = await session.get(Meeting, meeting_id)
            if meeting is None:
                raise AdmissionRefused("this link does not open any meeting")
            if meeting.status == MeetingStatus.CANCELLED:
                raise AdmissionRefused("the meeting was cancelled", code="cancelled")
            if meeting.passcode is None:
                raise AdmissionRefused(
                    "this meeting does not take guests", code="guests_not_allowed"
                )
            occurrence = await self._current(session, meeting_id, now)
            return Admission(
                meeting.id,
                occurrence.recurrence_id,
                meeting.title,
                occurrence.starts_at,
                occurrence.ends_at,
                f"guest:{guest_id}",
                name,
                False,
            )

    async def terminal(self, terminal_id: int, now: datetime) -> Admission:
        """The occurrence the terminal's room is booked for now (``early`` included)."""
        async with self.db.read() as session:
            terminal = await session.get(Terminal, terminal_id)
            if terminal is None or terminal.revoked_at is not None:
                raise AdmissionRefused("unknown or revoked terminal")
            room = await session.get(Room, terminal.room_id)
            booking = await session.scalar(
                select(Booking)
                .join(Meeting, Meeting.id == Booking.meeting_id)
                .join(
                    Occurrence,
                    (Occurrence.meeting_id == Booking.meeting_id)
                    & (Occurrence.recurrence_id == Booking.recurrence_id),
                )
                .where(
                    Booking.room_id == terminal.room_id,
                    Booking.starts_at <= now + self.early,
                    Booking.ends_at > now,
                    Meeting.status != MeetingStatus.CANCELLED,
                    Occurrence.cancelled.is_(False),
                )
                .order_by(Booking.starts_at)
            )
            if booking is None:
                raise AdmissionRefused(
                    "the room is not booked for a meeting now", code="no_meeting_now"
                )
            meeting = await session.get(Meeting, booking.meeting_id)
            assert meeting is not None
            return Admission(
                meeting.id,
                booking.recurrence_id,
                meeting.title,
                booking.starts_at,
                booking.ends_at,
                f"terminal:{terminal.id}",
                room.name if room else terminal.name,
                False,
                terminal_id=terminal.id,
                room_id=terminal.room_id,
            )

    async def _current(self, session: AsyncSession, meeting_id: int, now: datetime) -> Occurrence:
        occurrence = await session.scalar(
            select(Occurrence)
            .where(
                Occurrence.meeting_id == meeting_id,
                Occurrence.cancelled.is_(False),
                Occurrence.starts_at <= now + self.early,
                Occurrence.ends_at > now,
            )
            .order_by(Occurrence.starts_at)
        )
        if occurrence is not None:
            return occurrence
        upcoming = await session.scalar(
            select(Occurrence.starts_at)
            .where(
                Occurrence.meeting_id == meeting_id,
                Occurrence.cancelled.is_(False),
                Occurrence.starts_at > now,
            )
            .order_by(Occurrence.starts_at)
        )
        if upcoming is not None:
            minutes = int(self.early.total_seconds() // 60)
            raise AdmissionRefused(
                f"the meeting opens {minutes} minutes before it starts ({upcoming.isoformat()})",
                code="too_early",
            )
        cancelled_now = await session.scalar(
            select(Occurrence.recurrence_id).where(
                Occurrence.meeting_id == meeting_id,
                Occurrence.cancelled.is_(True),
                Occurrence.starts_at <= now + self.early,
                Occurrence.ends_at > now,
            )
        )
        if cancelled_now is not None:
            raise AdmissionRefused("this occurrence was cancelled", code="cancelled")
        raise AdmissionRefused("the meeting has ended", code="ended")
