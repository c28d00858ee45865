"""iTIP (RFC 5546) objects for meeting invitations: REQUEST and CANCEL.

For the invitation service of `scheduling`, which turns a stored meeting into the plain
`CalendarEvent` values below (no database here) and hands the bytes to `scheduling.imip`
for the email, and for `scheduling.feeds`, which reuses the VEVENT and VTIMEZONE builders.

Everything is built with the `icalendar` library: it escapes text, folds lines at 75 octets
on UTF-8 character boundaries, writes CRLF, and derives each VTIMEZONE from zoneinfo.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from icalendar import Calendar, Event, Timezone, vCalAddress, vRecur

from scheduling.errors import InvalidEvent, NotAnAttendee

Role = Literal["CHAIR", "REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"]
PartStat = Literal["NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"]
CUType = Literal["INDIVIDUAL", "ROOM", "GROUP"]
EventStatus = Literal["CONFIRMED", "CANCELLED", "TENTATIVE"]
Method = Literal["REQUEST", "CANCEL"]
Locale = Literal["zh-CN", "en"]

DEFAULT_TZID = "Asia/Shanghai"
PRODID = "-//SuiMeet//SuiMeet Scheduling 1.0//ZH"
DOC_REF_PROPERTY = "X-SUIMEET-DOC-REF"
"""Our X-property carrying the office document reference (e.g. 穗府辦〔2010〕41號)."""

# An open-ended series gets time zone rules this many years past its first occurrence;
# clients keep the last offset after that, so Asia/Shanghai is unaffected.
_OPEN_SERIES_YEARS = 20
# Occurrences expanded to find the end of a COUNT-bounded series before giving up and
# treating it as open-ended.
_MAX_EXPANDED = 5000

_LABELS: dict[Locale, dict[str, str]] = {
    "zh-CN": {"doc_ref": "文号", "join": "会议链接", "colon": "："},
    "en": {"doc_ref": "Document reference", "join": "Join link", "colon": ": "},
}


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidEvent(f"{what} must be a time-zone-aware datetime, got {value!r}")


def _require_single_line(value: str, what: str) -> None:
    if not value or "\r" in value or "\n" in value:
        raise InvalidEvent(f"{what} must be a non-empty single line, got {value!r}")


@dataclass(frozen=True)
class CalendarPerson:
    """An organizer or attendee as iTIP sees them: an email and how they take part.

    Rooms are attendees with ``cutype="ROOM"`` (their email is the room's resource
    address). ``email`` is a bare address without ``mailto:``.
    """

    email: str
    name: str = ""
    role: Role = "REQ-PARTICIPANT"
    partstat: PartStat = "NEEDS-ACTION"
    cutype: CUType = "INDIVIDUAL"
    rsvp: bool = True

    def __post_init__(self) -> None:
        _require_single_line(self.email, "email")
        if "@" not in self.email or any(c.isspace() for c in self.email):
            raise InvalidEvent(f"not an email address: {self.email!r}")
        if self.email.lower().startswith("mailto:"):
            raise InvalidEvent(f"email must not carry mailto: {self.email!r}")
        if "\r" in self.name or "\n" in self.name:
            raise InvalidEvent(f"name must be a single line: {self.name!r}")

    def has_email(self, email: str) -> bool:
        """Whether ``email`` (any case, with or without ``mailto:``) is this person's."""
        return _normalise_email(email) == _normalise_email(self.email)


def _normalise_email(email: str) -> str:
    email = email.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    return email.strip().lower()


