"""Room bookings under concurrent requests: one winner per slot, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database
from rooms.models import Role, Unit
from scheduling import bookings
from scheduling.models import Booking
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import add_rooms, at, meeting_body, next_monday, post

Client = TestClient[Any, Any]


async def _no_room_is_double_booked(db: Database) -> list[Booking]:
    async with db.read() as session:
        rows = list((await session.scalars(select(Booking))).all())
    for a, b in combinations(rows, 2):
        overlap = a.starts_at < b.ends_at and b.starts_at < a.ends_at
        assert not (a.room_id == b.room_id and overlap), (a.meeting_id, b.meeting_id)
    return rows


async def test_fifty_concurrent_bookings_of_each_slot_have_exactly_one_winner(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 2)
    day = next_monday()
    # two slots per room (10:00 and 11:00: back to back), 50 requests for each
    slots = [(room, hour) for room in rooms for hour in (10, 11)]
    bodies = [
        meeting_body(
            city,
            day,
            title=f"{room}-{hour}-{n}",
            room_ids=[room],
            start=at(day, hour),
            end=at(day, hour + 1),
        )
        for n in range(50)
        for room, hour in slots
    ]

    async def book(body: dict[str, Any]) -> tuple[str, int, Any]:
        response = await client.post("/api/v1/meetings", json=body, headers=h)
        return body["title"].rsplit("-", 1)[0], response.status, await response.json()

    results = await asyncio.gather(*(book(b) for b in bodies))
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {201: len(slots), 409: len(bodies) - len(slots)}, statuses
    winners = {slot: body["id"] for slot, status, body in results if status == 201}
    assert len(winners) == len(slots)  # one per slot
    for slot, status, body in results:
        if status == 409:
            assert body["error"] == "room_conflict"
            assert [c["meeting_id"] for c in body["conflicts"]] == [winners[slot]], body
    assert len(await _no_room_is_double_booked(db)) == len(slots)


async def test_recurring_and_single_meetings_racing_never_double_book(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    (room,) = await add_rooms(db, city, 1)
    day = next_monday()
    weekly = {"rrule": "FREQ=WEEKLY;COUNT=4"}
    daily = {"rrule": "FREQ=DAILY;COUNT=10"}
    bodies = []
    for n in range(8):
        bodies.append(meeting_body(city, day, title=f"weekly{n}", room_ids=[room], **weekly))
        bodies.append(
            meeting_body(city, day + timedelta(days=n), title=f"daily{n}", room_ids=[room], **daily)
        )
        for week in range(4):
            single = day + timedelta(weeks=week, days=n % 3)
            bodies.append(
                meeting_body(
                    city,
                    single,
                    title=f"single{n}-{week}",
                    room_ids=[room],
                    start=at(single, 10, 30),
                    end=at(single, 11, 30),
                )
            )

    async def book(body: dict[str, Any]) -> int:
        response = await client.post("/api/v1/meetings", json=body, headers=h)
        assert response.status in (201, 409), await response.text()
        return response.status

    statuses = Counter(await asyncio.gather(*(book(b) for b in bodies)))
    assert statuses[201] >= 1 and statuses[409] >= len(bodies) // 2, statuses
    rows = await _no_room_is_double_booked(db)
    assert rows and all(r.room_id == room for r in rows)
    # every booking belongs to a meeting that was answered 201, whole: no half-booked series
    per_meeting = Counter(r.meeting_id for r in rows)
    assert set(per_meeting.values()) <= {1, 4, 10}


async def test_back_to_back_meetings_share_a_room_and_cancelling_frees_it(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    day = next_monday()
    morning = await post(client, "/meetings", meeting_body(city, day, room_ids=rooms), h, 201)
    after = meeting_body(city, day, start=at(day, 11), end=at(day, 12), room_ids=rooms)
    before = meeting_body(city, day, start=at(day, 9), end=at(day, 10), room_ids=rooms)
    await post(client, "/meetings", after, h, 201)
    await post(client, "/meetings", before, h, 201)
    overlapping = meeting_body(city, day, start=at(day, 10, 59), end=at(day, 11, 1), room_ids=rooms)
    problem = await post(client, "/meetings", overlapping, h, 409)
    assert len(problem["conflicts"]) == 2
    await post(client, f"/meetings/{morning['id']}/cancel", None, h, 200)
    inside = meeting_body(city, day, start=at(day, 10, 15), end=at(day, 10, 45), room_ids=rooms)
    await post(client, "/meetings", inside, h, 201)


async def test_postgresql_itself_refuses_an_overlapping_booking(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite relies on the service")
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    held = await post(
        client, "/meetings", meeting_body(city, next_monday(), room_ids=rooms), h, 201
    )
    start = datetime.fromisoformat(held["start_utc"].replace("Z", "+00:00")).astimezone(UTC)
    row = {
        "room_id": rooms[0],
        "meeting_id": held["id"],
        "recurrence_id": start,
        "starts_at": start + timedelta(minutes=30),
        "ends_at": start + timedelta(hours=2),
    }
    with pytest.raises(IntegrityError) as caught:
        async with db.write() as session:
            await session.execute(insert(Booking), [row])
    assert getattr(caught.value.orig, "sqlstate", None) == "23P01"
    # back to back passes the constraint too ('[)' ranges)
    async with db.write() as session:
        await session.execute(
            insert(Booking),
            [
                {
                    **row,
                    "starts_at": start + timedelta(hours=1),
                    "ends_at": start + timedelta(hours=2),
                }
            ],
        )


async def test_a_booking_that_slips_past_the_check_is_refused_by_postgresql_with_its_holder(
    client: Client, staff: Staff, db: Database, city: Unit, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.dialect != "postgresql":
        pytest.skip("only PostgreSQL has the exclusion constraint behind the check")
    h = await staff.headers(Role.SECRETARIAT)
    rooms = await add_rooms(db, city, 1)
    body = meeting_body(city, next_monday(), room_ids=rooms)
    held = await post(client, "/meetings", body, h, 201)
    calls: list[int] = []

    async def unchecked(
        session: AsyncSession, meeting_id: int, wanted: Sequence[bookings.Wanted]
    ) -> list[bookings.Clash]:
        # as if another writer had slipped in between the check and the insert
        calls.append(1)
        await bookings.book(session, meeting_id, wanted)
        return []

    monkeypatch.setattr(bookings, "reserve", unchecked)
    problem = await post(client, "/meetings", body, h, 409)
    assert calls and [c["meeting_id"] for c in problem["conflicts"]] == [held["id"]]
    assert len(await _no_room_is_double_booked(db)) == 1
