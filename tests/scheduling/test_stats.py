"""Statistics on a small hand-made data set with known answers (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rooms.db import Database
from scheduling import rollup, stats
from scheduling.stats import StatsQuery
from tests.scheduling import stats_data

RANGE = (date(2025, 3, 1), date(2025, 4, 30))


@pytest.fixture
async def ids(db: Database) -> dict[str, int]:
    loaded = await stats_data.load(db)
    await rollup.refresh(db, stats_data.NOW, everything=True)
    return loaded


async def _grouped(db: Database, by: stats.GroupBy, **kw: object) -> stats.Report:
    return await stats.figures(db, StatsQuery(*RANGE, by, **kw))  # type: ignore[arg-type]


async def test_every_figure_of_the_whole_range(db: Database, ids: dict[str, int]) -> None:
    total = (await _grouped(db, "all")).total
    # held: M1-M5 (M6's occurrence and M8 cancelled, M7 not over); by video: M1, M3, M4
    assert (total.held, total.planned_video, total.held_by_video) == (5, 4, 3)
    assert total.video_share == 0.6 and total.target == 0.8
    assert total.participant_minutes == 257.0  # 3720 + 1800 + 4500 + 1800 + 3600 s
    assert (total.invited, total.accepted, total.attended) == (4, 3, 3)
    assert total.attendance_rate == 0.75 and total.acceptance_rate == 0.75
    assert (total.late_joins, total.early_leaves) == (1, 1)
    assert total.mean_duration_min == 66.0  # (60 + 120 + 30 + 60 + 60) / 5
    assert (total.peak_participants, total.peak_conferences) == (3, 2)
    assert total.terminal_online_ratio == 0.5  # T1 all its hour (capped), T2 never
    quality = (total.quality_good, total.quality_fair, total.quality_poor, total.quality_unknown)
    assert quality == (1, 1, 1, 2)
    assert total.loss_mean == pytest.approx(0.0367) and total.loss_worst == 0.08
    assert (total.rtt_mean_ms, total.rtt_worst_ms) == (200.0, 300.0)
    assert (total.jitter_mean_ms, total.jitter_worst_ms) == (30.0, 50.0)
    assert (total.bitrate_mean_kbps, total.bitrate_lowest_kbps) == (766.7, 500.0)


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("month", {"2025-03": (4, 2, 2), "2025-04": (1, 1, 1)}),  # M3: 31 March 23:00 UTC
        ("unit", {"D": (2, 1, 1), "C": (1, 1, 1), "P": (1, 0, 0), "S": (1, 1, 1)}),
        ("district", {"D": (3, 2, 1)}),  # S is under D; the city and P are no district
        ("department", {"P": (1, 0, 0), "S": (1, 1, 1)}),
        ("mode", {"video": (3, 3, 2), "hybrid": (1, 0, 0), "in_person": (1, 0, 0)}),
        ("kind", {"city": (1, 1, 1), "district": (2, 1, 1), "department": (2, 1, 1)}),
    ],
)
async def test_groups(
    db: Database, ids: dict[str, int], by: stats.GroupBy, expected: dict[str, tuple[int, ...]]
) -> None:
    report = await _grouped(db, by)
    found = {r.label: (r.held, r.held_by_video, r.peak_conferences) for r in report.rows}
    assert found == expected


async def test_a_unit_filter_takes_the_unit_and_those_under_it(
    db: Database, ids: dict[str, int]
) -> None:
    total = (await _grouped(db, "all", unit_id=ids["d"])).total
    assert (total.held, total.held_by_video) == (3, 2)  # M1, M5 and S's M3


async def test_months_without_meetings_are_shown_empty(db: Database, ids: dict[str, int]) -> None:
    report = await stats.figures(db, StatsQuery(date(2025, 2, 1), RANGE[1], "month"))
    assert [r.key for r in report.rows] == ["2025-02", "2025-03", "2025-04"]
    assert report.rows[0].held == 0 and report.rows[0].video_share is None


async def test_terminal_online_ratio_per_terminal(db: Database, ids: dict[str, int]) -> None:
    found = {f.terminal: f for f in await stats.terminal_figures(db, StatsQuery(*RANGE))}
    assert found["T1"].online_ratio == 1.0 and found["T1"].online_minutes == 60.0
    assert found["T2"].online_ratio == 0.0 and found["T2"].booked_occurrences == 1


async def test_the_rollup_catches_up_an_occurrence_once_it_is_over(
    db: Database, ids: dict[str, int]
) -> None:
    later = stats_data.NOW + timedelta(days=11)  # M7 (30 April) is over now
    assert await rollup.refresh(db, later) >= 1
    assert (await _grouped(db, "all")).total.held == 6


async def _live(db: Database, query: StatsQuery) -> tuple[dict[str, int], int]:
    async with db.read() as session:
        grouped, total, _ = await stats._sweep(session, query, *query.bounds())
    return grouped, total


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Europe/Berlin", "America/New_York"])
async def test_peaks_from_the_daily_table_equal_a_live_sweep(
    db: Database, ids: dict[str, int], tz: str
) -> None:
    """Whole days come from ``conference_peaks``; other zones' ranges sweep their edges."""
    for by in stats.GROUPINGS:
        query = StatsQuery(*RANGE, by, tz=tz)
        async with db.read() as session:
            stored = await stats._stored_peaks(session, query)
        live = await _live(db, query)
        if by == "month":  # a sweep per month: compare with the report's rows
            live = ({k: n for k, n in live[0].items() if n}, live[1])
        assert stored == live, by


async def test_conferences_overlapping_across_days_fall_back_to_a_live_sweep(
    db: Database, ids: dict[str, int]
) -> None:
    from sqlalchemy import update

    async with db.write() as session:
        # M1's conference (10 March) lasts until M3's (1 April, 07:00 local) has begun
        await session.execute(
            update(rollup.OccurrenceSummary)
            .where(rollup.OccurrenceSummary.meeting_id == ids["m1"])
            .values(conference_end=stats_data.local("2025-04-01", "07:10"))
        )
        await rollup._refresh_peaks(session, db.dialect, rollup.EPOCH)
    query = StatsQuery(*RANGE, "all")
    async with db.read() as session:
        assert await stats._stored_peaks(session, query) is None
    report = await stats.figures(db, query)
    assert report.total.peak_conferences == (await _live(db, query))[1] == 2
