"""REST endpoints of meeting materials (``/api/v1/meetings/{id}/materials``).

For the secretariat's pages and the OA system: whoever may change a meeting attaches
documents (multipart upload, field ``file``, optional ``title``; PDF, docx, xlsx, pptx,
odt, ods, odp, checked by content, at most ``SUIMEET_MATERIAL_MAX_BYTES``) or links
(http/https; only to SUIMEET_MATERIAL_LINK_HOSTS when that is set). Whoever may read the
meeting lists and downloads them. Invitees use their join link instead
(:mod:`web.materials_pages`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, Field, StringConstraints

from scheduling.errors import MaterialRefused, MaterialTooLarge
from scheduling.materials import Material, Materials
from web import keys
from web.api import Api, Call, Schema
from web.endpoints.meeting_schemas import viewer_of
from web.endpoints.meetings import MEETINGS_READ, MEETINGS_WRITE
from web.problems import ApiError, register_error

_T = "materials"
_ALL = "/meetings/{id}/materials"
_ONE = _ALL + "/{material_id}"
_CHUNK = 64 * 1024


class LinkIn(Schema):
    url: Annotated[str, StringConstraints(min_length=8, max_length=2000)] = Field(
        description="http(s) URL of the document in the OA system."
    )
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class MaterialOut(BaseModel):
    id: int
    meeting_id: int
    kind: str = Field(description="`file` (stored here) or `link`.")
    title: str
    filename: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    url: str | None
    added_by: str
    created_at: datetime


def material_out(row: Material) -> MaterialOut:
    return MaterialOut(
        id=row.id, meeting_id=row.meeting_id, kind=row.kind, title=row.title,
        filename=row.filename, content_type=row.content_type, size=row.size, sha256=row.sha256,
        url=row.url, added_by=row.added_by, created_at=row.created_at,
    )  # fmt: skip


UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "title": {"type": "string", "maxLength": 200},
                },
            }
        }
    },
}


async def read_upload(request: web.Request, materials: Materials) -> tuple[str, bytes, str | None]:
    """The uploaded file's name and bytes and the optional title, read within the limit."""
    if request.content_type != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data")
    if request.content_length is not None:
        materials.check_size(max(0, request.content_length - _CHUNK))
    reader = await request.multipart()
    filename: str | None = None
    data = bytearray()
    title: str | None = None
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file" and filename is None:
            # aiohttp hands RFC 5987 names (filename*=UTF-8''...) over still percent-encoded
            filename = unquote(part.filename or "")
            while chunk := await part.read_chunk(_CHUNK):
                data += chunk
                materials.check_size(len(data))
        elif part.name == "title":
            title = (await part.read_chunk(1024)).decode("utf-8", "replace").strip()[:200]
    if filename is None:
        raise ApiError(422, "validation_failed", "no file was sent",
                       fields={"file": "required"})  # fmt: skip
    return filename, bytes(data), title or None


def file_response(row: Material, data: bytes) -> web.Response:
    name = row.filename or f"material-{row.id}"
    return web.Response(
        body=data,
        content_type=row.content_type or "application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def register(api: Api) -> None:
    """Declare the routes and map the upload errors."""
    register_error(MaterialTooLarge, 413)
    register_error(MaterialRefused, 415)
    route = api.route

    async def visible(call: Call[Any, Any]) -> None:
        await call.app[keys.MEETINGS].get(call.path["id"], viewer_of(call.who))

    @route("GET", _ALL, summary="List a meeting's materials", access=MEETINGS_READ, tag=_T,
           response=list[MaterialOut])  # fmt: skip
    async def list_materials(call: Call[None, None]) -> list[MaterialOut]:
        await visible(call)
        return [material_out(r) for r in await call.app[keys.MATERIALS].list(call.path["id"])]

    @route("POST", _ALL, summary="Upload a document to a meeting", access=MEETINGS_WRITE,
           tag=_T, response=MaterialOut, status=201, errors=(404, 413, 415, 422))  # fmt: skip
    async def upload_material(call: Call[None, None]) -> MaterialOut:
        """multipart/form-data with `file` (and optionally `title`). 415
        `material_type_refused` when the content is not what the name says (an .exe renamed
        .pdf, HTML named .docx); 413 `material_too_large`."""
        materials = call.app[keys.MATERIALS]
        filename, data, title = await read_upload(call.request, materials)
        row = await materials.add_file(call.path["id"], filename, data, call.who.label,
                                       title=title)  # fmt: skip
        return material_out(row)

    @route("POST", _ALL + "/links", summary="Attach a document by reference URL",
           access=MEETINGS_WRITE, tag=_T, body=LinkIn, response=MaterialOut, status=201,
           errors=(404,),
           body_example={"url": "https://oa.example.gov.cn/docs/2026-41.pdf",
                         "title": "会议通知（穗府办〔2026〕41号）"})  # fmt: skip
    async def add_link(call: Call[LinkIn, None]) -> MaterialOut:
        """Stored as a link, never fetched. 422 `bad_url` (not http/https),
        `link_host_not_allowed` (not on SUIMEET_MATERIAL_LINK_HOSTS)."""
        row = await call.app[keys.MATERIALS].add_link(
            call.path["id"], call.body.url, call.body.title, call.who.label
        )
        return material_out(row)

    @route("GET", _ONE, summary="Download a stored document", access=MEETINGS_READ,
           tag=_T)  # fmt: skip
    async def download_material(call: Call[None, None]) -> web.StreamResponse:
        """The file itself (`Content-Disposition: attachment`); a link answers 404."""
        await visible(call)
        materials = call.app[keys.MATERIALS]
        row = await materials.get(call.path["id"], call.path["material_id"])
        return file_response(row, await materials.content(row))

    @route("DELETE", _ONE, summary="Remove a material", access=MEETINGS_WRITE, tag=_T,
           status=204)  # fmt: skip
    async def delete_material(call: Call[None, None]) -> None:
        await call.app[keys.MATERIALS].delete(call.path["id"], call.path["material_id"])

    for endpoint in api.endpoints:
        if endpoint.handler is upload_material:
            endpoint.request_body = UPLOAD_BODY
