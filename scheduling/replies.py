"""Incoming iTIP replies (RFC 5546 METHOD:REPLY): an attendee accepts, declines, ...

For the RSVP service of `scheduling`, which receives what attendees' calendar clients send
back (a whole email from the mailbox, or a bare .ics uploaded through the web) and records
the attendee's participation status. Parsing is tolerant of what Outlook, Gmail and
Thunderbird really write (bare LF line endings, no ORGANIZER, no ``method=`` in the MIME
header, X-properties, Windows time zone names, ``MAILTO:`` in any case) and strict about
what we need. Every failure is an `InvalidReply` with a ``code``; nothing else escapes.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, cast
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

from scheduling.errors import CounterNotSupported, InvalidReply, SchedulingError

ReplyPartStat = Literal["ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"]

MAX_REPLY_BYTES = 256 * 1024
"""Largest input accepted (a reply is a few KiB; an email with attachments is refused)."""

_PARTSTATS: frozenset[str] = frozenset({"ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})
_CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")


@dataclass(frozen=True)
class ParsedReply:
    """One attendee's answer to one meeting (or to one occurrence of a series).

    ``attendee_email`` is lowercase without ``mailto:``; ``recurrence_id`` and ``dtstamp``
    are aware UTC datetimes; ``sequence`` is the SEQUENCE of the invitation being
    answered (0 when absent).
    """

    method: Literal["REPLY"]
    uid: str
    recurrence_id: datetime | None
    sequence: int
    dtstamp: datetime
    attendee_email: str
    partstat: ReplyPartStat
    comment: str | None


def parse_reply(data: bytes | str, *, default_tzid: str = "Asia/Shanghai") -> ParsedReply:
    """Parse an iTIP REPLY from a bare iCalendar object or a whole RFC 5322 email.

    ``default_tzid`` is the zone of floating (zone-less) times, which some clients write.
    Raises `CounterNotSupported` for METHOD:COUNTER and `InvalidReply` for anything else
    that is not a usable reply.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_REPLY_BYTES:
        raise InvalidReply(
            f"reply is {len(raw)} bytes; at most {MAX_REPLY_BYTES} are accepted",
            code="reply_too_large",
        )
    try:
        text, mime_method = _calendar_text(raw)
        calendar = _parse_calendar(text)
        return _reply_from(calendar, mime_method, ZoneInfo(default_tzid))
    except SchedulingError:
        raise
    except Exception as exc:  # icalendar and email raise many types; none may escape
        raise InvalidReply(f"the reply could not be read: {exc}", code="reply_unparseable") from exc


def is_newer(
    reply: ParsedReply, stored_sequence: int | None, stored_dtstamp: datetime | None
) -> bool:
    """Whether ``reply`` supersedes the last reply stored for the same attendee.

    iTIP ordering (RFC 5546 section 2.1.5): a higher SEQUENCE wins; with equal SEQUENCE the
    later DTSTAMP wins. Nothing stored yet means newer. A naive ``stored_dtstamp`` is taken
    as UTC (SQLite hands back naive UTC).
    """
    if stored_sequence is None:
        return True
    if reply.sequence != stored_sequence:
        return reply.sequence > stored_sequence
    if stored_dtstamp is None:
        return True
    if stored_dtstamp.tzinfo is None:
        stored_dtstamp = stored_dtstamp.replace(tzinfo=UTC)
    return reply.dtstamp > stored_dtstamp


def _looks_like_icalendar(raw: bytes) -> bool:
    # Any "BEGIN:V..." start is iCalendar (perhaps the wrong component), not an email.
    return raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:7].upper() == b"BEGIN:V"


def _decode_text(raw: bytes, charset: str | None) -> str:
    """iCalendar is UTF-8; tolerate a BOM and a declared legacy charset."""
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if charset and charset.lower().replace("-", "") not in {"utf8", "usascii"}:
            try:
                return raw.decode(charset)
            except (LookupError, UnicodeDecodeError):
                pass
    raise InvalidReply("the calendar data is not valid UTF-8", code="reply_bad_encoding")


def _calendar_text(raw: bytes) -> tuple[str, str | None]:
    """The iCalendar text and the MIME ``method`` parameter (None for a bare .ics)."""
    if _looks_like_icalendar(raw):
        return _decode_text(raw, None), None
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not message.keys():
        raise InvalidReply("neither an iCalendar object nor an email", code="reply_unparseable")
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = (part.get_filename() or "").lower()
        if content_type in _CALENDAR_TYPES or filename.endswith(".ics"):
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            method = part.get_param("method")
            return (
                _decode_text(payload, part.get_content_charset()),
                method.upper().strip() if isinstance(method, str) else None,
            )
    raise InvalidReply("the email has no text/calendar part", code="reply_no_calendar")


