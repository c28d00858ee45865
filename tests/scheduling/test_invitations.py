"""Invitations go out through a real SMTP server on every change of a meeting, with
personal join and RSVP links that work."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Role, Unit
from tests.conftest import Inbox, Staff
from tests.scheduling.mail_fixtures import (
    arrived,
    attendees,
    by_recipient,
    calendar_part,
    events,
    link_paths,
    smtp_settings,
)
from tests.scheduling.meeting_fixtures import add_people, add_rooms, at, meeting_body, next_monday
from web.settings import Settings

Client = TestClient[Any, Any]


@pytest.fixture
def settings(settings: Settings, smtp_server: tuple[Inbox, int]) -> Iterator[Settings]:
    yield smtp_settings(settings, smtp_server[1])


@pytest.fixture
def inbox(smtp_server: tuple[Inbox, int]) -> Inbox:
    return smtp_server[0]


async def _create(client: Client, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.post("/api/v1/meetings", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def _partstats(client: Client, meeting_id: int, headers: dict[str, str]) -> dict[int, str]:
    response = await client.get(f"/api/v1/meetings/{meeting_id}/responses", headers=headers)
    assert response.status == 200, await response.text()
    return {a["person_id"]: a["partstat"] for a in (await response.json())["attendees"]}


async def test_a_new_meeting_sends_each_attendee_a_request_with_personal_links(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (room,) = await add_rooms(db, city, 1)
    chair, member, other = await add_people(db, city, 3)
    body = meeting_body(
        city, next_monday(), room_ids=[room], chair_id=chair,
        attendees=[{"person_id": member}, {"person_id": other, "role": "optional"}],
    )  # fmt: skip
    meeting = await _create(client, h, body)
    mails = by_recipient(await arrived(inbox, 3))
    assert set(mails) == {"p0@gz.gov.cn", "p1@gz.gov.cn", "p2@gz.gov.cn"}

    joins = set()
    for address, mail in mails.items():
        assert mail["Content-Class"] == "urn:content-classes:calendarmessage"
        method, calendar = calendar_part(mail)
        assert method == "REQUEST" and calendar["METHOD"] == "REQUEST"
        (event,) = events(calendar)
        assert str(event["UID"]) == meeting["uid"] and int(event["SEQUENCE"]) == 0
        people = attendees(event)
        assert address in people  # the recipient is an ATTENDEE
        assert people[f"room-{room}@localhost"].params["CUTYPE"] == "ROOM"
        assert people["p0@gz.gov.cn"].params["ROLE"] == "CHAIR"
        assert people["p2@gz.gov.cn"].params["ROLE"] == "OPT-PARTICIPANT"
        assert str(event["ORGANIZER"]).lower() == "mailto:suimeet@localhost"
        links = link_paths(mail)
        assert set(links) == {"join", "accept", "tentative", "decline"}
        assert links["join"].split("/")[-1] in str(event["URL"])
        joins.add(links["join"])
        page = await client.get(links["join"])
        assert page.status == 200
    assert len(joins) == 3  # personal links

    delivered = await client.get(f"/api/v1/meetings/{meeting['id']}/messages", headers=h)
    rows = await delivered.json()
    assert {(r["recipient"], r["kind"], r["status"]) for r in rows} == {
        (a, "request", "sent") for a in mails
    }
    assert all(r["attempts"] == 1 and r["sent_at"] and r["last_error"] is None for r in rows)


async def test_rsvp_links_show_a_page_on_get_and_record_only_on_post(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (member,) = await add_people(db, city, 1)
    meeting = await _create(
        client, h, meeting_body(city, next_monday(), attendees=[{"person_id": member}])
    )
    links = link_paths((await arrived(inbox, 1))[0])

    for _ in range(2):  # a mail scanner fetching the link changes nothing
        page = await client.get(links["decline"])
        assert page.status == 200 and "市政府常务会议" in await page.text()
    assert await _partstats(client, meeting["id"], h) == {member: "NEEDS-ACTION"}

    page = await client.post(links["decline"], data={"answer": "decline"})
    assert page.status == 200 and 'id="rsvp-result"' in await page.text()
    assert await _partstats(client, meeting["id"], h) == {member: "DECLINED"}
    page = await client.post(links["accept"].split("?")[0], data={"answer": "accept"})
    assert page.status == 200
    answers = await (
        await client.get(f"/api/v1/meetings/{meeting['id']}/responses", headers=h)
    ).json()
    (answer,) = answers["attendees"]
    assert answer["partstat"] == "ACCEPTED" and answer["reply_sequence"] == 0
    assert answer["replied_at"] is not None and answers["counts"] == {"ACCEPTED": 1}

    forged = links["accept"].replace("/rsvp/", "/rsvp/x")
    assert (await client.get(forged)).status == 404
    assert (await client.post(forged, data={"answer": "accept"})).status == 404
    assert (await client.post(links["accept"], data={"answer": "maybe"})).status == 400


async def test_an_update_sends_the_new_sequence_and_cancels_removed_attendees(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    stays, leaves, joins = await add_people(db, city, 3)
    day = next_monday()
    body = meeting_body(city, day, attendees=[{"person_id": stays}, {"person_id": leaves}])
    meeting = await _create(client, h, body)
    await arrived(inbox, 2)

    patch = {"start": at(day, 14), "end": at(day, 15),
             "attendees": [{"person_id": stays}, {"person_id": joins}]}  # fmt: skip
    response = await client.patch(f"/api/v1/meetings/{meeting['id']}", json=patch, headers=h)
    assert response.status == 200, await response.text()
    mails = by_recipient(await arrived(inbox, 3))
    for address in ("p0@gz.gov.cn", "p2@gz.gov.cn"):
        method, calendar = calendar_part(mails[address])
        (event,) = events(calendar)
        assert method == calendar["METHOD"] == "REQUEST"
        assert str(event["UID"]) == meeting["uid"] and int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART").astimezone(UTC) == day.replace(hour=14).astimezone(UTC)
        assert set(attendees(event)) == {"p0@gz.gov.cn", "p2@gz.gov.cn"}
    method, calendar = calendar_part(mails["p1@gz.gov.cn"])
    (event,) = events(calendar)
    assert method == calendar["METHOD"] == "CANCEL"
    assert str(event["UID"]) == meeting["uid"] and int(event["SEQUENCE"]) == 1
    assert set(attendees(event)) == {"p1@gz.gov.cn"} and "URL" not in event
    assert link_paths(mails["p1@gz.gov.cn"]) == {}

    # a change of the title only: the same SEQUENCE, sent again to everyone
    response = await client.patch(
        f"/api/v1/meetings/{meeting['id']}", json={"title": "新标题"}, headers=h
    )
    assert response.status == 200
    for mail in await arrived(inbox, 2):
        (event,) = events(calendar_part(mail)[1])
        assert int(event["SEQUENCE"]) == 1 and str(event["SUMMARY"]) == "新标题"


async def test_occurrence_changes_carry_the_recurrence_id(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (member,) = await add_people(db, city, 1)
    day = next_monday()
    body = meeting_body(city, day, rrule="FREQ=WEEKLY;COUNT=3", attendees=[{"person_id": member}])
    meeting = await _create(client, h, body)
    (first,) = await arrived(inbox, 1)
    (series,) = events(calendar_part(first)[1])
    assert "COUNT=3" in series["RRULE"].to_ical().decode()
    second = day.replace(hour=10) + timedelta(days=7)
    third = second + timedelta(days=7)
    key2, key3 = int(second.timestamp()), int(third.timestamp())

    moved = {"start": at(second, 16), "end": at(second, 17)}
    path = f"/api/v1/meetings/{meeting['id']}/occurrences"
    response = await client.patch(f"{path}/{key2}", json=moved, headers=h)
    assert response.status == 200, await response.text()
    (mail,) = await arrived(inbox, 1)
    method, calendar = calendar_part(mail)
    assert method == "REQUEST"
    master, override = events(calendar)
    assert "RECURRENCE-ID" not in master and int(master["SEQUENCE"]) == 1
    assert override.decoded("RECURRENCE-ID").astimezone(UTC) == second.astimezone(UTC)
    assert override.decoded("DTSTART").astimezone(UTC) == second.replace(hour=16).astimezone(UTC)
    assert str(override["UID"]) == meeting["uid"] and int(override["SEQUENCE"]) == 1

    response = await client.post(f"{path}/{key3}/cancel", headers=h)
    assert response.status == 200, await response.text()
    (mail,) = await arrived(inbox, 1)
    method, calendar = calendar_part(mail)
    (cancelled,) = events(calendar)
    assert method == calendar["METHOD"] == "CANCEL" and str(cancelled["STATUS"]) == "CANCELLED"
    assert cancelled.decoded("RECURRENCE-ID").astimezone(UTC) == third.astimezone(UTC)
    assert str(cancelled["UID"]) == meeting["uid"] and int(cancelled["SEQUENCE"]) == 2


async def test_cancelling_a_meeting_sends_cancel_to_everyone_and_closes_rsvp(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    people = await add_people(db, city, 2)
    body = meeting_body(city, next_monday(), attendees=[{"person_id": p} for p in people])
    meeting = await _create(client, h, body)
    links = link_paths((await arrived(inbox, 2))[0])

    response = await client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=h)
    assert response.status == 200
    for mail in await arrived(inbox, 2):
        method, calendar = calendar_part(mail)
        (event,) = events(calendar)
        assert method == calendar["METHOD"] == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
        assert str(event["UID"]) == meeting["uid"] and int(event["SEQUENCE"]) == 1
        assert mail["Subject"].startswith("会议取消")
    assert (await client.post(links["accept"], data={"answer": "accept"})).status == 409
    rows = await (await client.get(f"/api/v1/meetings/{meeting['id']}/messages", headers=h)).json()
    assert sorted(r["kind"] for r in rows) == ["cancel", "cancel", "request", "request"]


async def test_a_refused_change_sends_nothing(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (room,) = await add_rooms(db, city, 1)
    (member,) = await add_people(db, city, 1)
    day = next_monday()
    await _create(
        client, h, meeting_body(city, day, room_ids=[room], attendees=[{"person_id": member}])
    )
    await arrived(inbox, 1)
    clash = meeting_body(city, day, room_ids=[room], attendees=[{"person_id": member}])
    response = await client.post("/api/v1/meetings", json=clash, headers=h)
    assert response.status == 409
    await arrived(inbox, 0, timeout=0.5)


async def test_failed_delivery_is_shown_and_can_be_resent(
    client: Client, staff: Staff, db: Database, city: Unit, inbox: Inbox
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (member,) = await add_people(db, city, 1)
    inbox.refuse = 1
    meeting = await _create(
        client, h, meeting_body(city, next_monday(), attendees=[{"person_id": member}])
    )
    path = f"/api/v1/meetings/{meeting['id']}/messages"
    for _ in range(200):  # the first attempt is refused by the server
        (row,) = await (await client.get(path, headers=h)).json()
        if row["attempts"]:
            break
        await asyncio.sleep(0.05)
    assert row["status"] == "queued" and "451" in row["last_error"] and row["sent_at"] is None
    response = await client.post(f"/api/v1/messages/{row['id']}/resend", headers=h)
    assert response.status == 200 and (await response.json())["status"] == "queued"
    (mail,) = await arrived(inbox, 1)
    assert calendar_part(mail)[0] == "REQUEST"
    (row,) = await (await client.get(path, headers=h)).json()
    assert row["status"] == "sent"
    assert (await client.post("/api/v1/messages/999999/resend", headers=h)).status == 404
    staff_h = await staff.headers(Role.STAFF)
    assert (await client.get(path, headers=staff_h)).status == 403
