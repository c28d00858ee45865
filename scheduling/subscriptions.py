"""Calendar subscriptions: the feed of one room or one person, built from the database.

For `web`, which serves a feed at a secret URL (a signed ``feed`` token, see
:meth:`~scheduling.links.LinkSigner.sign_feed`). The feed is built on every request, so it
follows every change of the meetings in it. It holds the meetings that use the room, or
that the person organises, chairs or is invited to (unless they declined), from
:data:`PAST` ago on; cancelled meetings and occurrences drop out (see `scheduling.feeds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select

from rooms.db import Database, utcnow
from rooms.models import Person, Room
from scheduling import repository
from scheduling.calendar import Addresses, load_many
from scheduling.feeds import build_feed
from scheduling.itip import CalendarEvent, Locale
from scheduling.links import FeedClaim
from scheduling.models import Attendee, Meeting, MeetingRoom, MeetingStatus, Occurrence, PartStat

PAST = timedelta(days=90)
MAX_MEETINGS = 1000


@dataclass(frozen=True, slots=True)
class Feed:
    """A built feed: its name and the iCalendar bytes."""

    name: str
    body: bytes


async def build(
    db: Database,
    claim: FeedClaim,
    addresses: Addresses,
    *,
    locale: Locale = "zh-CN",
    tzid: str = "Asia/Shanghai",
    now: datetime | None = None,
) -> Feed | None:
    """The feed a token names, or None if its room or person no longer exists."""
    since = (now or utcnow()) - PAST
    recent = exists().where(Occurrence.meeting_id == Meeting.id, Occurrence.ends_at > since)
    stmt = select(Meeting).where(Meeting.status != MeetingStatus.CANCELLED, recent)
    async with db.read() as session:
        if claim.subject == "room":
            room = await session.get(Room, claim.subject_id)
            if room is None:
                return None
            name = room.name
            stmt = stmt.where(
                exists().where(MeetingRoom.meeting_id == Meeting.id, MeetingRoom.room_id == room.id)
            )
        else:
            person = await session.get(Person, claim.subject_id)
            if person is None:
                return None
            name = person.name
            invited = exists().where(
                Attendee.meeting_id == Meeting.id,
                Attendee.person_id == person.id,
                Attendee.partstat != PartStat.DECLINED,
            )
            stmt = stmt.where(or_(Meeting.organiser_id == person.id, invited))
        meetings = (
            await session.scalars(
                repository.with_details(stmt.order_by(Meeting.starts_at).limit(MAX_MEETINGS))
            )
        ).all()
        calendars = await load_many(session, meetings, addresses)
    events: list[CalendarEvent] = []
    for calendar in calendars:
        events += calendar.events
    title = f"{name} · SuiMeet"
    return Feed(title, build_feed(title, events, locale=locale, tzid=tzid))
