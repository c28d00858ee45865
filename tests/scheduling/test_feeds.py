"""Subscribable .ics feeds of many meetings."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from scheduling.errors import InvalidEvent
from scheduling.feeds import build_feed
from scheduling.itip import CalendarEvent
from tests.scheduling.test_itip import (
    LONG_TITLE,
    SHANGHAI,
    assert_wire_format,
    make_event,
    make_occurrence,
    make_series,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin_visit() -> CalendarEvent:
    return make_event(
        uid="visit-7@suimeet.gz.gov.cn",
        title="与法兰克福市代表团视频会谈",
        tzid="Europe/Berlin",
        start=datetime(2026, 7, 1, 9, 0, tzinfo=BERLIN),
        end=datetime(2026, 7, 1, 10, 0, tzinfo=BERLIN),
    )


def parse(data: bytes) -> Calendar:
    calendar = Calendar.from_ical(data)
    assert isinstance(calendar, Calendar)
    return calendar


def test_feed_is_a_published_calendar_with_a_name_and_every_zone() -> None:
    series = make_series()
    moved = make_occurrence(
        series,
        datetime(2026, 3, 16, 9, 30, tzinfo=SHANGHAI),
        start=datetime(2026, 3, 16, 14, 0, tzinfo=SHANGHAI),
    )
    data = build_feed("市府办会议日程", [berlin_visit(), series, moved])

    assert_wire_format(data)
    calendar = parse(data)
    assert "METHOD" not in calendar
    assert calendar["X-WR-CALNAME"] == "市府办会议日程"
    assert calendar["NAME"] == "市府办会议日程"
    assert calendar["VERSION"] == "2.0"
    assert {tz.tz_name for tz in calendar.timezones} == {"Asia/Shanghai", "Europe/Berlin"}
    titles = [(e["UID"], "RECURRENCE-ID" in e) for e in calendar.events]
    assert titles == [
        ("meeting-42@suimeet.gz.gov.cn", False),
        ("meeting-42@suimeet.gz.gov.cn", True),
        ("visit-7@suimeet.gz.gov.cn", False),
    ]
    assert calendar.events[0]["SUMMARY"] == LONG_TITLE


def test_cancelled_meetings_are_left_out() -> None:
    cancelled = make_event(uid="gone@suimeet", status="CANCELLED")

    calendar = parse(build_feed("日程", [cancelled, berlin_visit()]))

    assert [e["UID"] for e in calendar.events] == ["visit-7@suimeet.gz.gov.cn"]


def test_cancelled_series_takes_its_occurrences_with_it() -> None:
    series = make_series(status="CANCELLED")
    moved = make_occurrence(series, datetime(2026, 3, 16, 9, 30, tzinfo=SHANGHAI))

    calendar = parse(build_feed("日程", [series, replace(moved, status="CONFIRMED")]))

    assert calendar.events == []


def test_cancelled_occurrence_becomes_an_exdate_of_its_series() -> None:
    series = make_series()
    cancelled = make_occurrence(
        series, datetime(2026, 3, 23, 9, 30, tzinfo=SHANGHAI), status="CANCELLED"
    )

    data = build_feed("日程", [series, cancelled])

    [vevent] = parse(data).events
    assert "RECURRENCE-ID" not in vevent
    assert b"EXDATE;TZID=Asia/Shanghai:20260309T093000,20260323T093000\r\n" in data


def test_attendee_addresses_stay_out_unless_asked_for() -> None:
    private = build_feed("日程", [make_event()])
    with_people = build_feed("日程", [make_event()], include_people=True)

    assert b"ATTENDEE" not in private
    assert b"ORGANIZER" not in private
    assert b"mailto:" not in private
    assert b"ATTENDEE" in with_people
    assert b"RSVP=" not in with_people


def test_empty_feed_is_still_valid_icalendar() -> None:
    data = build_feed("空日程", [])

    assert_wire_format(data)
    calendar = parse(data)
    assert calendar.events == []
    assert [tz.tz_name for tz in calendar.timezones] == ["Asia/Shanghai"]
    assert calendar["X-WR-TIMEZONE"] == "Asia/Shanghai"


def test_refresh_interval_is_published() -> None:
    data = build_feed("日程", [make_event()])

    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in data
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in data


def test_two_series_with_one_uid_are_refused() -> None:
    with pytest.raises(InvalidEvent):
        build_feed("日程", [make_series(), make_event()])
