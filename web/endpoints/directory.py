"""REST endpoints of the directory: units, people, rooms, terminals (``/api/v1/...``).

Reading is open to every staff role and to integration keys with ``directory:read``;
terminals' details and every write are for administrators.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from rooms.db import Base
from rooms.directory import Directory, ListQuery
from rooms.models import Person, Room, Terminal, Unit, UnitKind
from web import keys
from web.api import Api, Call, OutSchema, Schema
from web.auth import ADMIN_ONLY, DIRECTORY_READ, DIRECTORY_WRITE, Access
from web.schemas import Page, PageQuery

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ShortText = Annotated[str, StringConstraints(max_length=100)]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Email = Annotated[EmailStr, AfterValidator(str.lower)]


# --- units ---------------------------------------------------------------------------------
class UnitIn(Schema):
    name: Name
    short_name: Annotated[str, StringConstraints(max_length=50)] | None = None
    kind: UnitKind
    parent_id: Id | None = None


class UnitPatch(Schema):
    name: Name | None = None
    short_name: Annotated[str, StringConstraints(max_length=50)] | None = None
    kind: UnitKind | None = None
    parent_id: Id | None = None


class UnitOut(OutSchema):
    id: int
    name: str
    short_name: str | None
    kind: UnitKind
    parent_id: int | None
    created_at: datetime


class UnitQuery(PageQuery):
    kind: UnitKind | None = None
    parent_id: Id | None = None
    sort: Literal["id", "-id", "name", "-name", "kind", "-kind"] = "id"


# --- people --------------------------------------------------------------------------------
class PersonIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    email: Email
    phone: Annotated[str, StringConstraints(max_length=40, pattern=r"^[0-9+()\- ]*$")] | None = None
    title: ShortText | None = None
    unit_id: Id


class PersonPatch(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    email: Email | None = None
    phone: Annotated[str, StringConstraints(max_length=40, pattern=r"^[0-9+()\- ]*$")] | None = None
    title: ShortText | None = None
    unit_id: Id | None = None


class PersonOut(OutSchema):
    id: int
    name: str
    email: str
    phone: str | None
    title: str | None
    unit_id: int


class PersonQuery(PageQuery):
    unit_id: Id | None = None
    sort: Literal["id", "-id", "name", "-name", "email", "-email"] = "id"


# --- rooms ---------------------------------------------------------------------------------
Equipment = Annotated[list[ShortText], Field(max_length=50)]


class RoomIn(Schema):
    unit_id: Id
    name: Name
    location: Annotated[str, StringConstraints(max_length=300)] | None = None
    capacity: Annotated[int, Field(ge=0, le=100_000)] = 0
    equipment: Equipment = []


class RoomPatch(Schema):
    unit_id: Id | None = None
    name: Name | None = None
    location: Annotated[str, StringConstraints(max_length=300)] | None = None
    capacity: Annotated[int, Field(ge=0, le=100_000)] | None = None
    equipment: Equipment | None = None


class RoomOut(OutSchema):
    id: int
    unit_id: int
    name: str
    location: str | None
    capacity: int
    equipment: list[str]


class RoomQuery(PageQuery):
    unit_id: Id | None = None
    sort: Literal["id", "-id", "name", "-name", "capacity", "-capacity"] = "id"


# --- terminals -----------------------------------------------------------------------------
class TerminalIn(Schema):
    room_id: Id
    name: Name
    model: Name | None = None


class TerminalPatch(Schema):
    room_id: Id | None = None
    name: Name | None = None
    model: Name | None = None


class TerminalOut(OutSchema):
    id: int
    room_id: int
    name: str
    model: str | None
    revoked_at: datetime | None
    created_at: datetime


class TerminalIssued(TerminalOut):
    """A terminal with its token: the only time the token is shown."""

    token: str


class TerminalQuery(PageQuery):
    room_id: Id | None = None
    sort: Literal["id", "-id", "name", "-name"] = "id"


def _register_crud(
    api: Api,
    *,
    model: type[Base],
    path: str,
    noun: str,
    tag: str,
    body_in: type[Schema],
    body_patch: type[Schema],
    out: type[OutSchema],
    query: type[PageQuery],
    filters: tuple[str, ...],
    read: Access,
    create: bool = True,
) -> None:
    """List, get, (create,) update and delete for one table of the directory."""

    def directory(call: Call[Any, Any]) -> Directory:
        return call.app[keys.DIRECTORY]

    async def list_rows(call: Call[None, Any]) -> Page[Any]:
        q = call.query
        rows, total = await directory(call).list(
            model,
            ListQuery(
                filters={f: getattr(q, f) for f in filters if getattr(q, f) is not None},
                search=q.q,
                sort=q.sort,
                limit=q.limit,
                offset=q.offset,
            ),
        )
        return Page[out](  # type: ignore[valid-type]
            items=[out.model_validate(r) for r in rows], total=total, limit=q.limit, offset=q.offset
        )

    async def get_row(call: Call[None, None]) -> OutSchema:
        return out.model_validate(await directory(call).get(model, call.path["id"]))

    async def create_row(call: Call[Any, None]) -> OutSchema:
        row = await directory(call).create(model, call.body.model_dump())
        return out.model_validate(row)

    async def update_row(call: Call[Any, None]) -> OutSchema:
        values = call.body.model_dump(exclude_unset=True)
        row = await directory(call).update(model, call.path["id"], values)
        return out.model_validate(row)

    async def delete_row(call: Call[None, None]) -> None:
        await directory(call).delete(model, call.path["id"])

    for fn, verb in (
        (list_rows, "list"),
        (get_row, "get"),
        (create_row, "create"),
        (update_row, "update"),
        (delete_row, "delete"),
    ):
        fn.__name__ = f"{verb}_{tag}"
    page_type: Any = Page[out]  # type: ignore[valid-type]
    api.route(
        "GET", path, summary=f"List {noun}s", access=read, tag=tag, query=query, response=page_type
    )(list_rows)
    api.route("GET", path + "/{id}", summary=f"Get a {noun}", access=read, tag=tag, response=out)(
        get_row
    )
    if create:
        api.route(
            "POST",
            path,
            summary=f"Create a {noun}",
            access=DIRECTORY_WRITE,
            tag=tag,
            body=body_in,
            response=out,
            status=201,
            errors=(409, 422),
        )(create_row)
    api.route(
        "PATCH",
        path + "/{id}",
        summary=f"Update a {noun}",
        access=DIRECTORY_WRITE,
        tag=tag,
        body=body_patch,
        response=out,
        errors=(409, 422),
    )(update_row)
    api.route(
        "DELETE",
        path + "/{id}",
        summary=f"Delete a {noun}",
        access=DIRECTORY_WRITE,
        tag=tag,
        status=204,
        errors=(409,),
    )(delete_row)


def register(api: Api) -> None:
    _register_crud(
        api,
        model=Unit,
        path="/units",
        noun="unit",
        tag="units",
        body_in=UnitIn,
        body_patch=UnitPatch,
        out=UnitOut,
        query=UnitQuery,
        filters=("kind", "parent_id"),
        read=DIRECTORY_READ,
    )
    _register_crud(
        api,
        model=Person,
        path="/people",
        noun="person",
        tag="people",
        body_in=PersonIn,
        body_patch=PersonPatch,
        out=PersonOut,
        query=PersonQuery,
        filters=("unit_id",),
        read=DIRECTORY_READ,
    )
    _register_crud(
        api,
        model=Room,
        path="/rooms",
        noun="room",
        tag="rooms",
        body_in=RoomIn,
        body_patch=RoomPatch,
        out=RoomOut,
        query=RoomQuery,
        filters=("unit_id",),
        read=DIRECTORY_READ,
    )
    _register_crud(
        api,
        model=Terminal,
        path="/terminals",
        noun="terminal",
        tag="terminals",
        body_in=TerminalIn,
        body_patch=TerminalPatch,
        out=TerminalOut,
        query=TerminalQuery,
        filters=("room_id",),
        read=ADMIN_ONLY,
        create=False,
    )

    @api.route(
        "POST",
        "/terminals",
        summary="Create a terminal (its token is shown once)",
        access=DIRECTORY_WRITE,
        tag="terminals",
        body=TerminalIn,
        response=TerminalIssued,
        status=201,
        errors=(409, 422),
    )
    async def create_terminal(call: Call[TerminalIn, None]) -> TerminalIssued:
        issued = await call.app[keys.DIRECTORY].create_terminal(call.body.model_dump())
        return _issued(issued.terminal, issued.token)

    @api.route(
        "POST",
        "/terminals/{id}/rotate-token",
        summary="Replace a terminal's token (the old one stops working at once)",
        access=DIRECTORY_WRITE,
        tag="terminals",
        response=TerminalIssued,
    )
    async def rotate_terminal_token(call: Call[None, None]) -> TerminalIssued:
        issued = await call.app[keys.DIRECTORY].rotate_terminal_token(call.path["id"])
        return _issued(issued.terminal, issued.token)

    @api.route(
        "POST",
        "/terminals/{id}/revoke",
        summary="Revoke a terminal's token",
        access=DIRECTORY_WRITE,
        tag="terminals",
        response=TerminalOut,
    )
    async def revoke_terminal(call: Call[None, None]) -> TerminalOut:
        terminal = await call.app[keys.DIRECTORY].revoke_terminal(call.path["id"])
        return TerminalOut.model_validate(terminal)


def _issued(terminal: Terminal, token: str) -> TerminalIssued:
    return TerminalIssued(**TerminalOut.model_validate(terminal).model_dump(), token=token)
