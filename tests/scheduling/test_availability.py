"""Free/busy of rooms and people, and the slot finder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import update

from rooms.db import Database
from rooms.models import Role, Unit
from scheduling.availability import OFFICE_HOURS, find_slots, merge
from scheduling.models import Attendee, PartStat
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import (
    add_people,
    add_rooms,
    at,
    meeting_body,
    next_monday,
    post,
    utc,
)

SH = ZoneInfo("Asia/Shanghai")
Client = TestClient[Any, Any]


def _local(day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute).astimezone(UTC)


def test_merging_joins_overlapping_and_touching_intervals() -> None:
    day = next_monday()
    a, b, c, d = (_local(day, h) for h in (9, 10, 11, 13))
    assert merge([(c, d), (a, b), (b, c)]) == [(a, d)]
    assert merge([(a, b), (c, d)]) == [(a, b), (c, d)]


def test_slots_skip_busy_time_weekends_and_hours_outside_work() -> None:
    monday = next_monday()
    friday = monday + timedelta(days=4)
    busy = [(_local(friday, 8, 30), _local(friday, 17, 0))]
    found = find_slots(
        busy,
        timedelta(hours=1),
        _local(friday, 0),
        _local(friday + timedelta(days=3), 23),
        zone=SH,
        hours=OFFICE_HOURS,
        step=timedelta(minutes=30),
        count=3,
    )
    next_week = friday + timedelta(days=3)
    assert found == [
        (_local(friday, 17), _local(friday, 18)),  # the last hour of Friday
        (_local(next_week, 8, 30), _local(next_week, 9, 30)),  # then Monday, not the weekend
        (_local(next_week, 9), _local(next_week, 10)),
    ]
    anytime = find_slots(
        busy,
        timedelta(hours=1),
        _local(friday, 8),
        _local(friday, 23),
        zone=SH,
        hours=None,
        step=timedelta(minutes=15),
        count=2,
    )
    assert anytime == [
        (_local(friday, 17), _local(friday, 18)),
        (_local(friday, 17, 15), _local(friday, 18, 15)),
    ]


async def test_free_busy_of_rooms_and_people(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 2)
    person, declined, idle = await add_people(db, city, 3)
    day = next_monday()
    held = await post(
        client,
        "/meetings",
        meeting_body(
            city,
            day,
            room_ids=rooms[:1],
            attendees=[{"person_id": person}, {"person_id": declined}],
            rrule="FREQ=DAILY;COUNT=3",
        ),
        h,
        201,
    )
    key2 = int(_local(day + timedelta(days=1), 10).timestamp())
    await post(client, f"/meetings/{held['id']}/occurrences/{key2}/cancel", None, h, 200)
    async with db.write() as session:
        await session.execute(
            update(Attendee)
            .where(Attendee.person_id == declined)
            .values(partstat=PartStat.DECLINED)
        )
    params = {
        "room_ids": [str(r) for r in rooms],
        "person_ids": [str(p) for p in (person, declined, idle)],
        "from": day.isoformat(),
        "to": (day + timedelta(days=7)).isoformat(),
    }
    response = await client.get("/api/v1/meetings/freebusy", params=list(_pairs(params)), headers=h)
    assert response.status == 200, await response.text()
    fb = await response.json()
    days = [0, 2]  # the second occurrence was cancelled
    expected = [
        (_local(day + timedelta(days=d), 10), _local(day + timedelta(days=d), 11)) for d in days
    ]
    room_busy = {r["room_id"]: r["busy"] for r in fb["rooms"]}
    assert [(utc(b["start_utc"]), utc(b["end_utc"])) for b in room_busy[rooms[0]]] == expected
    assert room_busy[rooms[1]] == []
    people = {p["person_id"]: p["busy"] for p in fb["people"]}
    assert [b["meeting_id"] for b in people[person]] == [held["id"]] * 2
    assert people[declined] == [] and people[idle] == []
    too_long = await client.get(
        "/api/v1/meetings/freebusy",
        params={"from": day.isoformat(), "to": (day + timedelta(days=200)).isoformat()},
        headers=h,
    )
    assert too_long.status == 422


async def test_slot_finder_offers_the_earliest_times_everyone_is_free(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    (person,) = await add_people(db, city, 1)
    day = next_monday()
    await post(
        client,
        "/meetings",
        meeting_body(city, day, start=at(day, 8, 30), end=at(day, 10), room_ids=rooms),
        h,
        201,
    )
    await post(
        client,
        "/meetings",
        meeting_body(
            city, day, start=at(day, 10), end=at(day, 11), attendees=[{"person_id": person}]
        ),
        h,
        201,
    )
    params = [
        ("room_ids", str(rooms[0])),
        ("person_ids", str(person)),
        ("from", day.isoformat()),
        ("duration_minutes", "90"),
        ("count", "2"),
    ]
    response = await client.get("/api/v1/meetings/slots", params=params, headers=h)
    assert response.status == 200, await response.text()
    slots = await response.json()
    assert [s["start_local"] for s in slots] == [at(day, 11), at(day, 11, 30)]
    assert slots[0]["end_local"] == at(day, 12, 30)
    bad = await client.get("/api/v1/meetings/slots", params={"tzid": "Nowhere/Land"}, headers=h)
    assert bad.status == 422 and "tzid" in (await bad.json())["fields"]


def _pairs(params: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((key, item))
    return out
