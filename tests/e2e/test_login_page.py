"""A person logs in through the page in real Chromium and sees who they are."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from rooms.models import Role
from tests.conftest import PASSWORD, Staff
from tests.e2e.conftest import base_url, login


async def test_login_in_chromium_shows_the_home_page(
    server: TestServer, browser: Browser, staff: Staff
) -> None:
    email, _ = await staff.account(Role.SECRETARIAT)
    page = await browser.new_page()
    await page.goto(f"{base_url(server)}/")
    assert page.url.endswith("/login?next=/")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", "wrong password")
    await page.click("button[type=submit]")
    assert "邮箱或密码错误" in await page.inner_text("[role=alert]")
    await login(page, server, email, PASSWORD)
    assert "秘书处" in await page.inner_text("main")
    await page.click("text=退出")
    await page.wait_for_url(f"{base_url(server)}/login")
