"""Shared set-up of the scheduling API tests: rooms, people, times and meeting bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from rooms.db import Database
from rooms.models import Person, Room, Unit
from scheduling.models import Attendee, Booking, Meeting, MeetingException, Occurrence

SHANGHAI = ZoneInfo("Asia/Shanghai")


def next_monday(weeks: int = 1) -> datetime:
    """Local midnight of a Monday at least a few days ahead (stable working-hours tests)."""
    today = datetime.now(SHANGHAI).date()
    monday = today + timedelta(days=7 * weeks - today.weekday())
    return datetime.combine(monday, datetime.min.time(), tzinfo=SHANGHAI)


def at(day: datetime, hour: int, minute: int = 0) -> str:
    """ISO local time with offset for ``hour:minute`` on ``day``."""
    return day.replace(hour=hour, minute=minute).isoformat()


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def add_rooms(db: Database, unit: Unit, count: int) -> list[int]:
    async with db.write() as session:
        rooms = [Room(unit_id=unit.id, name=f"会议室{i}") for i in range(count)]
        session.add_all(rooms)
        await session.flush()
        return [r.id for r in rooms]


async def add_people(db: Database, unit: Unit, count: int, tag: str = "p") -> list[int]:
    async with db.write() as session:
        people = [
            Person(name=f"人员{i}", email=f"{tag}{i}@gz.gov.cn", unit_id=unit.id)
            for i in range(count)
        ]
        session.add_all(people)
        await session.flush()
        return [p.id for p in people]


def meeting_body(unit: Unit, day: datetime, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "市政府常务会议",
        "agenda": "一、审议事项",
        "unit_id": unit.id,
        "start": at(day, 10),
        "end": at(day, 11),
        "mode": "hybrid",
        "doc_ref": "穗府办〔2010〕41号",
    }
    body.update(overrides)
    return body


async def counts(db: Database) -> dict[str, int]:
    """Rows per scheduling table: to show nothing was stored half-way."""
    found = {}
    async with db.read() as session:
        for model in (Meeting, Attendee, Booking, Occurrence, MeetingException):
            found[model.__tablename__] = int(
                await session.scalar(select(func.count()).select_from(model)) or 0
            )
    return found


async def post(
    client: TestClient[Any, Any], path: str, body: Any, headers: dict[str, str], status: int
) -> Any:
    response = await client.post(f"/api/v1{path}", json=body, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()
