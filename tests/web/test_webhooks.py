"""Webhooks: subscriptions, signed deliveries in order per meeting, retries, the delivery
log and replay, and the outbox written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from rooms.db import Database
from rooms.models import Role, Unit
from scheduling.events import WebhookEvent, publish_event
from scheduling.secretbox import SecretBox, SecretUnreadable
from scheduling.webhooks import WebhookSubscription, signature_header, verify
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import add_people, add_rooms, meeting_body, next_monday
from tests.web.oa_fixtures import SECRET, Receiver, key_headers, oa_settings, start_receiver
from web import keys
from web.settings import Settings

Client = TestClient[Any, Any]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return oa_settings(database_url, tmp_path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for found in start_receiver(Receiver()):
        yield found


async def subscribe(client: Client, staff: Staff, url: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks",
        headers=await staff.headers(Role.ADMIN),
        json={"url": url, "secret": SECRET, **extra},
    )
    assert response.status == 201, await response.text()
    return dict(await response.json())


def test_signature_verifies_and_rejects_tampering() -> None:
    body = b'{"id":"x"}'
    header = signature_header(SECRET, 1_700_000_000, body)
    assert verify(SECRET, header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify("another-secret-0123456789abcdef", header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 3600)  # replayed late


def test_sealed_secret_opens_only_with_the_same_server_secret() -> None:
    sealed = SecretBox(b"server-one", "webhook-secrets").seal(SECRET)
    assert SECRET not in sealed
    assert SecretBox(b"server-one", "webhook-secrets").open(sealed) == SECRET
    with pytest.raises(SecretUnreadable):
        SecretBox(b"server-two", "webhook-secrets").open(sealed)


async def test_admin_subscribes_and_the_secret_is_shown_once(
    client: Client, staff: Staff, db: Database, receiver: Receiver
) -> None:
    h = await staff.headers(Role.ADMIN)
    response = await client.post("/api/v1/webhooks", headers=h, json={"url": receiver.url})
    created = await response.json()
    assert response.status == 201 and created["secret"].startswith("whsec_")
    listed = await (await client.get("/api/v1/webhooks", headers=h)).json()
    assert listed[0]["secret"] is None
    async with db.read() as session:
        row = await session.get(WebhookSubscription, created["id"])
    assert row is not None and created["secret"] not in row.secret_sealed
    rotated = await client.patch(f"/api/v1/webhooks/{created['id']}", headers=h,
                                 json={"secret": None})  # fmt: skip
    new = (await rotated.json())["secret"]
    assert new and new != created["secret"]
    given = await client.patch(f"/api/v1/webhooks/{created['id']}", headers=h,
                               json={"secret": SECRET})  # fmt: skip
    assert (await given.json())["secret"] is None  # a secret the admin set is never echoed


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.2/hook", "webhook_target_not_allowed"),  # loopback, but not listed
        ("http://localhost/hook", "webhook_target_not_allowed"),  # a name, not the network
        ("http://169.254.169.254/latest", "webhook_target_not_allowed"),
        ("https://oa.example.org/hook", "webhook_target_not_allowed"),
        ("ftp://127.0.0.1/hook", "bad_url"),
        ("http://user:pw@127.0.0.1/hook", "bad_url"),
        ("javascript:alert(1)", "bad_url"),
    ],
)
async def test_webhook_urls_outside_the_allow_list_are_refused(
    client: Client, staff: Staff, url: str, code: str
) -> None:
    response = await client.post(
        "/api/v1/webhooks", headers=await staff.headers(Role.ADMIN), json={"url": url}
    )
    assert response.status == 422, await response.text()
    assert (await response.json())["error"] == code


async def test_unknown_event_types_and_short_secrets_are_refused(
    client: Client, staff: Staff, receiver: Receiver
) -> None:
    h = await staff.headers(Role.ADMIN)
    for body in ({"url": receiver.url, "event_types": ["meeting.exploded"]},
                 {"url": receiver.url, "secret": "short"}):  # fmt: skip
        response = await client.post("/api/v1/webhooks", headers=h, json=body)
        assert response.status == 422, await response.text()


async def test_meeting_changes_arrive_signed_and_in_order(
    client: Client, staff: Staff, db: Database, city: Unit, receiver: Receiver
) -> None:
    await subscribe(client, staff, receiver.url)
    oa = await key_headers(db, "meetings:read", "meetings:write")
    (organiser,) = await add_people(db, city, 1)
    body = meeting_body(city, next_monday(), organiser_id=organiser)
    created = await client.post("/api/v1/meetings", json=body, headers=oa)
    meeting_id = (await created.json())["id"]
    await client.patch(f"/api/v1/meetings/{meeting_id}", json={"title": "改期"}, headers=oa)
    await client.post(f"/api/v1/meetings/{meeting_id}/cancel", headers=oa)
    await receiver.wait_for(3)
    assert receiver.types() == ["meeting.created", "meeting.updated", "meeting.cancelled"]
    assert receiver.bad_signatures == 0
    last = receiver.events[-1]
    assert last["meeting_id"] == meeting_id and last["data"]["meeting"]["status"] == "cancelled"
    assert receiver.events[1]["data"]["meeting"]["title"] == "改期"
    assert receiver.events[0]["data"]["meeting"]["doc_ref"] == body["doc_ref"]


async def test_a_failing_receiver_gets_retries_and_never_event_two_before_one(
    client: Client, staff: Staff, db: Database, city: Unit, receiver: Receiver
) -> None:
    await subscribe(client, staff, receiver.url, event_types=["meeting.created",
                                                               "meeting.updated"])  # fmt: skip
    receiver.fail_next = 3
    h = await staff.headers(Role.SECRETARIAT)
    created = await client.post("/api/v1/meetings", json=meeting_body(city, next_monday()),
                                headers=h)  # fmt: skip
    meeting_id = (await created.json())["id"]
    for title in ("一", "二", "三"):
        await client.patch(f"/api/v1/meetings/{meeting_id}", json={"title": title}, headers=h)
    await receiver.wait_for(4)
    assert receiver.types() == ["meeting.created"] + ["meeting.updated"] * 3
    assert [e["data"]["meeting"]["title"] for e in receiver.events[1:]] == ["一", "二", "三"]


async def test_admins_read_the_delivery_log_and_replay(
    client: Client, staff: Staff, db: Database, city: Unit, receiver: Receiver
) -> None:
    hook = await subscribe(client, staff, receiver.url)
    receiver.fail_next = 1
    admin = await staff.headers(Role.ADMIN)
    await client.post("/api/v1/meetings", json=meeting_body(city, next_monday()), headers=admin)
    await receiver.wait_for(1)
    page = await (await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries",
                                   headers=admin)).json()  # fmt: skip
    (delivery,) = page["items"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    detail = await (await client.get(f"/api/v1/webhook-deliveries/{delivery['id']}",
                                     headers=admin)).json()  # fmt: skip
    assert [a["status_code"] for a in detail["attempt_log"]] == [503, 204]
    assert detail["event"]["id"] == delivery["event_id"]
    replay = await client.post(f"/api/v1/webhook-deliveries/{delivery['id']}/replay",
                               headers=admin)  # fmt: skip
    assert replay.status == 200, await replay.text()
    await receiver.wait_for(2, unique=False)
    assert [e["id"] for e in receiver.events] == [delivery["event_id"]] * 2  # same id: dedup


async def test_a_change_that_is_refused_records_no_event(
    client: Client, staff: Staff, db: Database, city: Unit, receiver: Receiver
) -> None:
    await subscribe(client, staff, receiver.url)
    rooms = await add_rooms(db, city, 1)
    h = await staff.headers(Role.SECRETARIAT)
    day = next_monday()
    first = await client.post("/api/v1/meetings", json=meeting_body(city, day, room_ids=rooms),
                              headers=h)  # fmt: skip
    assert first.status == 201
    clash = await client.post("/api/v1/meetings", json=meeting_body(city, day, room_ids=rooms),
                              headers=h)  # fmt: skip
    assert clash.status == 409
    async with db.read() as session:
        count = await session.scalar(select(func.count()).select_from(WebhookEvent))
    assert count == 1


async def test_terminal_and_other_modules_publish_through_the_outbox(
    app: web.Application, client: Client, staff: Staff, db: Database, receiver: Receiver
) -> None:
    await subscribe(client, staff, receiver.url, event_types=["terminal.online"])
    await publish_event(db, "terminal.offline", None, {"terminal_id": 1}, stream="terminal:1")
    await publish_event(db, "terminal.online", None, {"terminal_id": 1}, stream="terminal:1",
                        on_commit=app[keys.WEBHOOK_SENDER].wake)  # fmt: skip
    await receiver.wait_for(1)
    assert receiver.types() == ["terminal.online"]  # the subscription's filter holds
    with pytest.raises(ValueError):
        await publish_event(db, "meeting.exploded", None, {})
