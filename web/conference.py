"""Wiring of live conferences: the hub, its callbacks into the database, the join pages.

``signaling`` never touches the database; this module gives the hub its ``authenticate``
callback (join tokens, guest tokens and terminal tokens checked against meetings,
invitations and bookings by :mod:`scheduling.admission`), its presence listener
(:mod:`web.attendance`) and its hooks for chat, chair controls and recordings
(:mod:`web.conference_hooks`), and serves the join pages: ``/join/<token>`` (an invitation's
link, or a guest's), ``/meetings/<id>/join`` (logged-in staff) and ``/guest`` (the form
where a guest types the meeting number, the passcode and a name).
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
from web import attendance, conference_hooks, keys
from web.auth import STAFF_SELF, GuestLimits, authorize
from web.i18n import texts
from web.pages import context
from web.settings import Settings

log = logging.getLogger(__name__)

HUB: web.AppKey[ConferenceHub] = web.AppKey("hub")
LINKS: web.AppKey[LinkSigner] = web.AppKey("links")
ADMISSIONS: web.AppKey[Admissions] = web.AppKey("admissions")

_NOT_NOW = {"too_early", "ended", "cancelled"}
_PAGE_TEXT_KEYS = ("connecting", "joined", "left", "closed", "no_devices")


def media_config(settings: Settings) -> MediaConfig:
    servers: list[IceServer] = [{"urls": url} for url in settings.ice_servers]
    return MediaConfig(ice_servers=servers, host_addresses=settings.media_host_addresses or None)


def grant_for(admission: Admission, kind: str, **meta: Any) -> JoinGrant:
    """The hub's grant for an admission; ``kind``: browser, terminal or guest."""
    return JoinGrant(
        conference=admission.conference,
        identity=admission.identity,
        name=admission.name,
        kind="terminal" if kind == "terminal" else "guest" if kind == "guest" else "browser",
        role="chair" if admission.chair else "participant",
        title=admission.title,
        ends_at=admission.ends_at,
        meta={
            "meeting_id": admission.meeting_id,
            "recurrence_id": admission.recurrence_id,
            "person_id": admission.person_id,
            "terminal_id": admission.terminal_id,
            "room_id": admission.room_id,
            **meta,
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
            if claim is not None:
                admission = await admissions.person(claim.meeting_id, claim.person_id, utcnow())
                return grant_for(admission, "browser")
            return await _guest_grant(app, token)
        except AdmissionRefused as exc:
            if exc.code in _NOT_NOW:
                raise NotNow(exc.message, code=exc.code) from None
            raise JoinRefused(exc.message, code=exc.code) from None

    return authenticate


async def _guest_grant(app: web.Application, token: str) -> JoinGrant:
    """A guest token's grant. An expired token still lets its guest back in while the
    guest is in the conference (or within its reconnect grace): a reload or a network
    blip late in a long meeting must not lock the guest out."""
    guest = app[LINKS].verify_guest(token)
    if guest is None:
        raise JoinRefused("the join link is not valid")
    admission = await app[ADMISSIONS].guest(guest.meeting_id, guest.guest_id, guest.name, utcnow())
    if guest.expired and not app[HUB].is_connected(admission.conference, admission.identity):
        raise JoinRefused(
            "this guest link has expired: enter the passcode again", code="guest_expired"
        )
    return grant_for(admission, "guest", guest_id=guest.guest_id)


def _is_guest_token(app: web.Application, token: str) -> bool:
    return app[LINKS].verify_guest(token) is not None


async def join_page(request: web.Request) -> web.StreamResponse:
    """The conference page an invitation link (or a guest's link) opens; the token is the
    credential."""
    token = request.match_info["token"]
    guest = request.app[LINKS].verify("join", token) is None
    if guest and not _is_guest_token(request.app, token):
        raise web.HTTPNotFound(text="invalid link")
    t = texts(request)
    page_texts = {
        k: v for k, v in t.items() if k.startswith(("refused_", "state_")) or k in _PAGE_TEXT_KEYS
    }
    return aiohttp_jinja2.render_template(
        "join.html",
        request,
        context(request, token=token, title=t["conference"], page_texts=page_texts, guest=guest),
    )


async def guest_page(request: web.Request) -> web.StreamResponse:
    """The form where a guest types the meeting number, the passcode and a name; it posts
    to ``/api/v1/guest-joins`` and opens the ``url`` it answers with."""
    t = texts(request)
    meeting = request.query.get("meeting", "")
    return aiohttp_jinja2.render_template(
        "guest.html",
        request,
        context(
            request,
            title=t.get("guest_title", t["conference"]),
            meeting=meeting if meeting.isdigit() and len(meeting) <= 18 else "",
            api="/api/v1/guest-joins",
        ),
    )


async def join_as_staff(request: web.Request) -> web.StreamResponse:
    """A logged-in invitee (or an operator: admin, secretariat) joins from the meeting:
    redirected to their personal link."""
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
    app[keys.GUEST_LIMITS] = GuestLimits()
    app[HUB] = ConferenceHub(
        media_config(settings),
        make_authenticate(app),
        on_presence=attendance.listener(app),
        client_ice_servers=[{"urls": url} for url in settings.ice_servers],
        hooks=conference_hooks.install(app),
        reconnect_grace=settings.reconnect_grace_seconds,
        lobby_timeout=settings.lobby_timeout_seconds,
    )
    app.cleanup_ctx.append(_hub)
    app.router.add_get("/ws", app[HUB].websocket)
    app.router.add_get("/join/{token}", join_page)
    app.router.add_get("/guest", guest_page)
    app.router.add_get("/meetings/{meeting_id}/join", join_as_staff)
