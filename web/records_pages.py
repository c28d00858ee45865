"""The page of what a meeting's conferences left behind: recordings, chat, chair controls.

``GET /secretariat/meetings/{meeting_id}/records`` for administrators, the secretariat and
the meeting's organiser and chair, logged in with a browser session (others: 403; nobody
logged in: to the login page). Rendered on the server from the same services as the REST
API (``/api/v1/meetings/{id}/chat``, ``…/conference-log``, ``…/recordings``); recordings are
downloaded from ``/api/v1/recordings/{id}/file`` with the session.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from scheduling.conference_log import LogQuery
from scheduling.errors import MeetingNotFound
from web import keys
from web.auth import optional_principal
from web.endpoints.conference_records import OPERATORS, may_see_records
from web.endpoints.meeting_schemas import viewer_of
from web.i18n import language
from web.pages import context

MAX_ENTRIES = 500

_TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "records": "会议记录",
        "recordings": "录制",
        "no_recordings": "暂无录制。",
        "chat": "聊天记录",
        "controls": "主持操作",
        "nothing": "暂无记录。",
        "download": "下载",
        "private_to": "私聊给",
        "by": "操作人",
        "status_recording": "录制中",
        "status_ready": "可下载",
        "status_failed": "失败",
        "more": "仅显示前 {n} 条，完整记录见接口。",
    },
    "en": {
        "records": "Meeting records",
        "recordings": "Recordings",
        "no_recordings": "No recordings.",
        "chat": "Chat",
        "controls": "Chair controls",
        "nothing": "Nothing yet.",
        "download": "Download",
        "private_to": "privately to",
        "by": "By",
        "status_recording": "recording",
        "status_ready": "ready",
        "status_failed": "failed",
        "more": "Only the first {n} are shown; the API has them all.",
    },
}


async def meeting_records(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["meeting_id"]
    who = await optional_principal(request)
    if who.kind != "staff" or who.session_token is None:
        raise web.HTTPFound(f"/login?next=/secretariat/meetings/{raw}/records")
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    try:
        meeting = await request.app[keys.MEETINGS].get(int(raw), viewer_of(who))
    except MeetingNotFound:
        raise web.HTTPNotFound() from None
    if not may_see_records(who, meeting):
        raise web.HTTPForbidden(text="this page is for those who run the meeting")
    log, total = await request.app[keys.CONFERENCE_LOG].entries(
        LogQuery(meeting.id, include_private=who.role in OPERATORS, limit=MAX_ENTRIES)
    )
    recordings = await request.app[keys.RECORDINGS].of_meeting(meeting.id)
    zone = ZoneInfo(meeting.tzid)
    ctx: dict[str, Any] = context(
        request, who, meeting=meeting, recordings=recordings, total=total, zone=zone,
        chat=[e for e in log if e.kind == "chat"],
        controls=[e for e in log if e.kind == "control"], limit=MAX_ENTRIES,
    )  # fmt: skip
    ctx["t"] = {**ctx["t"], **_TEXTS[language(request)]}
    return aiohttp_jinja2.render_template("meeting_records.html", request, ctx)


def install(app: web.Application) -> None:
    app.router.add_get("/secretariat/meetings/{meeting_id}/records", meeting_records)
