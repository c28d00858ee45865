"""HTML pages: login, logout and the home page (Simplified Chinese by default)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import select

from rooms.errors import AuthenticationFailed
from rooms.models import Person, Role, Room, Unit
from web import keys
from web.auth import SESSION_COOKIE, Principal, check_csrf, csrf_token, optional_principal
from web.endpoints.accounts import password_login
from web.i18n import language, texts
from web.problems import ApiError

# Pages listed on the home page: the text key of their label and who sees them.
PAGES: list[dict[str, Any]] = [
    {"href": "/secretariat", "label": "book_meeting", "roles": {Role.ADMIN, Role.SECRETARIAT}},
    {"href": "/admin/dashboard", "label": "dashboard", "roles": {Role.ADMIN}},
]


def context(request: web.Request, who: Principal | None = None, **extra: Any) -> dict[str, Any]:
    csrf = (
        csrf_token(request.app[keys.SECRET], who.session_token)
        if who is not None and who.session_token
        else None
    )
    return {"t": texts(request), "lang": language(request), "csrf": csrf, **extra}


def _safe_next(value: object) -> str:
    # Only same-site paths: never an open redirect.
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def home(request: web.Request) -> web.StreamResponse:
    who = await optional_principal(request)
    if who.kind != "staff" or who.role is None:
        raise web.HTTPFound("/login?next=/")
    async with request.app[keys.DATABASE].read() as session:
        person = await session.get(Person, who.person_id)
    t = texts(request)
    links = [{"href": p["href"], "label": t[p["label"]]} for p in PAGES if who.role in p["roles"]]
    return aiohttp_jinja2.render_template(
        "home.html",
        request,
        context(
            request,
            who,
            name=person.name if person else "",
            role_label=t[f"role_{who.role.value}"],
            links=links,
        ),
    )


async def secretariat(request: web.Request) -> web.StreamResponse:
    """The booking page of the secretariat (and administrators)."""
    who = await optional_principal(request)
    if who.kind != "staff" or who.session_token is None:
        raise web.HTTPFound("/login?next=/secretariat")
    if who.role not in (Role.ADMIN, Role.SECRETARIAT):
        raise web.HTTPForbidden(text="this page is for the secretariat")
    async with request.app[keys.DATABASE].read() as session:
        units = (await session.scalars(select(Unit).order_by(Unit.id))).all()
        rooms = (await session.scalars(select(Room).order_by(Room.unit_id, Room.id))).all()
        people = (
            await session.execute(
                select(Person.id, Person.name, Unit.short_name, Unit.name)
                .join(Unit, Unit.id == Person.unit_id)
                .order_by(Person.unit_id, Person.id)
            )
        ).all()
    return aiohttp_jinja2.render_template(
        "secretariat.html",
        request,
        context(
            request,
            who,
            units=units,
            rooms=rooms,
            tz=request.app[keys.SETTINGS].timezone,
            people=[{"id": p[0], "name": p[1], "unit": p[2] or p[3]} for p in people],
        ),
    )


async def login_form(request: web.Request) -> web.StreamResponse:
    return aiohttp_jinja2.render_template(
        "login.html", request, context(request, next=_safe_next(request.query.get("next")))
    )


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:254]
    password = str(form.get("password", ""))[:256]
    target = _safe_next(form.get("next"))
    t = texts(request)
    try:
        _account, token, _expires = await password_login(request, email, password, kind="session")
    except AuthenticationFailed:
        return aiohttp_jinja2.render_template(
            "login.html",
            request,
            context(request, error=t["login_failed"], email=email, next=target),
        )
    except ApiError as exc:
        if exc.status != 429:
            raise
        return aiohttp_jinja2.render_template(
            "login.html",
            request,
            context(request, error=t["too_many"], email=email, next=target),
            status=429,
        )
    response = web.HTTPFound(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        path="/",
        max_age=request.app[keys.SETTINGS].session_hours * 3600,
        secure=request.app[keys.SETTINGS].base_url.startswith("https://"),
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    who = await optional_principal(request)
    if who.session_token is not None:
        await check_csrf(request, who)
        await request.app[keys.ACCOUNTS].logout(who.session_token)
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def install(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/login", login_form)
    app.router.add_get("/secretariat", secretariat)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
