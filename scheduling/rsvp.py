"""Attendees' answers: from the signed links in invitations and from iTIP REPLY messages.

For `web` (the RSVP page, the reply gateway endpoint, the responses the secretariat sees).
An answer to the whole meeting is the attendee's PARTSTAT on ``meeting_attendees``; an
answer to one occurrence of a series (a REPLY with RECURRENCE-ID) is a row of
``meeting_occurrence_replies``. Each stores the SEQUENCE and DTSTAMP of the answer taken,
so that an older one arriving later is ignored (iTIP ordering, :func:`replies.is_newer`)
and the same one arriving twice changes nothing.

A link answer counts as a reply to the meeting's current SEQUENCE, stamped now. A REPLY is
taken only from an invitee, for a meeting (UID) and occurrence we know, and, when the
whole email is given, only if its From is that invitee.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Enum, ForeignKey, Integer, UniqueConstraint, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from rooms.models import Person
from scheduling.errors import ReplyClosed, ReplyNotAllowed, ReplyRefused, ReplyUnknown
from scheduling.events import record_meeting_event
from scheduling.models import Attendee, Meeting, MeetingStatus, Occurrence, PartStat
from scheduling.replies import ParsedReply, is_newer

Answer = Literal["accept", "tentative", "decline"]
ANSWERS: dict[Answer, PartStat] = {
    "accept": PartStat.ACCEPTED,
    "tentative": PartStat.TENTATIVE,
    "decline": PartStat.DECLINED,
}
Outcome = Literal["applied", "duplicate", "stale"]


class OccurrenceReply(Base):
    """One attendee's answer to one occurrence of a series (RECURRENCE-ID)."""

    __tablename__ = "meeting_occurrence_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    partstat: Mapped[PartStat] = mapped_column(
        Enum(PartStat, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    reply_sequence: Mapped[int] = mapped_column(Integer)
    reply_dtstamp: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("meeting_id", "person_id", "recurrence_id"),)


@dataclass(frozen=True, slots=True)
class Taken:
    """What became of an answer, and the attendee's answer now."""

    outcome: Outcome
    meeting_id: int
    person_id: int
    recurrence_id: datetime | None
    partstat: PartStat


@dataclass(frozen=True, slots=True)
class Invitation:
    """What an RSVP page shows before anything is recorded."""

    meeting: Meeting
    person: Person
    partstat: PartStat


class Responses:
    """Records answers over one :class:`Database` (one transaction per answer)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    async def invitation(self, meeting_id: int, person_id: int) -> Invitation:
        """The meeting and the invitee's current answer (read only: for a GET page)."""
        async with self.db.read() as session:
            meeting, attendee = await _invitee(session, meeting_id, person_id)
            person = await session.get(Person, person_id)
            assert person is not None  # an attendee's person exists (foreign key)
            return Invitation(meeting, person, attendee.partstat)

    async def answer_link(self, meeting_id: int, person_id: int, answer: Answer) -> Taken:
        """Take an answer given with a signed RSVP link, for the whole meeting."""
        async with self.db.write() as session:
            meeting, attendee = await _invitee(session, meeting_id, person_id, for_update=True)
            if meeting.status == MeetingStatus.CANCELLED:
                raise ReplyClosed("the meeting was cancelled", code="meeting_cancelled")
            partstat = ANSWERS[answer]
            outcome: Outcome = "duplicate" if attendee.partstat == partstat else "applied"
            attendee.partstat = partstat
            attendee.reply_sequence = meeting.sequence
            attendee.reply_dtstamp = self.clock()
            taken = Taken(outcome, meeting.id, person_id, None, partstat)
            await _announce(session, taken, "link")
            return taken

    async def apply_reply(self, reply: ParsedReply, *, sender: str | None = None) -> Taken:
        """Take an iTIP REPLY; ``sender`` is the email's From when a whole email was given.

        Raises :class:`ReplyUnknown`, :class:`ReplyNotAllowed`, :class:`ReplyClosed` or
        :class:`ReplyRefused`; a stale or repeated reply is no error (``outcome``).
        """
        if sender is not None and sender.strip().lower() != reply.attendee_email:
            raise ReplyNotAllowed(
                "the email was not sent by the attendee who answers", code="sender_mismatch"
            )
        if reply.partstat == "DELEGATED":
            raise ReplyRefused(
                "delegation is not supported: ask the secretariat to invite the delegate",
                code="delegation_not_supported",
            )
        partstat = PartStat(reply.partstat)
        async with self.db.write() as session:
            meeting = await session.scalar(
                select(Meeting).where(Meeting.uid == reply.uid).with_for_update()
            )
            if meeting is None:
                raise ReplyUnknown(f"no meeting has UID {reply.uid}", code="unknown_meeting")
            person = await session.scalar(
                select(Person).where(func.lower(Person.email) == reply.attendee_email)
            )
            if person is None:
                raise ReplyNotAllowed(
                    f"{reply.attendee_email} is not invited to this meeting", code="not_an_attendee"
                )
            _meeting, attendee = await _invitee(session, meeting.id, person.id)
            if meeting.status == MeetingStatus.CANCELLED:
                raise ReplyClosed("the meeting was cancelled", code="meeting_cancelled")
            if reply.sequence > meeting.sequence:
                raise ReplyRefused(
                    f"the reply answers SEQUENCE {reply.sequence}, but only "
                    f"{meeting.sequence} was sent",
                    code="reply_sequence_ahead",
                )
            if reply.recurrence_id is None or meeting.rrule is None:
                taken = _take_series(attendee, reply, partstat, meeting.id)
            else:
                taken = await _take_occurrence(session, meeting.id, person.id, reply, partstat)
            await _announce(session, taken, "itip")
            return taken


