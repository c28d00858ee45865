"""Statistics for administrators: meetings held, the video share, attendance and quality.

For the statistics API, the monthly report and the dashboard (``web``). Every figure is
aggregated in the database from the per-occurrence rollup (:mod:`scheduling.rollup`) over a
date range of local days, grouped by unit, district, department, kind of unit, month or mode
(or not at all). The definitions are in docs/statistics.md; in short:

- **held**: an occurrence not cancelled, of a meeting not cancelled, whose end is past;
- **held by video**: held, of mode video or hybrid, with at least one participant connected
  to its conference; the **video share** is held by video / held, against ``target``;
- invited, accepted and attended count over occurrences held by video (attendance is known
  only for those); late joins and early leaves count people whose first join came more than
  the grace after the start, or whose last leave came more than the grace before the end.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, column, func, or_, select, text, true
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database, UTCDateTime
from rooms.models import Room, Terminal, Unit
from scheduling import rollup

GroupBy = Literal["all", "unit", "district", "department", "kind", "month", "mode"]
GROUPINGS: tuple[GroupBy, ...] = ("all", "unit", "district", "department", "kind", "month", "mode")
DEFAULT_TARGET = 0.8


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """What to count: local days ``start``..``end`` (both included) in ``tz``."""

    start: date
    end: date
    group_by: GroupBy = "all"
    unit_id: int | None = None  # that unit and the units directly under it
    tz: str = "Asia/Shanghai"

    def bounds(self) -> tuple[datetime, datetime]:
        """The range as UTC instants: [start 00:00, day after end 00:00) local."""
        zone = ZoneInfo(self.tz)
        low = datetime.combine(self.start, time(), zone)
        high = datetime.combine(self.end + timedelta(days=1), time(), zone)
        return low, high

    def months(self) -> list[tuple[str, datetime]]:
        """Each local month the range touches, with the UTC instant it starts at."""
        zone = ZoneInfo(self.tz)
        found = []
        year, month = self.start.year, self.start.month
        while (year, month) <= (self.end.year, self.end.month):
            found.append((f"{year:04d}-{month:02d}", datetime(year, month, 1, tzinfo=zone)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return found


@dataclass(slots=True)
class Figures:
    """Every figure of one group (``key``; ``label`` for people)."""

    key: str
    label: str
    held: int = 0
    planned_video: int = 0
    held_by_video: int = 0
    video_share: float | None = None
    target: float = DEFAULT_TARGET
    participant_minutes: float = 0.0
    invited: int = 0
    accepted: int = 0
    attended: int = 0
    acceptance_rate: float | None = None
    attendance_rate: float | None = None
    late_joins: int = 0
    early_leaves: int = 0
    mean_duration_min: float | None = None
    peak_participants: int = 0
    peak_conferences: int = 0
    terminal_online_ratio: float | None = None
    quality_good: int = 0
    quality_fair: int = 0
    quality_poor: int = 0
    quality_unknown: int = 0
    loss_mean: float | None = None
    loss_worst: float | None = None
    rtt_mean_ms: float | None = None
    rtt_worst_ms: float | None = None
    jitter_mean_ms: float | None = None
    jitter_worst_ms: float | None = None
    bitrate_mean_kbps: float | None = None
    bitrate_lowest_kbps: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Report:
    """The figures of every group, and of all of them together (``total``)."""

    query: StatsQuery
    target: float
    rows: list[Figures] = field(default_factory=list)
    total: Figures = field(default_factory=lambda: Figures("all", "all"))


@dataclass(frozen=True, slots=True)
class TerminalFigures:
    """How much of its booked time one room terminal was connected."""

    terminal_id: int
    terminal: str
    room: str
    unit_id: int
    unit: str
    booked_occurrences: int
    booked_minutes: float
    online_minutes: float
    online_ratio: float | None


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _group_key(query: StatsQuery, params: dict[str, Any]) -> str:
    """The SQL of the group key (on ``s`` summaries, ``u`` their unit, ``pu`` its parent)."""
    by = query.group_by
    if by == "month":
        # Local months as plain comparisons: exact in any time zone, on any database.
        months = query.months()
        branches = []
        for i in range(1, len(months)):
            params[f"m{i}"] = months[i][1]
            branches.append(f"WHEN s.starts_at < :m{i} THEN '{months[i - 1][0]}'")
        return (
            f"CASE {' '.join(branches)} ELSE '{months[-1][0]}' END"
            if branches
            else (f"'{months[0][0]}'")
        )
    return rollup.group_key_sql(by)


_FROM = """FROM occurrence_summaries s JOIN units u ON u.id = s.unit_id
LEFT JOIN units pu ON pu.id = u.parent_id
WHERE s.starts_at >= :lo AND s.starts_at < :hi"""

_AGGREGATES = """COUNT(*) AS held,
  SUM(CASE WHEN s.mode IN ('video', 'hybrid') THEN 1 ELSE 0 END) AS planned_video,
  SUM(CASE WHEN s.by_video THEN 1 ELSE 0 END) AS held_by_video,
  SUM(s.participant_s) AS participant_s,
  SUM(CASE WHEN s.by_video THEN s.invited ELSE 0 END) AS invited,
  SUM(CASE WHEN s.by_video THEN s.accepted ELSE 0 END) AS accepted,
  SUM(s.attended) AS attended, SUM(s.late_joins) AS late_joins,
  SUM(s.early_leaves) AS early_leaves, SUM(s.scheduled_s) AS scheduled_s,
  MAX(s.peak_participants) AS peak_participants,
  SUM(s.terminal_booked_s) AS terminal_booked_s, SUM(s.terminal_online_s) AS terminal_online_s,
  SUM(s.q_good) AS q_good, SUM(s.q_fair) AS q_fair, SUM(s.q_poor) AS q_poor,
  SUM(s.q_unknown) AS q_unknown,
  SUM(s.loss_n) AS loss_n, SUM(s.loss_sum) AS loss_sum, MAX(s.loss_max) AS loss_max,
  SUM(s.rtt_n) AS rtt_n, SUM(s.rtt_sum) AS rtt_sum, MAX(s.rtt_max) AS rtt_max,
  SUM(s.jitter_n) AS jitter_n, SUM(s.jitter_sum) AS jitter_sum,
  MAX(s.jitter_max) AS jitter_max, SUM(s.bitrate_sum) AS bitrate_sum,
  MIN(s.bitrate_min) AS bitrate_min"""


_NAMES = re.findall(r"AS (\w+)", _AGGREGATES)
_MAXIMA = frozenset({"peak_participants", "loss_max", "rtt_max", "jitter_max"})
_MINIMA = frozenset({"bitrate_min"})


def _combined(rows: list[RowMapping]) -> dict[str, Any]:
    """The aggregates of the union of the groups ``rows`` (each is a sum, a maximum or a
    minimum): the total without a second pass over the summaries."""
    total: dict[str, Any] = dict.fromkeys(_NAMES)
    for row in rows:
        for name in _NAMES:
            value, seen = row[name], total[name]
            if value is None:
                continue
            if seen is None:
                total[name] = value
            elif name in _MAXIMA:
                total[name] = max(seen, value)
            elif name in _MINIMA:
                total[name] = min(seen, value)
            else:
                total[name] = seen + value
    return total


def _where(query: StatsQuery, key: str, params: dict[str, Any]) -> str:
    where = _FROM
    if query.unit_id is not None:
        params["unit"] = query.unit_id
        where += " AND (s.unit_id = :unit OR u.parent_id = :unit)"
    if query.group_by in ("district", "department"):
        where += f" AND ({key}) IS NOT NULL"
    return where


def _statement(sql: str) -> Any:
    return text(sql).bindparams(
        bindparam("lo", type_=UTCDateTime()), bindparam("hi", type_=UTCDateTime())
    )


def _typed(sql: str, params: dict[str, Any]) -> Any:
    statement = _statement(sql)
    extra = [
        bindparam(k, type_=UTCDateTime())
        for k in params
        if k.startswith("m") and f":{k} " in sql + " "
    ]
    return statement.bindparams(*extra) if extra else statement


def _figures(key: str, label: str, r: Mapping[str, Any] | RowMapping, target: float) -> Figures:
    held = int(r["held"] or 0)
    by_video = int(r["held_by_video"] or 0)

    def mean(total: str, count: str, digits: int = 2) -> float | None:
        n = r[count] or 0
        return round(float(r[total]) / n, digits) if n else None

    return Figures(
        key=key,
        label=label,
        held=held,
        planned_video=int(r["planned_video"] or 0),
        held_by_video=by_video,
        video_share=_ratio(by_video, held),
        target=target,
        participant_minutes=round((r["participant_s"] or 0) / 60, 1),
        invited=int(r["invited"] or 0),
        accepted=int(r["accepted"] or 0),
        attended=int(r["attended"] or 0),
        acceptance_rate=_ratio(r["accepted"] or 0, r["invited"] or 0),
        attendance_rate=_ratio(r["attended"] or 0, r["invited"] or 0),
        late_joins=int(r["late_joins"] or 0),
        early_leaves=int(r["early_leaves"] or 0),
        mean_duration_min=round((r["scheduled_s"] or 0) / 60 / held, 1) if held else None,
        peak_participants=int(r["peak_participants"] or 0),
        terminal_online_ratio=_ratio(r["terminal_online_s"] or 0, r["terminal_booked_s"] or 0),
        quality_good=int(r["q_good"] or 0),
        quality_fair=int(r["q_fair"] or 0),
        quality_poor=int(r["q_poor"] or 0),
        quality_unknown=int(r["q_unknown"] or 0),
        loss_mean=mean("loss_sum", "loss_n", 4),
        loss_worst=round(float(r["loss_max"]), 4) if r["loss_n"] else None,
        rtt_mean_ms=mean("rtt_sum", "rtt_n", 1),
        rtt_worst_ms=round(float(r["rtt_max"]), 1) if r["rtt_n"] else None,
        jitter_mean_ms=mean("jitter_sum", "jitter_n", 1),
        jitter_worst_ms=round(float(r["jitter_max"]), 1) if r["jitter_n"] else None,
        bitrate_mean_kbps=mean("bitrate_sum", "loss_n", 1),
        bitrate_lowest_kbps=(
            round(float(r["bitrate_min"]), 1) if r["bitrate_min"] is not None else None
        ),
    )


Peaks = tuple[dict[str, int], int]


async def _peaks(session: AsyncSession, query: StatsQuery) -> Peaks:
    """The most conferences of each group, and of all groups together, live at one instant.

    From the daily peaks of the rollup (``conference_peaks``) when they give the same
    answer as a sweep: no unit filter, and the conferences of different days never overlap
    (checked on the days' spans); the parts of the range that are not whole days there
    are swept live. Otherwise one live sweep over the whole range."""
    if query.unit_id is None:
        stored = await _stored_peaks(session, query)
        if stored is not None:
            return stored
    low, high = query.bounds()
    grouped, total, _ = await _sweep(session, query, low, high)
    return grouped, total


async def _stored_peaks(session: AsyncSession, query: StatsQuery) -> Peaks | None:
    low, high = query.bounds()
    if query.group_by != "month":
        return await _range_peaks(session, query, low, high)
    whole = replace(query, group_by="all")
    everything = await _range_peaks(session, whole, low, high)
    if everything is None:
        return None
    months = query.months()
    by_month = {}
    for i, (label, begins) in enumerate(months):
        ends = months[i + 1][1] if i + 1 < len(months) else high
        found = await _range_peaks(session, whole, max(low, begins), min(high, ends))
        if found is None:
            return None
        if "all" in found[0]:
            by_month[label] = found[1]
    return by_month, everything[1]


def _day_start(day: int) -> datetime:
    return datetime.fromtimestamp(day * rollup.DAY - rollup.PEAK_DAY_OFFSET, UTC)


async def _range_peaks(
    session: AsyncSession, query: StatsQuery, low: datetime, high: datetime
) -> Peaks | None:
    """The peaks of the conferences starting in [low, high): the stored whole days, the
    edges swept live; None if conferences of different days overlap."""
    first = -((-math.floor(low.timestamp()) - rollup.PEAK_DAY_OFFSET) // rollup.DAY)
    end = (math.floor(high.timestamp()) + rollup.PEAK_DAY_OFFSET) // rollup.DAY
    if first >= end:
        grouped, total, _ = await _sweep(session, query, low, high)
        return grouped, total
    by = query.group_by
    together = f"{by}_all" if by in ("district", "department") else "all"
    peak = rollup.ConferencePeak
    days = (peak.day >= first, peak.day < end)
    found = await session.execute(
        select(peak.key, func.max(peak.peak)).where(peak.grouping == by, *days).group_by(peak.key)
    )
    peaks = {str(k): int(n) for k, n in found}
    most = await session.scalar(select(func.max(peak.peak)).where(peak.grouping == together, *days))
    total = int(most or 0)
    spans: list[tuple[datetime, datetime]] = [
        (a, b)
        for a, b in await session.execute(
            select(peak.first_at, peak.last_at).where(peak.grouping == "all", *days)
            .order_by(peak.day)
        )
    ]  # fmt: skip
    for at, (a, b) in ((0, (low, _day_start(first))), (None, (_day_start(end), high))):
        if a >= b:
            continue
        grouped, edge_total, span = await _sweep(session, query, a, b)
        for k, n in grouped.items():
            peaks[k] = max(n, peaks.get(k, 0))
        total = max(total, edge_total)
        if span is not None:
            spans.insert(len(spans) if at is None else at, span)
    latest: datetime | None = None
    for begins, ends in spans:
        if latest is not None and begins < latest:
            return None  # a conference of one day overlaps one of another: sweep it all
        latest = ends if latest is None else max(latest, ends)
    return peaks, total


async def _sweep(
    session: AsyncSession, query: StatsQuery, low: datetime, high: datetime
) -> tuple[dict[str, int], int, tuple[datetime, datetime] | None]:
    """A live sweep over the conferences starting in [low, high): each group's peak, the
    peak of all groups together, and the span of their events (None without any)."""
    params: dict[str, Any] = {}
    key = _group_key(query, params)
    where = _where(query, key, params) + " AND s.by_video"
    rows = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    # one scan: each summary twice, as its conference's start (+1) and end (-1)
    both_ends = where.replace(
        "\nWHERE ", "\nCROSS JOIN (SELECT 1 AS d UNION ALL SELECT -1) e WHERE ", 1
    )
    together = "0" if query.group_by == "all" else f"SUM(d) OVER (ORDER BY t, d {rows})"
    # the key and the conditions are this module's own SQL; every value is bound
    sql = f"""WITH ev AS (
  SELECT {key} AS k, e.d,
    CASE WHEN e.d = 1 THEN s.conference_start ELSE COALESCE(s.conference_end, s.ends_at) END
      AS t
  {both_ends}
), run AS (
  SELECT k, t, SUM(d) OVER (PARTITION BY k ORDER BY t, d {rows}) AS n, {together} AS a
  FROM ev
)
SELECT k, MAX(n) AS n, MAX(a) AS a, MIN(t) AS first_t, MAX(t) AS last_t
FROM run GROUP BY k"""  # noqa: S608
    statement = _typed(sql, params).columns(
        column("k"), column("n"), column("a"),
        column("first_t", UTCDateTime()), column("last_t", UTCDateTime()),
    )  # fmt: skip
    found = list(await session.execute(statement, {"lo": low, "hi": high, **params}))
    grouped = {str(r.k): int(r.n or 0) for r in found}
    if not found:
        return grouped, 0, None
    span = (min(r.first_t for r in found), max(r.last_t for r in found))
    if query.group_by == "all":
        return grouped, grouped.get("all", 0), span
    return grouped, max(int(r.a or 0) for r in found), span


def _numeric(key: str) -> int:
    return int(key) if key.isdigit() else -1


async def _labels(session: AsyncSession, query: StatsQuery) -> dict[str, str]:
    if query.group_by not in ("unit", "district", "department"):
        return {}
    rows = await session.execute(select(Unit.id, Unit.short_name, Unit.name))
    return {str(i): short or name for i, short, name in rows}


async def figures(db: Database, query: StatsQuery, *, target: float = DEFAULT_TARGET) -> Report:
    """The figures of ``query``, grouped as it asks, with their total."""
    params: dict[str, Any] = {}
    key = _group_key(query, params)
    where = _where(query, key, params)
    low, high = query.bounds()
    values = {"lo": low, "hi": high, **params}
    report = Report(query, target)
    async with db.read() as session:
        if db.dialect == "postgresql":
            # the sweeps sort every conference's start and end: keep the sort in memory;
            # compiling these one-off statements (JIT) costs more than it saves
            await session.execute(text("SET LOCAL work_mem = '64MB'"))
            await session.execute(text("SET LOCAL jit = off"))
        grouped = await session.execute(
            _typed(
                f"SELECT {key} AS k, {_AGGREGATES} {where}"
                + (f" GROUP BY {key}" if query.group_by != "all" else ""),
                params,
            ),
            values,
        )
        peaks, total_peak = await _peaks(session, query)
        labels = await _labels(session, query)
        by_key = {str(row[0]): row._mapping for row in grouped}
        keys = list(by_key)
        if query.group_by == "month":
            keys = [label for label, _ in query.months()]
        elif query.group_by != "all":
            # most meetings first; ties by id as a number ("9" before "10"), else by name
            keys.sort(key=lambda k: (-int(by_key[k]["held"]), _numeric(k), k))
        for k in keys:
            row = by_key.get(k)
            item = (
                _figures(k, labels.get(k, k), row, target)
                if row is not None
                else Figures(k, labels.get(k, k), target=target)
            )
            item.peak_conferences = peaks.get(k, 0)
            report.rows.append(item)
        report.total = _figures("all", "all", _combined(list(by_key.values())), target)
        report.total.peak_conferences = total_peak
    return report


async def terminal_figures(db: Database, query: StatsQuery) -> list[TerminalFigures]:
    """Every terminal's booked and connected time in held occurrences of the range."""
    low, high = query.bounds()
    sql = """SELECT t.id, SUM(CASE WHEN s.meeting_id IS NULL THEN 0 ELSE 1 END) AS n,
  SUM(COALESCE(s.scheduled_s, 0)) AS booked, SUM(COALESCE(p.s, 0)) AS online
FROM terminals t
LEFT JOIN bookings b ON b.room_id = t.room_id AND b.starts_at >= :lo AND b.starts_at < :hi
LEFT JOIN occurrence_summaries s ON s.meeting_id = b.meeting_id
  AND s.recurrence_id = b.recurrence_id
LEFT JOIN (SELECT a.meeting_id, a.recurrence_id, a.terminal_id, SUM(a.seconds) AS s
  FROM attendance a WHERE a.terminal_id IS NOT NULL
    AND a.joined_at >= :early AND a.joined_at < :hi
  GROUP BY a.meeting_id, a.recurrence_id, a.terminal_id) p
  ON p.meeting_id = s.meeting_id AND p.recurrence_id = s.recurrence_id AND p.terminal_id = t.id
WHERE t.revoked_at IS NULL OR t.revoked_at > :lo
GROUP BY t.id"""
    statement = _statement(sql).bindparams(bindparam("early", type_=UTCDateTime()))
    async with db.read() as session:
        rows = {
            int(r[0]): r
            for r in await session.execute(
                statement, {"lo": low, "hi": high, "early": low - timedelta(days=1)}
            )
        }
        names = await session.execute(
            select(Terminal.id, Terminal.name, Room.name, Unit.id, Unit.short_name, Unit.name)
            .join(Room, Room.id == Terminal.room_id)
            .join(Unit, Unit.id == Room.unit_id)
            .where(
                Terminal.id.in_(rows),
                true()
                if query.unit_id is None
                else or_(Unit.id == query.unit_id, Unit.parent_id == query.unit_id),
            )
            .order_by(Unit.id, Terminal.id)
        )
        result = []
        for tid, terminal, room, unit_id, short, unit in names:
            _, n, booked, online = rows[tid]
            online = min(int(online or 0), int(booked or 0))
            result.append(
                TerminalFigures(
                    terminal_id=tid,
                    terminal=terminal,
                    room=room,
                    unit_id=unit_id,
                    unit=short or unit,
                    booked_occurrences=int(n or 0),
                    booked_minutes=round((booked or 0) / 60, 1),
                    online_minutes=round(online / 60, 1),
                    online_ratio=_ratio(online, booked or 0),
                )
            )
    return result


def month_range(month: str) -> tuple[date, date]:
    """First and last day of ``YYYY-MM`` (ValueError if it is not one)."""
    year, mon = (int(p) for p in month.split("-", 1))
    if len(month) != 7 or not 1 <= mon <= 12:
        raise ValueError(month)
    return date(year, mon, 1), date(year, mon, calendar.monthrange(year, mon)[1])
