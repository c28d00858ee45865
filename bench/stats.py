"""Benchmark: the administrators' statistics over a large history (issue 6).

Fills a fresh, separately created database (PostgreSQL: ``suimeet_bench_<random>``, dropped
at the end unless ``--keep``; SQLite: a temporary file) with ``--meetings`` meetings (one
occurrence each, on weekdays over three years up to a fortnight after today) and about
``--attendance`` presences, entirely inside the database server (``INSERT … SELECT`` over a
number table; every "random" choice is a hash of the row's number, so both databases get the
same data). Then it runs the rollup (:func:`scheduling.rollup.refresh`, everything) and times
every statistics query the API offers over the API's default range (the last twelve
months): :func:`scheduling.stats.figures` grouped by each ``group_by`` (``all`` is the
total alone) and :func:`scheduling.stats.terminal_figures` — warm runs, median of
``--runs``. Prints one JSON object; ``--smoke`` is the CI step (a few seconds).

Distributions: 169 units (the city, 12 districts, 60 city departments, 8 departments under
each district), meetings skewed towards the city and the districts; modes 55 % video, 25 %
hybrid, 20 % in person; 30 to 120 minutes between 08:00 and 18:00 local; 3 % of meetings and
2 % of occurrences cancelled; 2 to 10 invitees (70 % accepted); rooms booked for most
in-person and hybrid meetings (room terminals present in most rooms, connected through
their meetings); 96 % of video/hybrid meetings have a conference with a varying number of
presences (invitees, uninvited colleagues, guests reconnecting, WHIP clients); joins from
five minutes early to seven late, leaves from seven early to ten late; quality samples every
ten seconds with skewed loss, RTT and jitter, 3 % of presences without samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from rooms.db import Database, async_url
from scheduling import rollup, stats
from scheduling.stats import StatsQuery
from web.migrate import migrate

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGETS = {"grouped_one_year_ms_below": 500}  # issue 6, on PostgreSQL
TZ = "Asia/Shanghai"  # local 08:00 is 00:00 UTC
PRIME = 2147483647
MAX_PRESENCES = 64  # per occurrence (rows' ids are meeting * 64 + k)
MAX_INVITEES = 16
DISTRICTS, CITY_DEPARTMENTS, PER_DISTRICT = 12, 60, 8
UNITS = 1 + DISTRICTS + CITY_DEPARTMENTS + DISTRICTS * PER_DISTRICT
PEOPLE = 20_000
PEOPLE_STEP = 7919  # prime, so a meeting's invitees are distinct people
ROOMS, TERMINALS = 150, 120
_rng = random.Random(6)
_SALTS = [(_rng.randrange(10**6, PRIME), _rng.randrange(PRIME)) for _ in range(32)]


def h(x: str, salt: int) -> str:
    """SQL: a pseudo-random integer in [0, 2^31 - 1) from the integer expression ``x``."""
    a, b = _SALTS[salt]
    t = f"((({x}) * {a} + {b}) % {PRIME})"
    return f"({t} * {t} % {PRIME})"


def pick(x: str, salt: int, n: int | str) -> str:
    """SQL: a pseudo-random integer in [0, n) (n up to 2^31)."""
    return f"({h(x, salt)} * ({n}) / {PRIME})"


def real(x: str) -> str:
    return f"CAST({x} AS DOUBLE PRECISION)"


class Sql:
    """The few spellings that differ between the two databases."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def ts(self, seconds: str) -> str:
        """A timestamp column value from Unix seconds (SQLite: SQLAlchemy's text form)."""
        if self.pg:
            return f"to_timestamp({seconds})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"

    def boolean(self, condition: str) -> str:
        return f"({condition})" if self.pg else f"(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _plan(meetings: int, today: date) -> dict[str, int]:
    """Where the meetings go: weekdays from three years ago to a fortnight ahead."""
    first = today - timedelta(days=3 * 364)
    first -= timedelta(days=first.weekday())  # a Monday
    weekdays = ((today + timedelta(days=14) - first).days // 7) * 5
    per_day = max(1, math.ceil(meetings / weekdays))
    epoch = int(datetime.combine(first, datetime.min.time(), UTC).timestamp())
    now = int(datetime.combine(today, datetime.min.time(), UTC).timestamp())
    return {"first": epoch, "per_day": per_day, "now": now}


def generation_sql(sql: Sql, meetings: int, attendance: int, plan: dict[str, int]) -> list[str]:
    """The statements that fill an empty, migrated database (in order)."""
    per_day, first, now = plan["per_day"], plan["first"], plan["now"]
    seq = "bench_seq"
    unlogged = "UNLOGGED " if sql.pg else ""
    created = sql.ts(str(first))
    day = f"((s.i - 1) / {per_day})"
    slot = f"(((s.i - 1) % {per_day}) % 10)"
    rank = f"(((s.i - 1) % {per_day}) / 10)"
    calendar_day = f"(({day} / 5) * 7 + {day} % 5)"
    mode = (
        f"CASE WHEN {pick('s.i', 1, 100)} < 55 THEN 'video' "
        f"WHEN {pick('s.i', 1, 100)} < 80 THEN 'hybrid' ELSE 'in_person' END"
    )
    booked = (
        f"({rank} < {ROOMS} AND ({pick('s.i', 1, 100)} >= 55 OR {pick('s.i', 3, 4)} = 0)"
        f" AND {pick('s.i', 2, 10)} < 8)"
    )
    skew = pick("s.i", 5, 1000)
    statements = [
        f"CREATE {unlogged}TABLE {seq} (i BIGINT PRIMARY KEY)",
        # the fan-out to invitees and presences: a small table, or SQLite may loop over
        # every number for every meeting
        f"CREATE {unlogged}TABLE bench_k (i BIGINT PRIMARY KEY)",
        f"""CREATE {unlogged}TABLE bench_m (id BIGINT PRIMARY KEY, start_s BIGINT, dur_s BIGINT,
  unit_id INTEGER, mode VARCHAR(20), cancelled_m INTEGER, cancelled_o INTEGER,
  room_id INTEGER, n_att INTEGER, conf INTEGER, pres_seed BIGINT)""",
        # the numbers 1..max(meetings, 64)
        (
            f"INSERT INTO {seq} SELECT generate_series(1, {max(meetings, MAX_PRESENCES)})"
            if sql.pg
            else f"""WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g
  WHERE i < {max(meetings, MAX_PRESENCES)}) INSERT INTO {seq} SELECT i FROM g"""
        ),
        f"INSERT INTO bench_k SELECT i FROM {seq} WHERE i <= {MAX_PRESENCES}",
        # units: the city, districts, city departments, district departments
        f"""INSERT INTO units (id, name, short_name, kind, parent_id, created_at)
SELECT s.i, '单位' || s.i, 'U' || s.i,
  CASE WHEN s.i = 1 THEN 'city' WHEN s.i <= {1 + DISTRICTS} THEN 'district'
    ELSE 'department' END,
  CASE WHEN s.i = 1 THEN NULL WHEN s.i <= {1 + DISTRICTS + CITY_DEPARTMENTS} THEN 1
    ELSE 2 + (s.i - {2 + DISTRICTS + CITY_DEPARTMENTS}) / {PER_DISTRICT} END,
  {created}
FROM {seq} s WHERE s.i <= {UNITS}""",
        f"""INSERT INTO people (id, name, email, unit_id, created_at)
SELECT s.i, 'p' || s.i, 'p' || s.i || '@bench.gov.cn', 1 + s.i % {UNITS}, {created}
FROM {seq} s WHERE s.i <= {PEOPLE}""",
        f"""INSERT INTO rooms (id, unit_id, name, capacity, equipment, created_at)
SELECT s.i, 1 + (s.i * 7) % {UNITS}, 'room ' || s.i, 20, '[]', {created}
FROM {seq} s WHERE s.i <= {ROOMS}""",
        f"""INSERT INTO terminals (id, room_id, name, token_prefix, token_hash, revoked_at,
  created_at)
SELECT s.i, s.i, 'terminal ' || s.i, 'bench' || s.i, 'x',
  CASE WHEN s.i % 40 = 0 THEN {sql.ts(str((first + now) // 2))} END, {created}
FROM {seq} s WHERE s.i <= {TERMINALS}""",
        # one row of choices per meeting
        f"""INSERT INTO bench_m
SELECT s.i,
  {first} + {calendar_day} * 86400 + {slot} * 3600
    + CASE WHEN {booked} THEN 0 ELSE {pick("s.i", 4, 2)} * 1800 END,
  CASE WHEN {booked} THEN 1800 + {pick("s.i", 6, 2)} * 1800
    ELSE 1800 * (1 + {pick("s.i", 6, 4)}) END,
  1 + {skew} * {skew} * {UNITS} / 1000000,
  {mode},
  CASE WHEN {pick("s.i", 7, 100)} < 3 THEN 1 ELSE 0 END,
  CASE WHEN {pick("s.i", 8, 100)} < 2 THEN 1 ELSE 0 END,
  CASE WHEN {booked} THEN {rank} + 1 END,
  2 + {pick("s.i", 9, 9)},
  CASE WHEN {pick("s.i", 1, 100)} < 80 AND {pick("s.i", 10, 100)} < 96 THEN 1 ELSE 0 END,
  {h("s.i", 11)}
FROM {seq} s WHERE s.i <= {meetings}""",
        f"""INSERT INTO meetings (id, uid, sequence, title, agenda, unit_id, organiser_id,
  starts_at, ends_at, tzid, mode, status, reminder_minutes, created_by, created_at,
  updated_at)
SELECT m.id, 'bench-' || m.id || '@suimeet', 0, '会议 ' || m.id, '', m.unit_id,
  1 + m.id % {PEOPLE}, {sql.ts("m.start_s")}, {sql.ts("m.start_s + m.dur_s")}, '{TZ}',
  m.mode,
  CASE WHEN m.cancelled_m = 1 THEN 'cancelled'
    WHEN m.start_s + m.dur_s <= {now} THEN 'ended' ELSE 'scheduled' END,
  15, 'bench', {sql.ts("m.start_s - 604800")}, {sql.ts("m.start_s - 604800")}
FROM bench_m m""",
        f"""INSERT INTO meeting_occurrences (meeting_id, recurrence_id, starts_at, ends_at,
  cancelled)
SELECT m.id, {sql.ts("m.start_s")}, {sql.ts("m.start_s")}, {sql.ts("m.start_s + m.dur_s")},
  {sql.boolean("m.cancelled_o = 1")}
FROM bench_m m""",
        f"""INSERT INTO bookings (id, room_id, meeting_id, recurrence_id, starts_at, ends_at)
SELECT m.id, m.room_id, m.id, {sql.ts("m.start_s")}, {sql.ts("m.start_s")},
  {sql.ts("m.start_s + m.dur_s")}
FROM bench_m m WHERE m.room_id IS NOT NULL AND m.cancelled_m = 0 AND m.cancelled_o = 0""",
        """INSERT INTO meeting_rooms (meeting_id, room_id)
SELECT m.id, m.room_id FROM bench_m m WHERE m.room_id IS NOT NULL""",
        f"""INSERT INTO meeting_attendees (id, meeting_id, person_id, role, partstat)
SELECT (m.id - 1) * {MAX_INVITEES} + k.i, m.id,
  1 + ({pick("m.id", 12, PEOPLE)} + k.i * {PEOPLE_STEP}) % {PEOPLE},
  CASE WHEN k.i = 1 THEN 'chair' ELSE 'required' END,
  CASE WHEN {pick(f"m.id * {MAX_INVITEES} + k.i", 13, 100)} < 70 THEN 'ACCEPTED'
    WHEN {pick(f"m.id * {MAX_INVITEES} + k.i", 13, 100)} < 80 THEN 'DECLINED'
    WHEN {pick(f"m.id * {MAX_INVITEES} + k.i", 13, 100)} < 88 THEN 'TENTATIVE'
    ELSE 'NEEDS-ACTION' END
FROM bench_m m JOIN bench_k k ON k.i <= m.n_att""",
        _presences_sql(sql, meetings, attendance, plan),
        _terminal_presences_sql(sql, now),
    ]
    return statements


def _presences_sql(sql: Sql, meetings: int, attendance: int, plan: dict[str, int]) -> str:
    """Presences of invitees, uninvited colleagues, guests and WHIP clients."""
    held_share = 0.8 * 0.96 * 0.95  # video or hybrid, a conference, not cancelled, past
    mean = max(1.0, attendance / max(1, meetings * held_share))
    span = max(1, min(MAX_PRESENCES, round(2 * mean - 1)))
    r = f"(m.id * {MAX_PRESENCES} + k.i)"
    invitee = f"(k.i <= m.n_att AND {pick(r, 14, 100)} < 85)"
    person = f"1 + ({pick('m.id', 12, PEOPLE)} + k.i * {PEOPLE_STEP}) % {PEOPLE}"
    stranger = f"1 + {pick(r, 15, PEOPLE)}"
    join_off = f"({pick(r, 16, 720)} - 300)"
    leave_off = f"({pick(r, 17, 1000)} - 400)"
    reconnects = f"CASE WHEN {pick(r, 18, 10)} = 0 THEN 1 ELSE 0 END"
    # one network quality per presence: about 60 % good, 30 % fair, 10 % poor
    u = pick(r, 21, 1000)
    u4 = f"({real(u)} * {u} * {u} * {u} / 1000000000000.0)"
    return f"""INSERT INTO attendance (id, meeting_id, recurrence_id, attendee_id, person_id,
  terminal_id, room_id, identity, client_kind, joined_at, left_at, leave_reason, segment_at,
  last_seen_at, seconds, reconnects, join_offset_s, leave_offset_s, samples, loss_sum,
  loss_max, jitter_n, jitter_sum, jitter_max, rtt_n, rtt_sum, rtt_max, bitrate_sum,
  bitrate_min)
SELECT p.id, p.meeting_id, {sql.ts("p.start_s")}, p.attendee_id, p.person_id, NULL, NULL,
  p.identity, p.client_kind, {sql.ts("p.start_s + p.join_off")},
  {sql.ts("p.start_s + p.dur_s + p.leave_off")}, 'left', {sql.ts("p.start_s + p.join_off")},
  {sql.ts("p.start_s + p.dur_s + p.leave_off")}, p.seconds, p.reconnects, p.join_off,
  p.leave_off, p.samples,
  p.loss * p.samples, p.loss * p.worse, p.samples, p.jitter * p.samples, p.jitter * p.worse,
  p.samples, p.rtt * p.samples, p.rtt * p.worse, p.bitrate * p.samples,
  CASE WHEN p.samples > 0 THEN p.bitrate * 0.4 END
FROM (
  SELECT q.*, CASE WHEN q.unsampled THEN 0 ELSE q.seconds / 10 + 1 END AS samples
  FROM (
    SELECT {r} AS id, m.id AS meeting_id, m.start_s, m.dur_s,
      CASE WHEN {invitee} THEN (m.id - 1) * {MAX_INVITEES} + k.i END AS attendee_id,
      CASE WHEN {invitee} THEN {person} WHEN k.i <= m.n_att THEN {stranger} END AS person_id,
      CASE WHEN {invitee} THEN 'person:' || ({person})
        WHEN k.i <= m.n_att THEN 'person:' || ({stranger})
        WHEN {pick(r, 19, 10)} < 7 THEN 'guest:' || m.id || '-' || (k.i / 2)
        ELSE 'whip:' || m.id || '-' || k.i END AS identity,
      CASE WHEN k.i <= m.n_att THEN 'browser' WHEN {pick(r, 19, 10)} < 7 THEN 'guest'
        ELSE 'whip' END AS client_kind,
      {join_off} AS join_off, {leave_off} AS leave_off, {reconnects} AS reconnects,
      m.dur_s + {leave_off} - {join_off} - 30 * {reconnects} AS seconds,
      {pick(r, 20, 100)} < 3 AS unsampled,
      0.08 * {u4} AS loss, 20 + 480.0 * {u4} AS rtt, 2 + 120.0 * {u4} AS jitter,
      {real(f"300 + {pick(r, 24, 2200)}")} AS bitrate,
      1.5 + {pick(r, 25, 100)} / 100.0 AS worse
    FROM bench_m m JOIN bench_k k ON k.i <= 1 + m.pres_seed % {span}
    WHERE m.conf = 1 AND m.cancelled_m = 0 AND m.cancelled_o = 0
      AND m.start_s + m.dur_s <= {plan["now"]}
  ) q
) p"""


def _terminal_presences_sql(sql: Sql, now: int) -> str:
    """The booked room's terminal in a conference (most of the time, for most of it)."""
    late = pick("m.id", 26, 900)
    gone = f"CASE WHEN {pick('m.id', 27, 10)} = 0 THEN m.dur_s / 2 ELSE 0 END"
    return f"""INSERT INTO attendance (id, meeting_id, recurrence_id, attendee_id, person_id,
  terminal_id, room_id, identity, client_kind, joined_at, left_at, leave_reason, segment_at,
  last_seen_at, seconds, reconnects, join_offset_s, leave_offset_s, samples, loss_sum,
  loss_max, jitter_n, jitter_sum, jitter_max, rtt_n, rtt_sum, rtt_max, bitrate_sum,
  bitrate_min)
SELECT m.id * {MAX_PRESENCES}, m.id, {sql.ts("m.start_s")}, NULL, NULL, m.room_id, m.room_id,
  'terminal:' || m.room_id, 'terminal', {sql.ts(f"m.start_s - 600 + {late}")},
  {sql.ts(f"m.start_s + m.dur_s - {gone}")}, 'left', {sql.ts(f"m.start_s - 600 + {late}")},
  {sql.ts(f"m.start_s + m.dur_s - {gone}")}, m.dur_s + 600 - {late} - {gone}, 0,
  {late} - 600, -({gone}), (m.dur_s + 600 - {late} - {gone}) / 10 + 1,
  0.0, 0.0, 0, 0.0, 0.0, 0, 0.0, 0.0, 2000.0 * ((m.dur_s + 600 - {late} - {gone}) / 10 + 1),
  2000.0
FROM bench_m m
WHERE m.conf = 1 AND m.room_id IS NOT NULL AND m.room_id <= {TERMINALS}
  AND m.cancelled_m = 0 AND m.cancelled_o = 0 AND m.start_s + m.dur_s <= {now}
  AND {pick("m.id", 28, 10)} < 9"""


async def _indexes(conn: AsyncConnection, pg: bool, tables: list[str]) -> list[tuple[str, str]]:
    """The plain (not constraint) indexes of ``tables``: (name, CREATE statement)."""
    if pg:
        rows = await conn.execute(
            text(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(:t)"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            ),
            {"t": tables},
        )
    else:
        marks = ", ".join(f"'{t}'" for t in tables)
        rows = await conn.execute(
            text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({marks})"
            )
        )
    return [(str(n), str(d)) for n, d in rows]


async def generate(url: str, meetings: int, attendance: int, today: date) -> dict[str, Any]:
    """Fill the migrated database at ``url``; the seconds each step took and the counts."""
    engine = create_async_engine(async_url(url))
    sql = Sql(engine.dialect.name)
    plan = _plan(meetings, today)
    steps: dict[str, float] = {}
    big = ["attendance", "meeting_attendees", "meeting_occurrences", "meetings", "bookings"]
    try:
        async with engine.connect() as conn:
            if sql.pg:
                # the rows are consistent by construction: skip the foreign-key triggers
                await conn.execute(text("SET session_replication_role = replica"))
                await conn.execute(text("SET maintenance_work_mem = '256MB'"))
            else:
                await conn.execute(text("PRAGMA foreign_keys = OFF"))
                await conn.execute(text("PRAGMA synchronous = OFF"))
                await conn.execute(text("PRAGMA cache_size = -262144"))
            await conn.commit()
            indexes = await _indexes(conn, sql.pg, big)
            for name, _ in indexes:
                await conn.execute(text(f'DROP INDEX "{name}"'))
            await conn.commit()
            for statement in generation_sql(sql, meetings, attendance, plan):
                t0 = time.perf_counter()
                await conn.execute(text(statement))
                await conn.commit()
                label = " ".join(statement.split()[:3]).lower()
                steps[label] = round(steps.get(label, 0.0) + time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            for _, definition in indexes:
                await conn.execute(text(definition))
            await conn.commit()
            steps["create indexes"] = round(time.perf_counter() - t0, 2)
            for table in ("bench_m", "bench_k", "bench_seq"):
                await conn.execute(text(f"DROP TABLE {table}"))
            if sql.pg:
                for table in ("meetings", "attendance", "meeting_attendees"):
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" (SELECT MAX(id) FROM {table}))"
                        )
                    )
            await conn.commit()
            counts = {}
            for table in ("meetings", "meeting_occurrences", "meeting_attendees", "bookings",
                          "attendance"):  # fmt: skip
                found = await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))
                counts[table] = int(found.scalar_one())
        t0 = time.perf_counter()
        await _analyse(url, sql.pg)
        steps["vacuum analyze" if sql.pg else "analyze"] = round(time.perf_counter() - t0, 2)
    finally:
        await engine.dispose()
    return {"steps_seconds": steps, "rows": counts, "meetings_per_weekday": plan["per_day"]}


