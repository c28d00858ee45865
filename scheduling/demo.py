"""Demo meetings: a plausible past year of meetings and their attendance, for the dashboard.

Loaded by ``suimeet demo`` (and ``serve --demo``) after the demo directory
(:mod:`rooms.demo`), so that the statistics show real-looking data on first start: about
eight meetings a working day across the units, a video share that climbs from around 72%
to around 88% over the year (crossing the 80% target in the middle), invitations with
answers, presences of invitees and room terminals with late joins, early leaves and
plausible media quality. Deterministic for a given seed; does nothing if meetings exist.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from rooms.db import Database
from rooms.models import Person, Room, Terminal, Unit, UnitKind
from scheduling import rollup
from scheduling.attendance import Presence
from scheduling.models import (
    Attendee,
    AttendeeRole,
    Booking,
    Meeting,
    MeetingMode,
    MeetingStatus,
    Occurrence,
    PartStat,
)

TOPICS = [
    "工作例会", "专题协调会", "防汛工作部署会", "安全生产视频会", "营商环境推进会",
    "重点项目调度会", "政务服务改革会", "民生实事推进会", "疫病防控视频会", "财政预算审议会",
]  # fmt: skip
HOURS = (9, 10, 11, 14, 15, 16)
PER_DAY = 8


@dataclass
class DemoMeetings:
    loaded: bool
    meetings: int = 0
    presences: int = 0


def _quality(rng: random.Random, seconds: int) -> dict[str, float | int | None]:
    samples = max(1, seconds // 10)
    poor = rng.random() < 0.06
    loss = rng.lognormvariate(-5.5, 0.8) + (0.05 if poor else 0.0)
    rtt = rng.uniform(25, 110) + (250 if poor else 0)
    jitter = rng.uniform(3, 22) + (60 if poor else 0)
    kbps = rng.uniform(900, 2400) * (0.4 if poor else 1)
    return {
        "samples": samples, "loss_sum": loss * samples, "loss_max": min(1.0, loss * 3),
        "rtt_n": samples, "rtt_sum": rtt * samples, "rtt_max": rtt * 1.8,
        "jitter_n": samples, "jitter_sum": jitter * samples, "jitter_max": jitter * 2.5,
        "bitrate_sum": kbps * samples, "bitrate_min": kbps * 0.5,
    }  # fmt: skip


async def load_meetings_demo(
    db: Database, *, now: datetime | None = None, seed: int = 2026, tz: str = "Asia/Shanghai"
) -> DemoMeetings:
    """A year of past meetings over the demo directory (nothing if meetings exist)."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    zone = ZoneInfo(tz)
    async with db.write() as s:
        if await s.scalar(select(func.count()).select_from(Meeting)):
            return DemoMeetings(loaded=False)
        units = (await s.scalars(select(Unit).order_by(Unit.id))).all()
        people = (await s.execute(select(Person.id, Person.unit_id))).all()
        rooms = {u: r for r, u in (await s.execute(select(Room.id, Room.unit_id))).all()}
        terminals = dict((await s.execute(select(Terminal.room_id, Terminal.id))).all())
        if not units or not people:
            return DemoMeetings(loaded=False)
        by_unit: dict[int, list[int]] = {}
        for pid, uid in people:
            by_unit.setdefault(uid, []).append(pid)
        weights = [3 if u.kind == UnitKind.CITY else 1 for u in units]
        today = now.astimezone(zone).date()
        first = today - timedelta(days=365)
        meetings: list[tuple[Meeting, list[int]]] = []
        taken: set[tuple[int, date, int]] = set()
        day = first
        while day < today:
            if day.weekday() < 5:
                progress = (day - first).days / 365
                share = 0.72 + 0.16 * progress + rng.uniform(-0.04, 0.04)
                for _ in range(rng.randint(PER_DAY - 3, PER_DAY + 3)):
                    unit = rng.choices(units, weights)[0]
                    hour = rng.choice(HOURS)
                    if (unit.id, day, hour) in taken:
                        continue
                    taken.add((unit.id, day, hour))
                    start = datetime.combine(day, time(hour), zone).astimezone(UTC)
                    length = rng.choice((30, 60, 60, 90, 120))
                    draw = rng.random()
                    mode = MeetingMode.VIDEO
                    if draw > share:
                        mode = MeetingMode.IN_PERSON
                    elif draw > share * 0.7:
                        mode = MeetingMode.HYBRID
                    organiser = rng.choice(by_unit.get(unit.id) or [people[0][0]])
                    m = Meeting(
                        uid=f"demo-{len(meetings)}@demo.suimeet.example",
                        title=f"{unit.short_name or unit.name}{rng.choice(TOPICS)}",
                        unit_id=unit.id, organiser_id=organiser, starts_at=start,
                        ends_at=start + timedelta(minutes=length), tzid=tz, mode=mode,
                        status=MeetingStatus.ENDED, created_by="demo",
                    )  # fmt: skip
                    invited = rng.sample([p for p, _ in people], rng.randint(3, 9))
                    meetings.append((m, invited))
            day += timedelta(days=1)
        s.add_all([m for m, _ in meetings])
        await s.flush()
        occurrences, attendees, bookings = [], [], []
        for m, invited in meetings:
            occurrences.append({"meeting_id": m.id, "recurrence_id": m.starts_at,
                                "starts_at": m.starts_at, "ends_at": m.ends_at,
                                "cancelled": rng.random() < 0.03})  # fmt: skip
            for pid in invited:
                answer = rng.choices(list(PartStat), (8, 75, 10, 7))[0]
                attendees.append({"meeting_id": m.id, "person_id": pid, "partstat": answer,
                                  "role": AttendeeRole.REQUIRED})  # fmt: skip
            if m.mode != MeetingMode.IN_PERSON and m.unit_id in rooms:
                bookings.append({"room_id": rooms[m.unit_id], "meeting_id": m.id,
                                 "recurrence_id": m.starts_at, "starts_at": m.starts_at,
                                 "ends_at": m.ends_at})  # fmt: skip
        await s.execute(insert(Occurrence), occurrences)
        await s.execute(insert(Attendee), attendees)
        if bookings:
            await s.execute(insert(Booking), bookings)
        cancelled = {o["meeting_id"] for o in occurrences if o["cancelled"]}
        ids = dict(
            ((a.meeting_id, a.person_id), a.id) for a in (await s.scalars(select(Attendee))).all()
        )
        presences = []
        for m, invited in meetings:
            if m.mode == MeetingMode.IN_PERSON or m.id in cancelled or rng.random() < 0.03:
                continue
            length = int((m.ends_at - m.starts_at).total_seconds())
            guests = [("person", p) for p in invited if rng.random() < 0.82]
            room = rooms.get(m.unit_id)
            if room in terminals and rng.random() < 0.92:
                guests.append(("terminal", terminals[room]))
            for kind, ident in guests:
                late = rng.random() < 0.08
                join = int(rng.uniform(-300, 120)) + (rng.randint(400, 1200) if late else 0)
                leave = int(rng.uniform(-60, 240)) - (
                    rng.randint(400, 1500) if rng.random() < 0.07 else 0)  # fmt: skip
                seconds = max(60, length - join + leave)
                joined = m.starts_at + timedelta(seconds=join)
                left = joined + timedelta(seconds=seconds)
                presences.append({
                    "meeting_id": m.id, "recurrence_id": m.starts_at,
                    "attendee_id": ids.get((m.id, ident)) if kind == "person" else None,
                    "person_id": ident if kind == "person" else None,
                    "terminal_id": ident if kind == "terminal" else None,
                    "room_id": room if kind == "terminal" else None,
                    "identity": f"{kind}:{ident}",
                    "client_kind": "browser" if kind == "person" else "terminal",
                    "joined_at": joined, "left_at": left, "leave_reason": "left",
                    "segment_at": joined, "last_seen_at": left, "seconds": seconds,
                    "reconnects": int(rng.random() < 0.05), "join_offset_s": join,
                    "leave_offset_s": int((left - m.ends_at).total_seconds()),
                    "jitter_n": 0, "rtt_n": 0, **_quality(rng, seconds),
                })  # fmt: skip
        if presences:
            await s.execute(insert(Presence), presences)
    await rollup.refresh(db, now, everything=True)
    return DemoMeetings(loaded=True, meetings=len(meetings), presences=len(presences))
