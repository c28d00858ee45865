"""Tables of scheduling: meetings, their attendees, rooms, occurrences and room bookings.

For the services of `scheduling` (and the migrations). Times are aware UTC datetimes
(:class:`rooms.db.UTCDateTime`); a meeting's own time zone (``tzid``) is kept to expand its
recurrence and to show local times.

- ``meetings``: one row per meeting or recurring series (RRULE in ``rrule``).
- ``meeting_exceptions``: what iCalendar calls EXDATE (``kind=cancelled``) and RECURRENCE-ID
  overrides (``kind=moved``, with their own start and end), keyed by the occurrence's
  original start (``recurrence_id``).
- ``meeting_occurrences``: every occurrence of every meeting, materialised from the rule and
  the exceptions whenever they change (capped, see ``scheduling.recurrence``), so ranges,
  lists and free/busy are plain indexed queries.
- ``bookings``: one row per room per live occurrence. On PostgreSQL an exclusion constraint
  (``ex_bookings_room_time``, created by migration 0002 only) makes overlapping bookings of a
  room impossible; on SQLite the booking service checks inside the serialised write.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import NewType

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rooms.db import Base, UTCDateTime, utcnow

MeetingId = NewType("MeetingId", int)
# No occurrence (hence no booking) lasts longer: lets range queries bound ``starts_at`` on
# both sides and use its index.
MAX_OCCURRENCE_LENGTH = timedelta(hours=24)
BookingId = NewType("BookingId", int)


def _enum(cls: type[enum.StrEnum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class MeetingMode(enum.StrEnum):
    """How people take part."""

    VIDEO = "video"
    IN_PERSON = "in_person"
    HYBRID = "hybrid"


class MeetingStatus(enum.StrEnum):
    """Where a meeting is in its life: scheduled → live → ended, or cancelled."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class AttendeeRole(enum.StrEnum):
    """An attendee's part (iCalendar ROLE: CHAIR, REQ-PARTICIPANT, OPT-PARTICIPANT)."""

    CHAIR = "chair"
    REQUIRED = "required"
    OPTIONAL = "optional"


class PartStat(enum.StrEnum):
    """An attendee's answer (iCalendar PARTSTAT)."""

    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"


class ExceptionKind(enum.StrEnum):
    """What happened to one occurrence of a series."""

    CANCELLED = "cancelled"  # EXDATE / STATUS:CANCELLED with RECURRENCE-ID
    MOVED = "moved"  # RECURRENCE-ID override with its own start and end


class Meeting(Base):
    """A meeting or a recurring series of meetings."""

    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(255), unique=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(200))
    agenda: Mapped[str] = mapped_column(Text, default="")
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    organiser_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tzid: Mapped[str] = mapped_column(String(64))
    rrule: Mapped[str | None] = mapped_column(String(500))
    mode: Mapped[MeetingMode] = mapped_column(_enum(MeetingMode))
    doc_ref: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[MeetingStatus] = mapped_column(_enum(MeetingStatus), index=True)
    reminder_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # digits guests type to ask to join (scheduling.passcodes); None: no guest access
    passcode: Mapped[str | None] = mapped_column(String(10))
    # the series this one was split from ("this and following"), for people and iTIP
    split_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("meetings.id", ondelete="SET NULL")
    )
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    attendees: Mapped[list[Attendee]] = relationship(
        cascade="all, delete-orphan", order_by="Attendee.id", lazy="raise"
    )
    rooms: Mapped[list[MeetingRoom]] = relationship(
        cascade="all, delete-orphan", order_by="MeetingRoom.room_id", lazy="raise"
    )
    exceptions: Mapped[list[MeetingException]] = relationship(
        cascade="all, delete-orphan", order_by="MeetingException.recurrence_id", lazy="raise"
    )

    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)


class Attendee(Base):
    """A person invited to a meeting, with their answer and the last reply's stamp."""

    __tablename__ = "meeting_attendees"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    role: Mapped[AttendeeRole] = mapped_column(_enum(AttendeeRole))
    partstat: Mapped[PartStat] = mapped_column(_enum(PartStat), default=PartStat.NEEDS_ACTION)
    # the unit whose invitation brought this person in, if any
    via_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # SEQUENCE and DTSTAMP of the last iTIP REPLY taken, to ignore stale replies
    reply_sequence: Mapped[int | None] = mapped_column(Integer)
    reply_dtstamp: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)


class MeetingRoom(Base):
    """A room a meeting takes place in (its bookings are in :class:`Booking`)."""

    __tablename__ = "meeting_rooms"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), primary_key=True, index=True)


class MeetingException(Base):
    """One occurrence of a series cancelled or moved (RECURRENCE-ID = ``recurrence_id``)."""

    __tablename__ = "meeting_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[ExceptionKind] = mapped_column(_enum(ExceptionKind))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("meeting_id", "recurrence_id"),)


class Occurrence(Base):
    """One occurrence of a meeting (a single meeting has one), derived, never edited."""

    __tablename__ = "meeting_occurrences"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cancelled: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_meeting_occurrences_starts_at_ends_at", "starts_at", "ends_at"),)


class Booking(Base):
    """A room held for one occurrence of a meeting: never two overlapping for one room."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_bookings_room_id_starts_at", "room_id", "starts_at"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )
