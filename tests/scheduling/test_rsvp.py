"""Attendees' answers through the reply gateway (iTIP REPLY as posted by real clients):
matched by UID and RECURRENCE-ID, taken only from the invitee, stale and repeated replies
ignored, COUNTER and garbage refused with nothing changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import Person, Role, Unit
from scheduling.events import WebhookEvent
from scheduling.models import (
    Attendee,
    AttendeeRole,
    Meeting,
    MeetingMode,
    MeetingStatus,
    Occurrence,
    PartStat,
)
from scheduling.rsvp import OccurrenceReply
from tests.conftest import Staff

Client = TestClient[Any, Any]
FIXTURES = Path(__file__).parent / "fixtures"
UID = "meeting-42@suimeet.gz.gov.cn"
FIRST = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # Mondays 09:30 Asia/Shanghai
EMAILS = ("zhangsan.gz@gmail.com", "li.si@gz.gov.cn", "wang.wu@gz.gov.cn", "zhao.liu@gz.gov.cn")


async def _meeting_42(db: Database, unit: Unit) -> dict[str, int]:
    """The meeting the fixtures answer: weekly from 2 March 2026, four times, SEQUENCE 3;
    everyone but zhao.liu is invited."""
    async with db.write() as session:
        people = [Person(name=e.split("@")[0], email=e, unit_id=unit.id) for e in EMAILS]
        session.add_all(people)
        await session.flush()
        meeting = Meeting(
            uid=UID, sequence=3, title="专题会议", agenda="", unit_id=unit.id,
            organiser_id=people[0].id, starts_at=FIRST, ends_at=FIRST + timedelta(minutes=90),
            tzid="Asia/Shanghai", rrule="FREQ=WEEKLY;COUNT=4", mode=MeetingMode.VIDEO,
            status=MeetingStatus.SCHEDULED, reminder_minutes=15, created_by="test",
        )  # fmt: skip
        session.add(meeting)
        await session.flush()
        for person in people[:3]:
            session.add(
                Attendee(meeting_id=meeting.id, person_id=person.id, role=AttendeeRole.REQUIRED)
            )
        for week in range(4):
            start = FIRST + timedelta(days=7 * week)
            session.add(
                Occurrence(
                    meeting_id=meeting.id, recurrence_id=start, starts_at=start,
                    ends_at=start + timedelta(minutes=90),
                )
            )  # fmt: skip
        return {"meeting": meeting.id, **{p.email: p.id for p in people}}


async def _state(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every answer stored: to meetings, and to occurrences."""
    async with db.read() as session:
        series = await session.execute(
            select(
                Attendee.person_id, Attendee.partstat, Attendee.reply_sequence,
                Attendee.reply_dtstamp,
            ).order_by(Attendee.person_id)
        )  # fmt: skip
        occurrences = await session.execute(
            select(
                OccurrenceReply.person_id, OccurrenceReply.recurrence_id,
                OccurrenceReply.partstat, OccurrenceReply.reply_sequence,
            ).order_by(OccurrenceReply.id)
        )  # fmt: skip
        return [tuple(r) for r in series.all()], [tuple(r) for r in occurrences.all()]


async def _post(
    client: Client, headers: dict[str, str], body: bytes, content_type: str = "text/calendar"
) -> tuple[int, Any]:
    response = await client.post(
        "/api/v1/itip/replies", data=body, headers={**headers, "Content-Type": content_type}
    )
    return response.status, await response.json()


