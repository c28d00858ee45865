"""Parsing attendees' iTIP replies as Outlook, Gmail and Thunderbird send them."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from icalendar import Calendar, vCalAddress

from scheduling.errors import CounterNotSupported, InvalidReply
from scheduling.itip import build_request
from scheduling.replies import MAX_REPLY_BYTES, ParsedReply, is_newer, parse_reply
from tests.scheduling.test_itip import SHANGHAI, make_occurrence, make_series

FIXTURES = Path(__file__).parent / "fixtures"
UID = "meeting-42@suimeet.gz.gov.cn"

OUTLOOK_DECLINE = ParsedReply(
    method="REPLY",
    uid=UID,
    recurrence_id=datetime(2026, 3, 16, 1, 30, tzinfo=UTC),
    sequence=3,
    dtstamp=datetime(2026, 2, 15, 2, 15, 30, tzinfo=UTC),
    attendee_email="li.si@gz.gov.cn",
    partstat="DECLINED",
    comment="当天另有安排，已请办公室王五同志代为参加，请秘书处另行通知会议材料。",
)
GMAIL_ACCEPT = ParsedReply(
    method="REPLY",
    uid=UID,
    recurrence_id=None,
    sequence=2,
    dtstamp=datetime(2026, 2, 14, 8, 30, tzinfo=UTC),
    attendee_email="zhangsan.gz@gmail.com",
    partstat="ACCEPTED",
    comment=None,
)
THUNDERBIRD_TENTATIVE = ParsedReply(
    method="REPLY",
    uid=UID,
    recurrence_id=datetime(2026, 3, 23, 1, 30, tzinfo=UTC),
    sequence=3,
    dtstamp=datetime(2026, 2, 16, 1, 15, tzinfo=UTC),
    attendee_email="wang.wu@gz.gov.cn",
    partstat="TENTATIVE",
    comment="可能晚到半小时",
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("outlook_reply.ics", OUTLOOK_DECLINE),
        ("outlook_reply.eml", OUTLOOK_DECLINE),
        ("gmail_reply.ics", GMAIL_ACCEPT),
        ("gmail_reply.eml", GMAIL_ACCEPT),
        ("thunderbird_reply.ics", THUNDERBIRD_TENTATIVE),
    ],
)
def test_real_client_replies_are_understood(name: str, expected: ParsedReply) -> None:
    assert parse_reply(fixture(name)) == expected


def test_fixtures_have_the_line_endings_their_clients_write() -> None:
    outlook, thunderbird = fixture("outlook_reply.ics"), fixture("thunderbird_reply.ics")

    assert outlook.count(b"\n") == outlook.count(b"\r\n") > 0
    assert b"\r" not in thunderbird
    assert b"X-MICROSOFT-CDO-" in outlook
    assert b"\n " in thunderbird  # a folded ATTENDEE line
    assert b"MAILTO:" in thunderbird


def test_gmail_email_has_no_method_in_its_mime_header() -> None:
    data = fixture("gmail_reply.eml")

    assert b"method=" not in data.lower()
    assert parse_reply(data).partstat == "ACCEPTED"


def test_reply_without_organizer_is_accepted() -> None:
    data = fixture("gmail_reply.ics")
    without = b"".join(
        line for line in data.splitlines(keepends=True) if not line.startswith(b"ORGANIZER")
    )

    assert b"ORGANIZER" not in without
    assert parse_reply(without) == GMAIL_ACCEPT


def test_str_input_is_accepted() -> None:
    assert parse_reply(fixture("thunderbird_reply.ics").decode()) == THUNDERBIRD_TENTATIVE


def answer(request: bytes, email: str, partstat: str) -> bytes:
    """What a client does with our REQUEST: the same VEVENT, METHOD:REPLY, only the
    answering attendee."""
    calendar = Calendar.from_ical(request)
    calendar["METHOD"] = "REPLY"
    for vevent in calendar.events:
        mine = [a for a in vevent.attendees if str(a).lower() == f"mailto:{email}"]
        del vevent["ATTENDEE"]
        address = vCalAddress(str(mine[0]))
        address.params["PARTSTAT"] = partstat
        vevent.add("ATTENDEE", address)
    data: bytes = calendar.to_ical()
    return data


def test_reply_to_our_own_occurrence_request_matches_it() -> None:
    series = make_series(sequence=4)
    occurrence = make_occurrence(series, datetime(2026, 3, 16, 9, 30, tzinfo=SHANGHAI))
    request = build_request(occurrence, for_attendee="zhang.san@gz.gov.cn")

    reply = parse_reply(answer(request, "zhang.san@gz.gov.cn", "accepted"))

    assert reply.uid == series.uid
    assert reply.sequence == 4
    assert reply.recurrence_id == datetime(2026, 3, 16, 1, 30, tzinfo=UTC)
    assert reply.attendee_email == "zhang.san@gz.gov.cn"
    assert reply.partstat == "ACCEPTED"


def test_counter_proposal_is_refused_with_its_own_code() -> None:
    data = fixture("thunderbird_reply.ics").replace(b"METHOD:REPLY", b"METHOD:COUNTER")

    with pytest.raises(CounterNotSupported) as caught:
        parse_reply(data)

    assert caught.value.code == "counter_not_supported"
    assert "organizer" in caught.value.message
    assert isinstance(caught.value, InvalidReply)


def test_missing_method_falls_back_to_the_mime_header() -> None:
    calendar = fixture("outlook_reply.ics").replace(b"METHOD:REPLY\r\n", b"")
    email = (
        b"From: li.si@gz.gov.cn\r\nTo: mishu@gz.gov.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/calendar; charset="utf-8"; method=REPLY\r\n\r\n' + calendar
    )

    assert parse_reply(email) == OUTLOOK_DECLINE


def test_floating_times_are_read_in_the_default_zone() -> None:
    data = (
        fixture("gmail_reply.ics")
        .replace(b"DTSTAMP:20260214T083000Z", b"DTSTAMP:20260214T163000")
        .replace(b"SEQUENCE:2\r\n", b"SEQUENCE:2\r\nRECURRENCE-ID:20260316T093000\r\n")
    )

    reply = parse_reply(data)

    assert reply.dtstamp == datetime(2026, 2, 14, 8, 30, tzinfo=UTC)
    assert reply.recurrence_id == datetime(2026, 3, 16, 1, 30, tzinfo=UTC)
    in_utc = parse_reply(data, default_tzid="UTC")
    assert in_utc.dtstamp == datetime(2026, 2, 14, 16, 30, tzinfo=UTC)


def test_missing_sequence_means_zero() -> None:
    data = fixture("gmail_reply.ics").replace(b"SEQUENCE:2\r\n", b"")

    assert parse_reply(data).sequence == 0


def _gmail(old: bytes, new: bytes) -> bytes:
    data = fixture("gmail_reply.ics")
    assert old in data
    return data.replace(old, new)


ATTENDEE_LINE = (
    b"ATTENDEE;CUTYPE=INDIVIDUAL;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;CN=zhang\r\n"
    b" san;X-NUM-GUESTS=0:mailto:zhangsan.gz@gmail.com\r\n"
)
EMAIL_WITHOUT_CALENDAR = (
    b"From: a@b.cn\r\nTo: c@d.cn\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nJust text, no invitation.\r\n"
)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"", "reply_unparseable", id="empty"),
        pytest.param(b"garbage", "reply_unparseable", id="garbage"),
        pytest.param(bytes(range(256)) * 4, "reply_unparseable", id="binary"),
        pytest.param(b"BEGIN:VCALENDAR\r\nMETHOD:REPLY\r\n", "reply_unparseable", id="truncated"),
        pytest.param(b"BEGIN:VCALENDAR\r\nnot a line\r\nEND:VCALENDAR\r\n", "reply_unparseable"),
        pytest.param(b"x" * (MAX_REPLY_BYTES + 1), "reply_too_large", id="oversize"),
        pytest.param(EMAIL_WITHOUT_CALENDAR, "reply_no_calendar", id="email-without-calendar"),
        pytest.param(_gmail(b"METHOD:REPLY", b"METHOD:REQUEST"), "reply_not_a_reply", id="request"),
        pytest.param(_gmail(b"METHOD:REPLY", b"METHOD:CANCEL"), "reply_not_a_reply", id="cancel"),
        pytest.param(_gmail(b"METHOD:REPLY\r\n", b""), "reply_not_a_reply", id="no-method"),
        pytest.param(_gmail(ATTENDEE_LINE, b""), "reply_no_attendee", id="no-attendee"),
        pytest.param(
            _gmail(ATTENDEE_LINE, ATTENDEE_LINE + b"ATTENDEE;PARTSTAT=ACCEPTED:mailto:x@y.cn\r\n"),
            "reply_multiple_attendees",
            id="two-attendees",
        ),
        pytest.param(
            _gmail(b"mailto:zhangsan.gz@gmail.com", b"urn:uuid:1234"),
            "reply_bad_attendee",
            id="attendee-not-email",
        ),
        pytest.param(
            _gmail(b"PARTSTAT=ACCEPTED", b"PARTSTAT=NEEDS-ACTION"),
            "reply_bad_partstat",
            id="needs-action",
        ),
        pytest.param(_gmail(b"PARTSTAT=ACCEPTED;", b""), "reply_bad_partstat", id="no-partstat"),
        pytest.param(
            _gmail(b"UID:meeting-42@suimeet.gz.gov.cn\r\n", b""), "reply_no_uid", id="no-uid"
        ),
        pytest.param(_gmail(b"SEQUENCE:2", b"SEQUENCE:two"), "reply_bad_sequence", id="bad-seq"),
        pytest.param(_gmail(b"SEQUENCE:2", b"SEQUENCE:-1"), "reply_bad_sequence", id="neg-seq"),
        pytest.param(
            _gmail(b"DTSTAMP:20260214T083000Z\r\n", b""), "reply_no_dtstamp", id="no-dtstamp"
        ),
        pytest.param(
            _gmail(b"DTSTAMP:20260214T083000Z", b"DTSTAMP:yesterday"),
            "reply_bad_dtstamp",
            id="bad-dtstamp",
        ),
        pytest.param(
            _gmail(b"SEQUENCE:2\r\n", b"SEQUENCE:2\r\nRECURRENCE-ID;VALUE=DATE:20260316\r\n"),
            "reply_bad_recurrence_id",
            id="date-recurrence-id",
        ),
        pytest.param(
            _gmail(b"BEGIN:VEVENT", b"BEGIN:VTODO").replace(b"END:VEVENT", b"END:VTODO"),
            "reply_no_event",
            id="vtodo",
        ),
        pytest.param(
            _gmail(b"END:VEVENT\r\n", b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:2\r\nEND:VEVENT\r\n"),
            "reply_multiple_events",
            id="two-vevents",
        ),
        pytest.param(
            _gmail(b"SUMMARY:", b"SUMMARY:\xff\xfe"), "reply_bad_encoding", id="not-utf-8"
        ),
        pytest.param(
            b"BEGIN:VEVENT\r\nUID:1\r\nEND:VEVENT\r\n", "reply_unparseable", id="bare-vevent"
        ),
    ],
)
def test_unusable_input_gets_a_clear_domain_error(data: bytes, code: str) -> None:
    with pytest.raises(InvalidReply) as caught:
        parse_reply(data)

    assert caught.value.code == code
    assert caught.value.message


@pytest.mark.parametrize(
    "name", ["outlook_reply.ics", "outlook_reply.eml", "thunderbird_reply.ics", "gmail_reply.eml"]
)
def test_no_truncation_of_a_real_reply_escapes_as_a_foreign_exception(name: str) -> None:
    data = fixture(name)
    for end in range(0, len(data), 7):
        with contextlib.suppress(InvalidReply):
            parse_reply(data[:end])


STORED = datetime(2026, 2, 14, 8, 30, tzinfo=UTC)
EARLIER = datetime(2026, 2, 14, 8, 0, tzinfo=UTC)
LATER = datetime(2026, 2, 14, 9, 0, tzinfo=UTC)
NAIVE_STORED = STORED.replace(tzinfo=None)  # as SQLite hands it back


@pytest.mark.parametrize(
    ("sequence", "dtstamp", "stored_sequence", "stored_dtstamp", "newer"),
    [
        pytest.param(2, STORED, None, None, True, id="nothing-stored"),
        pytest.param(3, EARLIER, 2, STORED, True, id="higher-sequence-wins"),
        pytest.param(1, LATER, 2, STORED, False, id="lower-sequence-loses"),
        pytest.param(2, LATER, 2, STORED, True, id="same-sequence-later-stamp"),
        pytest.param(2, EARLIER, 2, STORED, False, id="same-sequence-earlier-stamp"),
        pytest.param(2, STORED, 2, STORED, False, id="duplicate"),
        pytest.param(2, LATER, 2, NAIVE_STORED, True, id="naive-stored-is-utc-later"),
        pytest.param(2, EARLIER, 2, NAIVE_STORED, False, id="naive-stored-is-utc-earlier"),
        pytest.param(2, EARLIER, 2, None, True, id="no-stored-stamp"),
    ],
)
def test_is_newer_orders_by_sequence_then_dtstamp(
    sequence: int,
    dtstamp: datetime,
    stored_sequence: int | None,
    stored_dtstamp: datetime | None,
    newer: bool,
) -> None:
    reply = ParsedReply(
        method="REPLY",
        uid=UID,
        recurrence_id=None,
        sequence=sequence,
        dtstamp=dtstamp,
        attendee_email="a@b.cn",
        partstat="ACCEPTED",
        comment=None,
    )

    assert is_newer(reply, stored_sequence, stored_dtstamp) is newer