async def _announce(session: AsyncSession, taken: Taken, via: str) -> None:
    """An ``rsvp.changed`` event for the OA system, in the answer's own transaction."""
    if taken.outcome != "applied":
        return
    await record_meeting_event(
        session,
        "rsvp.changed",
        taken.meeting_id,
        {
            "person_id": taken.person_id,
            "partstat": taken.partstat.value,
            "recurrence_id": taken.recurrence_id.isoformat() if taken.recurrence_id else None,
            "via": via,
        },
    )


async def _invitee(
    session: AsyncSession, meeting_id: int, person_id: int, *, for_update: bool = False
) -> tuple[Meeting, Attendee]:
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        raise ReplyUnknown(f"meeting {meeting_id} does not exist", code="unknown_meeting")
    stmt = select(Attendee).where(
        Attendee.meeting_id == meeting_id, Attendee.person_id == person_id
    )
    attendee = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if attendee is None:
        raise ReplyNotAllowed("this person is not invited to the meeting", code="not_an_attendee")
    return meeting, attendee


def _repeated(
    reply: ParsedReply,
    partstat: PartStat,
    sequence: int | None,
    dtstamp: datetime | None,
    now: PartStat,
) -> bool:
    return sequence == reply.sequence and dtstamp == reply.dtstamp and now == partstat


def _take_series(
    attendee: Attendee, reply: ParsedReply, partstat: PartStat, meeting_id: int
) -> Taken:
    stored = (attendee.reply_sequence, attendee.reply_dtstamp)
    if _repeated(reply, partstat, *stored, attendee.partstat):
        outcome: Outcome = "duplicate"
    elif not is_newer(reply, *stored):
        outcome = "stale"
    else:
        attendee.partstat = partstat
        attendee.reply_sequence = reply.sequence
        attendee.reply_dtstamp = reply.dtstamp
        outcome = "applied"
    return Taken(outcome, meeting_id, attendee.person_id, None, attendee.partstat)


async def _take_occurrence(
    session: AsyncSession, meeting_id: int, person_id: int, reply: ParsedReply, partstat: PartStat
) -> Taken:
    assert reply.recurrence_id is not None
    occurrence = await session.get(Occurrence, (meeting_id, reply.recurrence_id))
    if occurrence is None:
        raise ReplyUnknown(
            f"the meeting has no occurrence {reply.recurrence_id.isoformat()}",
            code="unknown_occurrence",
        )
    row = await session.scalar(
        select(OccurrenceReply).where(
            OccurrenceReply.meeting_id == meeting_id,
            OccurrenceReply.person_id == person_id,
            OccurrenceReply.recurrence_id == reply.recurrence_id,
        )
    )
    outcome: Outcome = "applied"
    if row is None:
        row = OccurrenceReply(
            meeting_id=meeting_id, person_id=person_id, recurrence_id=reply.recurrence_id,
            partstat=partstat, reply_sequence=reply.sequence, reply_dtstamp=reply.dtstamp,
        )  # fmt: skip
        session.add(row)
    elif _repeated(reply, partstat, row.reply_sequence, row.reply_dtstamp, row.partstat):
        outcome = "duplicate"
    elif not is_newer(reply, row.reply_sequence, row.reply_dtstamp):
        outcome = "stale"
    else:
        row.partstat = partstat
        row.reply_sequence = reply.sequence
        row.reply_dtstamp = reply.dtstamp
    return Taken(outcome, meeting_id, person_id, reply.recurrence_id, row.partstat)


async def responses(session: AsyncSession, meeting_id: int) -> list[tuple[Attendee, Person]]:
    """The attendees of a meeting with their people, in invitation order."""
    rows = await session.execute(
        select(Attendee, Person)
        .join(Person, Person.id == Attendee.person_id)
        .where(Attendee.meeting_id == meeting_id)
        .order_by(Attendee.id)
    )
    return [(a, p) for a, p in rows.all()]


async def occurrence_answers(session: AsyncSession, meeting_id: int) -> list[OccurrenceReply]:
    """The per-occurrence answers of a meeting, by person then occurrence."""
    rows = await session.scalars(
        select(OccurrenceReply)
        .where(OccurrenceReply.meeting_id == meeting_id)
        .order_by(OccurrenceReply.person_id, OccurrenceReply.recurrence_id)
    )
    return list(rows)
