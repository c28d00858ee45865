"""REST endpoints for credentials: API tokens of staff, accounts, integration keys."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated

from aiohttp import web
from pydantic import EmailStr, Field, StringConstraints

from rooms.accounts import SCOPES
from rooms.errors import AuthenticationFailed
from rooms.models import Account, ApiKey, Role
from web import keys
from web.api import Api, Call, OutSchema, Schema
from web.auth import ADMIN_ONLY, PUBLIC, STAFF_SELF, client_address
from web.problems import ApiError

log = logging.getLogger(__name__)

Password = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]


class Credentials(Schema):
    email: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    password: Password


class TokenOut(OutSchema):
    token: str = Field(description="Bearer token; shown once.")
    expires_at: str
    role: Role


class Me(OutSchema):
    kind: str
    role: Role | None = None
    account_id: int | None = None
    person_id: int | None = None
    key_id: int | None = None
    scopes: list[str] = []
    terminal_id: int | None = None
    room_id: int | None = None


class AccountIn(Schema):
    email: EmailStr
    password: Annotated[
        str, StringConstraints(min_length=10, max_length=256, strip_whitespace=False)
    ]
    role: Role
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    unit_id: Annotated[int, Field(ge=1, le=2**63 - 1)] | None = None


class AccountOut(OutSchema):
    id: int
    person_id: int
    email: str
    role: Role
    active: bool
    created_at: datetime


class ApiKeyIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    scopes: Annotated[list[str], Field(min_length=1, max_length=len(SCOPES))] = Field(
        description=f"Any of: {', '.join(SCOPES)}"
    )


class ApiKeyOut(OutSchema):
    id: int
    name: str
    scopes: list[str]
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyIssued(ApiKeyOut):
    token: str = Field(description="The key; shown once.")


def register(api: Api) -> None:
    @api.route(
        "POST",
        "/auth/token",
        summary="Exchange email and password for an API token",
        access=PUBLIC,
        tag="auth",
        body=Credentials,
        response=TokenOut,
        status=201,
        errors=(401, 429),
    )
    async def issue_token(call: Call[Credentials, None]) -> TokenOut:
        account, token, expires = await password_login(
            call.request, call.body.email, call.body.password, kind="api"
        )
        return TokenOut(token=token, expires_at=expires, role=account.role)

    @api.route(
        "DELETE",
        "/auth/token",
        summary="Revoke the token this request carries",
        access=STAFF_SELF,
        tag="auth",
        status=204,
    )
    async def revoke_token(call: Call[None, None]) -> None:
        header = call.request.headers.get("Authorization", "")
        token = header.partition(" ")[2].strip() or call.who.session_token or ""
        await call.app[keys.ACCOUNTS].logout(token)

    @api.route("GET", "/me", summary="Who the caller is", access=PUBLIC, tag="auth", response=Me)
    async def me(call: Call[None, None]) -> Me:
        who = call.who
        if who.kind == "anonymous":
            raise ApiError(401, "unauthenticated", "log in or present a bearer token")
        return Me(
            kind=who.kind,
            role=who.role,
            account_id=who.account_id,
            person_id=who.person_id,
            key_id=who.key_id,
            scopes=sorted(who.scopes),
            terminal_id=who.terminal_id,
            room_id=who.room_id,
        )

    @api.route(
        "GET",
        "/accounts",
        summary="List staff accounts",
        access=ADMIN_ONLY,
        tag="accounts",
        response=list[AccountOut],
    )
    async def list_accounts(call: Call[None, None]) -> list[AccountOut]:
        from sqlalchemy import select

        async with call.app[keys.DATABASE].read() as session:
            rows = (await session.scalars(select(Account).order_by(Account.id))).all()
        return [AccountOut.model_validate(r) for r in rows]

    @api.route(
        "POST",
        "/accounts",
        summary="Create a staff account",
        access=ADMIN_ONLY,
        tag="accounts",
        body=AccountIn,
        response=AccountOut,
        status=201,
        errors=(409, 422),
    )
    async def create_account(call: Call[AccountIn, None]) -> AccountOut:
        b = call.body
        account = await call.app[keys.ACCOUNTS].create_account(
            b.email, b.password, b.role, name=b.name, unit_id=b.unit_id
        )
        log.info("account %s (%s) created by %s", account.id, account.role, call.who.label)
        return AccountOut.model_validate(account)

    @api.route(
        "GET",
        "/api-keys",
        summary="List integration keys",
        access=ADMIN_ONLY,
        tag="api-keys",
        response=list[ApiKeyOut],
    )
    async def list_api_keys(call: Call[None, None]) -> list[ApiKeyOut]:
        return [ApiKeyOut.model_validate(k) for k in await call.app[keys.ACCOUNTS].list_keys()]

    @api.route(
        "POST",
        "/api-keys",
        summary="Create an integration key (shown once)",
        access=ADMIN_ONLY,
        tag="api-keys",
        body=ApiKeyIn,
        response=ApiKeyIssued,
        status=201,
        errors=(422,),
    )
    async def create_api_key(call: Call[ApiKeyIn, None]) -> ApiKeyIssued:
        issued = await call.app[keys.ACCOUNTS].create_key(
            call.body.name, call.body.scopes, call.who.account_id
        )
        log.info("API key %s created by %s", issued.key.id, call.who.label)
        return _key_issued(issued.key, issued.token)

    @api.route(
        "POST",
        "/api-keys/{id}/revoke",
        summary="Revoke an integration key",
        access=ADMIN_ONLY,
        tag="api-keys",
        response=ApiKeyOut,
    )
    async def revoke_api_key(call: Call[None, None]) -> ApiKeyOut:
        key = await call.app[keys.ACCOUNTS].revoke_key(call.path["id"])
        log.info("API key %s revoked by %s", key.id, call.who.label)
        return ApiKeyOut.model_validate(key)


def _key_issued(key: ApiKey, token: str) -> ApiKeyIssued:
    return ApiKeyIssued(**ApiKeyOut.model_validate(key).model_dump(), token=token)


async def password_login(
    request: web.Request, email: str, password: str, *, kind: str
) -> tuple[Account, str, str]:
    """Check email and password under the login rate limit; issue a token of ``kind``."""
    app = request.app
    remote = client_address(request)
    email = email.strip().lower()
    limiter = app[keys.LOGIN_LIMITER]
    limit_keys = (f"email:{email}", f"addr:{remote}")
    wait = limiter.retry_after(*limit_keys)
    if wait:
        log.warning("login rate limit hit for an account from %s", remote)
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed logins; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    hours = app[keys.SETTINGS].session_hours
    try:
        account, issued = await app[keys.ACCOUNTS].login(
            email, password, kind=kind, lifetime=timedelta(hours=hours)
        )
    except AuthenticationFailed:
        limiter.failed(*limit_keys)
        app[keys.METRICS].login_failures.inc()
        log.warning("failed login from %s", remote)
        raise
    limiter.succeeded(f"email:{email}")
    log.info("account %s logged in (%s) from %s", account.id, kind, remote)
    return account, issued.token, issued.expires_at_iso
