"""The administrators' dashboard in real Chromium: demo data drawn, a filter redraws it."""

from __future__ import annotations

import json

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from rooms.db import Database
from rooms.demo import load_demo
from scheduling.demo import load_meetings_demo
from tests.e2e.conftest import base_url, login


async def test_the_dashboard_shows_the_demo_year_and_a_filter_changes_it(
    server: TestServer, browser: Browser, db: Database
) -> None:
    await load_demo(db, password="demo password 1")
    year = await load_meetings_demo(db)
    assert year.meetings > 1000
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await login(page, server, "admin@demo.suimeet.example", "demo password 1")
    await page.goto(f"{base_url(server)}/admin/dashboard")
    await page.wait_for_selector("body[data-state=ready]", timeout=15000)
    assert "视频会议占比" in await page.inner_text("main")
    shares = json.loads(await page.get_attribute("#chart-share svg", "data-values") or "[]")
    assert len(shares) >= 12 and all(v is None or 0 <= v <= 1 for v in shares)
    assert any(v is not None and v < 0.8 for v in shares)  # below the target early on
    assert any(v is not None and v >= 0.8 for v in shares)  # above it later
    assert await page.locator("#chart-share svg line.target").count() == 1
    assert await page.locator("#chart-units svg rect.bar").count() == 20
    held_all = await page.inner_text("[data-figure=held] .value")
    units_before = await page.get_attribute("#chart-units svg", "data-values")

    await page.select_option("#unit", label="天河区")
    await page.click("#filters button[type=submit]")
    await page.wait_for_function(
        f"document.querySelector('[data-figure=held] .value').textContent !== {held_all!r}"
    )
    await page.wait_for_selector("body[data-state=ready]")
    assert await page.locator("#chart-units svg rect.bar").count() == 1
    assert await page.get_attribute("#chart-units svg", "data-values") != units_before
    assert await page.locator(".terminal").count() == 36  # live view: every terminal, idle
    assert not errors, errors
