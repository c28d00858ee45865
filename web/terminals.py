"""Room terminals in the server: their control channel, status, WHIP/WHEP and convening.

The wiring of issue 5, installed by :func:`install` (one line in ``web/app.py``): the
terminal control channel (:mod:`web.terminal_control`) and its meeting change listener,
WHIP/WHEP (:mod:`web.whip`), the administrators' status endpoint and page
(``GET /api/v1/terminals/status``, ``/admin/terminals``), and emergency convening
(``POST /api/v1/convene``, domain logic in :mod:`scheduling.convening`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy import select

from media import MediaError
from rooms.models import Person, Role, UnitKind
from rooms.presence import PresenceStore
from scheduling.convening import ConveneOrder, Convening
from scheduling.planning import Invitee
from scheduling.room_agenda import RoomAgenda, conference_id
from web import keys
from web.api import Api, Call, Schema
from web.auth import ADMIN_ONLY, Access, optional_principal
from web.conference import ADMISSIONS, HUB
from web.endpoints import system
from web.i18n import language
from web.pages import context
from web.problems import ApiError
from web.terminal_control import TERMINAL_EVENTS, TerminalEventHook, TerminalRegistry
from web.whip import HttpMedia
from web.whip import install as install_whip

log = logging.getLogger(__name__)

TERMINALS: web.AppKey[TerminalRegistry] = web.AppKey("terminals")
HTTP_MEDIA: web.AppKey[HttpMedia] = web.AppKey("http_media")
CONVENING: web.AppKey[Convening] = web.AppKey("convening")
CONVENERS = Access(roles=frozenset({Role.ADMIN, Role.SECRETARIAT}))


# --- schemas -----------------------------------------------------------------------------
class TerminalStatusOut(BaseModel):
    """One terminal as administrators see it."""

    terminal_id: int
    name: str
    room_id: int
    room_name: str
    revoked: bool
    online: bool
    online_since: datetime | None
    last_seen_at: datetime | None
    agent_version: str | None
    state: str | None = Field(description="idle, joining, in_conference or leaving (online)")
    conference: str | None
    media: dict[str, Any] | None = Field(
        description="The server's quality sample of the terminal's connection (in a conference)"
    )
    agent_media: dict[str, Any] = Field(description="What the agent last reported about media")


class ConveneIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    room_ids: list[int] = Field(default_factory=list, max_length=500)
    unit_kind: UnitKind | None = Field(
        None, description="Add the rooms (with a terminal) of every unit of this kind"
    )
    minutes: int = Field(60, ge=1, le=720)
    agenda: str = Field("", max_length=5000)
    unit_id: int | None = Field(None, description="Default: the caller's unit")
    chair_id: int | None = None
    attendees: list[int] = Field(default_factory=list, max_length=2000)
    unit_ids: list[int] = Field(default_factory=list, max_length=200)


class ReleasedOut(BaseModel):
    meeting_id: int
    title: str
    room_id: int
    room_name: str
    starts_at: datetime
    ends_at: datetime
    organiser_notified: bool


class ConvenedOut(BaseModel):
    meeting_id: int
    conference: str
    room_ids: list[int]
    starts_at: datetime
    ends_at: datetime
    terminals_told: list[int] = Field(description="Online terminals told to join now")
    released: list[ReleasedOut]


# --- use cases ---------------------------------------------------------------------------
async def terminal_statuses(app: web.Application) -> list[TerminalStatusOut]:
    registry, hub = app[TERMINALS], app[HUB]
    out = []
    for row in await registry.presence.everything():
        live = registry.connections.get(row.terminal.id)
        presence = row.presence
        media: dict[str, Any] | None = None
        if live is not None and live.participant and live.conference:
            with contextlib.suppress(MediaError):
                media = dict(await hub.engine.stats(live.participant))
        out.append(
            TerminalStatusOut(
                terminal_id=row.terminal.id, name=row.terminal.name, room_id=row.room.id,
                room_name=row.room.name, revoked=row.terminal.revoked_at is not None,
                online=live is not None,
                online_since=live.online_since if live else None,
                last_seen_at=live.last_seen if live else presence and presence.last_seen_at,
                agent_version=live.agent_version if live else presence and presence.agent_version,
                state=live.state if live else None, conference=live.conference if live else None,
                media=media, agent_media=live.media if live else {},
            )
        )  # fmt: skip
    return out


def register(api: Api) -> None:
    @api.route(
        "GET", "/terminals/status", summary="Every terminal: online, last seen, conference, media",
        access=ADMIN_ONLY, tag="terminals", response=list[TerminalStatusOut],
    )  # fmt: skip
    async def terminals_status(call: Call[None, None]) -> list[TerminalStatusOut]:
        """Presence comes from the terminals' control channel; `media` is the server's own
        sample of the terminal's connection while it is in a conference."""
        return await terminal_statuses(call.app)

    @api.route(
        "POST", "/convene", summary="Convene an emergency meeting of rooms, starting now",
        access=CONVENERS, tag="terminals", body=ConveneIn, response=ConvenedOut, status=201,
        errors=(409, 422),
    )  # fmt: skip
    async def convene(call: Call[ConveneIn, None]) -> ConvenedOut:
        """Books the rooms now (releasing other meetings' bookings in the way; their
        organisers get an email), invites as any meeting does, and tells every online
        terminal of the rooms to join at once."""
        body, app = call.body, call.app
        if call.who.person_id is None:
            raise ApiError(403, "forbidden", "convening needs a staff account")
        convening = app[CONVENING]
        rooms = await convening.rooms(unit_kind=body.unit_kind, room_ids=body.room_ids)
        unit_id = body.unit_id
        if unit_id is None:
            async with app[keys.DATABASE].read() as session:
                unit_id = await session.scalar(
                    select(Person.unit_id).where(Person.id == call.who.person_id)
                )
        order = ConveneOrder(
            title=body.title, organiser_id=call.who.person_id, unit_id=unit_id or 0,
            room_ids=rooms, duration=timedelta(minutes=body.minutes),
            tzid=app[keys.SETTINGS].timezone, agenda=body.agenda, chair_id=body.chair_id,
            invitees=tuple(Invitee(p) for p in body.attendees), unit_ids=tuple(body.unit_ids),
        )  # fmt: skip
        done = await convening.convene(order, call.who.label)
        meeting = done.meeting
        conference = conference_id(meeting.id, meeting.starts_at)
        told = await app[TERMINALS].command_join(rooms, conference, meeting.title, "convened")
        return ConvenedOut(
            meeting_id=meeting.id, conference=conference, room_ids=list(rooms),
            starts_at=meeting.starts_at, ends_at=meeting.ends_at, terminals_told=told,
            released=[
                ReleasedOut(
                    meeting_id=r.meeting_id, title=r.title, room_id=r.room_id,
                    room_name=r.room_name, starts_at=r.starts_at, ends_at=r.ends_at,
                    organiser_notified=r.organiser_email is not None,
                )
                for r in done.released
            ],
        )  # fmt: skip


