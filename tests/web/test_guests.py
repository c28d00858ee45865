"""Guests: the meeting's passcode gives a short-lived guest link; wrong guesses are limited;
the hub sees guests as guests; operators join any conference as chair."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import itsdangerous.timed
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Role, Unit
from signaling.errors import JoinRefused, NotNow
from tests.conftest import PASSWORD, Staff, add_person, create_meeting
from web.auth import GuestLimits
from web.conference import LINKS, make_authenticate

Client = TestClient[Any, Any]
URL = "/api/v1/guest-joins"


async def _meeting(client: Client, staff: Staff, city: Unit, **kwargs: Any) -> dict[str, Any]:
    meeting_id = await create_meeting(client, staff, city, [], **kwargs)
    h = await staff.headers(Role.SECRETARIAT)
    return dict(await (await client.get(f"/api/v1/meetings/{meeting_id}", headers=h)).json())


async def _join(client: Client, meeting: int, passcode: str, name: str = "王敏") -> Any:
    return await client.post(URL, json={"meeting": meeting, "passcode": passcode, "name": name})


def _wrong(passcode: str) -> str:
    return str((int(passcode) + 1) % 10**6).zfill(6)


async def test_the_right_passcode_gives_a_guest_link_the_hub_takes_as_a_guest(
    app: web.Application, client: Client, staff: Staff, city: Unit
) -> None:
    meeting = await _meeting(client, staff, city, title="城市更新专题会")
    r = await _join(client, meeting["id"], meeting["passcode"], "  王  敏 ")
    assert r.status == 201, await r.text()
    body = await r.json()
    assert body["url"] == f"/join/{body['token']}" and body["title"] == "城市更新专题会"
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)

    page = await client.get(body["url"])
    assert page.status == 200 and "conference.js" in await page.text()

    grant = await make_authenticate(app)(body["token"])
    assert grant.kind == "guest" and grant.role == "participant"
    assert grant.identity.startswith("guest:") and grant.name == "王 敏"
    assert grant.meta["meeting_id"] == meeting["id"] and grant.meta["person_id"] is None
    assert grant.conference.startswith(f"{meeting['id']}@")
    # each guest is someone else
    again = await (await _join(client, meeting["id"], meeting["passcode"], "王敏")).json()
    assert (await make_authenticate(app)(again["token"])).identity != grant.identity


async def test_an_invitees_link_is_not_a_guest_and_operators_join_as_chair(
    app: web.Application, client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    invited = await add_person(db, city.id, "invited@gz.gov.cn")
    meeting = await create_meeting(client, staff, city, [invited.id])
    authenticate = make_authenticate(app)
    grant = await authenticate(app[LINKS].sign("join", meeting, invited.id))
    assert grant.kind == "browser" and grant.identity == f"person:{invited.id}"
    assert grant.role == "participant"

    async def staff_link(role: Role) -> str:
        email, _ = await staff.account(role)
        r = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        h = {"Authorization": f"Bearer {(await r.json())['token']}"}
        r = await client.get(f"/meetings/{meeting}/join", headers=h, allow_redirects=False)
        assert r.status == 302
        return r.headers["Location"].removeprefix("/join/")

    for role in (Role.ADMIN, Role.SECRETARIAT):  # not invited, yet chair
        grant = await authenticate(await staff_link(role))
        assert grant.role == "chair" and grant.kind == "browser", role
    with pytest.raises(JoinRefused) as refused:  # other staff must be invited
        await authenticate(await staff_link(Role.STAFF))
    assert refused.value.code == "not_invited"


async def test_a_wrong_passcode_is_refused_and_repeated_ones_lock_the_address_out(
    client: Client, staff: Staff, city: Unit
) -> None:
    meeting = await _meeting(client, staff, city)
    wrong = _wrong(meeting["passcode"])
    for _ in range(5):
        r = await _join(client, meeting["id"], wrong)
        assert r.status == 403
        problem = await r.json()
        assert problem["error"] == "wrong_passcode" and problem["message"]
    for passcode in (wrong, meeting["passcode"]):  # the right one too, during the lockout
        r = await _join(client, meeting["id"], passcode)
        assert r.status == 429, await r.text()
        assert 0 < int(r.headers["Retry-After"]) <= 600
        assert (await r.json())["error"] == "too_many_attempts"


def test_guest_limits_per_address_and_per_meeting_in_a_sliding_window() -> None:
    now = [1000.0]
    limits = GuestLimits(clock=lambda: now[0])
    for i in range(4):  # 20 wrong tries for meeting 7 from 4 addresses, 5 each
        for _ in range(5):
            assert limits.retry_after(f"10.0.0.{i}", 7) == 0
            limits.failed(f"10.0.0.{i}", 7)
    assert limits.retry_after("10.0.0.1", 8) == 600  # that address, any meeting
    assert limits.retry_after("10.0.0.9", 7) == 600  # that meeting, any address
    assert limits.retry_after("10.0.0.9", 8) == 0
    now[0] += 599.5
    assert limits.retry_after("10.0.0.9", 7) == 1
    now[0] += 0.5
    assert limits.retry_after("10.0.0.9", 7) == 0 and limits.retry_after("10.0.0.1") == 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"meeting": 0, "passcode": "123456", "name": "王敏"}, 422, "meeting"),
        ({"meeting": "x", "passcode": "123456", "name": "王敏"}, 422, "meeting"),
        ({"meeting": 1, "passcode": "12345a", "name": "王敏"}, 422, "passcode"),
        ({"meeting": 1, "passcode": "１２３４５６", "name": "王敏"}, 422, "passcode"),
        ({"meeting": 1, "passcode": "12345678901", "name": "王敏"}, 422, "passcode"),
        ({"meeting": 1, "passcode": 123456, "name": "王敏"}, 422, "passcode"),
        ({"meeting": 1, "passcode": "123456"}, 422, "name"),
        ({"meeting": 1, "passcode": "123456", "name": "   "}, 422, "name"),
        ({"meeting": 1, "passcode": "123456", "name": "张" * 81}, 422, "name"),
        ({"meeting": 1, "passcode": "123456", "name": "王\x00敏"}, 422, "name"),
        ({"meeting": 1, "passcode": "123456", "name": "王敏", "role": "chair"}, 422, "role"),
    ],
)
async def test_bad_guest_requests_are_refused_with_a_message(
    client: Client, body: dict[str, Any], status: int, field: str
) -> None:
    r = await client.post(URL, json=body)
    assert r.status == status, await r.text()
    problem = await r.json()
    assert problem["error"] == "validation_failed" and problem["message"]
    assert field in problem["fields"], problem


async def test_oversized_or_non_json_bodies_are_refused(client: Client) -> None:
    big = {"meeting": 1, "passcode": "123456", "name": "王敏", "x": "a" * 4000}
    r = await client.post(URL, json=big)
    assert r.status == 413 and (await r.json())["error"] == "body_too_large"
    r = await client.post(URL, data="meeting=1", headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = await client.post(URL, data="{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"] == "malformed_json"


async def test_guests_of_unknown_closed_or_passcode_less_meetings_are_refused(
    client: Client, staff: Staff, city: Unit
) -> None:
    r = await _join(client, 999999, "123456")
    assert r.status == 404 and (await r.json())["error"] == "not_found"

    later = await _meeting(client, staff, city, start=datetime.now(UTC) + timedelta(hours=3))
    r = await _join(client, later["id"], later["passcode"])
    assert r.status == 409
    problem = await r.json()
    assert problem["error"] == "too_early" and "15 minutes" in problem["message"]

    cancelled = await _meeting(client, staff, city)
    h = await staff.headers(Role.SECRETARIAT)
    await client.post(f"/api/v1/meetings/{cancelled['id']}/cancel", headers=h)
    r = await _join(client, cancelled["id"], cancelled["passcode"])
    assert r.status == 409 and (await r.json())["error"] == "cancelled"

    closed = await _meeting(client, staff, city)
    r = await client.patch(f"/api/v1/meetings/{closed['id']}", json={"passcode": None}, headers=h)
    assert r.status == 200
    r = await _join(client, closed["id"], closed["passcode"])
    assert r.status == 403 and (await r.json())["error"] == "guests_not_allowed"


async def test_a_guest_link_stops_working_when_it_expires_or_guests_are_turned_off(
    app: web.Application,
    client: Client,
    staff: Staff,
    city: Unit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meeting = await _meeting(client, staff, city)
    authenticate = make_authenticate(app)
    signed_at = int(time.time()) - 31 * 60
    with monkeypatch.context() as patch:
        patch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda _: signed_at)
        old = app[LINKS].sign_guest(meeting["id"], "0123456789abcdef", "王敏")
    with pytest.raises(JoinRefused) as refused:
        await authenticate(old)
    assert refused.value.code == "guest_expired"
    assert (await client.get(f"/join/{old}")).status == 200  # the page says why, on joining

    token = (await (await _join(client, meeting["id"], meeting["passcode"])).json())["token"]
    h = await staff.headers(Role.SECRETARIAT)
    await client.patch(f"/api/v1/meetings/{meeting['id']}", json={"passcode": None}, headers=h)
    with pytest.raises(JoinRefused) as refused:
        await authenticate(token)
    assert refused.value.code == "guests_not_allowed"
    await client.post(f"/api/v1/meetings/{meeting['id']}/cancel", headers=h)
    with pytest.raises(NotNow):
        await authenticate(token)
    assert (await client.get("/join/" + token[:-2] + "xx")).status == 404


async def test_the_guest_page_is_served_with_the_meeting_number_filled_in(
    client: Client,
) -> None:
    r = await client.get("/guest?meeting=42")
    assert r.status == 200
    page = await r.text()
    assert "guest.js" in page and 'inputmode="numeric"' in page
    assert (await client.get("/guest?meeting=<script>")).status == 200
