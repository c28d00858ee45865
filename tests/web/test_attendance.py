"""Attendance recorded through the real hub: Python clients join and leave over WebSockets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Room, Unit
from scheduling.attendance import AttendanceRecorder, Presence
from scheduling.models import Attendee
from signaling.client import ConferenceClient
from signaling.sources import ColorTrack
from tests.conftest import Staff, add_person
from tests.web.test_conference_access import Setup, _meeting
from tests.web.test_conference_access import setup as setup
from web.attendance import FEED
from web.conference import HUB


async def _presences(db: Database) -> list[Presence]:
    async with db.read() as session:
        return list((await session.scalars(select(Presence).order_by(Presence.id))).all())


async def _until_left(app: web.Application, count: int) -> None:
    """Wait until the leaves have reached the recorder: from the hub's presence events, or
    found by the sampler (a connection the hub no longer has)."""
    feed = app[FEED]
    for i in range(750):  # generous: other services' work can stall the loop for seconds
        await feed.drain()
        if len(feed.recorder.connected) == count:
            return
        await asyncio.sleep(0.02)
        if i % 10 == 9:
            await feed.sample(app[HUB])
    raise AssertionError(
        f"{len(feed.recorder.connected)} still connected, not {count}: "
        f"{feed.recorder.connected} {app[HUB].conferences()}"
    )


async def test_joins_samples_and_leaves_of_people_and_terminals_are_recorded(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    people = [await add_person(db, city.id, f"a{i}@gz.gov.cn", f"人员{i}") for i in range(2)]
    room = await Directory(db).create(Room, {"unit_id": city.id, "name": "天河区视频会议室"})
    terminal = await Directory(db).create_terminal({"room_id": room.id, "name": "天河终端"})
    meeting = await _meeting(
        setup.client, staff, city, [p.id for p in people], [room.id],
        datetime.now(UTC) + timedelta(minutes=5),
    )  # fmt: skip
    sender = ConferenceClient(
        setup.ws, setup.link(meeting, people[0].id), tracks=[ColorTrack((200, 30, 30))],
        host_addresses=["127.0.0.1"],
    )  # fmt: skip
    setup.joined.append(sender)
    await sender.connect(timeout=10)
    receiver = await setup.join(setup.link(meeting, people[1].id))
    device = await setup.join(terminal.token)
    await receiver.wait_until(lambda: bool(receiver.remote_tracks), timeout=10)
    feed = setup.app[FEED]
    await feed.drain()
    assert len(feed.recorder.connected) == 3
    assert await feed.sample(setup.app[HUB]) == 3
    await feed.drain()
    await receiver.leave()
    await device.leave()
    await _until_left(setup.app, 1)
    rows = {r.identity: r for r in await _presences(db)}
    assert set(rows) == {f"person:{people[0].id}", f"person:{people[1].id}",
                         f"terminal:{terminal.terminal.id}"}  # fmt: skip
    async with db.read() as session:
        invitation = await session.scalar(
            select(Attendee.id).where(
                Attendee.meeting_id == meeting, Attendee.person_id == people[1].id
            )
        )
    left = rows[f"person:{people[1].id}"]
    assert left.attendee_id == invitation and left.client_kind == "browser"
    assert left.left_at is not None and left.leave_reason in ("left", "closed", "lost")
    # the periodic sample, and the final one when the hub's leave event came
    assert left.samples == (1 if left.leave_reason == "lost" else 2)
    assert left.join_offset_s < 0 and left.leave_offset_s is not None
    assert left.leave_offset_s < 0  # left before the scheduled end
    kiosk = rows[f"terminal:{terminal.terminal.id}"]
    assert kiosk.client_kind == "terminal" and kiosk.terminal_id == terminal.terminal.id
    assert kiosk.room_id == room.id and kiosk.attendee_id is None and kiosk.left_at
    still = rows[f"person:{people[0].id}"]
    assert still.left_at is None and still.samples >= 1
    assert still.bitrate_sum > 0  # it publishes video


async def test_a_quick_reconnection_continues_the_presence_a_late_one_starts_another(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    person = await add_person(db, city.id, "r@gz.gov.cn")
    meeting = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(minutes=5)
    )
    feed = setup.app[FEED]
    link = setup.link(meeting, person.id)

    async def visit() -> None:
        client = await setup.join(link)
        await feed.drain()
        await client.leave()  # a dropped connection would keep its place (the grace)
        await _until_left(setup.app, 0)

    await visit()
    await visit()  # a reload: within the gap
    rows = await _presences(db)
    assert len(rows) == 1 and rows[0].reconnects == 1 and rows[0].left_at is not None
    feed.recorder.merge_gap = timedelta(0)  # now any gap is too long
    await visit()
    rows = await _presences(db)
    assert [r.reconnects for r in rows] == [1, 0]


async def test_a_dropped_connection_back_within_the_grace_is_no_leave_and_no_join(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    person = await add_person(db, city.id, "g@gz.gov.cn")
    meeting = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(minutes=5)
    )
    feed = setup.app[FEED]
    client = await setup.join(setup.link(meeting, person.id))
    first = client.participant
    await feed.drain()
    welcome = await client.reconnect()  # socket and peer connection dropped, no leave
    assert welcome["resumed"] is True and client.participant == first
    await feed.drain()
    assert await feed.sample(setup.app[HUB]) == 1
    await feed.drain()
    (row,) = await _presences(db)
    assert row.left_at is None and row.reconnects == 0 and row.samples >= 1


async def test_presences_left_open_by_a_stopped_server_are_closed_as_last_seen(
    setup: Setup, staff: Staff, db: Database, city: Unit
) -> None:
    person = await add_person(db, city.id, "s@gz.gov.cn")
    meeting = await _meeting(
        setup.client, staff, city, [person.id], [], datetime.now(UTC) + timedelta(minutes=5)
    )
    await setup.join(setup.link(meeting, person.id))
    feed = setup.app[FEED]
    await feed.drain()
    recorder = AttendanceRecorder(db)  # a new process: it knows nothing of the open one
    assert await recorder.close_stale() == 1
    (row,) = await _presences(db)
    assert row.left_at == row.last_seen_at and row.leave_reason == "server_stopped"
