"""The meetings REST API: create, read, list, change, cancel, occurrences, access, bad input,
and the change hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import Role, Unit, UnitKind
from scheduling.changes import MeetingChange
from scheduling.models import Attendee, Meeting, PartStat
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import (
    add_people,
    add_rooms,
    at,
    counts,
    meeting_body,
    next_monday,
    post,
    utc,
)
from web import keys

Client = TestClient[Any, Any]


async def test_secretariat_creates_reads_and_lists_a_meeting(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    chair, member = await add_people(db, city, 2)
    async with db.write() as session:
        district = Unit(name="天河区人民政府", kind=UnitKind.DISTRICT)
        session.add(district)
    district_people = await add_people(db, district, 3, tag="th")
    day = next_monday()
    body = meeting_body(
        city,
        day,
        room_ids=rooms,
        chair_id=chair,
        unit_ids=[district.id],
        attendees=[{"person_id": member, "role": "optional"}],
    )
    created = await post(client, "/meetings", body, h, 201)
    assert created["uid"].endswith("@suimeet") and created["sequence"] == 0
    assert created["start_local"] == at(day, 10) and created["start_utc"].endswith("Z")
    assert utc(created["start_utc"]) == day.replace(hour=10).astimezone(UTC)
    assert created["tzid"] == "Asia/Shanghai" and created["reminder_minutes"] == 15
    assert created["doc_ref"] == "穗府办〔2010〕41号" and created["status"] == "scheduled"
    roles = {a["person_id"]: (a["role"], a["via_unit_id"]) for a in created["attendees"]}
    assert roles == {
        chair: ("chair", None),
        member: ("optional", None),
        **{p: ("required", district.id) for p in district_people},
    }
    assert all(a["partstat"] == "NEEDS-ACTION" for a in created["attendees"])
    assert created["room_ids"] == rooms and created["warnings"] == []

    got = await (await client.get(f"/api/v1/meetings/{created['id']}", headers=h)).json()
    assert {k: v for k, v in got.items()} == {k: v for k, v in created.items() if k != "warnings"}
    week = {"from": day.isoformat(), "to": (day + timedelta(days=7)).isoformat()}
    for params, total in (
        (week, 1),
        ({"room_id": rooms[0]}, 1),
        ({"person_id": district_people[0]}, 1),
        ({"unit_id": city.id, "status": "scheduled"}, 1),
        ({"status": "cancelled"}, 0),
        ({"q": "41号"}, 1),
        ({"from": (day + timedelta(days=1)).isoformat()}, 0),
    ):
        page = await (await client.get("/api/v1/meetings", params=params, headers=h)).json()
        assert page["total"] == total, params


async def test_staff_see_only_meetings_they_take_part_in(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    sec = await staff.headers(Role.SECRETARIAT)
    email, person_id = await staff.account(Role.STAFF, "clerk@gz.gov.cn")
    token = await client.post(
        "/api/v1/auth/token", json={"email": email, "password": "correct horse battery"}
    )
    mine = {"Authorization": f"Bearer {(await token.json())['token']}"}
    day = next_monday()
    theirs = await post(client, "/meetings", meeting_body(city, day, title="别的会"), sec, 201)
    invited = await post(
        client,
        "/meetings",
        meeting_body(city, day, title="我的会", attendees=[{"person_id": person_id}]),
        sec,
        201,
    )
    listed = await (await client.get("/api/v1/meetings", headers=mine)).json()
    assert [m["title"] for m in listed["items"]] == ["我的会"] and listed["total"] == 1
    assert (await client.get(f"/api/v1/meetings/{invited['id']}", headers=mine)).status == 200
    hidden = await client.get(f"/api/v1/meetings/{theirs['id']}", headers=mine)
    assert hidden.status == 404 and (await hidden.json())["error"] == "not_found"
    occurrences = await client.get(f"/api/v1/meetings/{theirs['id']}/occurrences", headers=mine)
    assert occurrences.status == 404
    # free/busy shows the hidden meeting as anonymous busy time
    params = {"person_ids": [person_id], "from": day.isoformat()}
    fb = await (await client.get("/api/v1/meetings/freebusy", params=params, headers=mine)).json()
    assert [b["title"] for b in fb["people"][0]["busy"]] == ["我的会"]
    refused = await client.post("/api/v1/meetings", json=meeting_body(city, day), headers=mine)
    assert refused.status == 403


async def test_integration_keys_with_meeting_scopes_act_like_the_secretariat(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    (organiser,) = await add_people(db, city, 1)
    issued = await Accounts(db).create_key("OA", ["meetings:read", "meetings:write"], None)
    key = {"Authorization": f"Bearer {issued.token}"}
    body = meeting_body(city, next_monday())
    missing = await post(client, "/meetings", body, key, 422)
    assert "organiser_id" in missing["fields"]
    created = await post(client, "/meetings", {**body, "organiser_id": organiser}, key, 201)
    assert created["created_by"] == f"apikey:{issued.key.id}"
    reader = await Accounts(db).create_key("OA-read", ["meetings:read"], None)
    read = {"Authorization": f"Bearer {reader.token}"}
    assert (await client.get(f"/api/v1/meetings/{created['id']}", headers=read)).status == 200
    assert (await client.post("/api/v1/meetings", json=body, headers=read)).status == 403


def _bad_cases(unit_id: int, day: datetime) -> list[tuple[str, dict[str, Any], int, str]]:
    now = datetime.now(UTC)
    return [
        ("invalid rrule", {"rrule": "FREQ=YEARLY;COUNT=2"}, 422, "rrule"),
        ("endless rrule", {"rrule": "FREQ=DAILY"}, 422, "rrule"),
        ("end before start", {"end": at(day, 9)}, 422, "end"),
        ("zero duration", {"end": at(day, 10)}, 422, "end"),
        ("over 24 hours", {"end": (day + timedelta(days=1, hours=11)).isoformat()}, 422, "end"),
        ("unknown room", {"room_ids": [999_999]}, 422, "room_ids"),
        ("unknown person", {"attendees": [{"person_id": 999_999}]}, 422, "attendees"),
        ("unknown chair", {"chair_id": 999_999}, 422, "chair_id"),
        ("unknown unit", {"unit_id": 999_999}, 422, "unit_id"),
        ("unknown unit invited", {"unit_ids": [999_999]}, 422, "unit_ids"),
        (
            "in the past",
            {
                "start": (now - timedelta(minutes=10)).isoformat(),
                "end": (now + timedelta(hours=1)).isoformat(),
            },
            422,
            "start",
        ),
        ("title too long", {"title": "会" * 201}, 422, "title"),
        ("empty title", {"title": "  "}, 422, "title"),
        ("agenda too long", {"agenda": "议" * 20_001}, 422, "agenda"),
        ("doc_ref too long", {"doc_ref": "号" * 101}, 422, "doc_ref"),
        ("unknown tzid", {"tzid": "Mars/Olympus_Mons"}, 422, "tzid"),
        ("unknown field", {"colour": "red"}, 422, "colour"),
        ("bad mode", {"mode": "telepathy"}, 422, "mode"),
        ("negative reminder", {"reminder_minutes": -1}, 422, "reminder_minutes"),
        ("not a time", {"start": "next tuesday"}, 422, "start"),
    ]


async def test_bad_input_is_refused_clearly_and_nothing_is_stored(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    day = next_monday()
    before = await counts(db)
    for name, change, status, field in _bad_cases(city.id, day):
        body = meeting_body(city, day, **change)
        problem = await post(client, "/meetings", body, h, status)
        assert field in problem["fields"], (name, problem)
        assert problem["message"], name
        assert await counts(db) == before, name
    # a start within the grace period is fine
    now = datetime.now(UTC)
    recent = meeting_body(
        city,
        day,
        start=(now - timedelta(minutes=2)).isoformat(),
        end=(now + timedelta(hours=1)).isoformat(),
    )
    await post(client, "/meetings", recent, h, 201)


async def test_bad_changes_are_refused_and_leave_the_meeting_as_it_was(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    day = next_monday()
    rooms = await add_rooms(db, city, 1)
    created = await post(client, "/meetings", meeting_body(city, day, room_ids=rooms), h, 201)
    path = f"/api/v1/meetings/{created['id']}"
    before = await counts(db)
    for name, change, status, field in [
        *_bad_cases(city.id, day),
        ("null title", {"title": None}, 422, "title"),
    ]:
        response = await client.patch(path, json=change, headers=h)
        assert response.status == status, (name, await response.text())
        assert field in (await response.json())["fields"], name
        assert await counts(db) == before, name
    unchanged = await (await client.get(path, headers=h)).json()
    assert unchanged == {k: v for k, v in created.items() if k != "warnings"}


async def test_changes_bump_the_sequence_only_when_significant(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 2)
    (person,) = await add_people(db, city, 1)
    day = next_monday()
    body = meeting_body(city, day, room_ids=rooms[:1], attendees=[{"person_id": person}])
    created = await post(client, "/meetings", body, h, 201)
    path = f"/api/v1/meetings/{created['id']}"
    async with db.write() as session:
        await session.execute(update(Attendee).values(partstat=PartStat.ACCEPTED))

    async def patch(change: dict[str, Any]) -> dict[str, Any]:
        response = await client.patch(path, json=change, headers=h)
        assert response.status == 200, await response.text()
        data: dict[str, Any] = await response.json()
        return data

    renamed = await patch({"title": "新标题", "agenda": "", "reminder_minutes": 30})
    assert renamed["sequence"] == 0 and renamed["attendees"][0]["partstat"] == "ACCEPTED"
    moved = await patch({"start": at(day, 14), "end": at(day, 15)})
    assert moved["sequence"] == 1 and moved["attendees"][0]["partstat"] == "NEEDS-ACTION"
    assert moved["start_local"] == at(day, 14)
    rehoused = await patch({"room_ids": rooms[1:]})
    assert rehoused["sequence"] == 2 and rehoused["room_ids"] == rooms[1:]
    # the old room is free again at the new time, the new one is taken
    free = await post(
        client,
        "/meetings/check",
        meeting_body(city, day, start=at(day, 14), end=at(day, 15), room_ids=rooms),
        h,
        200,
    )
    assert [c["room_id"] for c in free["conflicts"]] == rooms[1:]
    naive = await patch({"start": "2099-01-05T09:00:00", "end": "2099-01-05T10:00:00"})
    assert naive["start_local"] == "2099-01-05T09:00:00+08:00"
    cleared = await patch({"doc_ref": None, "chair_id": None})
    assert cleared["doc_ref"] is None


async def test_cancelling_frees_the_rooms_and_closes_the_meeting(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    body = meeting_body(city, next_monday(), room_ids=rooms)
    first = await post(client, "/meetings", body, h, 201)
    await post(client, "/meetings", body, h, 409)
    cancelled = await post(client, f"/meetings/{first['id']}/cancel", None, h, 200)
    assert cancelled["status"] == "cancelled" and cancelled["sequence"] == 1
    again = await post(client, f"/meetings/{first['id']}/cancel", None, h, 200)
    assert again["sequence"] == 1
    await post(client, "/meetings", body, h, 201)
    closed = await client.patch(f"/api/v1/meetings/{first['id']}", json={"title": "x"}, headers=h)
    assert closed.status == 409 and (await closed.json())["error"] == "meeting_closed"
    assert (await client.post("/api/v1/meetings/999999/cancel", headers=h)).status == 404


async def test_one_occurrence_is_cancelled_moved_or_ends_the_series(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    day = next_monday()
    series = await post(
        client,
        "/meetings",
        meeting_body(city, day, room_ids=rooms, rrule="FREQ=WEEKLY;COUNT=5"),
        h,
        201,
    )
    mid = series["id"]
    params = {"from": day.isoformat(), "to": (day + timedelta(days=60)).isoformat()}
    listed = await (
        await client.get(f"/api/v1/meetings/{mid}/occurrences", params=params, headers=h)
    ).json()
    keys_ = [o["key"] for o in listed]
    assert len(keys_) == 5

    # cancel the second: its slot is free for another meeting, the others are not
    cancelled = await post(client, f"/meetings/{mid}/occurrences/{keys_[1]}/cancel", None, h, 200)
    assert cancelled["sequence"] == 1 and cancelled["exceptions"][0]["kind"] == "cancelled"
    week2 = day + timedelta(weeks=1)
    await post(client, "/meetings", meeting_body(city, week2, room_ids=rooms), h, 201)
    await post(client, "/meetings", meeting_body(city, day, room_ids=rooms), h, 409)

    # move the third to the afternoon: the morning slot frees, the afternoon one is held
    week3 = day + timedelta(weeks=2)
    moved = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/{keys_[2]}",
        json={"start": at(week3, 15), "end": at(week3, 17)},
        headers=h,
    )
    assert moved.status == 200, await moved.text()
    await post(client, "/meetings", meeting_body(city, week3, room_ids=rooms), h, 201)
    clash = await post(
        client,
        "/meetings",
        meeting_body(city, week3, start=at(week3, 16), end=at(week3, 18), room_ids=rooms),
        h,
        409,
    )
    assert clash["conflicts"][0]["meeting_id"] == mid
    # moving onto a taken slot is refused with the holder named
    refused = await client.patch(
        f"/api/v1/meetings/{mid}/occurrences/{keys_[2]}",
        json={"start": at(week3, 10), "end": at(week3, 11)},
        headers=h,
    )
    assert refused.status == 409

    # cancel from the fourth on: the series ends after the third
    ended = await post(
        client, f"/meetings/{mid}/occurrences/{keys_[3]}/cancel?scope=following", None, h, 200
    )
    assert "UNTIL=" in ended["rrule"] and "COUNT" not in ended["rrule"]
    after = await (
        await client.get(f"/api/v1/meetings/{mid}/occurrences", params=params, headers=h)
    ).json()
    assert [(o["key"], o["status"], o["moved"]) for o in after] == [
        (keys_[0], "scheduled", False),
        (keys_[1], "cancelled", False),
        (keys_[2], "scheduled", True),
    ]
    week4 = day + timedelta(weeks=3)
    await post(client, "/meetings", meeting_body(city, week4, room_ids=rooms), h, 201)
    unknown = await client.post(f"/api/v1/meetings/{mid}/occurrences/12345/cancel", headers=h)
    assert unknown.status == 404


async def test_this_and_following_splits_the_series_and_tells_the_listeners(
    app: web.Application, client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 2)
    seen: list[MeetingChange] = []

    async def listener(session: AsyncSession, change: MeetingChange) -> None:
        seen.append(change)

    app[keys.MEETING_LISTENERS].append(listener)
    day = next_monday()
    series = await post(
        client,
        "/meetings",
        meeting_body(city, day, room_ids=rooms[:1], rrule="FREQ=WEEKLY;COUNT=4"),
        h,
        201,
    )
    assert [c.kind for c in seen] == ["created"] and seen[0].meeting_id == series["id"]
    key3 = int((day + timedelta(weeks=2)).replace(hour=10).timestamp())
    tail = await post(
        client,
        f"/meetings/{series['id']}/occurrences/{key3}/split",
        {"room_ids": rooms[1:], "title": "改在二号会议室"},
        h,
        201,
    )
    assert tail["id"] != series["id"] and tail["uid"] != series["uid"]
    assert tail["split_from_id"] == series["id"] and tail["rrule"] == "FREQ=WEEKLY;COUNT=2"
    assert tail["room_ids"] == rooms[1:] and tail["title"] == "改在二号会议室"
    assert [(c.kind, c.meeting_id, c.significant) for c in seen[1:]] == [
        ("updated", series["id"], True),
        ("created", tail["id"], True),
    ]
    head = await (await client.get(f"/api/v1/meetings/{series['id']}", headers=h)).json()
    assert head["sequence"] == 1 and "UNTIL=" in head["rrule"]
    params = {"from": day.isoformat(), "to": (day + timedelta(days=40)).isoformat()}
    everything = await (
        await client.get("/api/v1/meetings/occurrences", params=params, headers=h)
    ).json()
    assert [(o["meeting_id"], o["start_local"][:10]) for o in everything] == [
        (series["id"], (day + timedelta(weeks=w)).date().isoformat()) for w in range(2)
    ] + [(tail["id"], (day + timedelta(weeks=w)).date().isoformat()) for w in range(2, 4)]
    # room 1 is free from the third week on, room 2 is taken then
    await post(
        client,
        "/meetings/check",
        meeting_body(city, day + timedelta(weeks=3), room_ids=rooms[:1]),
        h,
        200,
    )
    check = await post(
        client,
        "/meetings/check",
        meeting_body(city, day + timedelta(weeks=3), room_ids=rooms[1:]),
        h,
        200,
    )
    assert check["ok"] is False and check["conflicts"][0]["meeting_id"] == tail["id"]


async def test_a_listener_sees_the_change_inside_the_transaction_and_can_veto_it(
    app: web.Application, client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (person,) = await add_people(db, city, 1)
    rooms = await add_rooms(db, city, 1)
    seen: list[MeetingChange] = []
    fail = False

    async def listener(session: AsyncSession, change: MeetingChange) -> None:
        # the change is flushed: the listener reads it in the same transaction
        meeting = await session.get(Meeting, change.meeting_id)
        assert meeting is not None and meeting.sequence >= 0
        seen.append(change)
        if fail:
            raise RuntimeError("outbox unavailable")

    app[keys.MEETING_LISTENERS].append(listener)
    day = next_monday()
    body = meeting_body(city, day, room_ids=rooms, attendees=[{"person_id": person}])
    created = await post(client, "/meetings", body, h, 201)
    assert seen[-1] == MeetingChange(
        kind="created",
        meeting_id=created["id"],
        recurrence_id=None,
        significant=True,
        added_person_ids=(person,),
        removed_person_ids=(),
        removed_room_ids=(),
        actor=created["created_by"],
    )
    changed = await client.patch(
        f"/api/v1/meetings/{created['id']}", json={"attendees": [], "room_ids": []}, headers=h
    )
    assert changed.status == 200
    assert (seen[-1].kind, seen[-1].removed_person_ids, seen[-1].removed_room_ids) == (
        "updated",
        (person,),
        tuple(rooms),
    )
    fail = True
    before = await counts(db)
    broken = await client.post("/api/v1/meetings", json=body, headers=h)
    assert broken.status == 500
    assert await counts(db) == before
    refused = await client.post(f"/api/v1/meetings/{created['id']}/cancel", headers=h)
    assert refused.status == 500
    still = await (await client.get(f"/api/v1/meetings/{created['id']}", headers=h)).json()
    assert still["status"] == "scheduled"


async def test_checking_reports_conflicts_and_warnings_without_saving(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    (busy_person,) = await add_people(db, city, 1)
    day = next_monday()
    first = meeting_body(city, day, room_ids=rooms, attendees=[{"person_id": busy_person}])
    held = await post(client, "/meetings", first, h, 201)
    before = await counts(db)
    report = await post(client, "/meetings/check", first, h, 200)
    assert report["ok"] is False
    assert report["conflicts"] == [
        {
            "meeting_id": held["id"],
            "title": "市政府常务会议",
            "room_id": rooms[0],
            "room_name": "会议室0",
            "start_utc": held["start_utc"],
            "end_utc": held["end_utc"],
        }
    ]
    assert [(w["person_id"], w["meeting_id"]) for w in report["warnings"]] == [
        (busy_person, held["id"])
    ]
    assert await counts(db) == before
    problem = await post(client, "/meetings", first, h, 409)
    assert problem["error"] == "room_conflict" and problem["conflicts"] == [
        {**report["conflicts"][0]}
    ]
    # checking a change of the meeting itself does not clash with its own booking
    own = await post(client, f"/meetings/{held['id']}/check", {"end": at(day, 12)}, h, 200)
    assert own == {"ok": True, "conflicts": [], "warnings": []}
    # back to back is fine
    after = meeting_body(city, day, start=at(day, 11), end=at(day, 12), room_ids=rooms)
    assert (await post(client, "/meetings/check", after, h, 200))["ok"] is True


@pytest.mark.parametrize("path", ["/meetings", "/meetings/occurrences", "/meetings/slots"])
async def test_reading_lists_need_no_parameters(client: Client, staff: Staff, path: str) -> None:
    h = await staff.headers(Role.STAFF)
    assert (await client.get(f"/api/v1{path}", headers=h)).status == 200


async def test_the_openapi_document_describes_the_meetings_api(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    paths = spec["paths"]
    assert "post" in paths["/api/v1/meetings"] and "get" in paths["/api/v1/meetings/slots"]
    assert "409" in paths["/api/v1/meetings"]["post"]["responses"]
    assert "MeetingIn" in spec["components"]["schemas"]
