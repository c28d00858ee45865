"""Wiring of live conferences: the hub, its callbacks into the database, the join pages.

``signaling`` never touches the database; this module gives the hub its ``authenticate``
callback (join tokens and terminal tokens checked against meetings, invitations and
bookings by :mod:`scheduling.admission`) and its presence listener (:mod:`web.attendance`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from media import IceServer, MediaConfig
from rooms.db import utcnow
from scheduling.admission import Admission, AdmissionRefused, Admissions
from scheduling.links import LinkSigner
from signaling.errors import JoinRefused, NotNow
from signaling.hub import ConferenceHub, JoinGrant
from web import attendance, keys
from web.auth import STAFF_SELF, authorize
from web.i18n import texts
from web.pages import context
from web.settings import Settings

log = logging.getLogger(__name__)

HUB: web.AppKey[ConferenceHub] = web.AppKey("hub")
LINKS: web.AppKey[LinkSigner] = web.AppKey("links")
ADMISSIONS: web.AppKey[Admissions] = web.AppKey("admissions")

_NOT_NOW = {"too_early", "ended", "cancelled"}


def media_config(settings: Settings) -> MediaConfig:
    servers: list[IceServer] = [{"urls": url} for url in settings.ice_servers]
    return MediaConfig(ice_servers=servers, host_addresses=settings.media_host_addresses or None)


def grant_for(admission: Admission, kind: str) -> JoinGrant:
    return JoinGrant(
        conference=admission.conference,
        identity=admission.identity,
        name=admission.name,
        kind="terminal" if kind == "terminal" else "browser",
        role="chair" if admission.chair else "participant",
        title=admission.title,
        ends_at=admission.ends_at,
        meta={
            "meeting_id": admission.meeting_id,
            "recurrence_id": admission.recurrence_id,
            "person_id": admission.person_id,
            "terminal_id": admission.terminal_id,
            "room_id": admission.room_id,
        },
    )


def make_authenticate(app: web.Application) -> Any:
    async def authenticate(token: str) -> JoinGrant:
        admissions = app[ADMISSIONS]
        try:
            if token.startswith("smr_"):
                terminal = await app[keys.ACCOUNTS].resolve_terminal(token)
                if terminal is None:
                    raise JoinRefused("the terminal token is unknown or revoked")
                return grant_for(await admissions.terminal(terminal.id, utcnow()), "terminal")
            claim = app[LINKS].verify("join", token)
            if claim is None:
                raise JoinRefused("the join link is not valid")
            admission = await admissions.person(claim.meeting_id, claim.person_id, utcnow())
            return grant_for(admission, "browser")
        except AdmissionRefused as exc:
            if exc.code in _NOT_NOW:
                raise NotNow(exc.message, code=exc.code) from None
            raise JoinRefused(exc.message, code=exc.code) from None

    return authenticate


async def join_page(request: web.Request) -> web.StreamResponse:
    """The conference page an invitation link opens (the token is the credential)."""
    token = request.match_info["token"]
    claim = request.app[LINKS].verify("join", token)
    if claim is None:
        raise web.HTTPNotFound(text="invalid link")
    t = texts(request)
    page_texts = {
        k: v
        for k, v in t.items()
        if k.startswith(("refused_", "state_"))
        or k in ("connecting", "joined", "left", "closed", "no_devices")
    }
    return aiohttp_jinja2.render_template(
        "join.html",
        request,
        context(request, token=token, title=t["conference"], page_texts=page_texts),
    )


async def join_as_staff(request: web.Request) -> web.StreamResponse:
    """A logged-in invitee joins from the meeting: redirected to their personal link."""
    who = await authorize(request, STAFF_SELF)
    meeting_id = request.match_info["meeting_id"]
    if not meeting_id.isdigit() or who.person_id is None:
        raise web.HTTPNotFound()
    token = request.app[LINKS].sign("join", int(meeting_id), who.person_id)
    raise web.HTTPFound(f"/join/{token}")


async def _hub(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[HUB].close()


def install(app: web.Application) -> None:
    settings = app[keys.SETTINGS]
    app[LINKS] = LinkSigner(app[keys.SECRET])
    app[ADMISSIONS] = Admissions(
        app[keys.DATABASE], early=timedelta(minutes=settings.join_early_minutes)
    )
    app[HUB] = ConferenceHub(
        media_config(settings),
        make_authenticate(app),
        on_presence=attendance.listener(app),
        client_ice_servers=[{"urls": url} for url in settings.ice_servers],
    )
    app.cleanup_ctx.append(_hub)
    app.router.add_get("/ws", app[HUB].websocket)
    app.router.add_get("/join/{token}", join_page)
    app.router.add_get("/meetings/{meeting_id}/join", join_as_staff)