async def _analyse(url: str, pg: bool) -> None:
    """Fresh planner statistics (PostgreSQL: and the visibility map, as autovacuum would)."""
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("VACUUM ANALYZE" if pg else "ANALYZE"))
    finally:
        await engine.dispose()


async def _timed(run: Callable[[], Awaitable[Any]], runs: int) -> tuple[dict[str, Any], Any]:
    result = await run()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = await run()
        times.append((time.perf_counter() - t0) * 1000)
    figures = {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
    }
    return figures, result


def default_range(today: date) -> tuple[date, date]:
    """The API's default: the last twelve months (see ``web.endpoints.stats.query_of``)."""
    return (today.replace(day=1) - timedelta(days=335)).replace(day=1), today


async def bench(url: str, args: argparse.Namespace, meetings: int, attendance: int) -> Any:
    today = datetime.now(UTC).date()
    t0 = time.perf_counter()
    await migrate(url)
    migrate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    generated = await generate(url, meetings, attendance, today)
    generate_s = time.perf_counter() - t0
    db = Database(url)
    now = datetime.combine(today, datetime.min.time(), UTC)
    try:
        t0 = time.perf_counter()
        summaries = await rollup.refresh(db, now, everything=True)
        rollup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await _analyse(url, not db.is_sqlite)
        analyse_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        await rollup.refresh(db, now)
        incremental_s = time.perf_counter() - t0
        start, end = default_range(today)
        queries: dict[str, Any] = {}
        reports: dict[str, Any] = {}
        for by in stats.GROUPINGS:
            query = StatsQuery(start, end, by, tz=TZ)

            def run(q: StatsQuery = query) -> Awaitable[stats.Report]:
                return stats.figures(db, q)

            figures, report = await _timed(run, args.runs)
            queries[f"figures_{by}"] = {**figures, "groups": len(report.rows)}
            reports[by] = [r.as_dict() for r in [*report.rows, report.total]]
        in_range = StatsQuery(start, end, tz=TZ)
        figures, terminals = await _timed(lambda: stats.terminal_figures(db, in_range), args.runs)
        queries["terminal_figures"] = {**figures, "terminals": len(terminals)}
        reports["terminals"] = [asdict(t) for t in terminals]
        total = reports["all"][-1]
        grouped = [queries[f"figures_{by}"]["median_ms"] for by in stats.GROUPINGS if by != "all"]
        result = {
            "database": db.dialect,
            "server_version": await _server_version(db),
            "sizes": {"meetings": meetings, "attendance_asked": attendance},
            "rows": generated["rows"],
            "migrate_seconds": round(migrate_s, 1),
            "generate_seconds": round(generate_s, 1),
            "generate_steps_seconds": generated["steps_seconds"],
            "rollup_everything_seconds": round(rollup_s, 1),
            "summaries": summaries,
            "analyze_after_rollup_seconds": round(analyse_s, 1),
            "rollup_incremental_seconds": round(incremental_s, 2),
            "range": [start.isoformat(), end.isoformat()],
            "range_total": {
                k: total[k]
                for k in (
                    "held",
                    "held_by_video",
                    "video_share",
                    "participant_minutes",
                    "invited",
                    "attended",
                    "peak_participants",
                    "peak_conferences",
                    "terminal_online_ratio",
                    "quality_good",
                    "quality_poor",
                )
            },
            "runs": args.runs,
            "queries": queries,
            "grouped_worst_median_ms": max(grouped),
            "meets_target": max(grouped) < TARGETS["grouped_one_year_ms_below"],
            "loadavg_before_and_after": None,
        }
        result["_reports"] = reports
    finally:
        await db.close()
    return result


