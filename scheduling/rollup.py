"""The per-occurrence rollup behind the statistics: one summary row per held occurrence.

For :mod:`scheduling.stats`. Statistics over a year would otherwise aggregate millions of
presences, attendee rows and join/leave events per request; instead, once an occurrence is
*held* (not cancelled, its meeting not cancelled, its end past), one SQL statement computes
its figures into ``occurrence_summaries``: invitations and answers, who attended, late joins
and early leaves, participant-seconds, the peak of participants connected at once (a sweep
over its join/leave events), the span of its conference, the booked room terminals and how
long they were connected, and the quality classes and means of its presences.

With them it keeps ``conference_peaks``: per day of starts and per group of each grouping, the
most conferences live at one instant (a sweep per day), so that the statistics' peak over a
year reads a few thousand rows instead of sorting every conference's start and end; the
statistics check that conferences of different days never overlap (else they sweep live).

:func:`refresh` recomputes every occurrence that ended after a watermark (the latest
summarised end, less :data:`LAG`, so presences still open at the scheduled end and late
answers are caught up), inside one write transaction; with ``everything=True`` it rebuilds
all of them (demo data, bulk imports). The aggregation runs in the database (plain SQL that
SQLite and PostgreSQL both accept), never row by row in Python.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime

LAG = timedelta(days=2)
"""Occurrences that ended this long before the latest summary are summarised again."""
LATE_GRACE = timedelta(minutes=5)

# A presence's quality class from its means: good if all three are below the first limit,
# fair if all below the second, else poor; "unknown" without a sample.
GOOD = {"loss": 0.01, "rtt": 150.0, "jitter": 30.0}
FAIR = {"loss": 0.05, "rtt": 400.0, "jitter": 80.0}
QUALITY_CLASSES = ("good", "fair", "poor", "unknown")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class OccurrenceSummary(Base):
    """The figures of one held occurrence (derived by :func:`refresh`, never edited)."""

    __tablename__ = "occurrence_summaries"

    meeting_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scheduled_s: Mapped[int] = mapped_column(Integer)
    by_video: Mapped[bool] = mapped_column(Boolean)
    invited: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    attended: Mapped[int] = mapped_column(Integer)  # invitees connected in person
    participants: Mapped[int] = mapped_column(Integer)  # distinct identities connected
    people: Mapped[int] = mapped_column(Integer)  # distinct persons connected
    presences: Mapped[int] = mapped_column(Integer)
    participant_s: Mapped[int] = mapped_column(Integer)
    late_joins: Mapped[int] = mapped_column(Integer)
    early_leaves: Mapped[int] = mapped_column(Integer)
    peak_participants: Mapped[int] = mapped_column(Integer)
    conference_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    conference_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    terminals_booked: Mapped[int] = mapped_column(Integer)
    terminal_booked_s: Mapped[int] = mapped_column(Integer)
    terminal_online_s: Mapped[int] = mapped_column(Integer)
    q_good: Mapped[int] = mapped_column(Integer)
    q_fair: Mapped[int] = mapped_column(Integer)
    q_poor: Mapped[int] = mapped_column(Integer)
    q_unknown: Mapped[int] = mapped_column(Integer)
    loss_n: Mapped[int] = mapped_column(Integer)  # presences with samples
    loss_sum: Mapped[float] = mapped_column(Float)  # sum of the presences' mean loss
    loss_max: Mapped[float] = mapped_column(Float)
    rtt_n: Mapped[int] = mapped_column(Integer)
    rtt_sum: Mapped[float] = mapped_column(Float)
    rtt_max: Mapped[float] = mapped_column(Float)
    jitter_n: Mapped[int] = mapped_column(Integer)
    jitter_sum: Mapped[float] = mapped_column(Float)
    jitter_max: Mapped[float] = mapped_column(Float)
    bitrate_sum: Mapped[float] = mapped_column(Float)  # sum of the presences' mean kbit/s
    bitrate_min: Mapped[float | None] = mapped_column(Float)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        ForeignKeyConstraint(
            ["meeting_id", "recurrence_id"],
            ["meeting_occurrences.meeting_id", "meeting_occurrences.recurrence_id"],
            ondelete="CASCADE",
            name="fk_occurrence_summaries_occurrence",
        ),
        Index("ix_occurrence_summaries_starts_at", "starts_at"),
        Index("ix_occurrence_summaries_ends_at", "ends_at"),
    )


class ConferencePeak(Base):
    """The most conferences of one group live at one instant, among the held-by-video
    occurrences starting on one day (derived by :func:`refresh`, never edited)."""

    __tablename__ = "conference_peaks"

    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # see PEAK_DAY_OFFSET
    grouping: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    peak: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())  # earliest event of the day
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())  # latest event of the day

    __table_args__ = (PrimaryKeyConstraint("grouping", "day", "key"),)


_COLUMNS = [c.name for c in OccurrenceSummary.__table__.columns]
DAY = 86400
PEAK_DAY_OFFSET = 8 * 3600
"""``conference_peaks.day`` is (Unix seconds of the occurrence's start + this) // 86400:
days of UTC+8 (China's local days). Ranges in other zones read the days they cover whole
and sweep their edges live (:mod:`scheduling.stats`)."""
PEAK_GROUPINGS = ("all", "unit", "district", "department", "kind", "mode")
"""Stored per group; also ``district_all`` and ``department_all``: the peak of every
conference in some district (department) together, the total of those groupings."""


def group_key_sql(by: str) -> str:
    """The SQL of a group key (on ``s`` summaries, ``u`` their unit, ``pu`` its parent);
    NULL for summaries outside every group (district, department)."""
    if by == "unit":
        return "s.unit_id"
    if by in ("district", "department"):
        return f"CASE WHEN u.kind = '{by}' THEN u.id WHEN pu.kind = '{by}' THEN pu.id END"
    if by == "kind":
        return "u.kind"
    if by == "mode":
        return "s.mode"
    return "'all'"


def epoch_seconds(column: str, dialect: str) -> str:
    """SQL: the whole Unix seconds of a timestamp column (rounded down)."""
    if dialect == "sqlite":
        return f"CAST(strftime('%s', {column}) AS INTEGER)"
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS BIGINT)"


def peaks_sql(dialect: str) -> list[str]:
    """INSERT ... SELECTs of the daily peaks of every grouping, days from ``:from_day`` on
    (which start at ``:from_at``):
    per day and group, a sweep over its conferences' spans (first join to last leave)."""
    day = f"(({epoch_seconds('s.starts_at', dialect)} + {PEAK_DAY_OFFSET}) / {DAY})"
    rows = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    statements = []
    groupings = [(by, group_key_sql(by), group_key_sql(by)) for by in PEAK_GROUPINGS]
    groupings += [(f"{by}_all", "'all'", group_key_sql(by)) for by in ("district", "department")]
    for by, key, member in groupings:
        # built from this module's constants only; the one value is a bound parameter
        statements.append(f"""INSERT INTO conference_peaks (day, grouping, key, peak, first_at,
  last_at)
SELECT day, '{by}', CAST(k AS VARCHAR(40)), MAX(n), MIN(t), MAX(t)
FROM (
  SELECT day, k, t, SUM(d) OVER (PARTITION BY day, k ORDER BY t, d {rows}) AS n
  FROM (
    SELECT {day} AS day, {key} AS k, e.d,
      CASE WHEN e.d = 1 THEN s.conference_start
        ELSE COALESCE(s.conference_end, s.ends_at) END AS t
    FROM occurrence_summaries s JOIN units u ON u.id = s.unit_id
    LEFT JOIN units pu ON pu.id = u.parent_id
    CROSS JOIN (SELECT 1 AS d UNION ALL SELECT -1) e
    WHERE s.by_video AND s.starts_at >= :from_at AND {day} >= :from_day
      AND ({member}) IS NOT NULL
  ) ev
) run
GROUP BY day, k""")  # noqa: S608
    return statements


def seconds_between(later: str, earlier: str, dialect: str) -> str:
    """SQL for the whole seconds from ``earlier`` to ``later`` (two timestamp columns)."""
    if dialect == "sqlite":
        return f"CAST(ROUND((julianday({later}) - julianday({earlier})) * 86400) AS INTEGER)"
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS INTEGER)"


def _quality_case() -> str:
    def within(limits: dict[str, float], tag: str) -> str:
        return (
            f"a.loss_sum / a.samples < :{tag}_loss"
            f" AND (a.rtt_n = 0 OR a.rtt_sum / a.rtt_n < :{tag}_rtt)"
            f" AND (a.jitter_n = 0 OR a.jitter_sum / a.jitter_n < :{tag}_jitter)"
        )

    return (
        "CASE WHEN a.samples = 0 THEN 'unknown'"
        f" WHEN {within(GOOD, 'good')} THEN 'good'"
        f" WHEN {within(FAIR, 'fair')} THEN 'fair' ELSE 'poor' END"
    )


def _mean_of(column: str, count: str) -> str:
    return f"SUM(CASE WHEN {count} > 0 THEN {column} / {count} ELSE 0 END)"


def refresh_sql(dialect: str) -> str:
    """The INSERT ... SELECT that summarises every held occurrence ending after ``:lo``."""
    scheduled = seconds_between("occ.ends_at", "occ.starts_at", dialect)
    on = "ON {a}.meeting_id = occ.meeting_id AND {a}.recurrence_id = occ.recurrence_id"
    # built from this module's constants only; every value is a bound parameter
    return f"""
WITH occ AS (
  SELECT o.meeting_id, o.recurrence_id, o.starts_at, o.ends_at, m.unit_id, m.mode
  FROM meeting_occurrences o JOIN meetings m ON m.id = o.meeting_id
  WHERE NOT o.cancelled AND m.status <> 'cancelled' AND o.ends_at <= :now AND o.ends_at > :lo
),
pres AS (
  SELECT a.*, {_quality_case()} AS quality
  FROM attendance a JOIN occ {on.format(a="a")}
),
pagg AS (
  SELECT meeting_id, recurrence_id, COUNT(*) AS presences,
    COUNT(DISTINCT identity) AS participants, SUM(seconds) AS participant_s,
    MIN(joined_at) AS conference_start, MAX(left_at) AS conference_end,
    SUM(CASE WHEN quality = 'good' THEN 1 ELSE 0 END) AS q_good,
    SUM(CASE WHEN quality = 'fair' THEN 1 ELSE 0 END) AS q_fair,
    SUM(CASE WHEN quality = 'poor' THEN 1 ELSE 0 END) AS q_poor,
    SUM(CASE WHEN quality = 'unknown' THEN 1 ELSE 0 END) AS q_unknown,
    SUM(CASE WHEN samples > 0 THEN 1 ELSE 0 END) AS loss_n,
    {_mean_of("loss_sum", "samples")} AS loss_sum, MAX(loss_max) AS loss_max,
    SUM(CASE WHEN rtt_n > 0 THEN 1 ELSE 0 END) AS rtt_n,
    {_mean_of("rtt_sum", "rtt_n")} AS rtt_sum, MAX(rtt_max) AS rtt_max,
    SUM(CASE WHEN jitter_n > 0 THEN 1 ELSE 0 END) AS jitter_n,
    {_mean_of("jitter_sum", "jitter_n")} AS jitter_sum, MAX(jitter_max) AS jitter_max,
    {_mean_of("bitrate_sum", "samples")} AS bitrate_sum, MIN(bitrate_min) AS bitrate_min
  FROM pres GROUP BY meeting_id, recurrence_id
),
ident AS (
  SELECT meeting_id, recurrence_id, identity, MAX(attendee_id) AS attendee_id,
    MAX(person_id) AS person_id, MIN(join_offset_s) AS first_join,
    MAX(leave_offset_s) AS last_leave
  FROM pres GROUP BY meeting_id, recurrence_id, identity
),
iagg AS (
  SELECT meeting_id, recurrence_id, COUNT(attendee_id) AS attended,
    COUNT(person_id) AS people,
    SUM(CASE WHEN person_id IS NOT NULL AND first_join > :late THEN 1 ELSE 0 END) AS late_joins,
    SUM(CASE WHEN person_id IS NOT NULL AND last_leave < :early THEN 1 ELSE 0 END)
      AS early_leaves
  FROM ident GROUP BY meeting_id, recurrence_id
),
ev AS (
  SELECT meeting_id, recurrence_id, joined_at AS t, 1 AS d FROM pres
  UNION ALL
  SELECT meeting_id, recurrence_id, left_at AS t, -1 AS d FROM pres WHERE left_at IS NOT NULL
),
run AS (
  SELECT meeting_id, recurrence_id, SUM(d) OVER (PARTITION BY meeting_id, recurrence_id
    ORDER BY t, d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS n
  FROM ev
),
peak AS (SELECT meeting_id, recurrence_id, MAX(n) AS peak FROM run
  GROUP BY meeting_id, recurrence_id),
inv AS (
  SELECT ma.meeting_id, COUNT(*) AS invited,
    SUM(CASE WHEN ma.partstat = 'ACCEPTED' THEN 1 ELSE 0 END) AS accepted
  FROM meeting_attendees ma
  WHERE ma.meeting_id IN (SELECT meeting_id FROM occ) GROUP BY ma.meeting_id
),
ton AS (
  SELECT meeting_id, recurrence_id, terminal_id, SUM(seconds) AS s FROM pres
  WHERE terminal_id IS NOT NULL GROUP BY meeting_id, recurrence_id, terminal_id
),
tagg AS (
  SELECT occ.meeting_id, occ.recurrence_id, COUNT(*) AS terminals,
    SUM(CASE WHEN COALESCE(ton.s, 0) > {scheduled} THEN {scheduled}
        ELSE COALESCE(ton.s, 0) END) AS online_s
  FROM bookings b JOIN occ {on.format(a="b")}
  JOIN terminals t ON t.room_id = b.room_id
    AND (t.revoked_at IS NULL OR t.revoked_at > occ.starts_at)
  LEFT JOIN ton ON ton.meeting_id = occ.meeting_id AND ton.recurrence_id = occ.recurrence_id
    AND ton.terminal_id = t.id
  GROUP BY occ.meeting_id, occ.recurrence_id
)
INSERT INTO occurrence_summaries ({", ".join(_COLUMNS)})
SELECT occ.meeting_id, occ.recurrence_id, occ.unit_id, occ.mode, occ.starts_at, occ.ends_at,
  {scheduled},
  (occ.mode IN ('video', 'hybrid') AND COALESCE(pagg.presences, 0) > 0),
  COALESCE(inv.invited, 0), COALESCE(inv.accepted, 0), COALESCE(iagg.attended, 0),
  COALESCE(pagg.participants, 0), COALESCE(iagg.people, 0), COALESCE(pagg.presences, 0),
  COALESCE(pagg.participant_s, 0), COALESCE(iagg.late_joins, 0),
  COALESCE(iagg.early_leaves, 0), COALESCE(peak.peak, 0),
  pagg.conference_start, pagg.conference_end,
  COALESCE(tagg.terminals, 0), COALESCE(tagg.terminals, 0) * {scheduled},
  COALESCE(tagg.online_s, 0),
  COALESCE(pagg.q_good, 0), COALESCE(pagg.q_fair, 0), COALESCE(pagg.q_poor, 0),
  COALESCE(pagg.q_unknown, 0),
  COALESCE(pagg.loss_n, 0), COALESCE(pagg.loss_sum, 0), COALESCE(pagg.loss_max, 0),
  COALESCE(pagg.rtt_n, 0), COALESCE(pagg.rtt_sum, 0), COALESCE(pagg.rtt_max, 0),
  COALESCE(pagg.jitter_n, 0), COALESCE(pagg.jitter_sum, 0), COALESCE(pagg.jitter_max, 0),
  COALESCE(pagg.bitrate_sum, 0), pagg.bitrate_min,
  :now
FROM occ
LEFT JOIN inv ON inv.meeting_id = occ.meeting_id
LEFT JOIN pagg {on.format(a="pagg")}
LEFT JOIN iagg {on.format(a="iagg")}
LEFT JOIN peak {on.format(a="peak")}
LEFT JOIN tagg {on.format(a="tagg")}
"""  # noqa: S608


async def _watermark(session: AsyncSession) -> datetime:
    latest = await session.scalar(select(func.max(OccurrenceSummary.ends_at)))
    return EPOCH if latest is None else latest - LAG


async def refresh(
    db: Database,
    now: datetime,
    *,
    everything: bool = False,
    late_grace: timedelta = LATE_GRACE,
) -> int:
    """Summarise the occurrences held since the watermark (or all); how many rows now."""
    grace = round(late_grace.total_seconds())
    async with db.write() as session:
        lo = EPOCH if everything else await _watermark(session)
        stale = delete(OccurrenceSummary).where(OccurrenceSummary.ends_at > lo)
        await session.execute(stale)
        params: dict[str, object] = {"now": now, "lo": lo, "late": grace, "early": -grace}
        for tag, limits in (("good", GOOD), ("fair", FAIR)):
            params.update({f"{tag}_{k}": v for k, v in limits.items()})
        statement = text(refresh_sql(db.dialect)).bindparams(
            bindparam("now", type_=UTCDateTime()), bindparam("lo", type_=UTCDateTime())
        )
        await session.execute(statement, params)
        await _refresh_peaks(session, db.dialect, lo)
        count = select(func.count()).where(OccurrenceSummary.ends_at > lo)
        return int(await session.scalar(count) or 0)


async def _refresh_peaks(session: AsyncSession, dialect: str, lo: datetime) -> None:
    """Recompute the daily peaks of every day from the first one whose summaries changed
    (every day when there are none yet: the first run after the migration)."""
    changed = await session.scalar(
        select(func.min(OccurrenceSummary.starts_at)).where(OccurrenceSummary.ends_at > lo)
    )
    if changed is None:
        return
    anything = await session.scalar(select(ConferencePeak.day).limit(1))
    first = -1 if anything is None else peak_day(changed)
    await session.execute(delete(ConferencePeak).where(ConferencePeak.day >= first))
    # the bound on the start lets the refresh read only the recent summaries (its index)
    since = EPOCH if first < 0 else datetime.fromtimestamp(first * DAY - PEAK_DAY_OFFSET, UTC)
    for statement in peaks_sql(dialect):
        sweep = text(statement).bindparams(bindparam("from_at", type_=UTCDateTime()))
        await session.execute(sweep, {"from_day": first, "from_at": since})


def peak_day(at: datetime) -> int:
    """The ``conference_peaks.day`` of an occurrence starting at ``at``."""
    return (math.floor(at.timestamp()) + PEAK_DAY_OFFSET) // DAY
