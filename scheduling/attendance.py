"""Attendance: who was connected to which conference, when, from what, and how well.

For administrators' statistics (:mod:`scheduling.stats`). ``web`` turns the hub's presence
events and periodic media-quality samples into calls on an :class:`AttendanceRecorder`;
this module keeps one row per **presence** in ``attendance``: one participant (a person,
a room terminal, a WHIP/WHEP client or a guest) connected to one occurrence's conference
from ``joined_at`` to ``left_at``. A reconnection of the same identity within ``merge_gap``
(a reload, a network blip, a replaced socket) continues the same presence (``reconnects``
counts them) instead of starting a new one.

Each presence carries a quality summary built from the samples taken while it was connected
(mean and worst loss, jitter, RTT, and mean and lowest bitrate) and the offsets of its first
join and last leave from the occurrence's scheduled start and end (late joins, early
leaves), so that the statistics aggregate plain integers and never subtract timestamps.

The recorder expects its calls one at a time (``web`` feeds it from one queue); its open
presences are written through to the database on every call, so a crash loses at most the
last sampling interval: :meth:`AttendanceRecorder.close_stale` closes what a crash left open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime
from scheduling.models import Attendee, Occurrence

log = logging.getLogger(__name__)

DEFAULT_MERGE_GAP = timedelta(seconds=60)


class Presence(Base):
    """One participant connected to one occurrence's conference (reconnections merged)."""

    __tablename__ = "attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(Integer)
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    # the invitation, when the participant is an invited person
    attendee_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_attendees.id", ondelete="SET NULL"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(Integer)
    terminal_id: Mapped[int | None] = mapped_column(Integer)
    room_id: Mapped[int | None] = mapped_column(Integer)
    identity: Mapped[str] = mapped_column(String(100))  # "person:12", "terminal:3", ...
    client_kind: Mapped[str] = mapped_column(String(20))  # browser, terminal, whip, whep, guest
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    leave_reason: Mapped[str | None] = mapped_column(String(40))
    # start of the current connected stretch, and the last time it was seen connected
    segment_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds: Mapped[int] = mapped_column(Integer, default=0)  # connected, closed stretches
    reconnects: Mapped[int] = mapped_column(Integer, default=0)
    join_offset_s: Mapped[int] = mapped_column(Integer)  # first join - scheduled start
    leave_offset_s: Mapped[int | None] = mapped_column(Integer)  # last leave - scheduled end
    samples: Mapped[int] = mapped_column(Integer, default=0)
    loss_sum: Mapped[float] = mapped_column(Float, default=0.0)  # fractions 0..1
    loss_max: Mapped[float] = mapped_column(Float, default=0.0)
    jitter_n: Mapped[int] = mapped_column(Integer, default=0)
    jitter_sum: Mapped[float] = mapped_column(Float, default=0.0)  # ms
    jitter_max: Mapped[float] = mapped_column(Float, default=0.0)
    rtt_n: Mapped[int] = mapped_column(Integer, default=0)
    rtt_sum: Mapped[float] = mapped_column(Float, default=0.0)  # ms
    rtt_max: Mapped[float] = mapped_column(Float, default=0.0)
    bitrate_sum: Mapped[float] = mapped_column(Float, default=0.0)  # kbit/s, sent + received
    bitrate_min: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        ForeignKeyConstraint(
            ["meeting_id", "recurrence_id"],
            ["meeting_occurrences.meeting_id", "meeting_occurrences.recurrence_id"],
            ondelete="CASCADE",
            name="fk_attendance_occurrence",
        ),
        Index("ix_attendance_occurrence", "meeting_id", "recurrence_id", "identity"),
        Index("ix_attendance_open", "left_at"),
        # the terminals' connected time in a date range (statistics)
        Index(
            "ix_attendance_terminal",
            "terminal_id",
            "joined_at",
            postgresql_where=text("terminal_id IS NOT NULL"),
            sqlite_where=text("terminal_id IS NOT NULL"),
        ),
    )