async def _server_version(db: Database) -> str:
    query = "select sqlite_version()" if db.is_sqlite else "show server_version"
    async with db.engine.connect() as conn:
        return str((await conn.exec_driver_sql(query)).scalar_one())


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "note": "client and PostgreSQL server share these CPUs; other tests may be running",
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--meetings", type=int, default=1_000_000)
    parser.add_argument("--attendance", type=int, default=10_000_000)
    parser.add_argument(
        "--sqlite-scale",
        type=float,
        default=0.1,
        help="SQLite gets this share of --meetings and --attendance (default 0.1)",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed warm runs per query")
    parser.add_argument("--pg-url", default=os.environ.get("SUIMEET_TEST_PG_URL", DEFAULT_PG))
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for CI")
    parser.add_argument("--reports", type=Path, help="write every report here (JSON)")
    args = parser.parse_args()
    if args.smoke:
        args.meetings, args.attendance, args.sqlite_scale, args.runs = 2000, 20_000, 1.0, 2
    results: list[dict[str, Any]] = []
    load_start = _load()

    async def one(url: str, meetings: int, attendance: int) -> None:
        before = _load()
        result = await bench(url, args, meetings, attendance)
        result["loadavg_before_and_after"] = [before, _load()]
        results.append(result)

    if args.db in ("sqlite", "both"):
        with TemporaryDirectory() as tmp:
            scale = args.sqlite_scale
            await one(
                f"sqlite:///{Path(tmp) / 'bench.sqlite3'}",
                max(1, round(args.meetings * scale)),
                max(1, round(args.attendance * scale)),
            )
    if args.db in ("postgresql", "both"):
        name = f"suimeet_bench_{secrets.token_hex(4)}"
        head = args.pg_url.rpartition("/")[0]
        await _admin(args.pg_url, f'CREATE DATABASE "{name}"')
        try:
            await one(f"{head}/{name}", args.meetings, args.attendance)
        finally:
            if args.keep:
                results[-1:] and results[-1].update(kept=f"{head}/{name}")
            else:
                await _admin(args.pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    reports = {r["database"]: r.pop("_reports") for r in results}
    if args.reports:
        args.reports.write_text(json.dumps(reports, ensure_ascii=False, indent=1, default=str))
    same = None
    if len(results) == 2 and results[0]["sizes"] == results[1]["sizes"]:
        same = reports["sqlite"] == reports["postgresql"]
    report = {
        "benchmark": "stats",
        "targets": TARGETS,
        "machine": _machine(),
        "loadavg_at_start": load_start,
        "sqlite_scale": args.sqlite_scale,
        "same_figures_on_both_databases": same,
    }
    print(json.dumps({**report, "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