@dataclass(frozen=True)
class CalendarEvent:
    """One meeting (a series, a single meeting, or one overridden occurrence of a series).

    ``uid`` is stable for the meeting's lifetime; an overridden occurrence has the series'
    ``uid`` and its original start as ``recurrence_id``. Times are aware datetimes in any
    zone: they are written in ``tzid`` (an IANA name). ``rrule`` is an RFC 5545 RRULE value
    such as ``FREQ=WEEKLY;BYDAY=MO;COUNT=10`` (an UNTIL must be in UTC). ``description`` is
    the agenda; ``url`` the (generic) join link; ``doc_ref`` the office document reference.
    ``dtstamp`` defaults to the time of building.
    """

    uid: str
    sequence: int
    title: str
    start: datetime
    end: datetime
    organizer: CalendarPerson
    attendees: Sequence[CalendarPerson] = ()
    description: str = ""
    location: str = ""
    tzid: str = DEFAULT_TZID
    rrule: str | None = None
    exdates: Sequence[datetime] = ()
    recurrence_id: datetime | None = None
    status: EventStatus = "CONFIRMED"
    url: str | None = None
    doc_ref: str | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    dtstamp: datetime | None = None
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: normalise sequences to tuples so the value is truly immutable.
        object.__setattr__(self, "attendees", tuple(self.attendees))
        object.__setattr__(self, "exdates", tuple(self.exdates))
        _require_single_line(self.uid, "uid")
        if self.sequence < 0:
            raise InvalidEvent(f"sequence must be >= 0, got {self.sequence}")
        try:
            object.__setattr__(self, "zone", ZoneInfo(self.tzid))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise InvalidEvent(f"unknown time zone {self.tzid!r}") from exc
        for value, what in [(self.start, "start"), (self.end, "end")]:
            _require_aware(value, what)
        if self.end <= self.start:
            raise InvalidEvent("end must be after start")
        for optional, what in [
            (self.recurrence_id, "recurrence_id"),
            (self.created, "created"),
            (self.last_modified, "last_modified"),
            (self.dtstamp, "dtstamp"),
            *((exdate, "exdate") for exdate in self.exdates),
        ]:
            if optional is not None:
                _require_aware(optional, what)
        if self.exdates and self.rrule is None:
            raise InvalidEvent("exdates need an rrule")
        if self.rrule is not None:
            if self.recurrence_id is not None:
                raise InvalidEvent("an overridden occurrence (recurrence_id) has no rrule")
            _check_rrule(self.rrule, self.start)

    @property
    def rooms(self) -> tuple[CalendarPerson, ...]:
        """The attendees that are rooms (CUTYPE=ROOM)."""
        return tuple(a for a in self.attendees if a.cutype == "ROOM")

    def attendee(self, email: str) -> CalendarPerson | None:
        """The attendee with this email (any case), or None."""
        return next((a for a in self.attendees if a.has_email(email)), None)

    def local(self, value: datetime) -> datetime:
        """``value`` expressed in the meeting's time zone."""
        return value.astimezone(self.zone)


def _check_rrule(rrule: str, start: datetime) -> None:
    try:
        recur = vRecur.from_ical(rrule)
        rrulestr(rrule, dtstart=start)
    except (ValueError, TypeError) as exc:
        raise InvalidEvent(f"invalid RRULE {rrule!r}: {exc}") from exc
    if not recur.get("FREQ"):
        raise InvalidEvent(f"RRULE without FREQ: {rrule!r}")
    for until in recur.get("UNTIL", []):
        if not isinstance(until, datetime) or until.utcoffset() != timedelta(0):
            raise InvalidEvent(f"RRULE UNTIL must be a UTC date-time (…Z): {rrule!r}")


def _series_last(event: CalendarEvent) -> datetime:
    """The last moment the event (or its series) covers, for the VTIMEZONE range."""
    if event.rrule is None:
        return event.end
    rule = rrulestr(event.rrule, dtstart=event.local(event.start))
    recur = vRecur.from_ical(event.rrule)
    if recur.get("UNTIL") or recur.get("COUNT"):
        occurrences = list(islice(iter(rule), _MAX_EXPANDED + 1))
        if occurrences and len(occurrences) <= _MAX_EXPANDED:
            last: datetime = occurrences[-1]
            return last + (event.end - event.start)
    return event.start + timedelta(days=366 * _OPEN_SERIES_YEARS)


def check_one_meeting(events: Sequence[CalendarEvent]) -> None:
    """Raise `InvalidEvent` unless ``events`` are one meeting: one UID, at most one series
    (no ``recurrence_id``) and each occurrence once."""
    if not events:
        raise InvalidEvent("no event given")
    uids = {e.uid for e in events}
    if len(uids) != 1:
        raise InvalidEvent(f"one iTIP object carries one meeting (one UID), got {sorted(uids)}")
    masters = [e for e in events if e.recurrence_id is None]
    if len(masters) > 1:
        raise InvalidEvent("at most one event without recurrence_id (the series) per object")
    ids = [e.recurrence_id.astimezone(UTC) for e in events if e.recurrence_id is not None]
    if len(ids) != len(set(ids)):
        raise InvalidEvent("the same occurrence (recurrence_id) appears twice")


def _address(person: CalendarPerson) -> vCalAddress:
    address = vCalAddress(f"mailto:{person.email}")
    if person.name:
        address.params["CN"] = person.name
    return address