@dataclass(frozen=True, slots=True)
class Join:
    """A participant connected (plain data: ``web`` builds it from the hub's event)."""

    participant: str  # the connection's id, unique while it lasts
    meeting_id: int
    recurrence_id: datetime
    identity: str
    client_kind: str
    at: datetime
    person_id: int | None = None
    terminal_id: int | None = None
    room_id: int | None = None


@dataclass(frozen=True, slots=True)
class Quality:
    """One media-quality sample of a connection (``None``: not measured this time)."""

    loss: float  # fraction 0..1, the worse direction
    jitter_ms: float | None
    rtt_ms: float | None
    bitrate_kbps: float


_AGGREGATES = (
    "samples",
    "loss_sum",
    "loss_max",
    "jitter_n",
    "jitter_sum",
    "jitter_max",
    "rtt_n",
    "rtt_sum",
    "rtt_max",
    "bitrate_sum",
    "bitrate_min",
)


@dataclass
class _Open:
    """An open presence as the recorder keeps it between calls."""

    id: int
    segment_at: datetime
    ends_at: datetime
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, q: Quality) -> None:
        f = self.figures
        f["samples"] += 1
        f["loss_sum"] += q.loss
        f["loss_max"] = max(f["loss_max"], q.loss)
        if q.jitter_ms is not None:
            f["jitter_n"] += 1
            f["jitter_sum"] += q.jitter_ms
            f["jitter_max"] = max(f["jitter_max"], q.jitter_ms)
        if q.rtt_ms is not None:
            f["rtt_n"] += 1
            f["rtt_sum"] += q.rtt_ms
            f["rtt_max"] = max(f["rtt_max"], q.rtt_ms)
        f["bitrate_sum"] += q.bitrate_kbps
        low = f["bitrate_min"]
        f["bitrate_min"] = q.bitrate_kbps if low is None else min(low, q.bitrate_kbps)


def _seconds(later: datetime, earlier: datetime) -> int:
    return round((later - earlier).total_seconds())


