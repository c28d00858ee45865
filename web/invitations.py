"""Wiring of invitations, answers, reminders and feeds into the app, and their pages.

Builds the mail sender (SMTP when ``smtp_host`` is set, else a maildir in the data
directory), the persistent job scheduler with the reminder and lifecycle handlers, and the
change listeners that queue invitations and reconcile jobs after each committed change.
Both workers are started and stopped in a cleanup context. Pages served here:

- ``GET /rsvp/{token}?answer=…`` shows the meeting and a confirm button, and changes
  nothing (mail scanners fetch links); ``POST /rsvp/{token}`` records the answer.
- ``GET /feeds/{token}.ics`` is a room's or a person's calendar feed (secret URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import parseaddr
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from scheduling import subscriptions
from scheduling.errors import ReplyRefused
from scheduling.imip import Mailbox
from scheduling.invitations import Invitations, MailSettings
from scheduling.mailqueue import MailSender, Transport
from scheduling.reminders import Lifecycle
from scheduling.rsvp import ANSWERS, Answer, Responses
from scheduling.scheduler import JobScheduler
from scheduling.transports import MaildirTransport, SmtpTransport
from web import keys
from web.api import Api
from web.conference import HUB, LINKS
from web.endpoints import mail as mail_endpoints
from web.endpoints.system import API
from web.i18n import language, texts
from web.pages import context
from web.settings import Settings

log = logging.getLogger(__name__)

_TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "rsvp": "答复会议邀请",
        "rsvp_confirm": "请确认您的答复：",
        "rsvp_current": "当前答复",
        "rsvp_done": "已记录您的答复：",
        "rsvp_choose": "请选择答复",
        "rsvp_refused": "无法记录答复",
        "accept": "接受",
        "tentative": "暂定",
        "decline": "谢绝",
        "NEEDS-ACTION": "未答复",
        "ACCEPTED": "接受",
        "TENTATIVE": "暂定",
        "DECLINED": "谢绝",
    },
    "en": {
        "rsvp": "Answer the invitation",
        "rsvp_confirm": "Please confirm your answer:",
        "rsvp_current": "Current answer",
        "rsvp_done": "Your answer was recorded:",
        "rsvp_choose": "Choose your answer",
        "rsvp_refused": "The answer cannot be recorded",
        "accept": "Accept",
        "tentative": "Tentative",
        "decline": "Decline",
        "NEEDS-ACTION": "No answer yet",
        "ACCEPTED": "Accepted",
        "TENTATIVE": "Tentative",
        "DECLINED": "Declined",
    },
}


def mail_settings(settings: Settings) -> MailSettings:
    name, address = parseaddr(settings.mail_from)
    return MailSettings(
        base_url=settings.base_url,
        sender=Mailbox(address or "suimeet@localhost", name),
        locale=settings.locale,
    )


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpTransport(
            settings.smtp_host, settings.smtp_port, settings.smtp_tls,
            settings.smtp_username, password,
        )  # fmt: skip
    return MaildirTransport(settings.data_dir / "maildir")


def install(app: web.Application) -> None:
    """Build the services, append the change listeners, add the routes and endpoints."""
    settings, db = app[keys.SETTINGS], app[keys.DATABASE]
    mail = mail_settings(settings)
    sender = MailSender(db, transport_for(settings), mail.sender.email)
    jobs = JobScheduler(db, {})

    async def ended(meeting_id: int, recurrence_id: datetime) -> None:
        conference = f"{meeting_id}@{recurrence_id.strftime('%Y%m%dT%H%M%SZ')}"
        await app[HUB].end_conference(conference)

    lifecycle = Lifecycle(db, jobs, mail, app[LINKS], on_mail=sender.wake, on_ended=ended)
    jobs.handlers.update(lifecycle.handlers())
    app[keys.MAIL_SENDER] = sender
    app[keys.JOBS] = jobs
    app[keys.LIFECYCLE] = lifecycle
    app[keys.RESPONSES] = Responses(db)
    app[keys.MEETING_LISTENERS].extend(
        [Invitations(mail, app[LINKS], on_commit=sender.wake), lifecycle.on_change]
    )
    api = Api(title="", version="")  # installed here, documented with the app's API
    mail_endpoints.register(api)
    api.install(app)
    app[API].endpoints.extend(api.endpoints)
    app.router.add_get("/rsvp/{token}", rsvp_page)
    app.router.add_post("/rsvp/{token}", rsvp_submit)
    app.router.add_get("/feeds/{token}.ics", feed)
    app.cleanup_ctx.append(_workers)


async def _workers(app: web.Application) -> AsyncIterator[None]:
    """Start the mail sender and the scheduler; the leader reconciles every job on start.

    The scheduler opens its job store in the background, retrying, so that the app still
    starts (and answers ``/readyz`` with 503) while the database is unreachable.
    """
    sender, jobs, lifecycle = app[keys.MAIL_SENDER], app[keys.JOBS], app[keys.LIFECYCLE]
    sender.start()

    async def lead() -> None:
        while True:
            try:
                await jobs.start()
                break
            except Exception as exc:  # the database is down: try again
                log.warning("the job scheduler cannot start yet: %s", type(exc).__name__)
                await asyncio.sleep(5)
        while not await jobs.wait_leader(3600):
            pass
        await lifecycle.sweep()  # a change committed just before a crash is scheduled now

    leader = asyncio.create_task(lead(), name="scheduler-start")
    try:
        yield
    finally:
        leader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader
        await lifecycle.close()
        await jobs.close()
        await sender.close()


def _texts(request: web.Request) -> dict[str, str]:
    return {**texts(request), **_TEXTS[language(request)]}


async def _render(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    ctx = context(request, **extra)
    ctx["t"] = _texts(request)
    return aiohttp_jinja2.render_template("rsvp.html", request, ctx, status=status)


def _answer(value: object) -> Answer | None:
    return value if value in ANSWERS else None


async def rsvp_page(request: web.Request) -> web.StreamResponse:
    """Shows the meeting and asks to confirm the answer; records nothing."""
    claim = request.app[LINKS].verify("rsvp", request.match_info["token"])
    if claim is None:
        raise web.HTTPNotFound(text="invalid link")
    try:
        invitation = await request.app[keys.RESPONSES].invitation(claim.meeting_id, claim.person_id)
    except ReplyRefused as exc:
        return await _render(request, 404, error=exc.message)
    return await _render(
        request,
        meeting=invitation.meeting,
        person=invitation.person,
        partstat=invitation.partstat.value,
        answer=_answer(request.query.get("answer")),
        answers=list(ANSWERS),
    )


async def rsvp_submit(request: web.Request) -> web.StreamResponse:
    """Records the answer posted from the confirm page."""
    claim = request.app[LINKS].verify("rsvp", request.match_info["token"])
    if claim is None:
        raise web.HTTPNotFound(text="invalid link")
    form = await request.post()
    answer = _answer(form.get("answer", request.query.get("answer")))
    if answer is None:
        return await _render(request, 400, error=_texts(request)["rsvp_choose"])
    responses = request.app[keys.RESPONSES]
    try:
        taken = await responses.answer_link(claim.meeting_id, claim.person_id, answer)
    except ReplyRefused as exc:
        status = 409 if exc.code == "meeting_cancelled" else 403
        return await _render(request, status, error=exc.message)
    invitation = await responses.invitation(claim.meeting_id, claim.person_id)
    return await _render(
        request,
        meeting=invitation.meeting,
        person=invitation.person,
        partstat=taken.partstat.value,
        recorded=True,
    )


async def feed(request: web.Request) -> web.StreamResponse:
    """A room's or a person's meetings as a published iCalendar (RFC 5545) feed."""
    claim = request.app[LINKS].verify_feed(request.match_info["token"])
    if claim is None:
        raise web.HTTPNotFound(text="unknown feed")
    settings = request.app[keys.SETTINGS]
    built = await subscriptions.build(
        request.app[keys.DATABASE], claim, mail_settings(settings).addresses,
        locale=settings.locale, tzid=settings.timezone,
    )  # fmt: skip
    if built is None:
        raise web.HTTPNotFound(text="unknown feed")
    etag = hashlib.sha256(built.body).hexdigest()[:32]
    if request.headers.get("If-None-Match") == f'"{etag}"':
        return web.Response(status=304, headers={"ETag": f'"{etag}"'})
    return web.Response(
        body=built.body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"ETag": f'"{etag}"', "Cache-Control": "private, max-age=300"},
    )
