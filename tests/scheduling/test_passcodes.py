"""Meeting passcodes: generated on creation, settable (6-10 digits) or off, shown only to
those who run the meeting, and sent to invitees to pass on to their guests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import Role, Unit
from scheduling.passcodes import is_passcode, new_passcode, passcode_matches
from tests.conftest import PASSWORD, Inbox, Staff
from tests.scheduling.mail_fixtures import arrived, by_recipient, smtp_settings
from tests.scheduling.meeting_fixtures import add_people, meeting_body, next_monday
from web.settings import Settings

Client = TestClient[Any, Any]


def test_new_passcodes_are_six_random_digits() -> None:
    codes = {new_passcode() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in codes)
    assert len(codes) > 190  # random, not a sequence or a constant
    assert re.fullmatch(r"[0-9]{10}", new_passcode(10))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("123456", True),
        ("0000000000", True),
        ("12345", False),
        ("12345678901", False),
        ("12345a", False),
        ("１２３４５６", False),  # full-width digits: not on a keypad
        ("١٢٣٤٥٦", False),  # Arabic-Indic digits
        (" 123456", False),
        ("", False),
    ],
)
def test_a_passcode_is_six_to_ten_ascii_digits(value: str, ok: bool) -> None:
    assert is_passcode(value) is ok


def test_passcodes_match_exactly_and_a_meeting_without_one_matches_nothing() -> None:
    assert passcode_matches("123456", "123456")
    assert not passcode_matches("123456", "123457")
    assert not passcode_matches("123456", "1234567")
    assert not passcode_matches("123456", "１２３４５６")
    assert not passcode_matches(None, "123456")


async def _create(client: Client, headers: dict[str, str], body: dict[str, Any]) -> Any:
    response = await client.post("/api/v1/meetings", json=body, headers=headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_a_new_meeting_gets_a_passcode_unless_one_is_given_or_refused(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    day = next_monday()
    made = await _create(client, h, meeting_body(city, day))
    assert made["guest_access"] is True and is_passcode(made["passcode"])
    assert len(made["passcode"]) == 6
    chosen = await _create(client, h, meeting_body(city, day, passcode="2026041599"))
    assert chosen["passcode"] == "2026041599"
    closed = await _create(client, h, meeting_body(city, day, passcode=None))
    assert closed["guest_access"] is False and closed["passcode"] is None

    # a change keeps the passcode unless it is sent; null turns guests off
    r = await client.patch(f"/api/v1/meetings/{made['id']}", json={"title": "新标题"}, headers=h)
    assert (await r.json())["passcode"] == made["passcode"]
    r = await client.patch(f"/api/v1/meetings/{made['id']}", json={"passcode": None}, headers=h)
    assert r.status == 200 and (await r.json())["guest_access"] is False
    r = await client.patch(
        f"/api/v1/meetings/{made['id']}", json={"passcode": "7654321"}, headers=h
    )
    assert r.status == 200 and (await r.json())["passcode"] == "7654321"


@pytest.mark.parametrize("bad", ["12345", "12345678901", "12a456", "１２３４５６", 123456])
async def test_a_passcode_that_is_not_six_to_ten_digits_is_refused(
    client: Client, staff: Staff, city: Unit, bad: Any
) -> None:
    h = await staff.headers(Role.SECRETARIAT)
    r = await client.post(
        "/api/v1/meetings", json=meeting_body(city, next_monday(), passcode=bad), headers=h
    )
    assert r.status == 422, await r.text()
    problem = await r.json()
    assert problem["error"] == "validation_failed" and "passcode" in problem["fields"]


async def test_only_those_who_run_the_meeting_see_its_passcode(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    sec = await staff.headers(Role.SECRETARIAT)
    accounts = Accounts(db)

    async def login(email: str) -> dict[str, str]:
        r = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
        return {"Authorization": f"Bearer {(await r.json())['token']}"}

    organiser_email, organiser = await staff.account(Role.STAFF)
    invitee_email, invitee = await staff.account(Role.STAFF)
    made = await _create(
        client, sec,
        meeting_body(city, next_monday(), organiser_id=organiser,
                     attendees=[{"person_id": invitee}]),
    )  # fmt: skip
    url = f"/api/v1/meetings/{made['id']}"

    async def seen(headers: dict[str, str]) -> Any:
        r = await client.get(url, headers=headers)
        assert r.status == 200, await r.text()
        body = await r.json()
        assert body["guest_access"] is True
        listed = await (await client.get("/api/v1/meetings", headers=headers)).json()
        (item,) = [m for m in listed["items"] if m["id"] == made["id"]]
        assert item["passcode"] == body["passcode"]
        return body["passcode"]

    assert await seen(sec) == made["passcode"]
    assert await seen(await staff.headers(Role.ADMIN)) == made["passcode"]
    assert await seen(await login(organiser_email)) == made["passcode"]
    assert await seen(await login(invitee_email)) is None
    reader = await accounts.create_key("oa-read", ["meetings:read"], created_by=None)
    writer = await accounts.create_key("oa-write", ["meetings:write", "meetings:read"], None)
    assert await seen({"Authorization": f"Bearer {reader.token}"}) is None
    assert await seen({"Authorization": f"Bearer {writer.token}"}) == made["passcode"]


@pytest.fixture
def mail_settings(settings: Settings, smtp_server: tuple[Inbox, int]) -> Iterator[Settings]:
    yield smtp_settings(settings, smtp_server[1])


@pytest.fixture
def app(mail_settings: Settings, db: Database) -> Any:
    from web.app import create_app

    return create_app(mail_settings)


async def test_invitations_tell_invitees_the_passcode_for_their_guests(
    client: Client, staff: Staff, db: Database, city: Unit, smtp_server: tuple[Inbox, int]
) -> None:
    inbox = smtp_server[0]
    h = await staff.headers(Role.SECRETARIAT)
    first, second = await add_people(db, city, 2)
    made = await _create(
        client, h, meeting_body(city, next_monday(), attendees=[{"person_id": first}])
    )
    (mail,) = by_recipient(await arrived(inbox, 1)).values()
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert made["passcode"] in text
    assert f"/guest?meeting={made['id']}" in text and f"会议号 {made['id']}" in text

    closed = await _create(
        client, h,
        meeting_body(city, next_monday(), attendees=[{"person_id": second}], passcode=None),
    )  # fmt: skip
    (mail,) = by_recipient(await arrived(inbox, 1)).values()
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "/guest" not in text and "访客" not in text
    assert closed["passcode"] is None
