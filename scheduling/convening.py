"""Emergency convening (应急指挥): an immediate meeting of chosen rooms, overriding bookings.

For administrators and the secretariat, through `web`. In one action: the rooms' bookings
that overlap the next ``duration`` are released (their meetings keep everything else; the
organiser of each is sent a plain notification email through the mail queue), then the
convened meeting is created through :class:`~scheduling.meetings.MeetingService`, so its
change listeners (invitations, terminal pushes) run as for any meeting. Telling the rooms'
terminals to join now is `web`'s part.

The release and the creation are two transactions (the meetings service owns its own): if
another booking takes a room in between, the release is done again (a few attempts).
Everything is validated before anything is released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database, utcnow
from rooms.models import Person, Room, Terminal, Unit, UnitKind
from scheduling import bookings
from scheduling.aftercommit import after_commit
from scheduling.bookings import Wanted
from scheduling.errors import InvalidMeeting, RoomConflict
from scheduling.mailqueue import enqueue
from scheduling.meetings import MeetingService
from scheduling.models import Booking, Meeting, MeetingMode
from scheduling.planning import Invitee, MeetingDraft

log = logging.getLogger(__name__)

ATTEMPTS = 3
MAX_DURATION = timedelta(hours=12)
_bookings: Table = Booking.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ConveneOrder:
    """What the person convening decides (rooms already chosen, see :meth:`Convening.rooms`)."""

    title: str
    organiser_id: int
    unit_id: int
    room_ids: tuple[int, ...]
    duration: timedelta
    tzid: str = "Asia/Shanghai"
    agenda: str = ""
    chair_id: int | None = None
    invitees: tuple[Invitee, ...] = ()
    unit_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleasedBooking:
    """A booking of another meeting that gave way (its organiser was notified)."""

    meeting_id: int
    title: str
    room_id: int
    room_name: str
    starts_at: datetime
    ends_at: datetime
    organiser_email: str | None


@dataclass(frozen=True, slots=True)
class Convened:
    meeting: Meeting
    room_ids: tuple[int, ...]
    released: list[ReleasedBooking] = field(default_factory=list)


class Convening:
    """Convenes immediate meetings over one :class:`Database` and meetings service."""

    def __init__(
        self,
        db: Database,
        meetings: MeetingService,
        *,
        mail_from: str,
        on_mail_queued: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.meetings = meetings
        self.mail_from = mail_from
        self.on_mail_queued = on_mail_queued
        self.clock = clock

    async def rooms(
        self, *, unit_kind: UnitKind | None, room_ids: Sequence[int], with_terminal: bool = True
    ) -> tuple[int, ...]:
        """The chosen rooms: ``room_ids`` as given, plus the rooms of every unit of
        ``unit_kind`` (only those with a terminal that is not revoked, if ``with_terminal``)."""
        chosen = set(room_ids)
        if unit_kind is not None:
            stmt = select(Room.id).join(Unit, Unit.id == Room.unit_id).where(Unit.kind == unit_kind)
            if with_terminal:
                stmt = stmt.where(
                    Room.id.in_(select(Terminal.room_id).where(Terminal.revoked_at.is_(None)))
                )
            async with self.db.read() as session:
                chosen |= set((await session.scalars(stmt)).all())
        if not chosen:
            raise InvalidMeeting(
                "no room to convene", fields={"room_ids": "choose rooms or a kind of unit"}
            )
        return tuple(sorted(chosen))

    async def convene(self, order: ConveneOrder, actor: str) -> Convened:
        """Release what is in the way, then create the meeting starting now."""
        if not timedelta(0) < order.duration <= MAX_DURATION:
            raise InvalidMeeting(
                "an emergency meeting lasts up to 12 hours", fields={"minutes": "out of range"}
            )
        start = self.clock().replace(microsecond=0)
        draft = MeetingDraft(
            title=order.title, unit_id=order.unit_id, organiser_id=order.organiser_id,
            start=start, end=start + order.duration, tzid=order.tzid, agenda=order.agenda,
            chair_id=order.chair_id, mode=MeetingMode.VIDEO, room_ids=order.room_ids,
            invitees=order.invitees, unit_ids=order.unit_ids, reminder_minutes=0,
        )  # fmt: skip
        await self.meetings.check(draft)  # invalid input fails before anything is released
        released: list[ReleasedBooking] = []
        for attempt in range(1, ATTEMPTS + 1):
            released.extend(await self._release(draft, order.title))
            try:
                saved = await self.meetings.create(draft, actor)
            except RoomConflict:
                if attempt == ATTEMPTS:
                    raise
                log.warning("a room was booked again while convening; releasing again")
                continue
            log.info(
                "convened meeting %s in rooms %s (%s bookings released) by %s",
                saved.meeting.id, list(order.room_ids), len(released), actor,
            )  # fmt: skip
            return Convened(saved.meeting, order.room_ids, released)
        raise AssertionError("unreachable")

    async def _release(self, draft: MeetingDraft, title: str) -> list[ReleasedBooking]:
        wanted = [Wanted(r, draft.start, draft.start, draft.end) for r in draft.room_ids]
        async with self.db.write() as session:
            await bookings.lock_rooms(session, draft.room_ids)
            clashes = await bookings.clashes(session, wanted, limit=10_000)
            released: list[ReleasedBooking] = []
            for clash in clashes:
                b = _bookings.c
                await session.execute(
                    delete(_bookings).where(
                        b.meeting_id == clash.meeting_id,
                        b.room_id == clash.room_id,
                        b.starts_at == clash.starts_at,
                    )
                )
                email = await _organiser_email(session, clash.meeting_id)
                released.append(
                    ReleasedBooking(
                        clash.meeting_id, clash.title, clash.room_id, clash.room_name,
                        clash.starts_at, clash.ends_at, email,
                    )
                )  # fmt: skip
            for item in released:
                if item.organiser_email:
                    message = released_notice(item, title, draft.tzid, self.mail_from)
                    enqueue(session, message, kind="room_released", meeting_id=item.meeting_id)
            if released and self.on_mail_queued is not None:
                after_commit(session, self.on_mail_queued)
        for item in released:
            log.info(
                "released room %s of meeting %s (%s) for an emergency meeting",
                item.room_id, item.meeting_id, item.starts_at.isoformat(),
            )  # fmt: skip
        return released


async def _organiser_email(session: AsyncSession, meeting_id: int) -> str | None:
    email: str | None = await session.scalar(
        select(Person.email)
        .join(Meeting, Meeting.organiser_id == Person.id)
        .where(Meeting.id == meeting_id)
    )
    return email


def released_notice(item: ReleasedBooking, convened: str, tzid: str, sender: str) -> EmailMessage:
    """The plain email telling an organiser their room was taken (Chinese, then English)."""
    zone = ZoneInfo(tzid)
    start = item.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    end = item.ends_at.astimezone(zone).strftime("%H:%M")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = item.organiser_email
    message["Subject"] = f"会议室已让出给应急会议：{item.title}"
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain="suimeet")
    message.set_content(
        f"您好：\n\n因召开应急会议「{convened}」，您组织的会议「{item.title}」"
        f"（{start}–{end}）在「{item.room_name}」的会议室预订已被释放。"
        "会议本身未取消，请另行安排会议室或调整时间。\n\n"
        f'Hello,\n\nThe booking of {item.room_name} for your meeting "{item.title}" '
        f'({start}–{end}, {tzid}) was released for the emergency meeting "{convened}". '
        "The meeting itself is not cancelled; please arrange another room or time.\n"
    )
    return message
