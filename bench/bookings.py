"""Benchmark: room bookings with conflict checking, over many existing bookings.

Measures the scheduling service layer in-process (not through HTTP, no change listeners:
no invitation emails, no reminder jobs), on SQLite and/or PostgreSQL, against a fresh
migrated database seeded with ``--existing`` bookings (weekly series of 100 occurrences
spread over ``--rooms`` rooms, inserted in bulk). Two paths, each at every ``--concurrency``
(requests in flight at once, each waiting for its answer before sending the next):

- ``meeting_create``: :meth:`MeetingService.create` of a one-room, one-occurrence,
  three-attendee meeting (the secretariat's common case): validation, reference checks,
  attendee warnings, the meeting, attendee, room and occurrence rows, then the room lock,
  clash check and booking, one transaction. Requests that clash are answered by
  ``RoomConflict`` and counted as conflicts (they are checked bookings too).
- ``booking_only``: the booking layer alone (:func:`scheduling.bookings.reserve`): lock,
  clash check and insert of one booking for an existing meeting, one transaction each.

Each result gives throughput, latency percentiles, this process's CPU per attempt (all of
the client side: SQLAlchemy, the driver, the event loop) and the statements per attempt as
SQLAlchemy sends them (BEGIN and COMMIT included; on PostgreSQL each is one round trip).
Prints one JSON object. ``--smoke`` is the CI step (about 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from rooms.db import Database
from rooms.models import Person, Room, Unit, UnitKind
from scheduling import bookings
from scheduling.bookings import Wanted
from scheduling.errors import RoomConflict
from scheduling.meetings import MeetingService
from scheduling.models import Booking, Meeting, MeetingMode, MeetingStatus, Occurrence
from scheduling.planning import Invitee, MeetingDraft
from web.migrate import migrate

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
SERIES_LENGTH = 100
DAY = timedelta(days=1)
TARGETS = {"p99_ms_below": 20, "per_second_at_least": 500}  # issue 3, on PostgreSQL


class Statements:
    """Counts what SQLAlchemy sends: statements, BEGIN, COMMIT and ROLLBACK."""

    def __init__(self, engines: list[AsyncEngine]) -> None:
        self.count = 0
        for engine in engines:
            for name in ("before_cursor_execute", "begin", "commit", "rollback"):
                event.listen(engine.sync_engine, name, self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


async def _seed(db: Database, rooms: int, existing: int, start: datetime) -> dict[str, Any]:
    """Units, rooms, people, and ``existing`` bookings as weekly series (bulk inserts)."""
    async with db.write() as session:
        unit = Unit(name="广州市人民政府办公厅", kind=UnitKind.CITY)
        session.add(unit)
        await session.flush()
        people = [Person(name=f"p{i}", email=f"p{i}@gz.gov.cn", unit_id=unit.id) for i in range(50)]
        room_rows = [Room(unit_id=unit.id, name=f"room{i}") for i in range(rooms)]
        session.add_all([*people, *room_rows])
        await session.flush()
        unit_id, person_ids = unit.id, [p.id for p in people]
        room_ids = [r.id for r in room_rows]
    series = max(1, existing // SERIES_LENGTH)
    meetings, occurrences, booked = [], [], []
    now = datetime.now(UTC)
    for n in range(series):
        room = room_ids[n % rooms]
        # each room's series sit at different hours of different weekdays: no overlaps
        slot = n // rooms
        first = start + timedelta(days=slot % 7, hours=8 + (slot // 7) % 10)
        meetings.append(
            {
                "id": n + 1,
                "uid": f"seed-{n}@suimeet",
                "sequence": 0,
                "title": f"series {n}",
                "agenda": "",
                "unit_id": unit_id,
                "organiser_id": person_ids[0],
                "chair_id": None,
                "starts_at": first,
                "ends_at": first + timedelta(hours=1),
                "tzid": "Asia/Shanghai",
                "rrule": f"FREQ=WEEKLY;COUNT={SERIES_LENGTH}",
                "mode": MeetingMode.VIDEO,
                "doc_ref": None,
                "status": MeetingStatus.SCHEDULED,
                "reminder_minutes": 15,
                "split_from_id": None,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
        )
        for week in range(SERIES_LENGTH):
            at = first + timedelta(weeks=week)
            occurrences.append(
                {
                    "meeting_id": n + 1,
                    "recurrence_id": at,
                    "starts_at": at,
                    "ends_at": at + timedelta(hours=1),
                    "cancelled": False,
                }
            )
            booked.append(
                {
                    "room_id": room,
                    "meeting_id": n + 1,
                    "recurrence_id": at,
                    "starts_at": at,
                    "ends_at": at + timedelta(hours=1),
                }
            )
    for table, rows in ((Meeting, meetings), (Occurrence, occurrences), (Booking, booked)):
        for i in range(0, len(rows), 5000):
            async with db.write() as session:
                await session.execute(insert(table), rows[i : i + 5000])
    if db.dialect == "postgresql":
        async with db.write() as session:
            # the seeded rows carry their ids: move the id sequence past them
            await session.execute(
                text("SELECT setval(pg_get_serial_sequence('meetings', 'id'), :n)"), {"n": series}
            )
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    return {"unit_id": unit_id, "people": person_ids, "rooms": room_ids, "series": series}


async def _run(
    total: int,
    concurrency: int,
    attempt: Callable[[int], Awaitable[bool]],
    statements: Statements,
) -> dict[str, Any]:
    latencies: list[float] = []
    outcomes = {"booked": 0, "conflicts": 0}
    queue = iter(range(total))

    async def worker() -> None:
        for n in queue:
            t0 = time.perf_counter()
            ok = await attempt(n)
            latencies.append((time.perf_counter() - t0) * 1000)
            outcomes["booked" if ok else "conflicts"] += 1

    sent = statements.count
    cpu = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu
    latencies.sort()
    per_second = total / elapsed
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "concurrency": concurrency,
        **outcomes,
        "attempts": total,
        "per_second": round(per_second, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(latencies[-1], 2),
        "client_cpu_ms_per_attempt": round(1000 * cpu / total, 3),
        "statements_per_attempt": round((statements.count - sent) / total, 2),
        "meets_targets": p99 < TARGETS["p99_ms_below"]
        and per_second >= TARGETS["per_second_at_least"],
    }


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(url)
    db = Database(url)
    rng = random.Random(42)
    start = (datetime.now(UTC) + 2 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        t0 = time.perf_counter()
        seeded = await _seed(db, args.rooms, args.existing, start)
        seed_s = time.perf_counter() - t0
        service = MeetingService(db, [])
        statements = Statements(list(db.engines))
        span_days = max(
            7, (SERIES_LENGTH * 7 * seeded["series"]) // max(1, len(seeded["rooms"]) * 7)
        )

        def when() -> datetime:
            return start + timedelta(
                days=rng.randrange(span_days), minutes=30 * rng.randrange(16, 40)
            )

        async def create(n: int) -> bool:
            begin = when()
            draft = MeetingDraft(
                title=f"bench {n}",
                unit_id=seeded["unit_id"],
                organiser_id=seeded["people"][0],
                start=begin,
                end=begin + timedelta(hours=1),
                tzid="Asia/Shanghai",
                room_ids=(rng.choice(seeded["rooms"]),),
                invitees=tuple(Invitee(p) for p in rng.sample(seeded["people"], 3)),
            )
            try:
                await service.create(draft, "bench")
            except RoomConflict:
                return False
            return True

        async def book_only(n: int) -> bool:
            begin = when()
            wanted = [Wanted(rng.choice(seeded["rooms"]), begin, begin, begin + timedelta(hours=1))]
            async with db.write() as session:
                return not await bookings.reserve(session, 1 + n % seeded["series"], wanted)

        for path in (create, book_only):  # warm-up: connections, prepared statements
            await _run(min(100, args.bookings), max(args.concurrency), path, statements)
        result: dict[str, Any] = {
            "database": db.dialect,
            "server_version": await _server_version(db),
            "existing_bookings": seeded["series"] * SERIES_LENGTH,
            "rooms": len(seeded["rooms"]),
            "seed_seconds": round(seed_s, 1),
            "via": "service layer, in-process (no HTTP, no change listeners)",
            "meeting_create": [],
            "booking_only": [],
        }
        for concurrency in args.concurrency:
            for name, path in (("meeting_create", create), ("booking_only", book_only)):
                result[name].append(await _run(args.bookings, concurrency, path, statements))
    finally:
        await db.close()
    return result


async def _server_version(db: Database) -> str:
    query = "select sqlite_version()" if db.is_sqlite else "show server_version"
    async with db.engine.connect() as conn:
        return str((await conn.exec_driver_sql(query)).scalar_one())


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "note": "client and PostgreSQL server share these CPUs (loopback TCP)",
    }


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://", 1), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--existing", type=int, default=100_000, help="bookings seeded first")
    parser.add_argument("--bookings", type=int, default=2000, help="bookings attempted")
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[1, 4, 8, 16],
        help="requests in flight, comma-separated: each is run in turn",
    )
    parser.add_argument("--pg-url", default=os.environ.get("SUIMEET_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    args = parser.parse_args()
    if args.smoke:
        args.existing, args.bookings, args.concurrency = 1000, 200, [8]
    results = []
    if args.db in ("sqlite", "both"):
        with TemporaryDirectory() as tmp:
            results.append(await bench(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args))
    if args.db in ("postgresql", "both"):
        name = f"suimeet_bench_{secrets.token_hex(4)}"
        head = args.pg_url.rpartition("/")[0]
        await _admin(args.pg_url, f'CREATE DATABASE "{name}"')
        try:
            results.append(await bench(f"{head}/{name}", args))
        finally:
            await _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report = {"benchmark": "bookings", "targets": TARGETS, "machine": _machine()}
    print(json.dumps({**report, "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
