"""Pages of meeting materials: invitees' list and downloads, the secretariat's upload page.

- ``GET /join/{token}/materials`` lists the meeting's materials for the invitee whose join
  link it is; ``GET /join/{token}/materials/{material_id}`` downloads one (a link material
  redirects to its URL). The token is the credential, as for the join page; someone no
  longer invited gets 404.
- ``GET /secretariat/meetings/{meeting_id}/materials``: the secretariat's page to upload,
  link and remove documents (it calls the REST API with the session's CSRF token).
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from rooms.models import Role
from scheduling.errors import IntegrationNotFound
from web import keys
from web.auth import Principal, optional_principal
from web.conference import LINKS
from web.endpoints.materials import file_response
from web.i18n import language
from web.pages import context

_TEXTS: dict[str, dict[str, str]] = {
    "zh-CN": {
        "materials": "会议材料",
        "no_materials": "暂无会议材料。",
        "download": "下载",
        "open_link": "打开链接",
        "upload": "上传文件",
        "add_link": "添加链接",
        "title": "标题",
        "remove": "删除",
        "allowed": "支持 PDF、Word、Excel、PowerPoint 和 ODF 文档。",
        "back": "返回会议",
    },
    "en": {
        "materials": "Meeting materials",
        "no_materials": "No materials yet.",
        "download": "Download",
        "open_link": "Open link",
        "upload": "Upload a file",
        "add_link": "Add a link",
        "title": "Title",
        "remove": "Remove",
        "allowed": "PDF, Word, Excel, PowerPoint and ODF documents are accepted.",
        "back": "Back to the meeting",
    },
}


def _ctx(request: web.Request, who: Principal | None = None, **extra: Any) -> dict[str, Any]:
    ctx = context(request, who, **extra)
    ctx["t"] = {**ctx["t"], **_TEXTS[language(request)]}
    return ctx


async def _invitee_meeting(request: web.Request) -> int:
    claim = request.app[LINKS].verify("join", request.match_info["token"])
    if claim is None:
        raise web.HTTPNotFound(text="invalid link")
    if not await request.app[keys.MATERIALS].invited(claim.meeting_id, claim.person_id):
        raise web.HTTPNotFound(text="invalid link")
    return claim.meeting_id


async def join_materials(request: web.Request) -> web.StreamResponse:
    """The invitee's list of the meeting's materials."""
    meeting_id = await _invitee_meeting(request)
    rows = await request.app[keys.MATERIALS].list(meeting_id)
    token = request.match_info["token"]
    return aiohttp_jinja2.render_template(
        "materials.html", request, _ctx(request, rows=rows, base=f"/join/{token}/materials")
    )


async def join_download(request: web.Request) -> web.StreamResponse:
    """One material for the invitee: the file, or a redirect to a link."""
    meeting_id = await _invitee_meeting(request)
    raw = request.match_info["material_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    materials = request.app[keys.MATERIALS]
    try:
        row = await materials.get(meeting_id, int(raw))
        if row.kind == "link" and row.url:
            raise web.HTTPFound(row.url)
        return file_response(row, await materials.content(row))
    except IntegrationNotFound:
        raise web.HTTPNotFound() from None


async def secretariat_materials(request: web.Request) -> web.StreamResponse:
    """The secretariat's page of one meeting's materials."""
    who = await optional_principal(request)
    raw = request.match_info["meeting_id"]
    if who.kind != "staff" or who.session_token is None:
        raise web.HTTPFound(f"/login?next=/secretariat/meetings/{raw}/materials")
    if who.role not in (Role.ADMIN, Role.SECRETARIAT):
        raise web.HTTPForbidden(text="this page is for the secretariat")
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    meeting = await request.app[keys.MEETINGS].get(int(raw))
    rows = await request.app[keys.MATERIALS].list(meeting.id)
    return aiohttp_jinja2.render_template(
        "materials.html",
        request,
        _ctx(request, who, rows=rows, meeting=meeting,
             base=f"/api/v1/meetings/{meeting.id}/materials", manage=True),
    )  # fmt: skip


def install(app: web.Application) -> None:
    app.router.add_get("/join/{token}/materials", join_materials)
    app.router.add_get("/join/{token}/materials/{material_id}", join_download)
    app.router.add_get("/secretariat/meetings/{meeting_id}/materials", secretariat_materials)