@pytest.fixture
async def gateway(db: Database) -> dict[str, str]:
    """The mail gateway's credentials: an integration key with the itip:reply scope."""
    issued = await Accounts(db).create_key("mail gateway", ["itip:reply"], created_by=None)
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.mark.parametrize(
    ("fixture", "content_type", "email", "recurrence_id", "partstat"),
    [
        ("gmail_reply.ics", "text/calendar", EMAILS[0], None, "ACCEPTED"),
        ("gmail_reply.eml", "message/rfc822", EMAILS[0], None, "ACCEPTED"),
        ("outlook_reply.ics", "text/calendar", EMAILS[1], FIRST + timedelta(days=14), "DECLINED"),
        ("outlook_reply.eml", "message/rfc822", EMAILS[1], FIRST + timedelta(days=14), "DECLINED"),
        ("thunderbird_reply.ics", "text/calendar", EMAILS[2], FIRST + timedelta(days=21),
         "TENTATIVE"),
    ],
)  # fmt: skip
async def test_replies_of_real_clients_are_taken(
    client: Client,
    db: Database,
    city: Unit,
    gateway: dict[str, str],
    fixture: str,
    content_type: str,
    email: str,
    recurrence_id: datetime | None,
    partstat: str,
) -> None:
    ids = await _meeting_42(db, city)
    body = (FIXTURES / fixture).read_bytes()
    status, answer = await _post(client, gateway, body, content_type)
    assert status == 200, answer
    assert answer["outcome"] == "applied" and answer["partstat"] == partstat
    assert answer["person_id"] == ids[email] and answer["meeting_id"] == ids["meeting"]
    series, occurrences = await _state(db)
    if recurrence_id is None:
        assert (ids[email], PartStat(partstat), 2) == series[0][:3]
        assert occurrences == []
    else:
        assert occurrences == [(ids[email], recurrence_id, PartStat(partstat), 3)]
        assert all(row[1] == PartStat.NEEDS_ACTION for row in series)  # the series unchanged

    again = await _post(client, gateway, body, content_type)  # a replay changes nothing
    assert again[0] == 200 and again[1]["outcome"] == "duplicate"
    assert await _state(db) == (series, occurrences)
    async with db.read() as session:  # one rsvp.changed event for the OA system, not two
        events = (
            await session.scalars(select(WebhookEvent).where(WebhookEvent.type == "rsvp.changed"))
        ).all()
    assert len(events) == 1
    data = json.loads(events[0].body)["data"]
    assert (data["person_id"], data["partstat"], data["via"]) == (ids[email], partstat, "itip")


async def test_answers_are_listed_per_attendee_and_occurrence(
    client: Client, db: Database, city: Unit, gateway: dict[str, str], staff: Staff
) -> None:
    ids = await _meeting_42(db, city)
    for name in ("gmail_reply.ics", "outlook_reply.ics"):
        assert (await _post(client, gateway, (FIXTURES / name).read_bytes()))[0] == 200
    h = await staff.headers(Role.SECRETARIAT)
    response = await client.get(f"/api/v1/meetings/{ids['meeting']}/responses", headers=h)
    body = await response.json()
    assert body["counts"] == {"ACCEPTED": 1, "NEEDS-ACTION": 2} and body["sequence"] == 3
    by_email = {a["email"]: a for a in body["attendees"]}
    assert by_email[EMAILS[0]]["partstat"] == "ACCEPTED"
    (declined,) = by_email[EMAILS[1]]["occurrences"]
    assert declined["partstat"] == "DECLINED"
    assert declined["recurrence_id"].startswith("2026-03-16T01:30:00")


async def test_an_older_reply_is_ignored(
    client: Client, db: Database, city: Unit, gateway: dict[str, str]
) -> None:
    ids = await _meeting_42(db, city)
    # the attendee already declined version 3 (with a link): Gmail's accept of version 2
    # arrives late and must not win
    async with db.write() as session:
        attendee = await session.scalar(
            select(Attendee).where(Attendee.person_id == ids[EMAILS[0]])
        )
        assert attendee is not None
        attendee.partstat, attendee.reply_sequence = PartStat.DECLINED, 3
        attendee.reply_dtstamp = datetime(2026, 2, 1, tzinfo=UTC)
    before = await _state(db)
    status, answer = await _post(client, gateway, (FIXTURES / "gmail_reply.ics").read_bytes())
    assert status == 200 and answer["outcome"] == "stale" and answer["partstat"] == "DECLINED"
    assert await _state(db) == before

    # same SEQUENCE: the later DTSTAMP wins, an earlier one does not
    text = (FIXTURES / "thunderbird_reply.ics").read_text()
    newer = text.replace("DTSTAMP:20260216T011500Z", "DTSTAMP:20260217T000000Z")
    older = text.replace("PARTSTAT=TENTATIVE", "PARTSTAT=DECLINED")
    assert (await _post(client, gateway, newer.encode()))[1]["outcome"] == "applied"
    status, answer = await _post(client, gateway, older.encode())
    assert answer["outcome"] == "stale" and answer["partstat"] == "TENTATIVE"