def _attendee(person: CalendarPerson, *, method: Method | None) -> vCalAddress:
    address = _address(person)
    address.params["CUTYPE"] = person.cutype
    address.params["ROLE"] = person.role
    address.params["PARTSTAT"] = person.partstat
    # Nobody answers a CANCEL or a published feed: RSVP only on a REQUEST.
    if method == "REQUEST":
        address.params["RSVP"] = "TRUE" if person.rsvp else "FALSE"
    return address


def describe(event: CalendarEvent, *, locale: Locale = "zh-CN", link: str | None = None) -> str:
    """The DESCRIPTION text: the agenda, then the document reference and ``link``.

    Calendar clients show DESCRIPTION, not our X-property or URL, so both go in here too.
    """
    labels = _LABELS[locale]
    parts = [event.description.replace("\r\n", "\n").strip()]
    tail = []
    if event.doc_ref:
        tail.append(f"{labels['doc_ref']}{labels['colon']}{event.doc_ref}")
    if link:
        tail.append(f"{labels['join']}{labels['colon']}{link}")
    if tail:
        parts.append("\n".join(tail))
    return "\n\n".join(p for p in parts if p)


def event_component(
    event: CalendarEvent,
    *,
    method: Method | None,
    locale: Locale = "zh-CN",
    join_url: str | None = None,
    include_people: bool = True,
) -> Event:
    """The VEVENT of ``event`` as sent with ``method`` (None for a published feed).

    A CANCEL forces STATUS:CANCELLED and carries no join link (a removed attendee must not
    get one). ``join_url`` replaces ``event.url`` (a recipient's personal link).
    ``include_people=False`` leaves out ORGANIZER and ATTENDEE (feeds).
    """
    link = None if method == "CANCEL" else (join_url or event.url)
    vevent = Event()
    vevent.add("UID", event.uid)
    vevent.add("SEQUENCE", event.sequence)
    vevent.add("DTSTAMP", (event.dtstamp or datetime.now(UTC)).astimezone(UTC))
    if event.recurrence_id is not None:
        vevent.add("RECURRENCE-ID", event.local(event.recurrence_id))
    vevent.add("DTSTART", event.local(event.start))
    vevent.add("DTEND", event.local(event.end))
    if event.rrule is not None:
        vevent.add("RRULE", vRecur.from_ical(event.rrule))
    if event.exdates:
        vevent.add("EXDATE", [event.local(d) for d in sorted(event.exdates)])
    vevent.add("SUMMARY", event.title.replace("\r\n", " ").replace("\n", " "))
    description = describe(event, locale=locale, link=link)
    if description:
        vevent.add("DESCRIPTION", description)
    if event.location:
        vevent.add("LOCATION", event.location)
    if link:
        vevent.add("URL", link)
    vevent.add("STATUS", "CANCELLED" if method == "CANCEL" else event.status)
    vevent.add("TRANSP", "OPAQUE")
    if event.doc_ref:
        vevent.add(DOC_REF_PROPERTY, event.doc_ref)
    for stamp, name in [(event.created, "CREATED"), (event.last_modified, "LAST-MODIFIED")]:
        if stamp is not None:
            vevent.add(name, stamp.astimezone(UTC))
    if include_people:
        vevent.add("ORGANIZER", _address(event.organizer))
        for person in event.attendees:
            vevent.add("ATTENDEE", _attendee(person, method=method))
    return vevent


def add_timezones(calendar: Calendar, events: Iterable[CalendarEvent]) -> None:
    """Insert one VTIMEZONE for every TZID the events use, before the VEVENTs.

    Each is generated from zoneinfo and covers the events' dates (from 1 January of the
    earliest year to 1 January after the last occurrence of any series).
    """
    spans: dict[str, tuple[date, date]] = {}
    for event in events:
        moments = [event.start, event.end, _series_last(event), *event.exdates]
        if event.recurrence_id is not None:
            moments.append(event.recurrence_id)
        first = min(event.local(m) for m in moments).date()
        last = max(event.local(m) for m in moments).date()
        if event.tzid in spans:
            first = min(first, spans[event.tzid][0])
            last = max(last, spans[event.tzid][1])
        spans[event.tzid] = (first, last)
    timezones = [
        Timezone.from_ical(_vtimezone(tzid, first.year, last.year + 1))
        for tzid, (first, last) in sorted(spans.items())
    ]
    calendar.subcomponents[0:0] = timezones