def _parse_calendar(text: str) -> Calendar:
    try:
        component = Calendar.from_ical(text)
    except ValueError as exc:
        raise InvalidReply(
            f"not a valid iCalendar object: {exc}", code="reply_unparseable"
        ) from exc
    if not isinstance(component, Calendar) or component.name != "VCALENDAR":
        raise InvalidReply("the data is not a VCALENDAR", code="reply_unparseable")
    return component


def _method(calendar: Calendar, mime_method: str | None) -> str:
    body = str(calendar.get("METHOD", "")).strip().upper()
    method = body or mime_method
    if method == "COUNTER":
        raise CounterNotSupported(
            "the attendee proposed a new time (COUNTER); proposals are not supported: "
            "ask them to contact the organizer"
        )
    if method != "REPLY":
        found = f"METHOD:{method}" if method else "no METHOD"
        raise InvalidReply(f"expected an iTIP REPLY, got {found}", code="reply_not_a_reply")
    return method


def _only(items: list[Event], what: str) -> Event:
    if not items:
        raise InvalidReply(f"the reply has no {what}", code="reply_no_event")
    if len(items) > 1:
        raise InvalidReply(
            f"the reply answers {len(items)} {what}s at once; one is expected",
            code="reply_multiple_events",
        )
    return items[0]


def _attendee_email(vevent: Event) -> tuple[str, str]:
    """The replying attendee's email (normalised) and PARTSTAT (upper case)."""
    value = vevent.get("ATTENDEE")
    attendees = value if isinstance(value, list) else ([] if value is None else [value])
    if not attendees:
        raise InvalidReply("the reply names no ATTENDEE", code="reply_no_attendee")
    if len(attendees) > 1:
        raise InvalidReply(
            f"the reply names {len(attendees)} ATTENDEEs; exactly one is expected",
            code="reply_multiple_attendees",
        )
    attendee = attendees[0]
    address = str(attendee).strip()
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    address = address.strip().lower()
    if "@" not in address or any(c.isspace() for c in address):
        raise InvalidReply(
            f"the ATTENDEE is not an email address: {address!r}", code="reply_bad_attendee"
        )
    params = attendee.params if isinstance(attendee, vCalAddress) else {}
    partstat = str(params.get("PARTSTAT", "")).strip().upper()
    return address, partstat


def _utc(value: object, what: str, default_tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=default_tz)
        return value.astimezone(UTC)
    if isinstance(value, date):
        raise InvalidReply(f"{what} is a date; a date-time is expected", code=f"reply_bad_{what}")
    raise InvalidReply(f"{what} is not a date-time: {value!r}", code=f"reply_bad_{what}")


def _decoded(vevent: Event, name: str) -> object:
    broken = {prop for prop, _ in vevent.errors}
    if name in broken:
        raise InvalidReply(
            f"{name} cannot be read: {vevent.get(name)!r}",
            code=f"reply_bad_{name.lower().replace('-', '_')}",
        )
    return vevent.decoded(name) if name in vevent else None


def _reply_from(calendar: Calendar, mime_method: str | None, default_tz: ZoneInfo) -> ParsedReply:
    _method(calendar, mime_method)
    vevent = _only(calendar.events, "VEVENT")
    uid = str(vevent.get("UID", "")).strip()
    if not uid:
        raise InvalidReply("the reply has no UID", code="reply_no_uid")
    attendee_email, partstat = _attendee_email(vevent)
    if partstat not in _PARTSTATS:
        raise InvalidReply(
            f"PARTSTAT {partstat or '(missing)'} is not an answer; expected one of "
            f"{', '.join(sorted(_PARTSTATS))}",
            code="reply_bad_partstat",
        )
    sequence = _decoded(vevent, "SEQUENCE")
    if sequence is None:
        sequence = 0
    if not isinstance(sequence, int) or sequence < 0:
        raise InvalidReply(f"SEQUENCE is not a number: {sequence!r}", code="reply_bad_sequence")
    dtstamp = _decoded(vevent, "DTSTAMP")
    if dtstamp is None:
        raise InvalidReply("the reply has no DTSTAMP", code="reply_no_dtstamp")
    recurrence_id = _decoded(vevent, "RECURRENCE-ID")
    comments = vevent.get("COMMENT")
    if comments is not None and not isinstance(comments, list):
        comments = [comments]
    comment = "\n".join(str(c) for c in comments or []).strip() or None
    return ParsedReply(
        method="REPLY",
        uid=uid,
        recurrence_id=(
            None if recurrence_id is None else _utc(recurrence_id, "recurrence_id", default_tz)
        ),
        sequence=sequence,
        dtstamp=_utc(dtstamp, "dtstamp", default_tz),
        attendee_email=attendee_email,
        partstat=cast(ReplyPartStat, partstat),
        comment=comment,
    )
