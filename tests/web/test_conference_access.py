"""Who may join a conference and when: invitation links, logged-in invitees, terminals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Room, Unit
from scheduling.models import Booking, Occurrence
from signaling.client import ConferenceClient, ConnectionClosed
from signaling.errors import CLOSE_NOT_NOW, CLOSE_UNAUTHORIZED
from tests.conftest import Staff, add_person, create_meeting
from web.conference import HUB, LINKS


class Setup:
    def __init__(self, app: web.Application, client: TestClient[Any, Any]) -> None:
        self.app = app
        self.client = client
        self.ws = str(client.make_url("/ws")).replace("http://", "ws://")
        self.joined: list[ConferenceClient] = []

    def link(self, meeting_id: int, person_id: int) -> str:
        return self.app[LINKS].sign("join", meeting_id, person_id)

    async def join(self, token: str) -> ConferenceClient:
        c = ConferenceClient(self.ws, token, host_addresses=["127.0.0.1"])
        self.joined.append(c)
        await c.connect(timeout=10)
        return c

    async def refused(self, token: str) -> ConnectionClosed:
        with pytest.raises(ConnectionClosed) as info:
            await self.join(token)
        return info.value


@pytest.fixture
async def setup(app: web.Application, client: TestClient[Any, Any]) -> Any:
    s = Setup(app, client)
    yield s
    for c in s.joined:
        await c.close()


async def _meeting(
    client: TestClient[Any, Any],
    staff: Staff,
    unit: Unit,
    people: list[int],
    rooms: list[int],
    start: datetime,
    minutes: int = 60,
) -> int:
    return await create_meeting(
        client,
        staff,
        unit,
        people,
        rooms=rooms,
        start=start,
        minutes=minutes,
        title="区长视频会议",
    )


async def test_invitees_and_booked_terminals_join_the_same_conference(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    invited = await add_person(db, city.id, "invited@gz.gov.cn")
    outsider = await add_person(db, city.id, "outsider@gz.gov.cn")
    directory = Directory(db)
    room = await directory.create(Room, {"unit_id": city.id, "name": "天河区视频会议室"})
    other = await directory.create(Room, {"unit_id": city.id, "name": "海珠区视频会议室"})
    terminal = await directory.create_terminal({"room_id": room.id, "name": "天河终端"})
    idle = await directory.create_terminal({"room_id": other.id, "name": "海珠终端"})
    meeting = await _meeting(
        setup.client, staff, city, [invited.id], [room.id], datetime.now(UTC) + timedelta(minutes=5)
    )

    person = await setup.join(setup.link(meeting, invited.id))
    device = await setup.join(terminal.token)
    assert person.welcome["conference"]["id"] == device.welcome["conference"]["id"]
    assert device.welcome["participant"]["kind"] == "terminal"
    assert device.welcome["participant"]["name"] == "天河区视频会议室"
    live = setup.app[HUB].conferences()[person.welcome["conference"]["id"]]
    assert {p["kind"] for p in live} == {"browser", "terminal"}

    refused = await setup.refused(setup.link(meeting, outsider.id))
    assert refused.code == CLOSE_UNAUTHORIZED and refused.error["code"] == "not_invited"
    refused = await setup.refused(idle.token)
    assert refused.code == CLOSE_UNAUTHORIZED and refused.error["code"] == "no_meeting_now"
    refused = await setup.refused(setup.link(meeting, invited.id)[:-3] + "abc")
    assert refused.code == CLOSE_UNAUTHORIZED and refused.error["code"] == "invalid_token"
    await directory.revoke_terminal(terminal.terminal.id)
    refused = await setup.refused(terminal.token)
    assert refused.code == CLOSE_UNAUTHORIZED


async def test_joining_only_from_shortly_before_the_start_until_the_end(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    person = await add_person(db, city.id, "p@gz.gov.cn")
    later = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(hours=3)
    )
    refused = await setup.refused(setup.link(later, person.id))
    assert refused.code == CLOSE_NOT_NOW and refused.error["code"] == "too_early"

    ended = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(minutes=1)
    )
    async with db.write() as session:  # time passes: the meeting is over
        past = datetime.now(UTC) - timedelta(hours=2)
        for model in (Occurrence, Booking):
            await session.execute(
                update(model)
                .where(model.meeting_id == ended)
                .values(starts_at=past, ends_at=past + timedelta(hours=1))
            )
    refused = await setup.refused(setup.link(ended, person.id))
    assert refused.code == CLOSE_NOT_NOW and refused.error["code"] == "ended"


async def test_a_cancelled_meeting_refuses_everyone(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    person = await add_person(db, city.id, "p@gz.gov.cn")
    meeting = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(minutes=2)
    )
    r = await setup.client.post(
        f"/api/v1/meetings/{meeting}/cancel", headers=await staff.headers(Role.SECRETARIAT)
    )
    assert r.status == 200, await r.text()
    refused = await setup.refused(setup.link(meeting, person.id))
    assert refused.code == CLOSE_NOT_NOW and refused.error["code"] == "cancelled"


async def test_a_logged_in_invitee_is_sent_to_their_join_page(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    email, person_id = await staff.account(Role.STAFF)
    from tests.conftest import PASSWORD

    meeting = await _meeting(
        setup.client, staff, city, [person_id], [], datetime.now(UTC) + timedelta(minutes=2)
    )
    token = (
        await (
            await setup.client.post(
                "/api/v1/auth/token", json={"email": email, "password": PASSWORD}
            )
        ).json()
    )["token"]
    r = await setup.client.get(
        f"/meetings/{meeting}/join",
        allow_redirects=False,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status == 302
    link = r.headers["Location"].removeprefix("/join/")
    assert setup.app[LINKS].verify("join", link) is not None
    page = await setup.client.get(f"/join/{link}")
    assert page.status == 200 and "conference.js" in await page.text()
    joined = await setup.join(link)
    assert joined.welcome["participant"]["kind"] == "browser"
    assert (await setup.client.get("/join/not-a-token")).status == 404


async def test_administrators_see_live_conferences_with_quality(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    from signaling.sources import ColorTrack

    people = [await add_person(db, city.id, f"q{i}@gz.gov.cn", f"人员{i}") for i in range(2)]
    meeting = await _meeting(
        setup.client,
        staff,
        city,
        [p.id for p in people],
        [],
        datetime.now(UTC) + timedelta(minutes=2),
    )
    first = ConferenceClient(
        setup.ws,
        setup.link(meeting, people[0].id),
        tracks=[ColorTrack((200, 30, 30))],
        host_addresses=["127.0.0.1"],
    )
    setup.joined.append(first)
    await first.connect()
    second = await setup.join(setup.link(meeting, people[1].id))
    await second.wait_until(lambda: bool(second.remote_tracks), timeout=10)
    admin = await staff.headers(Role.ADMIN)
    live = await (await setup.client.get("/api/v1/conferences", headers=admin)).json()
    assert [c["meeting_id"] for c in live] == [meeting]
    by_name = {p["name"]: p for p in live[0]["participants"]}
    assert set(by_name) == {"人员0", "人员1"}
    quality = by_name["人员0"]["quality"]
    assert quality is not None and quality["connection_state"] in ("connecting", "connected")
    staff_h = await staff.headers(Role.STAFF)
    assert (await setup.client.get("/api/v1/conferences", headers=staff_h)).status == 403