# --- the administrators' page ----------------------------------------------------------
PAGE_TEXTS = {
    "zh-CN": {
        "title": "会议室终端状态", "terminal": "终端", "room": "会议室", "status": "状态",
        "online": "在线", "offline": "离线", "revoked": "已吊销", "since": "上线时间",
        "last_seen": "最近在线", "version": "版本", "conference": "当前会议",
        "quality": "媒体质量", "none": "无终端",
    },
    "en": {
        "title": "Room terminals", "terminal": "Terminal", "room": "Room", "status": "Status",
        "online": "online", "offline": "offline", "revoked": "revoked", "since": "Online since",
        "last_seen": "Last seen", "version": "Version", "conference": "Conference",
        "quality": "Media quality", "none": "No terminals",
    },
}  # fmt: skip


async def terminals_page(request: web.Request) -> web.StreamResponse:
    """``/admin/terminals``: the status table (administrators, logged in)."""
    who = await optional_principal(request)
    if who.kind != "staff" or who.session_token is None:
        raise web.HTTPFound("/login?next=/admin/terminals")
    if who.role != Role.ADMIN:
        raise web.HTTPForbidden(text="this page is for administrators")
    return aiohttp_jinja2.render_template(
        "terminals.html",
        request,
        context(
            request,
            who,
            page=PAGE_TEXTS[language(request)],
            terminals=await terminal_statuses(request.app),
        ),
    )


# --- wiring ----------------------------------------------------------------------------
async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    with contextlib.suppress(Exception):  # a fresh database may not be reachable yet
        await app[TERMINALS].presence.all_offline()
    yield
    await app[TERMINALS].close()
    await app[HTTP_MEDIA].close()


def install(app: web.Application) -> None:
    """Add everything of room terminals to the app (after ``conference.install``)."""
    db, settings = app[keys.DATABASE], app[keys.SETTINGS]
    hooks: list[TerminalEventHook] = []
    app[TERMINAL_EVENTS] = hooks
    registry = TerminalRegistry(PresenceStore(db), RoomAgenda(db), hooks)
    app[TERMINALS] = registry
    app[keys.MEETING_LISTENERS].append(registry.meeting_changed)
    app[HTTP_MEDIA] = HttpMedia(app[HUB], app[ADMISSIONS], settings.ice_servers)
    mail_sender = app.get(keys.MAIL_SENDER)
    app[CONVENING] = Convening(
        db,
        app[keys.MEETINGS],
        mail_from=settings.mail_from,
        on_mail_queued=mail_sender.wake if mail_sender is not None else None,
    )
    app.cleanup_ctx.append(_lifetime)
    app.router.add_get("/terminal/ws", registry.websocket)
    install_whip(app, app[HTTP_MEDIA])
    app.router.add_get("/admin/terminals", terminals_page)
    # REST endpoints: installed here, and listed in the app's OpenAPI document
    api = Api(title="terminals", version="1")
    register(api)
    api.install(app)
    app[system.API].endpoints.extend(api.endpoints)
