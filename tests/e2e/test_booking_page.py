"""The secretariat books a meeting through the page in real Chromium."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser
from sqlalchemy import select

from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Room, Unit
from scheduling.mailqueue import OutgoingMail
from tests.conftest import PASSWORD, Staff, add_person
from tests.e2e.conftest import base_url, login

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_secretariat_books_a_meeting_through_the_page(
    app: web.Application,
    server: TestServer,
    browser: Browser,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    email, _ = await staff.account(Role.SECRETARIAT)
    guest = await add_person(db, city.id, "wang.fang@gz.gov.cn", "王芳")
    room = await Directory(db).create(Room, {"unit_id": city.id, "name": "市府常务会议室"})
    other = await Directory(db).create(Room, {"unit_id": city.id, "name": "应急指挥中心"})
    day = (datetime.now(SHANGHAI) + timedelta(days=2)).date()

    page = await browser.new_page()
    await login(page, server, email, PASSWORD)
    await page.click("text=预约会议")
    await page.wait_for_url(f"{base_url(server)}/secretariat")
    await page.fill("input[name=title]", "全市安全生产视频会议")
    await page.fill("input[name=doc_ref]", "穗府办〔2026〕12号")
    await page.fill("input[name=start]", f"{day}T09:30")
    await page.fill("input[name=end]", f"{day}T11:00")
    await page.select_option("select[name=mode]", "video")
    await page.check(f"input[name=room][value='{room.id}']")
    await page.select_option("select[name=people]", [str(guest.id)])
    await page.fill("textarea[name=agenda]", "一、通报情况\n二、部署工作")
    await page.click("#check")
    await page.wait_for_selector("#problems .ok")

    await page.click("#save")
    await page.wait_for_selector("#result:not([hidden])")
    meeting_id = int(await page.get_attribute("#booking", "data-meeting-id") or 0)
    h = await staff.headers(Role.SECRETARIAT)
    meeting = await (await client.get(f"/api/v1/meetings/{meeting_id}", headers=h)).json()
    assert meeting["title"] == "全市安全生产视频会议" and meeting["room_ids"] == [room.id]
    assert meeting["doc_ref"] == "穗府办〔2026〕12号"
    assert meeting["start_local"].startswith(f"{day}T09:30")
    assert [a["person_id"] for a in meeting["attendees"]] == [guest.id]
    async with db.read() as session:
        mail = (
            await session.scalars(select(OutgoingMail).where(OutgoingMail.meeting_id == meeting_id))
        ).all()
    assert "wang.fang@gz.gov.cn" in {m.recipient for m in mail}
    await page.wait_for_selector("#messages tbody tr")

    # a second booking of the same room at an overlapping time shows the conflict
    await page.goto(f"{base_url(server)}/secretariat")
    await page.fill("input[name=title]", "另一个会议")
    await page.fill("input[name=start]", f"{day}T10:00")
    await page.fill("input[name=end]", f"{day}T10:30")
    await page.check(f"input[name=room][value='{room.id}']")
    await page.check(f"input[name=room][value='{other.id}']")
    await page.click("#check")
    await page.wait_for_selector("#problems .error")
    text = await page.inner_text("#problems")
    assert "会议室冲突" in text and "市府常务会议室" in text and "全市安全生产视频会议" in text
    busy = await page.inner_text(f"[data-room='{room.id}']")
    assert "已占用" in busy
    await page.click("#save")
    await page.wait_for_selector("#problems .error")
    listed = await (await client.get("/api/v1/meetings", headers=h)).json()
    assert [m["title"] for m in listed["items"]] == ["全市安全生产视频会议"]
