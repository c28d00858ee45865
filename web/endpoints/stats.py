"""REST endpoints of the statistics for administrators (``/api/v1/stats``), JSON or CSV.

For the dashboard, the monthly report and administrators' own spreadsheets: every table is
also served as CSV (``?format=csv``, UTF-8 with a byte-order mark so that spreadsheet
programs read the Chinese names). The figures are defined in docs/statistics.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from rooms.models import Role, Room, Terminal, Unit
from scheduling import stats
from scheduling.stats import GroupBy, StatsQuery
from web import keys
from web.api import Api, Call
from web.auth import Access
from web.conference import HUB
from web.problems import ApiError

STATS_READ = Access(roles=frozenset({Role.ADMIN}))
MAX_DAYS = 3 * 366


class RangeQuery(BaseModel):
    """A range of local days (both included); default: the last twelve months."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date | None = Field(None, alias="from", description="First day (YYYY-MM-DD).")
    to: date | None = Field(None, description="Last day, included (YYYY-MM-DD).")
    unit_id: int | None = Field(None, ge=1, description="A unit and the units under it.")
    format: Literal["json", "csv"] = "json"

    @model_validator(mode="after")
    def _ordered(self) -> RangeQuery:
        if self.start and self.to and self.to < self.start:
            raise ValueError("`to` must not be before `from`")
        if self.start and self.to and (self.to - self.start).days > MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days")
        return self


class StatsQueryIn(RangeQuery):
    group_by: GroupBy = Field("month", description="unit, district, department, kind, "
                              "month, mode or all")  # fmt: skip


class FiguresOut(BaseModel):
    """The figures of one group (see docs/statistics.md)."""

    key: str
    label: str
    held: int
    planned_video: int
    held_by_video: int
    video_share: float | None
    target: float
    participant_minutes: float
    invited: int
    accepted: int
    attended: int
    acceptance_rate: float | None
    attendance_rate: float | None
    late_joins: int
    early_leaves: int
    mean_duration_min: float | None
    peak_participants: int
    peak_conferences: int
    terminal_online_ratio: float | None
    quality_good: int
    quality_fair: int
    quality_poor: int
    quality_unknown: int
    loss_mean: float | None
    loss_worst: float | None
    rtt_mean_ms: float | None
    rtt_worst_ms: float | None
    jitter_mean_ms: float | None
    jitter_worst_ms: float | None
    bitrate_mean_kbps: float | None
    bitrate_lowest_kbps: float | None


class StatsOut(BaseModel):
    start: date = Field(serialization_alias="from")
    to: date
    group_by: str
    unit_id: int | None
    target: float
    rows: list[FiguresOut]
    total: FiguresOut


class TerminalUptime(BaseModel):
    terminal_id: int
    terminal: str
    room: str
    unit_id: int
    unit: str
    booked_occurrences: int
    booked_minutes: float
    online_minutes: float
    online_ratio: float | None


class LiveTerminal(BaseModel):
    id: int
    name: str
    room: str
    unit: str
    in_conference: bool = Field(description="Connected to a conference now.")


class LiveOut(BaseModel):
    conferences: int
    participants: int
    terminals_in_conference: int
    terminals: list[LiveTerminal]


def query_of(call: Call[None, Any], group_by: GroupBy = "all") -> StatsQuery:
    """The domain query of a request (defaults: the last twelve months, local)."""
    q = call.query
    tz = call.app[keys.SETTINGS].timezone
    today = datetime.now(ZoneInfo(tz)).date()
    end = q.to or today
    start = q.start or (end.replace(day=1) - timedelta(days=335)).replace(day=1)
    if q.start is None and q.to is not None and start > end:
        start = end
    if (end - start).days > MAX_DAYS:
        raise ApiError(422, "validation_failed", f"at most {MAX_DAYS} days",
                       fields={"to": "range too long"})  # fmt: skip
    return StatsQuery(start, end, getattr(q, "group_by", group_by), q.unit_id, tz)


def csv_response(rows: list[dict[str, Any]], filename: str) -> web.Response:
    """A CSV download of ``rows`` (header from the first row's keys)."""
    out = io.StringIO()
    out.write("\ufeff")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def report_of(call: Call[None, Any], query: StatsQuery) -> stats.Report:
    target = call.app[keys.SETTINGS].stats_video_target
    return await stats.figures(call.app[keys.DATABASE], query, target=target)


def register(api: Api) -> None:
    @api.route("GET", "/stats", summary="Meetings, video share, attendance and quality",
               access=STATS_READ, tag="statistics", query=StatsQueryIn,
               response=StatsOut)  # fmt: skip
    async def get_stats(call: Call[None, StatsQueryIn]) -> StatsOut | web.Response:
        """Grouped by `group_by` over held occurrences starting in the range; `total` is
        every group together. `?format=csv` gives the rows and the total as CSV."""
        query = query_of(call)
        report = await report_of(call, query)
        rows = [FiguresOut(**r.as_dict()) for r in report.rows]
        total = FiguresOut(**report.total.as_dict())
        if call.query.format == "csv":
            table = [r.model_dump() for r in [*rows, total]]
            name = f"suimeet-stats-{query.group_by}-{query.start}-{query.end}.csv"
            return csv_response(table, name)
        return StatsOut(start=query.start, to=query.end, group_by=query.group_by,
                        unit_id=query.unit_id, target=report.target, rows=rows,
                        total=total)  # fmt: skip

    @api.route("GET", "/stats/terminals", summary="Room terminals' online ratio",
               access=STATS_READ, tag="statistics", query=RangeQuery,
               response=list[TerminalUptime])  # fmt: skip
    async def get_terminal_stats(
        call: Call[None, RangeQuery],
    ) -> list[TerminalUptime] | web.Response:
        """For each terminal: its room's bookings in held occurrences of the range, and how
        much of that time it was connected to the conference."""
        query = query_of(call)
        found = await stats.terminal_figures(call.app[keys.DATABASE], query)
        rows = [TerminalUptime(**asdict(f)) for f in found]
        if call.query.format == "csv":
            return csv_response([r.model_dump() for r in rows],
                                f"suimeet-terminals-{query.start}-{query.end}.csv")  # fmt: skip
        return rows

    @api.route("GET", "/stats/live", summary="Live conferences and terminals now",
               access=STATS_READ, tag="statistics", response=LiveOut)  # fmt: skip
    async def get_live(call: Call[None, None]) -> LiveOut:
        """How many conferences and participants are live, and which terminals are in one
        (the details of each conference: `GET /api/v1/conferences`)."""
        hub = call.app[HUB]
        live = hub.conferences()
        async with call.app[keys.DATABASE].read() as session:
            rows = await session.execute(
                select(Terminal.id, Terminal.name, Room.name, Unit.short_name, Unit.name)
                .join(Room, Room.id == Terminal.room_id)
                .join(Unit, Unit.id == Room.unit_id)
                .where(Terminal.revoked_at.is_(None))
                .order_by(Unit.id, Terminal.id)
            )
        terminals = [
            LiveTerminal(
                id=t, name=n, room=r, unit=short or u,
                in_conference=any(hub.is_connected(c, f"terminal:{t}") for c in live),
            )
            for t, n, r, short, u in rows
        ]  # fmt: skip
        return LiveOut(
            conferences=len(live),
            participants=sum(len(m) for m in live.values()),
            terminals_in_conference=sum(t.in_conference for t in terminals),
            terminals=terminals,
        )