@pytest.mark.parametrize(
    ("change", "content_type", "status", "code"),
    [
        # the ATTENDEE is a person we know who is not invited, or nobody we know
        (("zhangsan.gz@gmail.com", "zhao.liu@gz.gov.cn"), "text/calendar", 403, "not_an_attendee"),
        (("zhangsan.gz@gmail.com", "x@example.com"), "text/calendar", 403, "not_an_attendee"),
        # an email from someone else answering for the attendee
        (("From: zhang san <zhangsan.gz@gmail.com>", "From: <mallory@example.com>"),
         "message/rfc822", 403, "sender_mismatch"),
        (("METHOD:REPLY", "METHOD:COUNTER"), "text/calendar", 422, "counter_not_supported"),
        (("UID:meeting-42", "UID:meeting-43"), "text/calendar", 404, "unknown_meeting"),
        (("SEQUENCE:2", "SEQUENCE:9"), "text/calendar", 422, "reply_sequence_ahead"),
        (("BEGIN:VEVENT", "BEGIN:VTODO"), "text/calendar", 422, "reply_no_event"),
        (("UID:", "X-UID:"), "text/calendar", 422, "reply_no_uid"),
        (("BEGIN:VCALENDAR", "garbage"), "text/calendar", 422, "reply_unparseable"),
        (("BEGIN:VCALENDAR", "BEGIN:VCALENDAR"), "application/json", 415, "unsupported_media_type"),
    ],
)  # fmt: skip
async def test_replies_that_are_not_the_invitees_own_or_not_replies_are_refused(
    client: Client,
    db: Database,
    city: Unit,
    gateway: dict[str, str],
    change: tuple[str, str],
    content_type: str,
    status: int,
    code: str,
) -> None:
    await _meeting_42(db, city)
    name = "gmail_reply.eml" if content_type == "message/rfc822" else "gmail_reply.ics"
    text = (FIXTURES / name).read_text()
    assert change[0] in text
    before = await _state(db)
    got, problem = await _post(client, gateway, text.replace(*change).encode(), content_type)
    assert (got, problem["error"]) == (status, code), problem
    assert problem["message"]
    assert await _state(db) == before


async def test_only_the_gateway_and_admins_may_post_replies(
    client: Client, db: Database, city: Unit, staff: Staff
) -> None:
    await _meeting_42(db, city)
    body = (FIXTURES / "gmail_reply.ics").read_bytes()
    meetings_key = await Accounts(db).create_key("oa", ["meetings:write"], created_by=None)
    assert (await _post(client, {"Authorization": f"Bearer {meetings_key.token}"}, body))[0] == 403
    assert (await _post(client, await staff.headers(Role.SECRETARIAT), body))[0] == 403
    assert (await _post(client, {}, body))[0] == 401
    assert (await _post(client, await staff.headers(Role.ADMIN), body))[0] == 200


async def test_a_cancelled_meeting_takes_no_answers(
    client: Client, db: Database, city: Unit, gateway: dict[str, str]
) -> None:
    await _meeting_42(db, city)
    async with db.write() as session:
        meeting = await session.scalar(select(Meeting).where(Meeting.uid == UID))
        assert meeting is not None
        meeting.status = MeetingStatus.CANCELLED
    status, problem = await _post(client, gateway, (FIXTURES / "gmail_reply.ics").read_bytes())
    assert (status, problem["error"]) == (409, "meeting_cancelled")
