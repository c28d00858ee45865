"""Logging in: API tokens, browser sessions with CSRF, rate limits, and no secrets in logs."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select, update

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import AuthToken, Role, Unit
from tests.conftest import PASSWORD, Staff
from web.auth import SESSION_COOKIE


async def test_token_login_me_and_logout(client: TestClient[Any, Any], staff: Staff) -> None:
    email, person_id = await staff.account(Role.SECRETARIAT)
    response = await client.post(
        "/api/v1/auth/token", json={"email": email.upper(), "password": PASSWORD}
    )
    assert response.status == 201
    body = await response.json()
    assert body["role"] == "secretariat" and body["token"].startswith("sms_")
    h = {"Authorization": f"Bearer {body['token']}"}
    me = await (await client.get("/api/v1/me", headers=h)).json()
    assert me == {**me, "kind": "staff", "role": "secretariat", "person_id": person_id}
    assert (await client.delete("/api/v1/auth/token", headers=h)).status == 204
    assert (await client.get("/api/v1/me", headers=h)).status == 401


async def test_tokens_are_stored_hashed_and_expire(
    client: TestClient[Any, Any], staff: Staff, db: Database
) -> None:
    token = await staff.token(Role.STAFF)
    h = {"Authorization": f"Bearer {token}"}
    async with db.read() as session:
        stored = (await session.scalars(select(AuthToken))).all()
    assert stored and all(token not in (t.token_hash, t.token_prefix) for t in stored)
    async with db.write() as session:
        await session.execute(
            update(AuthToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await client.get("/api/v1/me", headers=h)).status == 401


async def test_wrong_password_unknown_email_and_inactive_account_look_alike(
    client: TestClient[Any, Any], staff: Staff, db: Database
) -> None:
    email, _ = await staff.account(Role.STAFF)
    wrong = await client.post("/api/v1/auth/token", json={"email": email, "password": "nope"})
    unknown = await client.post(
        "/api/v1/auth/token", json={"email": "ghost@example.gov.cn", "password": PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())


async def test_failed_logins_are_rate_limited_and_logged_without_secrets(
    client: TestClient[Any, Any], staff: Staff, caplog: pytest.LogCaptureFixture
) -> None:
    email, _ = await staff.account(Role.ADMIN)
    caplog.set_level(logging.DEBUG)
    statuses = []
    for attempt in range(7):
        r = await client.post(
            "/api/v1/auth/token", json={"email": email, "password": f"guess-{attempt}-secret"}
        )
        statuses.append(r.status)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429, 429]
    limited = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    logged = caplog.text
    assert "failed login" in logged
    assert "guess-" not in logged and PASSWORD not in logged


async def test_browser_session_login_csrf_and_logout(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    email, _ = await staff.account(Role.ADMIN)
    page = await client.get("/login")
    assert page.status == 200 and "登录" in await page.text()
    failed = await client.post("/login", data={"email": email, "password": "bad", "next": "/"})
    assert "邮箱或密码错误" in await failed.text()
    ok = await client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert ok.status == 302 and ok.headers["Location"] == "/"
    cookie = ok.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"

    home = await client.get("/")
    html = await home.text()
    assert home.status == 200 and "管理员" in html
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert csrf is not None

    # the cookie alone authenticates reads, but a write needs the CSRF token too
    assert (await client.get("/api/v1/units")).status == 200
    body = {"name": "新单位", "kind": "department", "parent_id": city.id}
    refused = await client.post("/api/v1/units", json=body)
    assert refused.status == 403 and (await refused.json())["error"] == "csrf_failed"
    wrong = await client.post("/api/v1/units", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 403
    made = await client.post("/api/v1/units", json=body, headers={"X-CSRF-Token": csrf[1]})
    assert made.status == 201

    out = await client.post("/logout", data={"csrf_token": csrf[1]}, allow_redirects=False)
    assert out.status == 302
    assert (await client.get("/api/v1/units")).status == 401
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_english_is_available(client: TestClient[Any, Any]) -> None:
    page = await client.get("/login?lang=en")
    assert "Log in" in await page.text()


async def test_password_change_revokes_tokens(
    client: TestClient[Any, Any], staff: Staff, db: Database
) -> None:
    email, _ = await staff.account(Role.STAFF)
    r = await client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    h = {"Authorization": f"Bearer {(await r.json())['token']}"}
    await Accounts(db).set_password(email, "another long password")
    assert (await client.get("/api/v1/me", headers=h)).status == 401


async def test_api_keys_are_scoped_shown_once_and_revocable(
    client: TestClient[Any, Any], staff: Staff
) -> None:
    admin = await staff.headers(Role.ADMIN)
    bad = await client.post(
        "/api/v1/api-keys", json={"name": "OA", "scopes": ["root"]}, headers=admin
    )
    assert bad.status == 422 and "scopes" in (await bad.json())["fields"]
    made = await (
        await client.post(
            "/api/v1/api-keys",
            json={"name": "OA 系统", "scopes": ["directory:read"]},
            headers=admin,
        )
    ).json()
    key = {"Authorization": f"Bearer {made['token']}"}
    assert (await client.get("/api/v1/units", headers=key)).status == 200
    assert (await client.post("/api/v1/units", json={}, headers=key)).status == 403
    listed = await (await client.get("/api/v1/api-keys", headers=admin)).json()
    assert all("token" not in k for k in listed)
    await client.post(f"/api/v1/api-keys/{made['id']}/revoke", headers=admin)
    assert (await client.get("/api/v1/units", headers=key)).status == 401
