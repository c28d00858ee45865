"""Reminders and the meeting lifecycle on the persistent scheduler: they survive restarts,
a reminder missed while down goes out late but never after the start, never twice, and
only one of two schedulers sharing a database runs the jobs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from rooms.db import Database, utcnow
from rooms.models import Unit
from scheduling.events import WebhookEvent
from scheduling.imip import Mailbox
from scheduling.invitations import MailSettings
from scheduling.leader import LeaseLock, leader_lock
from scheduling.links import LinkSigner
from scheduling.mailqueue import MailSender, OutgoingMail
from scheduling.meetings import MeetingService
from scheduling.models import Meeting, MeetingStatus
from scheduling.planning import Invitee, MeetingDraft
from scheduling.reminders import JobKey, Lifecycle, SentReminder
from scheduling.scheduler import JobScheduler
from scheduling.transports import SmtpTransport
from tests.conftest import Inbox
from tests.scheduling.mail_fixtures import arrived, link_paths
from tests.scheduling.meeting_fixtures import add_people

MAIL = MailSettings("http://suimeet.test", Mailbox("suimeet@gz.gov.cn", "SuiMeet"))
LINKS = LinkSigner(b"test-secret")


class NeverLeader:
    """The lock of a process that stores jobs but never runs them (as if it were down)."""

    async def try_acquire(self) -> bool:
        return False

    async def release(self) -> None:
        return None


class Server:
    """One SuiMeet process as far as jobs go: scheduler, mail sender, lifecycle, meetings."""

    def __init__(self, url: str, port: int, *, runs_jobs: bool = True) -> None:
        self.db = Database(url)
        self.sender = MailSender(self.db, SmtpTransport("127.0.0.1", port, "none"), "s@gz.gov.cn")
        lock: Any = NeverLeader()
        if runs_jobs:
            lock = LeaseLock(self.db, ttl=timedelta(seconds=2)) if self.db.is_sqlite else None
            lock = lock or leader_lock(self.db)
        self.jobs = JobScheduler(self.db, {}, lock=lock, poll_seconds=0.2)
        self.lifecycle = Lifecycle(self.db, self.jobs, MAIL, LINKS, on_mail=self.sender.wake)
        self.jobs.handlers.update(self.lifecycle.handlers())
        self.meetings = MeetingService(self.db, [self.lifecycle.on_change])

    async def start(self) -> None:
        self.sender.start()
        await self.jobs.start()
        if not isinstance(self.jobs.lock, NeverLeader):
            assert await self.jobs.wait_leader(5)
            await self.lifecycle.sweep()  # as web.invitations does on leadership

    async def close(self) -> None:
        await self.lifecycle.close()
        await self.jobs.close()
        await self.sender.close()
        await self.db.close()


@pytest.fixture
async def servers(database_url: str, db: Database) -> AsyncIterator[list[Server]]:
    """Servers made by a test, closed at its end (the db fixture empties the tables)."""
    made: list[Server] = []
    yield made
    for server in made:
        await server.close()


def _server(servers: list[Server], url: str, port: int, **kw: Any) -> Server:
    server = Server(url, port, **kw)
    servers.append(server)
    return server


async def _meeting(
    server: Server, unit: Unit, people: list[int], start_in: float, minutes: int = 1
) -> Meeting:
    start = (utcnow() + timedelta(seconds=start_in)).replace(microsecond=0)
    draft = MeetingDraft(
        title="防汛工作会议", unit_id=unit.id, organiser_id=people[0], start=start,
        end=start + timedelta(hours=1), tzid="Asia/Shanghai", reminder_minutes=minutes,
        invitees=tuple(Invitee(p) for p in people),
    )  # fmt: skip
    saved = await server.meetings.create(draft, "test")
    await server.lifecycle.settled()
    return saved.meeting


async def _reminders_sent(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(SentReminder)) or 0)


async def test_a_reminder_survives_a_restart(
    database_url: str, db: Database, city: Unit, smtp_server: tuple[Inbox, int],
    servers: list[Server],
) -> None:  # fmt: skip
    inbox, port = smtp_server
    people = await add_people(db, city, 2)
    first = _server(servers, database_url, port)
    await first.start()
    meeting = await _meeting(first, city, people, start_in=64)  # reminder due in ~4 s
    rid = meeting.starts_at
    jobs = await first.jobs.job_ids()
    assert {f"{k}:{meeting.id}:{rid:%Y%m%dT%H%M%SZ}" for k in ("reminder", "start", "end")} <= set(
        jobs
    )
    await first.close()  # the server stops before the reminder is due

    second = _server(servers, database_url, port)
    await second.start()
    mails = await arrived(inbox, 2, timeout=15)
    assert {m["To"].addresses[0].addr_spec for m in mails} == {"p0@gz.gov.cn", "p1@gz.gov.cn"}
    for mail in mails:
        assert mail["Subject"] == "会议提醒：防汛工作会议"
        assert link_paths(mail)["join"].startswith("/join/")
    assert await _reminders_sent(db) == 1
    await second.close()

    third = _server(servers, database_url, port)  # another restart sends nothing again
    await third.start()
    assert f"reminder:{meeting.id}:{rid:%Y%m%dT%H%M%SZ}" not in await third.jobs.job_ids()
    await arrived(inbox, 0, timeout=1)


async def test_a_missed_reminder_is_sent_late_before_the_start_and_never_after(
    database_url: str, db: Database, city: Unit, smtp_server: tuple[Inbox, int],
    servers: list[Server],
) -> None:  # fmt: skip
    inbox, port = smtp_server
    early, late = await add_people(db, city, 2)
    down = _server(servers, database_url, port, runs_jobs=False)  # stores jobs, runs none
    await down.start()
    pending = await _meeting(down, city, [early], start_in=65)  # reminder due in 5 s
    started = await _meeting(down, city, [late], start_in=3, minutes=15)  # due already
    await asyncio.sleep(6)  # both reminders come due while no server runs jobs
    await down.close()

    up = _server(servers, database_url, port)
    await up.start()
    (mail,) = await arrived(inbox, 1, timeout=10)
    assert mail["To"].addresses[0].addr_spec == "p0@gz.gov.cn"  # the meeting not yet begun
    async with db.read() as session:
        rows = await session.scalars(select(SentReminder.meeting_id))
        assert list(rows) == [pending.id]
        live = await session.get(Meeting, started.id)
        assert live is not None and live.status == MeetingStatus.LIVE  # its start ran late
    await arrived(inbox, 0, timeout=1)


async def test_no_reminder_is_sent_twice(
    database_url: str, db: Database, city: Unit, servers: list[Server]
) -> None:
    people = await add_people(db, city, 3)
    one = _server(servers, database_url, 9, runs_jobs=False)
    other = _server(servers, database_url, 9, runs_jobs=False)
    meeting = await _meeting(one, city, people, start_in=600)
    rid = meeting.starts_at.isoformat()
    # two processes run the same job at once, then again
    await asyncio.gather(
        one.lifecycle.remind(meeting.id, rid), other.lifecycle.remind(meeting.id, rid)
    )
    await one.lifecycle.remind(meeting.id, rid)
    assert await _reminders_sent(db) == 1
    async with db.read() as session:
        queued = await session.scalars(
            select(OutgoingMail.recipient).where(OutgoingMail.kind == "reminder")
        )
        assert sorted(queued) == ["p0@gz.gov.cn", "p1@gz.gov.cn", "p2@gz.gov.cn"]


async def test_only_one_of_two_schedulers_runs_the_jobs(
    database_url: str, db: Database, city: Unit, smtp_server: tuple[Inbox, int],
    servers: list[Server],
) -> None:  # fmt: skip
    inbox, port = smtp_server
    people = await add_people(db, city, 2)
    a, b = _server(servers, database_url, port), _server(servers, database_url, port)
    await a.start()
    b.sender.start()
    await b.jobs.start()
    await asyncio.sleep(0.5)
    assert a.jobs.is_leader and not b.jobs.is_leader
    await _meeting(b, city, people, start_in=63)  # created on the follower: due in ~3 s
    await arrived(inbox, 2, timeout=12)
    await asyncio.sleep(1)
    assert await _reminders_sent(db) == 1 and not inbox.envelopes


async def test_an_occurrence_goes_live_then_ends_and_the_series_ends_after_the_last(
    database_url: str, db: Database, city: Unit, servers: list[Server]
) -> None:
    people = await add_people(db, city, 1)
    server = _server(servers, database_url, 9, runs_jobs=False)
    now = [utcnow()]
    server.lifecycle.clock = lambda: now[0]
    ended: list[tuple[int, datetime]] = []

    async def on_ended(meeting_id: int, recurrence_id: datetime) -> None:
        ended.append((meeting_id, recurrence_id))

    server.lifecycle.on_ended = on_ended
    start = (utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    draft = MeetingDraft(
        title="周例会", unit_id=city.id, organiser_id=people[0], start=start,
        end=start + timedelta(hours=1), tzid="Asia/Shanghai", rrule="FREQ=DAILY;COUNT=2",
        invitees=(Invitee(people[0]),),
    )  # fmt: skip
    meeting = (await server.meetings.create(draft, "test")).meeting
    second = start + timedelta(days=1)

    async def status() -> MeetingStatus:
        async with db.read() as session:
            row = await session.get(Meeting, meeting.id)
            assert row is not None
            return row.status

    lifecycle = server.lifecycle
    await lifecycle.start_occurrence(meeting.id, start.isoformat())  # fired early: no-op
    assert await status() == MeetingStatus.SCHEDULED
    now[0] = start
    for _ in range(2):  # idempotent
        await lifecycle.start_occurrence(meeting.id, start.isoformat())
    assert await status() == MeetingStatus.LIVE
    now[0] = start + timedelta(hours=1)
    await lifecycle.end_occurrence(meeting.id, start.isoformat())
    assert await status() == MeetingStatus.SCHEDULED  # one more to come
    now[0] = second + timedelta(hours=1)
    await lifecycle.start_occurrence(meeting.id, second.isoformat())  # missed: stays as is
    await lifecycle.end_occurrence(meeting.id, second.isoformat())
    assert await status() == MeetingStatus.ENDED
    assert ended == [(meeting.id, start), (meeting.id, second)]
    # the OA system hears of it: started, ended (twice) and an attendance summary each time
    async with db.read() as session:
        events = (
            await session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.meeting_id == meeting.id)
                .order_by(WebhookEvent.id)
            )
        ).all()
    kinds = [e.type for e in events if e.type != "meeting.created"]
    assert kinds == ["meeting.started", "meeting.ended", "attendance.summary",
                     "meeting.ended", "attendance.summary"]  # fmt: skip
    last = json.loads(events[-1].body)["data"]
    assert last["recurrence_id"] == second.isoformat()
    assert last["summary"] == {"invited": 1, "attended": 0, "participants": 0, "terminals": 0,
                               "participant_minutes": 0}  # fmt: skip


class RecordedJobs:
    """An in-memory job store: what reconciling asked for."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, datetime, tuple[Any, ...]]] = {}

    async def schedule(self, job_id: str, kind: str, run_at: datetime, *args: Any) -> None:
        self.jobs[job_id] = (kind, run_at, args)

    async def cancel(self, job_id: str) -> bool:
        return self.jobs.pop(job_id, None) is not None

    async def job_ids(self) -> list[str]:
        return sorted(self.jobs)