class AttendanceRecorder:
    """Writes presences as participants join, are sampled and leave (one call at a time)."""

    def __init__(self, db: Database, *, merge_gap: timedelta = DEFAULT_MERGE_GAP) -> None:
        self.db = db
        self.merge_gap = merge_gap
        self._open: dict[str, _Open] = {}  # by connection id

    @property
    def connected(self) -> list[str]:
        """Connection ids with an open presence (for the sampler)."""
        return list(self._open)

    async def joined(self, join: Join) -> int:
        """Open (or continue, after a short gap) the presence; its id."""
        async with self.db.write() as session:
            occurrence = await session.get(Occurrence, (join.meeting_id, join.recurrence_id))
            if occurrence is None:
                raise LookupError(f"no occurrence {join.meeting_id}@{join.recurrence_id}")
            previous = await session.scalar(
                select(Presence)
                .where(
                    Presence.meeting_id == join.meeting_id,
                    Presence.recurrence_id == join.recurrence_id,
                    Presence.identity == join.identity,
                )
                .order_by(Presence.joined_at.desc())
                .limit(1)
            )
            if previous is not None and (
                previous.left_at is None or previous.left_at >= join.at - self.merge_gap
            ):
                if previous.left_at is None:  # its leave was never heard: close it first
                    previous.seconds += max(0, _seconds(previous.last_seen_at, previous.segment_at))
                else:
                    previous.reconnects += 1
                previous.left_at = None
                previous.leave_reason = None
                previous.segment_at = previous.last_seen_at = join.at
                previous.client_kind = join.client_kind
                row = previous
            else:
                attendee_id = None
                if join.person_id is not None:
                    attendee_id = await session.scalar(
                        select(Attendee.id).where(
                            Attendee.meeting_id == join.meeting_id,
                            Attendee.person_id == join.person_id,
                        )
                    )
                row = Presence(
                    meeting_id=join.meeting_id,
                    recurrence_id=join.recurrence_id,
                    attendee_id=attendee_id,
                    person_id=join.person_id,
                    terminal_id=join.terminal_id,
                    room_id=join.room_id,
                    identity=join.identity,
                    client_kind=join.client_kind,
                    joined_at=join.at,
                    segment_at=join.at,
                    last_seen_at=join.at,
                    seconds=0,
                    reconnects=0,
                    join_offset_s=_seconds(join.at, occurrence.starts_at),
                    samples=0,
                    loss_sum=0.0,
                    loss_max=0.0,
                    jitter_n=0,
                    jitter_sum=0.0,
                    jitter_max=0.0,
                    rtt_n=0,
                    rtt_sum=0.0,
                    rtt_max=0.0,
                    bitrate_sum=0.0,
                )
                session.add(row)
                await session.flush()
            for other, state in list(self._open.items()):
                if state.id == row.id:  # a connection whose leave never came
                    del self._open[other]
            self._open[join.participant] = _Open(
                row.id,
                join.at,
                occurrence.ends_at,
                {name: getattr(row, name) for name in _AGGREGATES},
            )
            return row.id

    async def sampled(self, samples: dict[str, Quality], at: datetime) -> int:
        """Add one quality sample per live connection; how many presences were updated."""
        updates = []
        for participant, quality in samples.items():
            state = self._open.get(participant)
            if state is None:
                continue
            state.add(quality)
            updates.append({"id": state.id, "last_seen_at": at, **state.figures})
        if updates:
            async with self.db.write() as session:
                await session.execute(update(Presence), updates)
        return len(updates)

    async def left(
        self, participant: str, at: datetime, reason: str | None, final: Quality | None
    ) -> int | None:
        """Close the connection's presence (with its last sample); its id, if it had one."""
        state = self._open.pop(participant, None)
        if state is None:
            return None
        if final is not None:
            state.add(final)
        async with self.db.write() as session:
            row = await session.get(Presence, state.id)
            if row is None:  # the occurrence was deleted meanwhile
                return None
            row.seconds += max(0, _seconds(at, state.segment_at))
            row.left_at = row.last_seen_at = at
            row.leave_reason = (reason or "")[:40] or None
            row.leave_offset_s = _seconds(at, state.ends_at)
            for name, value in state.figures.items():
                setattr(row, name, value)
        return state.id

    async def close_stale(self) -> int:
        """Close presences left open by a stopped server, as of when they were last seen."""
        closed = 0
        async with self.db.write() as session:
            rows = (await session.scalars(select(Presence).where(Presence.left_at.is_(None)))).all()
            for row in rows:
                occurrence = await session.get(Occurrence, (row.meeting_id, row.recurrence_id))
                row.seconds += max(0, _seconds(row.last_seen_at, row.segment_at))
                row.left_at = row.last_seen_at
                row.leave_reason = "server_stopped"
                if occurrence is not None:
                    row.leave_offset_s = _seconds(row.left_at, occurrence.ends_at)
                closed += 1
        if closed:
            log.info("closed %s presences left open by a stopped server", closed)
        return closed


async def occurrence_summary(
    session: AsyncSession, meeting_id: int, recurrence_id: datetime, end: datetime
) -> dict[str, int]:
    """Who attended one occurrence, for the ``attendance.summary`` event at its end.

    Presences still open at ``end`` count as connected until ``end``.
    """
    rows = (
        await session.execute(
            select(
                Presence.identity,
                Presence.person_id,
                Presence.client_kind,
                Presence.seconds,
                Presence.left_at,
                Presence.segment_at,
            ).where(Presence.meeting_id == meeting_id, Presence.recurrence_id == recurrence_id)
        )
    ).all()
    seconds = 0
    for row in rows:
        seconds += row.seconds
        if row.left_at is None and end > row.segment_at:
            seconds += _seconds(end, row.segment_at)
    invited = await session.scalar(
        select(func.count()).select_from(Attendee).where(Attendee.meeting_id == meeting_id)
    )
    return {
        "invited": int(invited or 0),
        "attended": len({r.person_id for r in rows if r.person_id is not None}),
        "participants": len({r.identity for r in rows}),
        "terminals": len({r.identity for r in rows if r.client_kind == "terminal"}),
        "participant_minutes": seconds // 60,
    }
