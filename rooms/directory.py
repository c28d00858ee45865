"""The directory service: units, people, rooms and terminals, one transaction per use case.

Input arrives already parsed (``web`` validates shapes); this module checks what only the
database can tell: that referenced rows exist, that unique names are free, that a unit's
parent chain has no cycle, and that nothing still refers to a row being deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.credentials import mint_token
from rooms.db import Base, Database, utcnow
from rooms.errors import Conflict, Invalid, NotFound
from rooms.models import Person, Room, Terminal, Unit

M = TypeVar("M", bound=Base)

# What each entity's foreign keys point at, to report unknown references per field.
_REFERENCES: dict[type[Base], dict[str, type[Base]]] = {
    Unit: {"parent_id": Unit},
    Person: {"unit_id": Unit},
    Room: {"unit_id": Unit},
    Terminal: {"room_id": Room},
}
_SEARCHABLE: dict[type[Base], tuple[str, ...]] = {
    Unit: ("name", "short_name"),
    Person: ("name", "email", "title"),
    Room: ("name", "location"),
    Terminal: ("name", "model"),
}
_LABEL = {Unit: "unit", Person: "person", Room: "room", Terminal: "terminal"}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Filters (column → value, all must hold), a text search, sort and a page."""

    filters: Mapping[str, Any]
    search: str | None = None
    sort: str = "id"  # a column name, "-" in front for descending
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class IssuedTerminal:
    terminal: Terminal
    token: str  # shown once


def label(model: type[Base]) -> str:
    return _LABEL.get(model) or str(model.__tablename__)


class Directory:
    """Use cases of the directory over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, model: type[M], query: ListQuery) -> tuple[Sequence[M], int]:
        stmt: Select[Any] = select(model)
        conditions: list[ColumnElement[bool]] = [
            getattr(model, name) == value for name, value in query.filters.items()
        ]
        if query.search:
            pattern = f"%{query.search}%"
            conditions.append(
                or_(*(getattr(model, c).ilike(pattern) for c in _SEARCHABLE.get(model, ())))
            )
        stmt = stmt.where(*conditions)
        column = getattr(model, query.sort.lstrip("-"))
        order = column.desc() if query.sort.startswith("-") else column.asc()
        async with self.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = await session.scalars(
                stmt.order_by(order, model.id).limit(query.limit).offset(query.offset)  # type: ignore[attr-defined]
            )
            return list(rows.all()), int(total or 0)

    async def get(self, model: type[M], row_id: int) -> M:
        async with self.db.read() as session:
            return await self._get(session, model, row_id)

    async def create(self, model: type[M], values: Mapping[str, Any]) -> M:
        async with self.db.write() as session:
            await self._check_references(session, model, values)
            row = model(**values)
            session.add(row)
            await self._flush(session, model)
            return row

    async def update(self, model: type[M], row_id: int, values: Mapping[str, Any]) -> M:
        async with self.db.write() as session:
            row = await self._get(session, model, row_id)
            await self._check_references(session, model, values)
            if model is Unit and values.get("parent_id") is not None:
                await self._check_no_cycle(session, row_id, int(values["parent_id"]))
            for name, value in values.items():
                setattr(row, name, value)
            await self._flush(session, model)
            return row

    async def delete(self, model: type[Base], row_id: int) -> None:
        async with self.db.write() as session:
            row = await self._get(session, model, row_id)
            referrers = await self.referrers(session, model, row_id)
            if referrers:
                listed = ", ".join(f"{n} {t}" for t, n in referrers.items())
                raise Conflict(
                    f"{label(model)} {row_id} is still referred to by {listed}",
                    referenced_by=referrers,
                )
            await session.delete(row)

    async def create_terminal(self, values: Mapping[str, Any]) -> IssuedTerminal:
        new = mint_token("smr")
        terminal = await self.create(
            Terminal, {**values, "token_prefix": new.prefix, "token_hash": new.hash}
        )
        return IssuedTerminal(terminal, new.token)

    async def rotate_terminal_token(self, terminal_id: int) -> IssuedTerminal:
        """A new token replaces the old one at once (and lifts a revocation)."""
        new = mint_token("smr")
        async with self.db.write() as session:
            terminal = await self._get(session, Terminal, terminal_id)
            terminal.token_prefix = new.prefix
            terminal.token_hash = new.hash
            terminal.revoked_at = None
            return IssuedTerminal(terminal, new.token)

    async def revoke_terminal(self, terminal_id: int) -> Terminal:
        async with self.db.write() as session:
            terminal = await self._get(session, Terminal, terminal_id)
            if terminal.revoked_at is None:
                terminal.revoked_at = utcnow()
            return terminal

    @staticmethod
    async def referrers(session: AsyncSession, model: type[Base], row_id: int) -> dict[str, int]:
        """Rows of any table whose foreign key points at this row, counted by table.

        Found from the metadata, so tables added by other packages are covered too.
        """
        found: dict[str, int] = {}
        target = model.__table__
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_keys:
                if fk.column.table is not target or fk.ondelete in ("CASCADE", "SET NULL"):
                    continue
                if table is target and fk.parent.name == "id":
                    continue
                count = await session.scalar(
                    select(func.count()).select_from(table).where(fk.parent == row_id)
                )
                if count:
                    found[table.name] = found.get(table.name, 0) + int(count)
        return found

    @staticmethod
    async def _get(session: AsyncSession, model: type[M], row_id: int) -> M:
        row = await session.get(model, row_id)
        if row is None:
            raise NotFound(f"{label(model)} {row_id} does not exist")
        return row

    @staticmethod
    async def _check_references(
        session: AsyncSession, model: type[Base], values: Mapping[str, Any]
    ) -> None:
        missing: dict[str, str] = {}
        for field, target in _REFERENCES.get(model, {}).items():
            ref = values.get(field)
            if ref is not None and await session.get(target, ref) is None:
                missing[field] = f"{label(target)} {ref} does not exist"
        if missing:
            raise Invalid("the input refers to rows that do not exist", fields=missing)

    @staticmethod
    async def _check_no_cycle(session: AsyncSession, unit_id: int, parent_id: int) -> None:
        current: int | None = parent_id
        seen: set[int] = set()
        while current is not None and current not in seen:
            if current == unit_id:
                raise Invalid(
                    "a unit cannot be its own ancestor",
                    fields={"parent_id": "this parent would make a cycle"},
                )
            seen.add(current)
            current = await session.scalar(select(Unit.parent_id).where(Unit.id == current))

    @staticmethod
    async def _flush(session: AsyncSession, model: type[Base]) -> None:
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"a {label(model)} with the same unique value already exists") from exc