async def test_jobs_follow_every_change_of_the_meeting(db: Database, city: Unit) -> None:
    people = await add_people(db, city, 1)
    jobs = RecordedJobs()
    lifecycle = Lifecycle(db, jobs, MAIL, LINKS, on_mail=lambda: None)
    service = MeetingService(db, [lifecycle.on_change])
    start = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    draft = MeetingDraft(
        title="周例会", unit_id=city.id, organiser_id=people[0], start=start,
        end=start + timedelta(hours=1), tzid="Asia/Shanghai", rrule="FREQ=DAILY;COUNT=3",
        reminder_minutes=30, invitees=(Invitee(people[0]),),
    )  # fmt: skip
    meeting = (await service.create(draft, "test")).meeting
    await lifecycle.settled()
    days = [start + timedelta(days=n) for n in range(3)]
    expected = {
        JobKey(kind, meeting.id, day).id: at
        for day in days
        for kind, at in (
            ("reminder", day - timedelta(minutes=30)),
            ("start", day),
            ("end", day + timedelta(hours=1)),
        )
    }
    assert {k: v[1] for k, v in jobs.jobs.items()} == expected
    assert jobs.jobs[JobKey("end", meeting.id, days[0]).id][2] == (meeting.id, days[0].isoformat())

    await service.cancel_occurrence(meeting.id, days[1], "test")
    moved = days[2] + timedelta(hours=3)
    await service.move_occurrence(meeting.id, days[2], moved, moved + timedelta(hours=1), "test")
    await lifecycle.settled()
    assert not [j for j in jobs.jobs if j.endswith(f"{days[1]:%Y%m%dT%H%M%SZ}")]
    assert jobs.jobs[JobKey("start", meeting.id, days[2]).id][1] == moved
    assert jobs.jobs[JobKey("reminder", meeting.id, days[2]).id][1] == moved - timedelta(minutes=30)

    await service.cancel(meeting.id, "test")
    await lifecycle.settled()
    assert jobs.jobs == {}
