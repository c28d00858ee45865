"""Bad input never produces a 500 or a trace: each gets a clear 4xx problem, nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from rooms.db import Database
from rooms.models import Role, Room, Unit
from tests.conftest import Staff

VALID_ROOM = {"name": "会议室", "capacity": 10}


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_json"),
        ('{"name": "x", "capacity": 1', "application/json", 400, "malformed_json"),
        ("\xff\xfe", "application/json", 400, "malformed_json"),
        ('["a", "list"]', "application/json", 422, "validation_failed"),
        ('{"name": "会议室", "unit_id": "one"}', "application/json", 422, "validation_failed"),
        (
            '{"name": "会议室", "unit_id": 1, "capacity": -3}',
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"name": "会议室", "unit_id": 1, "colour": "red"}',
            "application/json",
            422,
            "validation_failed",
        ),
        ('{"name": "", "unit_id": 1}', "application/json", 422, "validation_failed"),
        (
            '{"name": "' + "长" * 201 + '", "unit_id": 1}',
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"name": "x", "unit_id": 1, "equipment": ' + str(["a"] * 51).replace("'", '"') + "}",
            "application/json",
            422,
            "validation_failed",
        ),
        (
            '{"name": "x", "unit_id": 99999999999999999999}',
            "application/json",
            422,
            "validation_failed",
        ),
        ("name=x&unit_id=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=[
        "truncated",
        "unclosed",
        "not-utf8",
        "array",
        "wrong-type",
        "negative",
        "unknown-field",
        "empty-name",
        "too-long",
        "too-many-items",
        "huge-id",
        "form-encoded",
    ],
)
async def test_bad_bodies_are_refused_and_nothing_is_stored(
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    data: str,
    content_type: str,
    status: int,
    code: str,
) -> None:
    h = {**await staff.headers(Role.ADMIN), "Content-Type": content_type}
    response = await client.post(
        "/api/v1/rooms", data=data.replace('"unit_id": 1', f'"unit_id": {city.id}'), headers=h
    )
    assert response.status == status
    problem = await response.json()
    assert problem["error"] == code and problem["message"]
    assert "Traceback" not in await response.text()
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Room)) == 0


async def test_validation_problems_name_the_fields(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    response = await client.post(
        "/api/v1/people",
        json={"name": "李", "email": "not-an-email", "unit_id": city.id, "extra": 1},
        headers=h,
    )
    assert response.status == 422
    fields = (await response.json())["fields"]
    assert set(fields) == {"email", "extra"}


async def test_oversized_bodies_are_refused(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    big = json.dumps({"name": "x", "unit_id": city.id, "location": "x" * (2 * 1024 * 1024)})
    response = await client.post(
        "/api/v1/rooms", data=big, headers={**h, "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/rooms/abc", 400, "bad_id"),
        ("/api/v1/rooms/0", 400, "bad_id"),
        ("/api/v1/rooms/-1", 400, "bad_id"),
        ("/api/v1/rooms/1.5", 400, "bad_id"),
        ("/api/v1/rooms/99999999999999999999999", 400, "bad_id"),
        ("/api/v1/rooms/424242", 404, "not_found"),
        ("/api/v1/rooms?limit=0", 422, "validation_failed"),
        ("/api/v1/rooms?limit=201", 422, "validation_failed"),
        ("/api/v1/rooms?limit=ten", 422, "validation_failed"),
        ("/api/v1/rooms?offset=-1", 422, "validation_failed"),
        ("/api/v1/rooms?sort=password_hash", 422, "validation_failed"),
        ("/api/v1/rooms?sort=name;drop", 422, "validation_failed"),
        ("/api/v1/rooms?frobnicate=1", 422, "validation_failed"),
        ("/api/v1/rooms?q=" + "x" * 101, 422, "validation_failed"),
        ("/api/v1/me?x=1", 400, "unknown_parameter"),
        ("/api/v1/no-such-thing", 404, "not_found"),
    ],
)
async def test_bad_ids_and_paging_are_refused(
    client: TestClient[Any, Any], staff: Staff, path: str, status: int, code: str
) -> None:
    response = await client.get(path, headers=await staff.headers(Role.ADMIN))
    assert response.status == status, await response.text()
    assert (await response.json())["error"] == code


async def test_wrong_method_is_a_json_problem(client: TestClient[Any, Any], staff: Staff) -> None:
    response = await client.put("/api/v1/rooms", json={}, headers=await staff.headers(Role.ADMIN))
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "header",
    ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer sms_x_y", "Bearer " + "a" * 5000, "Token abc"],
)
async def test_malformed_credentials_are_401(client: TestClient[Any, Any], header: str) -> None:
    response = await client.get("/api/v1/units", headers={"Authorization": header})
    assert response.status == 401
    assert (await response.json())["error"] == "unauthenticated"
