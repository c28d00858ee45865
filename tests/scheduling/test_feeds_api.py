"""Calendar feeds at secret URLs (valid iCalendar that follows changes), who may get a
feed's URL, and the wiring of the lifecycle into the app (the end closes the conference)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestClient
from icalendar import Calendar

from rooms.db import Database
from rooms.models import Role, Unit
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import add_people, add_rooms, meeting_body, next_monday
from web import keys
from web.conference import HUB, LINKS

Client = TestClient[Any, Any]


async def _feed(client: Client, url: str) -> Calendar:
    response = await client.get(urlsplit(url).path)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/calendar" and response.charset == "utf-8"
    assert response.headers["ETag"]
    calendar = Calendar.from_ical(await response.read())
    assert "METHOD" not in calendar and calendar["VERSION"] == "2.0"
    return calendar


def _titles(calendar: Calendar) -> list[str]:
    return [str(e["SUMMARY"]) for e in calendar.walk("VEVENT")]


async def test_a_room_feed_lists_its_meetings_and_follows_changes(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    room, other_room = await add_rooms(db, city, 2)
    day = next_monday()
    created = await client.post(
        "/api/v1/meetings", json=meeting_body(city, day, room_ids=[room]), headers=h
    )
    meeting = await created.json()
    await client.post(
        "/api/v1/meetings", json=meeting_body(city, day, room_ids=[other_room], title="别的会"),
        headers=h,
    )  # fmt: skip
    response = await client.get(
        f"/api/v1/feeds/rooms/{room}", headers=await staff.headers(Role.STAFF)
    )
    assert response.status == 200
    url = (await response.json())["url"]
    assert url.startswith("http://127.0.0.1:8080/feeds/") and url.endswith(".ics")

    calendar = await _feed(client, url)
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == meeting["uid"] and "ATTENDEE" not in event
    assert event.decoded("DTSTART").astimezone(UTC) == day.replace(hour=10).astimezone(UTC)

    await client.patch(f"/api/v1/meetings/{meeting['id']}", json={"title": "改名"}, headers=h)
    assert _titles(await _feed(client, url)) == ["改名"]
    await client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=h)
    assert _titles(await _feed(client, url)) == []  # a cancelled meeting leaves the feed

    response = await client.get(urlsplit(url).path, headers={"If-None-Match": '"nope"'})
    etag = response.headers["ETag"]
    assert (await client.get(urlsplit(url).path, headers={"If-None-Match": etag})).status == 304


async def test_a_person_feed_is_theirs_or_the_secretariats_to_hand_out(
    client: Client, app: web.Application, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    email, me = await staff.account(Role.STAFF)
    login = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": "correct horse battery"}
    )
    mine = {"Authorization": f"Bearer {(await login.json())['token']}"}
    (someone,) = await add_people(db, city, 1)
    body = meeting_body(city, next_monday(), attendees=[{"person_id": me}])
    assert (await client.post("/api/v1/meetings", json=body, headers=h)).status == 201

    response = await client.get(f"/api/v1/feeds/people/{me}", headers=mine)
    assert response.status == 200
    assert _titles(await _feed(client, (await response.json())["url"])) == ["市政府常务会议"]
    assert (await client.get(f"/api/v1/feeds/people/{someone}", headers=mine)).status == 403
    response = await client.get(f"/api/v1/feeds/people/{someone}", headers=h)
    assert response.status == 200
    assert _titles(await _feed(client, (await response.json())["url"])) == []
    assert (await client.get("/api/v1/feeds/people/999999", headers=h)).status == 404

    links = app[LINKS]
    assert (await client.get(f"/feeds/{links.sign('join', 1, me)}.ics")).status == 404
    assert (await client.get(f"/feeds/{links.sign_feed('person', 999999)}.ics")).status == 404
    assert (await client.get("/feeds/not-a-token.ics")).status == 404


async def test_the_end_of_an_occurrence_closes_its_conference(
    client: Client, app: web.Application
) -> None:
    closed: list[str] = []

    async def end_conference(conference: str, reason: str = "ended") -> int:
        closed.append(conference)
        return 0

    app[HUB].end_conference = end_conference  # type: ignore[method-assign]
    lifecycle = app[keys.LIFECYCLE]
    assert lifecycle.on_ended is not None
    await lifecycle.on_ended(7, datetime(2026, 12, 1, 2, 0, tzinfo=UTC))
    assert closed == ["7@20261201T020000Z"]
