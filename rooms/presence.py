"""Terminal presence as stored: online since, last seen, agent version, current conference.

For the terminal control channel in `web` (which writes it as agents connect, report and
go away) and for administrators' views and uptime statistics (which read it). The live
details (media statistics) stay in the channel's memory; what must survive a restart is
here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.db import Database
from rooms.models import Room, Terminal, TerminalPresence


@dataclass(frozen=True, slots=True)
class TerminalRow:
    """A terminal, its room and its stored presence (None: never connected)."""

    terminal: Terminal
    room: Room
    presence: TerminalPresence | None


class PresenceStore:
    """Reads and writes ``terminal_presence`` over one :class:`Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def came_online(
        self, terminal_id: int, agent_version: str, at: datetime
    ) -> TerminalRow | None:
        """Record the agent's connection; None if the terminal is gone or revoked."""
        async with self.db.write() as session:
            terminal = await session.get(Terminal, terminal_id)
            if terminal is None or terminal.revoked_at is not None:
                return None
            room = await session.get(Room, terminal.room_id)
            assert room is not None
            row = await _row(session, terminal_id)
            row.online, row.online_since, row.last_seen_at = True, at, at
            row.agent_version, row.conference = agent_version[:100], None
            return TerminalRow(terminal, room, row)

    async def seen(
        self, terminal_id: int, token_prefix: str, at: datetime, conference: str | None
    ) -> bool:
        """Record a sign of life; False if the terminal's token was revoked or replaced."""
        async with self.db.write() as session:
            terminal = await session.get(Terminal, terminal_id)
            if (
                terminal is None
                or terminal.revoked_at is not None
                or terminal.token_prefix != token_prefix
            ):
                return False
            row = await _row(session, terminal_id)
            row.last_seen_at, row.conference = at, conference
            return True

    async def went_offline(self, terminal_id: int, at: datetime) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(TerminalPresence)
                .where(TerminalPresence.terminal_id == terminal_id)
                .values(online=False, online_since=None, last_seen_at=at, conference=None)
            )

    async def all_offline(self) -> None:
        """At start-up: no agent is connected to this (single) server yet."""
        async with self.db.write() as session:
            await session.execute(
                update(TerminalPresence)
                .where(TerminalPresence.online.is_(True))
                .values(online=False, online_since=None, conference=None)
            )

    async def terminal(self, terminal_id: int) -> TerminalRow | None:
        rows = await self._rows(select(Terminal).where(Terminal.id == terminal_id))
        return rows[0] if rows else None

    async def everything(self) -> Sequence[TerminalRow]:
        """Every terminal, with its room and presence, by room."""
        return await self._rows(select(Terminal).order_by(Terminal.room_id, Terminal.id))

    async def _rows(self, stmt: Select[Terminal]) -> list[TerminalRow]:
        async with self.db.read() as session:
            terminals: Sequence[Terminal] = (await session.scalars(stmt)).all()
            if not terminals:
                return []
            ids = [t.id for t in terminals]
            rooms = {
                r.id: r
                for r in (
                    await session.scalars(
                        select(Room).where(Room.id.in_({t.room_id for t in terminals}))
                    )
                ).all()
            }
            presence = {
                p.terminal_id: p
                for p in (
                    await session.scalars(
                        select(TerminalPresence).where(TerminalPresence.terminal_id.in_(ids))
                    )
                ).all()
            }
        return [TerminalRow(t, rooms[t.room_id], presence.get(t.id)) for t in terminals]


async def _row(session: AsyncSession, terminal_id: int) -> TerminalPresence:
    row = await session.get(TerminalPresence, terminal_id)
    if row is None:
        row = TerminalPresence(terminal_id=terminal_id, online=False)
        session.add(row)
    return row
