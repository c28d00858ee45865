"""Idempotency-Key on meeting creation: retries never create a second meeting."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import Unit
from scheduling.idempotency import IdempotencyStore, fingerprint
from scheduling.models import Meeting
from tests.scheduling.meeting_fixtures import add_people, meeting_body, next_monday
from tests.web.oa_fixtures import key_headers, oa_settings
from web.settings import Settings

Client = TestClient[Any, Any]
PATH = "/api/v1/meetings"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return oa_settings(database_url, tmp_path)


async def meetings(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Meeting)) or 0)


async def oa_body(db: Database, city: Unit, **extra: Any) -> dict[str, Any]:
    (organiser,) = await add_people(db, city, 1, tag=f"org{extra.pop('tag', '')}")
    return meeting_body(city, next_monday(), organiser_id=organiser, **extra)


async def test_a_retry_with_the_same_key_replays_the_first_answer(
    client: Client, db: Database, city: Unit
) -> None:
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "oa-2026-41"}
    body = await oa_body(db, city)
    first = await client.post(PATH, json=body, headers=h)
    assert first.status == 201, await first.text()
    again = await client.post(PATH, json=dict(reversed(body.items())), headers=h)  # same JSON
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert await meetings(db) == 1


async def test_the_same_key_with_another_body_is_refused(
    client: Client, db: Database, city: Unit
) -> None:
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "oa-2026-42"}
    body = await oa_body(db, city)
    assert (await client.post(PATH, json=body, headers=h)).status == 201
    other = await client.post(PATH, json={**body, "title": "另一个会议"}, headers=h)
    problem = await other.json()
    assert other.status == 422 and problem["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in problem["fields"]
    assert await meetings(db) == 1


async def test_concurrent_retries_create_one_meeting(
    client: Client, db: Database, city: Unit
) -> None:
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "oa-race"}
    body = await oa_body(db, city)
    answers = await asyncio.gather(*(client.post(PATH, json=body, headers=h) for _ in range(6)))
    statuses = sorted(a.status for a in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    ids = {(await a.json())["id"] for a in answers if a.status == 201}
    assert len(ids) == 1 and await meetings(db) == 1
    for answer in answers:
        if answer.status == 409:
            assert (await answer.json())["error"] == "idempotency_in_progress"
            assert answer.headers["Retry-After"] == "1"


async def test_keys_belong_to_one_api_key(client: Client, db: Database, city: Unit) -> None:
    body = await oa_body(db, city)
    for _ in range(2):
        h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "shared-name"}
        assert (await client.post(PATH, json=body, headers=h)).status == 201
    assert await meetings(db) == 2


async def test_a_failed_request_frees_its_key(client: Client, db: Database, city: Unit) -> None:
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "oa-after-error"}
    body = await oa_body(db, city)
    bad = await client.post(PATH, json={**body, "end": body["start"]}, headers=h)
    assert bad.status == 422
    fixed = await client.post(PATH, json={**body, "end": body["start"]}, headers=h)
    assert fixed.status == 422  # same body: run again (nothing stored), same answer
    assert (await client.post(PATH, json=body, headers={**h, "Idempotency-Key": "k2"})).status \
        == 201  # fmt: skip


@pytest.mark.parametrize("key", ["", "x" * 201, "has space", "中文"])
async def test_malformed_keys_are_refused(
    client: Client, db: Database, city: Unit, key: str
) -> None:
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": key}
    response = await client.post(PATH, json=await oa_body(db, city), headers=h)
    assert response.status == 400 and (await response.json())["error"] == "bad_idempotency_key"


async def test_unknown_revoked_and_out_of_scope_keys_are_refused(
    client: Client, db: Database, city: Unit
) -> None:
    body = await oa_body(db, city)
    accounts = Accounts(db)
    revoked = await accounts.create_key("old", ["meetings:write"], created_by=None)
    await accounts.revoke_key(revoked.key.id)
    cases = [
        ({"Authorization": "Bearer smk_unknown_token_value"}, 401),
        ({"Authorization": f"Bearer {revoked.token}"}, 401),
        (await key_headers(db, "meetings:read"), 403),
        (await key_headers(db, "directory:read"), 403),
    ]
    for headers, status in cases:
        response = await client.post(PATH, json=body,
                                     headers={**headers, "Idempotency-Key": "k"})  # fmt: skip
        assert response.status == status, await response.text()
        assert (await response.json())["error"] in ("unauthenticated", "forbidden")
    assert await meetings(db) == 0


async def test_a_meeting_created_before_a_crash_is_answered_not_created_again(
    client: Client, db: Database, city: Unit
) -> None:
    """The first request committed its meeting but died before storing the answer."""
    h = {**await key_headers(db, "meetings:write"), "Idempotency-Key": "oa-crash"}
    body = await oa_body(db, city)
    first = await client.post(PATH, json=body, headers={**h, "Idempotency-Key": "other"})
    meeting_id = (await first.json())["id"]
    store = IdempotencyStore(db)
    me = await (await client.get("/api/v1/me", headers=h)).json()
    claim = await store.claim(
        f"apikey:{me['key_id']}", "oa-crash", fingerprint("POST", PATH, json.dumps(body).encode())
    )
    assert claim.kind == "fresh" and claim.record_id is not None
    async with db.write() as session:
        await store.bind(session, claim.record_id, meeting_id)
    retry = await client.post(PATH, json=body, headers=h)
    assert retry.status == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert (await retry.json())["id"] == meeting_id
    assert await meetings(db) == 1


async def test_openapi_documents_the_header_and_an_example(client: Client) -> None:
    spec = await (await client.get("/api/v1/openapi.json")).json()
    op = spec["paths"]["/api/v1/meetings"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op["parameters"])
    assert op["requestBody"]["content"]["application/json"]["example"]["doc_ref"]
    assert {"409", "422"} <= set(op["responses"])
