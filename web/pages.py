"""HTML pages: login, logout and the home page (Simplified Chinese by default)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from rooms.errors import AuthenticationFailed
from web import keys
from web.auth import SESSION_COOKIE, Principal, check_csrf, csrf_token, optional_principal
from web.endpoints.accounts import password_login
from web.i18n import language, texts
from web.problems import ApiError

PAGES: list[dict[str, Any]] = []  # extended by later features: {"href", "label", "roles"}


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
        from rooms.models import Person

        person = await session.get(Person, who.person_id)
    t = texts(request)
    links = [p for p in PAGES if who.role in p["roles"]]
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
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
