"""Meeting materials: uploads checked by content and size, links, and invitees' downloads
with their join link."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Role, Unit
from scheduling.filetypes import identify
from tests.conftest import Staff
from tests.scheduling.meeting_fixtures import add_people, meeting_body, next_monday
from tests.web.oa_fixtures import key_headers, oa_settings
from web import keys
from web.conference import LINKS
from web.settings import Settings

Client = TestClient[Any, Any]
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 64 + b"PE\x00\x00"
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


def ooxml(main: str, mime: str, *, macro: bool = False) -> bytes:
    buf = io.BytesIO()
    ctype = mime.replace("document", "document.macroEnabled") if macro else mime
    with zipfile.ZipFile(buf, "w") as z:
        override = f'<Override PartName="/{main}" ContentType="{ctype}.main+xml"/>'
        z.writestr("[Content_Types].xml", f"<Types>{override}</Types>")
        z.writestr(main, "<x/>")
    return buf.getvalue()


def odf(mime: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", mime, compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", "<x/>")
    return buf.getvalue()


W = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
DOCX = ooxml("word/document.xml", W)
XLSX = ooxml("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
ODT = odf("application/vnd.oasis.opendocument.text")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return oa_settings(database_url, tmp_path, material_max_bytes=64 * 1024,
                       material_link_hosts=["oa.gz.gov.cn", "*.docs.gz.gov.cn"])  # fmt: skip


def upload(name: str, data: bytes, title: str | None = None) -> FormData:
    form = FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    if title:
        form.add_field("title", title)
    return form


async def new_meeting(client: Client, staff: Staff, db: Database, city: Unit) -> tuple[int, int]:
    (invitee,) = await add_people(db, city, 1, tag="inv")
    body = meeting_body(city, next_monday(), attendees=[{"person_id": invitee}])
    response = await client.post("/api/v1/meetings", json=body,
                                 headers=await staff.headers(Role.SECRETARIAT))  # fmt: skip
    return int((await response.json())["id"]), invitee


@pytest.mark.parametrize(
    ("name", "data"),
    [("议程.pdf", PDF), ("通知.docx", DOCX), ("预算.xlsx", XLSX), ("纪要.odt", ODT)],
)
def test_real_documents_are_recognised(name: str, data: bytes) -> None:
    assert identify(name, data[:8192], data).extension == name.rsplit(".", 1)[1]


async def test_secretariat_uploads_and_invitee_downloads_with_the_join_link(
    app: Any, client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    meeting_id, invitee = await new_meeting(client, staff, db, city)
    h = await staff.headers(Role.SECRETARIAT)
    base = f"/api/v1/meetings/{meeting_id}/materials"
    response = await client.post(base, data=upload("会议议程.pdf", PDF, "议程"), headers=h)
    assert response.status == 201, await response.text()
    material = await response.json()
    assert material["content_type"] == "application/pdf" and material["size"] == len(PDF)
    assert material["title"] == "议程" and material["filename"] == "会议议程.pdf"
    listed = await (await client.get(base, headers=h)).json()
    assert [m["id"] for m in listed] == [material["id"]]
    got = await client.get(f"{base}/{material['id']}", headers=h)
    assert await got.read() == PDF and got.headers["X-Content-Type-Options"] == "nosniff"
    token = app[LINKS].sign("join", meeting_id, invitee)
    page = await client.get(f"/join/{token}/materials")
    assert page.status == 200 and "议程" in await page.text()
    download = await client.get(f"/join/{token}/materials/{material['id']}")
    assert download.status == 200 and await download.read() == PDF
    assert "attachment" in download.headers["Content-Disposition"]
    (stranger,) = await add_people(db, city, 1, tag="stranger")
    other = app[LINKS].sign("join", meeting_id, stranger)
    assert (await client.get(f"/join/{other}/materials/{material['id']}")).status == 404
    assert (await client.get(f"/join/not-a-token/materials/{material['id']}")).status == 404
    removed = await client.delete(f"{base}/{material['id']}", headers=h)
    assert removed.status == 204
    assert (await client.get(f"/join/{token}/materials/{material['id']}")).status == 404


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("setup.pdf", EXE, 415, "material_type_refused"),  # an .exe renamed .pdf
        ("notice.docx", HTML, 415, "material_type_refused"),  # HTML named .docx
        ("notice.docx", PDF, 415, "material_type_refused"),  # a PDF named .docx
        ("sheet.xlsx", DOCX, 415, "material_type_refused"),  # a docx named .xlsx
        ("macro.docx", ooxml("word/document.xml", W, macro=True), 415, "material_type_refused"),
        ("broken.docx", b"PK\x03\x04garbage", 415, "material_type_refused"),
        ("plain.zip", DOCX, 415, "material_type_refused"),
        ("run.exe", EXE, 415, "material_type_refused"),
        ("empty.pdf", b"", 415, "material_empty"),
        ("huge.pdf", PDF + b"0" * (65 * 1024), 413, "material_too_large"),
    ],
)
async def test_disguised_empty_and_oversized_uploads_are_refused(
    client: Client, staff: Staff, db: Database, city: Unit, name: str, data: bytes, status: int,
    code: str,
) -> None:  # fmt: skip
    meeting_id, _ = await new_meeting(client, staff, db, city)
    h = await staff.headers(Role.SECRETARIAT)
    response = await client.post(f"/api/v1/meetings/{meeting_id}/materials",
                                 data=upload(name, data), headers=h)  # fmt: skip
    problem = await response.json()
    assert response.status == status and problem["error"] == code, problem
    assert problem["message"]
    assert await client.app[keys.MATERIALS].list(meeting_id) == []


async def test_uploads_need_multipart_and_a_file(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    meeting_id, _ = await new_meeting(client, staff, db, city)
    h = await staff.headers(Role.SECRETARIAT)
    base = f"/api/v1/meetings/{meeting_id}/materials"
    assert (await client.post(base, json={"file": "x"}, headers=h)).status == 415
    form = FormData()
    form.add_field("title", "no file")
    form.add_field("other", b"x", filename="x.pdf")
    assert (await client.post(base, data=form, headers=h)).status == 422
    missing = await client.post("/api/v1/meetings/999999/materials", data=upload("a.pdf", PDF),
                                headers=h)  # fmt: skip
    assert missing.status == 404


async def test_the_oa_system_attaches_by_reference_to_allowed_hosts_only(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    meeting_id, _ = await new_meeting(client, staff, db, city)
    oa = await key_headers(db, "meetings:read", "meetings:write")
    base = f"/api/v1/meetings/{meeting_id}/materials/links"
    ok = await client.post(base, headers=oa, json={
        "url": "https://oa.gz.gov.cn/docs/41.pdf", "title": "通知"})  # fmt: skip
    assert ok.status == 201 and (await ok.json())["kind"] == "link"
    sub = await client.post(base, headers=oa, json={
        "url": "https://a.docs.gz.gov.cn/x", "title": "附件"})  # fmt: skip
    assert sub.status == 201
    for url, code in (
        ("https://evil.example.com/41.pdf", "link_host_not_allowed"),
        ("ftp://oa.gz.gov.cn/41.pdf", "bad_url"),
        ("javascript:alert(1)//oa.gz.gov.cn", "bad_url"),
        ("https://user:pw@oa.gz.gov.cn/x", "bad_url"),
    ):
        refused = await client.post(base, headers=oa, json={"url": url, "title": "x"})
        assert refused.status == 422 and (await refused.json())["error"] == code, url
    read_only = await key_headers(db, "meetings:read")
    denied = await client.post(base, headers=read_only, json={
        "url": "https://oa.gz.gov.cn/docs/41.pdf", "title": "通知"})  # fmt: skip
    assert denied.status == 403
    upload_denied = await client.post(f"/api/v1/meetings/{meeting_id}/materials",
                                      data=upload("a.pdf", PDF), headers=read_only)  # fmt: skip
    assert upload_denied.status == 403


async def test_secretariat_page_lists_materials(
    client: Client, staff: Staff, db: Database, city: Unit
) -> None:
    meeting_id, _ = await new_meeting(client, staff, db, city)
    email, _ = await staff.account(Role.SECRETARIAT)
    login = await client.post("/login", data={"email": email, "password": "correct horse battery",
                                              "next": "/"}, allow_redirects=False)  # fmt: skip
    assert login.status == 302
    page = await client.get(f"/secretariat/meetings/{meeting_id}/materials")
    assert page.status == 200 and 'id="upload"' in await page.text()
