"""Tables of the directory: units, people, rooms, terminals, and the credentials around them.

Secrets (passwords, API tokens, terminal tokens, integration keys) are never stored: only a
hash (argon2 for passwords, SHA-256 for random high-entropy tokens) and a short public
prefix used to find the row.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, NewType

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rooms.db import Base, UTCDateTime, utcnow

UnitId = NewType("UnitId", int)
PersonId = NewType("PersonId", int)
RoomId = NewType("RoomId", int)
TerminalId = NewType("TerminalId", int)
AccountId = NewType("AccountId", int)


class UnitKind(enum.StrEnum):
    """What a unit of the city government is."""

    CITY = "city"  # the city government office
    DISTRICT = "district"  # 区
    DEPARTMENT = "department"  # 局 / 委 / 办


class Role(enum.StrEnum):
    """Staff roles; each includes nothing of the others but what the policy grants."""

    ADMIN = "admin"
    SECRETARIAT = "secretariat"
    STAFF = "staff"


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    short_name: Mapped[str | None] = mapped_column(String(50))
    kind: Mapped[UnitKind] = mapped_column(
        Enum(UnitKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    title: Mapped[str | None] = mapped_column(String(100))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(300))
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    equipment: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("uq_rooms_unit_id_name", "unit_id", "name", unique=True),)


class Terminal(Base):
    """A fixed device in a room that joins conferences on the room's behalf."""

    __tablename__ = "terminals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    token_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Account(Base):
    """A staff login, always for a person of the directory."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    person: Mapped[Person] = relationship(lazy="joined")


class AuthToken(Base):
    """A staff login's bearer token or browser session (``kind``), stored hashed."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # "api" | "session"
    token_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ApiKey(Base):
    """A scoped key of an integrated system (the office-automation system)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_prefix: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


def columns_of(obj: Base) -> dict[str, Any]:
    """The column values of a row, by attribute name (for building response schemas)."""
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs}


class TerminalPresence(Base):
    """What the server last knew of a terminal's agent (for administrators and uptime).

    Written by the terminal control channel: ``online`` and ``online_since`` when the agent
    connects, ``last_seen_at`` as it reports (throttled), offline when it goes away.
    """

    __tablename__ = "terminal_presence"

    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), primary_key=True
    )
    online: Mapped[bool] = mapped_column(default=False)
    online_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_version: Mapped[str | None] = mapped_column(String(100))
    conference: Mapped[str | None] = mapped_column(String(100))
