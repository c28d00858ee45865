"""The statistics API (JSON and CSV), who may read it, and the monthly report page."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Role
from scheduling import rollup
from tests.conftest import PASSWORD, Staff
from tests.scheduling import stats_data

RANGE = "from=2025-03-01&to=2025-04-30"


async def _load(db: Database) -> None:
    await stats_data.load(db)
    await rollup.refresh(db, stats_data.NOW, everything=True)


async def test_administrators_get_the_figures_as_json_and_csv(
    client: TestClient[Any, Any], staff: Staff, db: Database
) -> None:
    await _load(db)
    admin = await staff.headers(Role.ADMIN)
    r = await client.get(f"/api/v1/stats?{RANGE}&group_by=month", headers=admin)
    assert r.status == 200, await r.text()
    body = await r.json()
    assert body["from"] == "2025-03-01" and body["target"] == 0.8
    assert [(m["key"], m["held"]) for m in body["rows"]] == [("2025-03", 4), ("2025-04", 1)]
    assert body["total"]["video_share"] == 0.6
    r = await client.get(f"/api/v1/stats?{RANGE}&group_by=unit&format=csv", headers=admin)
    assert r.status == 200 and r.content_type == "text/csv"
    text = (await r.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["label"] for row in rows] == ["D", "C", "P", "S", "all"]
    assert rows[-1]["held"] == "5" and rows[-1]["attendance_rate"] == "0.75"
    r = await client.get(f"/api/v1/stats/terminals?{RANGE}&format=csv", headers=admin)
    lines = (await r.read()).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("terminal_id,terminal,room") and len(lines) == 3
    r = await client.get("/api/v1/stats/live", headers=admin)
    live = await r.json()
    assert live["conferences"] == 0 and {t["name"] for t in live["terminals"]} == {"T1", "T2"}


async def test_bad_ranges_are_refused(client: TestClient[Any, Any], staff: Staff) -> None:
    admin = await staff.headers(Role.ADMIN)
    for query in ("from=2025-05-01&to=2025-04-01", "from=2020-01-01&to=2025-01-01",
                  "group_by=week", "from=yesterday"):  # fmt: skip
        r = await client.get(f"/api/v1/stats?{query}", headers=admin)
        assert r.status == 422, (query, await r.text())


async def test_only_administrators_read_statistics(
    client: TestClient[Any, Any], staff: Staff
) -> None:
    for role in (Role.SECRETARIAT, Role.STAFF):
        r = await client.get("/api/v1/stats", headers=await staff.headers(role))
        assert r.status == 403
    assert (await client.get("/api/v1/stats")).status == 401


async def _session(client: TestClient[Any, Any], staff: Staff, role: Role) -> None:
    email, _ = await staff.account(role)
    r = await client.post("/login", data={"email": email, "password": PASSWORD, "next": "/"},
                          allow_redirects=False)  # fmt: skip
    assert r.status == 302


async def test_the_monthly_report_renders_with_charts_in_both_languages(
    client: TestClient[Any, Any], staff: Staff, db: Database
) -> None:
    await _load(db)
    r = await client.get("/admin/report?month=2025-03", allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/login")
    await _session(client, staff, Role.ADMIN)
    page = await (await client.get("/admin/report?month=2025-03")).text()
    assert "视频会议使用情况月度通报（2025-03）" in page
    assert page.count("<svg") == 3 and "50.0%" in page  # March: 2 of 4 held by video
    english = await (await client.get("/admin/report?month=2025-03&lang=en")).text()
    assert "Monthly report on video conferencing" in english
    assert (await client.get("/admin/report?month=2025-13")).status == 400
    dashboard = await (await client.get("/admin/dashboard")).text()
    assert "dashboard.js" in dashboard and "统计看板" in dashboard


async def test_the_pages_are_refused_to_other_roles(
    client: TestClient[Any, Any], staff: Staff
) -> None:
    await _session(client, staff, Role.SECRETARIAT)
    for path in ("/admin/dashboard", "/admin/report"):
        assert (await client.get(path, allow_redirects=False)).status == 403
