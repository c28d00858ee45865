"""iTIP REQUEST / CANCEL objects: what calendar clients receive, checked on the wire."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from scheduling.errors import InvalidEvent, NotAnAttendee
from scheduling.itip import (
    DOC_REF_PROPERTY,
    CalendarEvent,
    CalendarPerson,
    build_cancel,
    build_removal,
    build_request,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
LONG_TITLE = (
    "关于推进政务服务“一网通办”和“一网统管”工作的专题会议（第三次）暨全市数字政府建设推进会"
)
LONG_AGENDA = (
    "一、听取市政务服务数据管理局关于“一网通办”工作进展情况的汇报；\n"
    "二、各区、各部门主要负责同志发言，重点讲清存在的问题和下一步工作安排；\n"
    "三、审议《广州市数字政府建设三年行动方案（征求意见稿）》，请提前阅读会议材料，"
    "并于会前将书面意见反馈至市府办秘书处；\n四、市领导讲话。"
)
DOC_REF = "穗府辦〔2010〕41號"


def chair() -> CalendarPerson:
    return CalendarPerson(
        "mishu@gz.gov.cn", "市府办秘书处", role="CHAIR", partstat="ACCEPTED", rsvp=False
    )


def people() -> list[CalendarPerson]:
    return [
        CalendarPerson("Zhang.San@gz.gov.cn", "张三（市政务服务数据管理局）"),
        CalendarPerson("li.si@gz.gov.cn", "李四", role="OPT-PARTICIPANT"),
        CalendarPerson(
            "room301@rooms.gz.gov.cn",
            "市政府大楼三楼第一会议室",
            role="NON-PARTICIPANT",
            cutype="ROOM",
            rsvp=False,
        ),
    ]


def make_event(**changes: Any) -> CalendarEvent:
    """A weekly Monday meeting in Asia/Shanghai, 09:30–11:00, from 2 March 2026."""
    base = CalendarEvent(
        uid="meeting-42@suimeet.gz.gov.cn",
        sequence=2,
        title=LONG_TITLE,
        description=LONG_AGENDA,
        location="市政府大楼三楼第一会议室",
        start=datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI),
        end=datetime(2026, 3, 2, 11, 0, tzinfo=SHANGHAI),
        organizer=chair(),
        attendees=people(),
        url="https://meet.gz.gov.cn/m/42",
        doc_ref=DOC_REF,
        dtstamp=datetime(2026, 2, 14, 8, 0, tzinfo=UTC),
        created=datetime(2026, 2, 1, 8, 0, tzinfo=UTC),
        last_modified=datetime(2026, 2, 14, 8, 0, tzinfo=UTC),
    )
    return replace(base, **changes)


def make_series(**changes: Any) -> CalendarEvent:
    return make_event(
        rrule="FREQ=WEEKLY;BYDAY=MO;COUNT=10",
        exdates=[datetime(2026, 3, 9, 9, 30, tzinfo=SHANGHAI)],
        **changes,
    )


def make_occurrence(series: CalendarEvent, original: datetime, **changes: Any) -> CalendarEvent:
    """The occurrence of ``series`` originally at ``original``, moved by ``changes``."""
    duration = series.end - series.start
    base = replace(series, rrule=None, exdates=(), recurrence_id=original)
    start = changes.pop("start", original)
    return replace(base, start=start, end=start + duration, **changes)


def parse(data: bytes) -> Calendar:
    calendar = Calendar.from_ical(data)
    assert isinstance(calendar, Calendar)
    return calendar


def assert_wire_format(data: bytes) -> None:
    """RFC 5545 on the wire: CRLF only, lines ≤ 75 octets, each line valid UTF-8 alone,
    and a VTIMEZONE for every TZID used."""
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n"), "bare LF found"
    assert data.count(b"\r") == data.count(b"\r\n"), "bare CR found"
    for line in data.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line
        line.decode("utf-8")  # a fold inside a multi-byte character would fail here
    calendar = parse(data)
    assert calendar.get_used_tzids() <= {tz.tz_name for tz in calendar.timezones}
    assert not calendar.get_missing_tzids()


def vevents(data: bytes) -> list[Event]:
    return parse(data).events


def attendee_emails(vevent: Event) -> list[str]:
    return [str(a).removeprefix("mailto:").lower() for a in vevent.attendees]


def test_request_has_the_calendar_properties_itip_needs() -> None:
    calendar = parse(build_request(make_event()))

    assert str(calendar["PRODID"]).startswith("-//SuiMeet//")
    assert calendar["VERSION"] == "2.0"
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "REQUEST"
    [vevent] = calendar.events
    assert vevent["UID"] == "meeting-42@suimeet.gz.gov.cn"
    assert vevent.decoded("SEQUENCE") == 2
    assert vevent.decoded("DTSTAMP") == datetime(2026, 2, 14, 8, 0, tzinfo=UTC)
    assert vevent["STATUS"] == "CONFIRMED"


def test_long_chinese_lines_are_folded_by_octets_on_character_boundaries() -> None:
    data = build_request(make_event())

    assert_wire_format(data)
    lines = data.split(b"\r\n")
    continuations = [line for line in lines if line.startswith(b" ")]
    assert len(continuations) >= 5, "the long Chinese text was expected to be folded"
    # Folding happened near the limit, between multi-byte characters (not every 75 chars).
    folded = [line for i, line in enumerate(lines[:-1]) if lines[i + 1].startswith(b" ")]
    assert any(len(line) >= 72 and len(line.decode()) < 40 for line in folded)


def test_chinese_text_is_intact_after_a_round_trip() -> None:
    [vevent] = vevents(build_request(make_event(), join_url="https://meet.gz.gov.cn/j/张三"))

    assert vevent["SUMMARY"] == LONG_TITLE
    assert vevent["LOCATION"] == "市政府大楼三楼第一会议室"
    description = str(vevent["DESCRIPTION"])
    assert description.startswith(LONG_AGENDA)
    assert f"文号：{DOC_REF}" in description
    assert "会议链接：https://meet.gz.gov.cn/j/张三" in description
    assert vevent[DOC_REF_PROPERTY] == DOC_REF
    assert vevent["ORGANIZER"].params["CN"] == "市府办秘书处"
    names = [a.params["CN"] for a in vevent.attendees]
    assert names[0] == "张三（市政务服务数据管理局）"


def test_description_labels_follow_the_locale() -> None:
    [vevent] = vevents(build_request(make_event(), locale="en"))

    description = str(vevent["DESCRIPTION"])
    assert f"Document reference: {DOC_REF}" in description
    assert "Join link: https://meet.gz.gov.cn/m/42" in description


def test_times_are_written_in_the_meetings_zone_with_tzid() -> None:
    event = make_event(
        start=datetime(2026, 3, 2, 1, 30, tzinfo=UTC), end=datetime(2026, 3, 2, 3, tzinfo=UTC)
    )
    data = build_request(event)

    assert b"DTSTART;TZID=Asia/Shanghai:20260302T093000\r\n" in data
    assert b"DTEND;TZID=Asia/Shanghai:20260302T110000\r\n" in data
    assert b"DTSTAMP:20260214T080000Z\r\n" in data
    [vevent] = vevents(data)
    assert vevent.decoded("DTSTART") == event.start


def test_shanghai_vtimezone_is_plus_eight_and_covers_the_meeting() -> None:
    calendar = parse(build_request(make_series()))

    [timezone] = calendar.timezones
    assert timezone.tz_name == "Asia/Shanghai"
    observances = timezone.standard + timezone.daylight
    assert {o.decoded("TZOFFSETTO") for o in observances} == {timedelta(hours=8)}
    assert min(o.decoded("DTSTART") for o in observances) <= datetime(2026, 3, 2, 9, 30)
    # Built from the VTIMEZONE itself (not from the name), the zone gives +08:00.
    tz = timezone.to_tz(lookup_tzid=False)
    assert datetime(2026, 5, 11, 9, 30, tzinfo=tz).utcoffset() == timedelta(hours=8)


def test_vtimezone_follows_daylight_saving_through_the_whole_series() -> None:
    series = make_event(
        tzid="Europe/Berlin",
        start=datetime(2026, 1, 5, 10, tzinfo=BERLIN),
        end=datetime(2026, 1, 5, 11, tzinfo=BERLIN),
        rrule="FREQ=MONTHLY;BYDAY=1MO;UNTIL=20281231T230000Z",
    )
    data = build_request(series)

    assert_wire_format(data)
    [timezone] = parse(data).timezones
    tz = timezone.to_tz(lookup_tzid=False)
    assert datetime(2026, 1, 5, 10, tzinfo=tz).utcoffset() == timedelta(hours=1)
    assert datetime(2028, 7, 3, 10, tzinfo=tz).utcoffset() == timedelta(hours=2)
    assert datetime(2028, 12, 4, 10, tzinfo=tz).utcoffset() == timedelta(hours=1)


def test_open_ended_series_gets_years_of_time_zone_rules() -> None:
    series = make_event(
        tzid="Europe/Berlin",
        start=datetime(2026, 1, 5, 10, tzinfo=BERLIN),
        end=datetime(2026, 1, 5, 11, tzinfo=BERLIN),
        rrule="FREQ=WEEKLY;BYDAY=MO",
    )
    [timezone] = parse(build_request(series)).timezones

    tz = timezone.to_tz(lookup_tzid=False)
    assert datetime(2040, 7, 2, 10, tzinfo=tz).utcoffset() == timedelta(hours=2)


def test_organizer_and_attendees_carry_cn_role_partstat_rsvp_and_cutype() -> None:
    data = build_request(make_event())
    [vevent] = vevents(data)

    organizer = vevent["ORGANIZER"]
    assert str(organizer) == "mailto:mishu@gz.gov.cn"
    zhang, li, room = vevent.attendees
    assert str(zhang) == "mailto:Zhang.San@gz.gov.cn"
    assert dict(zhang.params) == {
        "CN": "张三（市政务服务数据管理局）",
        "CUTYPE": "INDIVIDUAL",
        "ROLE": "REQ-PARTICIPANT",
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE",
    }
    assert li.params["ROLE"] == "OPT-PARTICIPANT"
    assert room.params["CUTYPE"] == "ROOM"
    assert room.params["ROLE"] == "NON-PARTICIPANT"
    assert room.params["RSVP"] == "FALSE"


@pytest.mark.parametrize(
    "recipient", ["Zhang.San@gz.gov.cn", "zhang.san@GZ.GOV.CN", "li.si@gz.gov.cn"]
)
def test_object_for_a_recipient_lists_them_as_attendee(recipient: str) -> None:
    data = build_request(make_event(), for_attendee=recipient)

    for vevent in vevents(data):
        assert recipient.lower() in attendee_emails(vevent)


def test_request_for_someone_not_invited_is_refused() -> None:
    with pytest.raises(NotAnAttendee) as caught:
        build_request(make_event(), for_attendee="stranger@example.com")

    assert caught.value.code == "not_an_attendee"


def test_personal_join_link_replaces_the_generic_one() -> None:
    [vevent] = vevents(build_request(make_event(), join_url="https://meet.gz.gov.cn/j/tok123"))

    assert vevent["URL"] == "https://meet.gz.gov.cn/j/tok123"
    assert "https://meet.gz.gov.cn/j/tok123" in str(vevent["DESCRIPTION"])
    assert "https://meet.gz.gov.cn/m/42" not in str(vevent["DESCRIPTION"])


def test_series_carries_rrule_and_exdate_in_the_meetings_zone() -> None:
    data = build_request(make_series())

    assert b"RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO\r\n" in data
    assert b"EXDATE;TZID=Asia/Shanghai:20260309T093000\r\n" in data


def test_series_and_its_overridden_occurrences_travel_in_one_object() -> None:
    series = make_series()
    original = datetime(2026, 3, 16, 9, 30, tzinfo=SHANGHAI)
    moved = make_occurrence(
        series, original, start=datetime(2026, 3, 16, 14, 0, tzinfo=SHANGHAI), sequence=3
    )

    data = build_request([moved, series])

    assert_wire_format(data)
    master, override = vevents(data)
    assert master["UID"] == override["UID"] == series.uid
    assert "RECURRENCE-ID" not in master
    assert "RRULE" in master
    assert "RRULE" not in override
    assert master.decoded("SEQUENCE") == 2
    assert override.decoded("SEQUENCE") == 3
    assert b"RECURRENCE-ID;TZID=Asia/Shanghai:20260316T093000\r\n" in data
    assert override.decoded("RECURRENCE-ID") == original
    assert override.decoded("DTSTART") == datetime(2026, 3, 16, 14, 0, tzinfo=SHANGHAI)


def test_recurrence_id_given_in_utc_is_written_in_the_series_zone() -> None:
    series = make_series()
    original_utc = datetime(2026, 3, 16, 1, 30, tzinfo=UTC)

    data = build_request(make_occurrence(series, original_utc))

    assert b"RECURRENCE-ID;TZID=Asia/Shanghai:20260316T093000\r\n" in data


def test_attendee_invited_to_one_occurrence_only_gets_that_occurrence() -> None:
    series = make_series()
    guest = CalendarPerson("guest@gz.gov.cn", "列席人员")
    occurrence = make_occurrence(
        series,
        datetime(2026, 3, 23, 9, 30, tzinfo=SHANGHAI),
        attendees=[*series.attendees, guest],
    )

    [only] = vevents(build_request([series, occurrence], for_attendee="guest@gz.gov.cn"))

    assert "RECURRENCE-ID" in only
    assert "guest@gz.gov.cn" in attendee_emails(only)


def test_cancel_of_the_series_has_status_cancelled_and_the_higher_sequence() -> None:
    request = build_request(make_series())
    cancel = build_cancel(make_series(sequence=3), for_attendee="li.si@gz.gov.cn")

    assert_wire_format(cancel)
    calendar = parse(cancel)
    assert calendar["METHOD"] == "CANCEL"
    [vevent] = calendar.events
    [requested] = vevents(request)
    assert vevent["UID"] == requested["UID"]
    assert vevent.decoded("SEQUENCE") > requested.decoded("SEQUENCE")
    assert vevent["STATUS"] == "CANCELLED"
    assert "RECURRENCE-ID" not in vevent
    assert "li.si@gz.gov.cn" in attendee_emails(vevent)
    # Nobody answers a CANCEL, and it carries no way to join.
    assert b"RSVP=" not in cancel
    assert "URL" not in vevent
    assert "https://meet.gz.gov.cn" not in str(vevent["DESCRIPTION"])


def test_cancel_of_one_occurrence_names_it_by_recurrence_id() -> None:
    series = make_series(sequence=3)
    occurrence = make_occurrence(series, datetime(2026, 3, 30, 9, 30, tzinfo=SHANGHAI))

    data = build_cancel(occurrence)

    [vevent] = vevents(data)
    assert vevent["STATUS"] == "CANCELLED"
    assert b"RECURRENCE-ID;TZID=Asia/Shanghai:20260330T093000\r\n" in data
    assert parse(data)["METHOD"] == "CANCEL"


def test_cancel_to_a_removed_attendee_lists_only_that_attendee() -> None:
    removed = CalendarPerson("li.si@gz.gov.cn", "李四")
    remaining = [p for p in people() if not p.has_email(removed.email)]

    data = build_removal(make_series(sequence=3, attendees=remaining), removed)

    calendar = parse(data)
    assert calendar["METHOD"] == "CANCEL"
    [vevent] = calendar.events
    assert attendee_emails(vevent) == ["li.si@gz.gov.cn"]
    assert vevent["STATUS"] == "CANCELLED"
    assert vevent.decoded("SEQUENCE") == 3


def test_output_is_byte_stable_for_the_same_input() -> None:
    assert build_request(make_series()) == build_request(make_series())


NAIVE = datetime(2026, 3, 2, 9, 30)
AWARE = datetime(2026, 3, 2, 9, 30, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"start": NAIVE}, id="naive-start"),
        pytest.param({"end": AWARE - timedelta(hours=1)}, id="end-before-start"),
        pytest.param({"end": AWARE}, id="zero-length"),
        pytest.param({"tzid": "Asia/Atlantis"}, id="unknown-zone"),
        pytest.param({"tzid": "../etc/passwd"}, id="zone-path"),
        pytest.param({"rrule": "garbage"}, id="rrule-without-freq"),
        pytest.param({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, id="rrule-bad-day"),
        pytest.param({"rrule": "FREQ=WEEKLY;UNTIL=20260601T000000"}, id="until-floating"),
        pytest.param({"exdates": [AWARE]}, id="exdate-without-rrule"),
        pytest.param({"rrule": "FREQ=DAILY", "recurrence_id": AWARE}, id="override-with-rrule"),
        pytest.param({"recurrence_id": NAIVE}, id="naive-recurrence-id"),
        pytest.param({"sequence": -1}, id="negative-sequence"),
        pytest.param({"uid": ""}, id="empty-uid"),
        pytest.param({"uid": "a\r\nMETHOD:PUBLISH"}, id="uid-injection"),
    ],
)
def test_inconsistent_events_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as caught:
        make_event(**changes)

    assert caught.value.code == "invalid_event"


@pytest.mark.parametrize(
    "email",
    ["", "not-an-address", "mailto:a@b.cn", "a b@c.cn", "a@b.cn\r\nATTENDEE:mailto:x@y"],
)
def test_bad_person_addresses_are_refused(email: str) -> None:
    with pytest.raises(InvalidEvent):
        CalendarPerson(email)


def _two_masters() -> list[CalendarEvent]:
    return [make_series(), make_event()]


def _mixed_uids() -> list[CalendarEvent]:
    return [make_event(), make_event(uid="other@suimeet")]


def _same_occurrence_twice() -> list[CalendarEvent]:
    occurrence = make_occurrence(make_series(), AWARE)
    return [occurrence, replace(occurrence, recurrence_id=AWARE.astimezone(UTC))]


@pytest.mark.parametrize("events", [[], _two_masters(), _mixed_uids(), _same_occurrence_twice()])
def test_an_object_carries_exactly_one_meeting(events: list[CalendarEvent]) -> None:
    with pytest.raises(InvalidEvent):
        build_request(events)
