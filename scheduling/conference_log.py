"""What was said and done in a meeting's conferences: chat messages and chair controls.

For administrators, the secretariat and the meeting's organiser, after the fact (``web``
serves it at ``/api/v1/meetings/{id}/chat`` and ``.../conference-log``). ``web`` turns the
hub's activity hook into :meth:`ConferenceLog.record` calls; one row per chat message
(``kind=chat``: text, and the recipient for a private message) or per control (``kind=control``:
the action, who did it and to whom). Participants are kept by identity (``person:12``,
``guest:…``, ``terminal:3``, ``operator``) and by the name they had then, so the log reads
the same after people are renamed or guests are long gone.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime


class LogKind(enum.StrEnum):
    """What an entry records."""

    CHAT = "chat"
    CONTROL = "control"


def _enum(cls: type[enum.StrEnum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class LogEntry(Base):
    """One chat message or one chair control in one occurrence's conference."""

    __tablename__ = "conference_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[LogKind] = mapped_column(_enum(LogKind))
    actor_identity: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(200))
    target_identity: Mapped[str | None] = mapped_column(String(100))
    target_name: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    # a chat message to one participant only
    private: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_conference_log_meeting_id_at", "meeting_id", "at"),)


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Which entries of one meeting: kinds, one occurrence, private chat or not, a page."""

    meeting_id: int
    kinds: tuple[LogKind, ...] = (LogKind.CHAT, LogKind.CONTROL)
    recurrence_id: datetime | None = None
    include_private: bool = True
    limit: int = 100
    offset: int = 0


class ConferenceLog:
    """Writes and reads the conference log (one short transaction per entry)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, entry: LogEntry) -> LogEntry:
        """Store one entry (the caller fills every column but the id)."""
        async with self.db.write() as session:
            session.add(entry)
        return entry

    async def entries(self, query: LogQuery) -> tuple[Sequence[LogEntry], int]:
        """One page of the entries, oldest first, and how many match in all."""
        where = [LogEntry.meeting_id == query.meeting_id, LogEntry.kind.in_(query.kinds)]
        if query.recurrence_id is not None:
            where.append(LogEntry.recurrence_id == query.recurrence_id)
        if not query.include_private:
            where.append(LogEntry.private.is_(False))
        async with self.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(LogEntry).where(*where))
            rows = await session.scalars(
                select(LogEntry)
                .where(*where)
                .order_by(LogEntry.at, LogEntry.id)
                .limit(query.limit)
                .offset(query.offset)
            )
            return rows.all(), int(total or 0)
