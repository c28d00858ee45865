"""The administrators' pages: the statistics dashboard and the printable monthly report.

For administrators (the ``admin`` role, logged in with a browser session). The dashboard is
plain HTML whose script (``static/js/dashboard.js``) reads the statistics API and draws SVG
charts with ``static/js/charts.js``; the report (``/admin/report?month=YYYY-MM``) is
rendered on the server with inline SVG charts (:mod:`web.charts`) and print styles, so it
prints or saves as PDF from any browser without running a script.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from rooms.models import Role, Unit
from scheduling import stats
from scheduling.stats import StatsQuery
from web import charts, keys
from web.admin_texts import ADMIN_MESSAGES, admin_texts
from web.auth import Principal, optional_principal
from web.i18n import language
from web.pages import context


async def _admin(request: web.Request) -> Principal:
    who = await optional_principal(request)
    if who.kind != "staff" or who.session_token is None:
        raise web.HTTPFound(f"/login?next={request.path}")
    if who.role != Role.ADMIN:
        raise web.HTTPForbidden(text="this page is for administrators")
    return who


async def dashboard(request: web.Request) -> web.StreamResponse:
    """Charts of the video share, meetings per unit, attendance and quality; live view."""
    who = await _admin(request)
    async with request.app[keys.DATABASE].read() as session:
        units = (await session.execute(
            select(Unit.id, Unit.short_name, Unit.name, Unit.kind).order_by(Unit.id)
        )).all()  # fmt: skip
    t = admin_texts(request)
    return aiohttp_jinja2.render_template(
        "admin_dashboard.html",
        request,
        context(
            request,
            who,
            t=t,
            units=[{"id": u[0], "name": u[1] or u[2]} for u in units],
            page_texts=json.dumps(ADMIN_MESSAGES[language(request)], ensure_ascii=False),
        ),
    )


def _month(request: web.Request, tz: str) -> str:
    value = request.query.get("month")
    if value is None:
        today = datetime.now(ZoneInfo(tz)).date()
        previous = date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
        return previous.strftime("%Y-%m")
    try:
        stats.month_range(value)
    except ValueError:
        raise web.HTTPBadRequest(text="month must be YYYY-MM") from None
    return value


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


async def report(request: web.Request) -> web.StreamResponse:
    """The monthly report (月通报): headline figures, units, a year's trend, quality."""
    who = await _admin(request)
    settings = request.app[keys.SETTINGS]
    tz, target = settings.timezone, settings.stats_video_target
    month = _month(request, tz)
    first, last = stats.month_range(month)
    db = request.app[keys.DATABASE]
    t = admin_texts(request)
    head = await stats.figures(db, StatsQuery(first, last, "all", tz=tz), target=target)
    units = await stats.figures(db, StatsQuery(first, last, "unit", tz=tz), target=target)
    year_start = date(first.year - (first.month < 12), first.month % 12 + 1, 1)
    trend = await stats.figures(db, StatsQuery(year_start, last, "month", tz=tz), target=target)
    shares = [(r.key, r.video_share) for r in trend.rows]
    quality = [
        (r.key, r.quality_good, r.quality_fair, r.quality_poor, r.quality_unknown)
        for r in trend.rows
    ]
    figures: dict[str, Any] = {
        "share": charts.share_bars(shares, target, t["chart_share"]),
        "units": charts.unit_bars(
            [(r.label, r.held, r.held_by_video) for r in units.rows[:20]], t["chart_units"]
        ),
        "quality": charts.quality_bars(quality, t["chart_quality"]),
    }
    return aiohttp_jinja2.render_template(
        "admin_report.html",
        request,
        context(
            request,
            who,
            t=t,
            month=month,
            last=last.isoformat(),
            total=head.total,
            units=units.rows,
            trend=trend.rows,
            figures=figures,
            pct=_percent,
            target=target,
            generated=datetime.now(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M"),
        ),
    )


def install(app: web.Application) -> None:
    app.router.add_get("/admin/dashboard", dashboard)
    app.router.add_get("/admin/report", report)
