"""A small hand-made data set with known statistics (see the expectations in test_stats.py).

Local times are Asia/Shanghai (UTC+8). ``NOW`` is when the rollup is refreshed: M7 is still
to come then. Units: the city C; district D; department P; S, a department under D.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rooms.db import Database
from rooms.models import Person, Room, Terminal, Unit, UnitKind
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

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 4, 20, tzinfo=UTC)


def local(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=TZ).astimezone(UTC)


def presence(
    meeting: Meeting, identity: str, joined: datetime, left: datetime, **figures: Any
) -> Presence:
    base: dict[str, Any] = {
        "samples": 0, "loss_sum": 0.0, "loss_max": 0.0, "jitter_n": 0, "jitter_sum": 0.0,
        "jitter_max": 0.0, "rtt_n": 0, "rtt_sum": 0.0, "rtt_max": 0.0, "bitrate_sum": 0.0,
        "bitrate_min": None, "reconnects": 0,
    }  # fmt: skip
    base.update(figures)
    return Presence(
        meeting_id=meeting.id,
        recurrence_id=meeting.starts_at,
        identity=identity,
        client_kind=identity.split(":")[0].replace("person", "browser"),
        joined_at=joined,
        left_at=left,
        segment_at=joined,
        last_seen_at=left,
        seconds=round((left - joined).total_seconds()),
        join_offset_s=round((joined - meeting.starts_at).total_seconds()),
        leave_offset_s=round((left - meeting.ends_at).total_seconds()),
        **base,
    )


async def load(db: Database) -> dict[str, Any]:
    """Insert the data set; the ids of what the tests refer to."""
    async with db.write() as s:
        city = Unit(name="市政府", short_name="C", kind=UnitKind.CITY)
        s.add(city)
        await s.flush()
        d = Unit(name="区政府", short_name="D", kind=UnitKind.DISTRICT, parent_id=city.id)
        p = Unit(name="某局", short_name="P", kind=UnitKind.DEPARTMENT, parent_id=city.id)
        s.add_all([d, p])
        await s.flush()
        sub = Unit(name="区某局", short_name="S", kind=UnitKind.DEPARTMENT, parent_id=d.id)
        s.add(sub)
        await s.flush()
        people = [Person(name=f"p{i}", email=f"p{i}@x.cn", unit_id=city.id) for i in range(5)]
        r1 = Room(unit_id=d.id, name="R1")
        r2 = Room(unit_id=city.id, name="R2")
        s.add_all([*people, r1, r2])
        await s.flush()
        t1 = Terminal(room_id=r1.id, name="T1", token_prefix="a1", token_hash="x")
        t2 = Terminal(room_id=r2.id, name="T2", token_prefix="a2", token_hash="y")
        s.add_all([t1, t2])
        await s.flush()

        def meeting(n: int, unit: Unit, mode: MeetingMode, day: str, start: str, minutes: int,
                    status: MeetingStatus = MeetingStatus.ENDED,
                    cancelled: bool = False) -> Meeting:  # fmt: skip
            begins = local(day, start)
            m = Meeting(
                uid=f"m{n}@test", title=f"M{n}", unit_id=unit.id, organiser_id=people[0].id,
                starts_at=begins, ends_at=begins + timedelta(minutes=minutes),
                tzid="Asia/Shanghai", mode=mode, status=status, created_by="test",
            )  # fmt: skip
            s.add(m)
            return m

        m1 = meeting(1, d, MeetingMode.VIDEO, "2025-03-10", "10:00", 60)
        m2 = meeting(2, p, MeetingMode.HYBRID, "2025-03-20", "14:00", 120)
        m3 = meeting(3, sub, MeetingMode.VIDEO, "2025-04-01", "07:00", 30)
        m4 = meeting(4, city, MeetingMode.VIDEO, "2025-03-10", "10:30", 60)
        m5 = meeting(5, d, MeetingMode.IN_PERSON, "2025-03-15", "09:00", 60)
        m6 = meeting(6, d, MeetingMode.VIDEO, "2025-03-25", "09:00", 60)
        m7 = meeting(7, d, MeetingMode.VIDEO, "2025-04-30", "09:00", 60)
        m8 = meeting(8, d, MeetingMode.VIDEO, "2025-03-12", "09:00", 60,
                     status=MeetingStatus.CANCELLED)  # fmt: skip
        await s.flush()
        for m in (m1, m2, m3, m4, m5, m6, m7, m8):
            s.add(
                Occurrence(
                    meeting_id=m.id, recurrence_id=m.starts_at, starts_at=m.starts_at,
                    ends_at=m.ends_at, cancelled=m is m6,
                )
            )  # fmt: skip
        await s.flush()
        answers = [
            (m1, 1, PartStat.ACCEPTED), (m1, 2, PartStat.ACCEPTED), (m1, 3, PartStat.DECLINED),
            (m2, 4, PartStat.NEEDS_ACTION), (m3, 1, PartStat.ACCEPTED),
        ]  # fmt: skip
        attendees = {}
        for m, person, answer in answers:
            a = Attendee(meeting_id=m.id, person_id=people[person].id,
                         role=AttendeeRole.REQUIRED, partstat=answer)  # fmt: skip
            s.add(a)
            attendees[(m.id, person)] = a
        for m, room in ((m1, r1), (m4, r2)):
            s.add(Booking(room_id=room.id, meeting_id=m.id, recurrence_id=m.starts_at,
                          starts_at=m.starts_at, ends_at=m.ends_at))  # fmt: skip
        await s.flush()
        day = "2025-03-10"
        rows = [
            presence(m1, f"person:{people[1].id}", local(day, "09:58"), local(day, "11:00"),
                     person_id=people[1].id, attendee_id=attendees[(m1.id, 1)].id,
                     samples=2, loss_sum=0.0, rtt_n=2, rtt_sum=200.0, rtt_max=120.0,
                     jitter_n=2, jitter_sum=20.0, jitter_max=15.0, bitrate_sum=2000.0,
                     bitrate_min=900.0),
            presence(m1, f"person:{people[2].id}", local(day, "10:10"), local(day, "10:40"),
                     person_id=people[2].id, attendee_id=attendees[(m1.id, 2)].id,
                     samples=1, loss_sum=0.08, loss_max=0.08, rtt_n=1, rtt_sum=300.0,
                     rtt_max=300.0, jitter_n=1, jitter_sum=50.0, jitter_max=50.0,
                     bitrate_sum=500.0, bitrate_min=500.0),
            presence(m1, f"terminal:{t1.id}", local(day, "09:50"), local(day, "11:05"),
                     terminal_id=t1.id, room_id=r1.id),
            presence(m4, "guest:x", local(day, "10:30"), local(day, "11:30")),
            presence(m3, f"person:{people[1].id}", local("2025-04-01", "07:00"),
                     local("2025-04-01", "07:30"), person_id=people[1].id,
                     attendee_id=attendees[(m3.id, 1)].id, samples=1, loss_sum=0.03,
                     loss_max=0.03, bitrate_sum=800.0, bitrate_min=800.0),
        ]  # fmt: skip
        s.add_all(rows)
    return {
        "city": city.id, "d": d.id, "p": p.id, "sub": sub.id, "t1": t1.id, "t2": t2.id,
        "m1": m1.id, "m7": m7.id,
    }  # fmt: skip
