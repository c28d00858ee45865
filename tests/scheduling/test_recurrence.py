"""Recurrence rules: what is accepted, how it is normalised, expanded and split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduling import recurrence
from scheduling.errors import InvalidMeeting

SH = ZoneInfo("Asia/Shanghai")
START = datetime(2030, 1, 7, 9, 0, tzinfo=SH).astimezone(UTC)  # a Monday, 09:00 local
END = START + timedelta(hours=1)


@pytest.mark.parametrize(
    ("rule", "canonical"),
    [
        ("FREQ=DAILY;COUNT=5", "FREQ=DAILY;COUNT=5"),
        ("rrule:freq=weekly;byday=MO,WE;count=10", "FREQ=WEEKLY;COUNT=10;BYDAY=MO,WE"),
        ("FREQ=MONTHLY;BYDAY=1MO;COUNT=3", "FREQ=MONTHLY;COUNT=3;BYDAY=1MO"),
        # a date-only UNTIL means the end of that local day, stored in UTC
        ("FREQ=WEEKLY;UNTIL=20300131", "FREQ=WEEKLY;UNTIL=20300131T155959Z"),
        ("FREQ=WEEKLY;UNTIL=20300131T090000", "FREQ=WEEKLY;UNTIL=20300131T010000Z"),
        (
            "FREQ=DAILY;UNTIL=20300120T000000Z;INTERVAL=2",
            "FREQ=DAILY;INTERVAL=2;UNTIL=20300120T000000Z",
        ),
    ],
)
def test_accepted_rules_are_normalised(rule: str, canonical: str) -> None:
    assert recurrence.normalise(rule, START, "Asia/Shanghai") == canonical


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;COUNT=3",  # only daily, weekly, monthly
        "FREQ=HOURLY;COUNT=3",
        "FREQ=WEEKLY",  # never ends
        "FREQ=WEEKLY;COUNT=3;UNTIL=20300131",  # both
        "FREQ=DAILY;COUNT=521",  # over the cap
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;UNTIL=20400101",  # over the horizon (and the cap)
        "FREQ=MONTHLY;UNTIL=20350101",  # within the cap, beyond the horizon
        "FREQ=WEEKLY;COUNT=3;BYDAY=XX",
        "FREQ=WEEKLY;COUNT=3;BYHOUR=10",  # unsupported part
        "FREQ=WEEKLY;COUNT=3;COUNT=4",
        "FREQ=WEEKLY;UNTIL=20200101",  # ends before it starts
        "FREQ=WEEKLY;UNTIL=tomorrow",
        "FREQ=WEEKLY;BYDAY=TU;COUNT=3",  # first occurrence would not be the start (a Monday)
        "FREQ=DAILY;COUNT=3\nX-EVIL=1",
        "FREQ=DAILY;COUNT",
        "",
    ],
)
def test_bad_rules_are_refused_on_the_rrule_field(rule: str) -> None:
    with pytest.raises(InvalidMeeting) as caught:
        recurrence.normalise(rule, START, "Asia/Shanghai")
    assert "rrule" in caught.value.fields


def test_expansion_keeps_local_wall_time_and_applies_exceptions() -> None:
    rule = recurrence.normalise("FREQ=WEEKLY;COUNT=4", START, "Asia/Shanghai")
    second = START + timedelta(weeks=1)
    third = START + timedelta(weeks=2)
    moved_to = third + timedelta(hours=5)
    found = recurrence.expand(
        START,
        END,
        "Asia/Shanghai",
        rule,
        [(second, True, None, None), (third, False, moved_to, moved_to + timedelta(hours=2))],
    )
    assert [i.recurrence_id for i in found] == [START + timedelta(weeks=w) for w in range(4)]
    assert found[1].cancelled and not found[0].cancelled
    assert found[2].moved and found[2].starts_at == moved_to
    assert found[2].ends_at - found[2].starts_at == timedelta(hours=2)
    assert all(i.ends_at - i.starts_at == timedelta(hours=1) for i in (found[0], found[3]))


def test_expansion_across_a_daylight_saving_change_keeps_the_local_hour() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2030, 3, 25, 9, 0, tzinfo=berlin).astimezone(UTC)
    rule = recurrence.normalise("FREQ=WEEKLY;COUNT=3", start, "Europe/Berlin")
    found = recurrence.expand(start, start + timedelta(hours=1), "Europe/Berlin", rule)
    assert {i.starts_at.astimezone(berlin).hour for i in found} == {9}
    assert found[0].starts_at.hour == 8 and found[-1].starts_at.hour == 7  # CET, then CEST


def test_truncating_and_continuing_a_series() -> None:
    rule = recurrence.normalise("FREQ=WEEKLY;COUNT=6", START, "Asia/Shanghai")
    cut = START + timedelta(weeks=2)
    head = recurrence.truncate(rule, cut)
    assert head == "FREQ=WEEKLY;UNTIL=" + (cut - timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    assert len(recurrence.expand(START, END, "Asia/Shanghai", head)) == 2
    rest = recurrence.tail(rule, 2)
    assert rest == "FREQ=WEEKLY;COUNT=4"
    assert len(recurrence.expand(cut, cut + timedelta(hours=1), "Asia/Shanghai", rest)) == 4
