"""The directory's REST API: CRUD, filters, paging, sorting, references and conflicts."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from rooms.models import Role, Unit
from tests.conftest import Staff


async def _create(
    client: TestClient[Any, Any], h: dict[str, str], path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(f"/api/v1/{path}", json=body, headers=h)
    assert response.status == 201, await response.text()
    data: dict[str, Any] = await response.json()
    return data


async def test_admin_manages_units_people_rooms_and_terminals(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    district = await _create(
        client,
        h,
        "units",
        {
            "name": "广州市天河区人民政府",
            "short_name": "天河区",
            "kind": "district",
            "parent_id": city.id,
        },
    )
    assert district["parent_id"] == city.id and district["kind"] == "district"
    person = await _create(
        client,
        h,
        "people",
        {
            "name": "陈静",
            "email": "Chen.Jing@th.gov.cn",
            "phone": "020-38620000",
            "title": "主任",
            "unit_id": district["id"],
        },
    )
    assert person["email"] == "chen.jing@th.gov.cn"
    room = await _create(
        client,
        h,
        "rooms",
        {
            "unit_id": district["id"],
            "name": "天河区视频会议室",
            "capacity": 30,
            "equipment": ["摄像头", "麦克风"],
        },
    )
    assert room["equipment"] == ["摄像头", "麦克风"]
    terminal = await _create(
        client, h, "terminals", {"room_id": room["id"], "name": "天河终端", "model": "华为 TE40"}
    )
    assert terminal["token"].startswith("smr_")

    # read back, update, list with a filter
    got = await (await client.get(f"/api/v1/rooms/{room['id']}", headers=h)).json()
    assert got["name"] == "天河区视频会议室"
    patched = await client.patch(f"/api/v1/rooms/{room['id']}", json={"capacity": 45}, headers=h)
    assert (await patched.json())["capacity"] == 45
    listed = await (await client.get(f"/api/v1/people?unit_id={district['id']}", headers=h)).json()
    assert [p["name"] for p in listed["items"]] == ["陈静"] and listed["total"] == 1

    # the token works and is never shown again
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {terminal['token']}"})
    assert (await me.json())["room_id"] == room["id"]
    shown = await (await client.get(f"/api/v1/terminals/{terminal['id']}", headers=h)).json()
    assert "token" not in shown

    # deleting what is still referenced is refused and says by what
    refused = await client.delete(f"/api/v1/rooms/{room['id']}", headers=h)
    assert refused.status == 409
    problem = await refused.json()
    assert problem["error"] == "conflict" and problem["referenced_by"] == {"terminals": 1}
    assert (await client.delete(f"/api/v1/terminals/{terminal['id']}", headers=h)).status == 204
    assert (await client.delete(f"/api/v1/rooms/{room['id']}", headers=h)).status == 204
    assert (await client.get(f"/api/v1/rooms/{room['id']}", headers=h)).status == 404


async def test_rotating_and_revoking_a_terminal_token(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    room = await _create(client, h, "rooms", {"unit_id": city.id, "name": "常务会议室"})
    terminal = await _create(client, h, "terminals", {"room_id": room["id"], "name": "t"})
    old = {"Authorization": f"Bearer {terminal['token']}"}
    rotated = await (
        await client.post(f"/api/v1/terminals/{terminal['id']}/rotate-token", headers=h)
    ).json()
    assert (await client.get("/api/v1/me", headers=old)).status == 401
    new = {"Authorization": f"Bearer {rotated['token']}"}
    assert (await client.get("/api/v1/me", headers=new)).status == 200
    revoked = await client.post(f"/api/v1/terminals/{terminal['id']}/revoke", headers=h)
    assert (await revoked.json())["revoked_at"] is not None
    assert (await client.get("/api/v1/me", headers=new)).status == 401


async def test_paging_sorting_and_search(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    for name in ["番禺区", "白云区", "海珠区", "越秀区", "天河区"]:
        await _create(
            client,
            h,
            "units",
            {
                "name": f"广州市{name}人民政府",
                "short_name": name,
                "kind": "district",
                "parent_id": city.id,
            },
        )
    page = await (
        await client.get("/api/v1/units?kind=district&limit=2&offset=1&sort=-id", headers=h)
    ).json()
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    all_ids = [
        u["id"]
        for u in (
            await (await client.get("/api/v1/units?kind=district&sort=-id", headers=h)).json()
        )["items"]
    ]
    assert [u["id"] for u in page["items"]] == all_ids[1:3]
    assert all_ids == sorted(all_ids, reverse=True)
    found = await (await client.get("/api/v1/units?q=海珠", headers=h)).json()
    assert [u["short_name"] for u in found["items"]] == ["海珠区"]


async def test_unknown_references_unique_names_and_cycles_are_refused(
    client: TestClient[Any, Any], staff: Staff, city: Unit
) -> None:
    h = await staff.headers(Role.ADMIN)
    missing = await client.post("/api/v1/rooms", json={"unit_id": 999999, "name": "x"}, headers=h)
    assert missing.status == 422
    assert "unit_id" in (await missing.json())["fields"]
    dup = await client.post(
        "/api/v1/units", json={"name": city.name, "kind": "department"}, headers=h
    )
    assert dup.status == 409
    child = await _create(
        client, h, "units", {"name": "子单位", "kind": "department", "parent_id": city.id}
    )
    cycle = await client.patch(
        f"/api/v1/units/{city.id}", json={"parent_id": child["id"]}, headers=h
    )
    assert cycle.status == 422 and "parent_id" in (await cycle.json())["fields"]
    units = await (await client.get("/api/v1/units", headers=h)).json()
    assert {u["id"]: u["parent_id"] for u in units["items"]} == {
        city.id: None,
        child["id"]: city.id,
    }