@functools.lru_cache(maxsize=256)
def _vtimezone(tzid: str, first_year: int, end_year: int) -> bytes:
    """A VTIMEZONE from zoneinfo, serialised once per zone and span (building one from
    zoneinfo takes tens of milliseconds; every invitation of a meeting needs the same)."""
    component = Timezone.from_tzid(
        tzid, first_date=date(first_year, 1, 1), last_date=date(end_year, 1, 1)
    )
    return bytes(component.to_ical())


def new_calendar(method: Method | None) -> Calendar:
    """An empty VCALENDAR with PRODID, VERSION:2.0, CALSCALE:GREGORIAN and ``method``."""
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    if method is not None:
        calendar.add("METHOD", method)
    return calendar


def _as_list(events: CalendarEvent | Sequence[CalendarEvent]) -> list[CalendarEvent]:
    return [events] if isinstance(events, CalendarEvent) else list(events)


def _for_recipient(events: list[CalendarEvent], recipient: str | None) -> list[CalendarEvent]:
    """The events (series / occurrences) that ``recipient`` is invited to.

    Per iTIP a recipient gets only the components that list them as an ATTENDEE.
    """
    if recipient is None:
        return events
    chosen = [e for e in events if e.attendee(recipient) is not None]
    if not chosen:
        raise NotAnAttendee(f"{recipient} is not an attendee of meeting {events[0].uid}")
    return chosen


def _build(
    method: Method,
    events: list[CalendarEvent],
    *,
    locale: Locale,
    join_url: str | None,
) -> bytes:
    calendar = new_calendar(method)
    # The series first, then its occurrences in order: easier on clients and on readers.
    ordered = sorted(
        events,
        key=lambda e: (e.recurrence_id is not None, e.recurrence_id or e.start),
    )
    for event in ordered:
        calendar.add_component(
            event_component(event, method=method, locale=locale, join_url=join_url)
        )
    add_timezones(calendar, events)
    data: bytes = calendar.to_ical()
    return data


def build_request(
    events: CalendarEvent | Sequence[CalendarEvent],
    *,
    for_attendee: str | None = None,
    join_url: str | None = None,
    locale: Locale = "zh-CN",
) -> bytes:
    """A METHOD:REQUEST iCalendar object (UTF-8 bytes, CRLF) inviting to one meeting.

    ``events`` is a single meeting, a series, one overridden occurrence, or a series plus
    its overridden occurrences (same UID, several VEVENTs). ``for_attendee`` is the email
    of the recipient: only the components listing them are included, and it is an error
    (`NotAnAttendee`) if none does. ``join_url`` is that recipient's personal join link.
    """
    chosen = _as_list(events)
    check_one_meeting(chosen)
    chosen = _for_recipient(chosen, for_attendee)
    return _build("REQUEST", chosen, locale=locale, join_url=join_url)


def build_cancel(
    events: CalendarEvent | Sequence[CalendarEvent],
    *,
    for_attendee: str | None = None,
    locale: Locale = "zh-CN",
) -> bytes:
    """A METHOD:CANCEL iCalendar object: the whole meeting or some occurrences of it.

    Pass the series (no ``recurrence_id``) to cancel everything, or the occurrences (with
    ``recurrence_id``) to cancel only those. Every VEVENT gets STATUS:CANCELLED. The caller
    bumps ``sequence`` above the last one sent, as iTIP requires.
    """
    chosen = _as_list(events)
    check_one_meeting(chosen)
    chosen = _for_recipient(chosen, for_attendee)
    return _build("CANCEL", chosen, locale=locale, join_url=None)


def build_removal(
    events: CalendarEvent | Sequence[CalendarEvent],
    removed: CalendarPerson,
    *,
    locale: Locale = "zh-CN",
) -> bytes:
    """The METHOD:CANCEL sent to an attendee removed from a meeting that goes on.

    As in RFC 5546 (section 4.2.8) the object lists only the removed attendee, so their
    client deletes the meeting while the others keep it. ``events`` describe the meeting
    after the change (with its bumped ``sequence``); ``removed`` need not be in them.
    """
    chosen = _as_list(events)
    check_one_meeting(chosen)
    alone = [_with_attendees(e, (removed,)) for e in chosen]
    return _build("CANCEL", alone, locale=locale, join_url=None)


def _with_attendees(event: CalendarEvent, attendees: Sequence[CalendarPerson]) -> CalendarEvent:
    return replace(event, attendees=tuple(attendees))
