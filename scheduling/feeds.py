"""Subscribable calendar feeds (.ics over HTTP) of many meetings.

For `web`, which serves a unit's, a room's or a person's meetings at a secret URL that
people subscribe to in Outlook, Apple Calendar, Thunderbird or Google Calendar. A feed is
a published calendar (RFC 5545, no METHOD): clients re-fetch it and replace what they had.

Cancellations are left out rather than sent as STATUS:CANCELLED: clients that subscribe
delete what disappears from a feed, while several (Google Calendar among them) show a
STATUS:CANCELLED event as if it still took place. A cancelled meeting (or series) is
omitted with its occurrences; a cancelled occurrence of a series becomes an EXDATE of the
series. Attendees' addresses stay out by default, since a feed URL is easily shared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from icalendar import Timezone, vDuration

from scheduling.itip import (
    DEFAULT_TZID,
    CalendarEvent,
    Locale,
    add_timezones,
    check_one_meeting,
    event_component,
    new_calendar,
)


def _published(meeting: list[CalendarEvent]) -> list[CalendarEvent]:
    """The components of one meeting (same UID) that a feed shows."""
    series = next((e for e in meeting if e.recurrence_id is None), None)
    if series is not None and series.status == "CANCELLED":
        return []
    cancelled = [e for e in meeting if e.recurrence_id is not None and e.status == "CANCELLED"]
    kept = [e for e in meeting if e.status != "CANCELLED"]
    if series is not None and series.rrule is not None and cancelled:
        known = {d.astimezone(UTC) for d in series.exdates}
        extra = [
            e.recurrence_id
            for e in cancelled
            if e.recurrence_id is not None and e.recurrence_id.astimezone(UTC) not in known
        ]
        kept = [
            replace(series, exdates=(*series.exdates, *extra)) if e is series else e for e in kept
        ]
    return kept


def build_feed(
    name: str,
    events: Iterable[CalendarEvent],
    *,
    locale: Locale = "zh-CN",
    tzid: str = DEFAULT_TZID,
    include_people: bool = False,
    refresh_interval: timedelta = timedelta(hours=1),
) -> bytes:
    """A published VCALENDAR (UTF-8 bytes, CRLF) of ``events`` for subscription.

    ``name`` becomes NAME and X-WR-CALNAME; ``tzid`` the calendar's default zone
    (X-WR-TIMEZONE); ``refresh_interval`` tells clients how often to re-fetch.
    ``events`` may hold series together with their overridden or cancelled occurrences
    (same UID). Raises `InvalidEvent` if one UID has two series or an occurrence twice.
    """
    meetings: dict[str, list[CalendarEvent]] = {}
    for event in events:
        meetings.setdefault(event.uid, []).append(event)
    published: list[CalendarEvent] = []
    for meeting in meetings.values():
        check_one_meeting(meeting)
        published += _published(meeting)
    published.sort(key=lambda e: (e.start.astimezone(UTC), e.uid, e.recurrence_id is not None))

    calendar = new_calendar(None)
    calendar.add("NAME", name)
    calendar.add("X-WR-CALNAME", name)
    calendar.add("X-WR-TIMEZONE", tzid)
    calendar.add("REFRESH-INTERVAL", refresh_interval, parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", vDuration(refresh_interval))
    for event in published:
        calendar.add_component(
            event_component(event, method=None, locale=locale, include_people=include_people)
        )
    add_timezones(calendar, published)
    if not published:
        # RFC 5545 wants at least one component; the feed's own zone is a harmless one.
        this_year = datetime.now(UTC).year
        calendar.add_component(
            Timezone.from_tzid(
                tzid, first_date=date(this_year, 1, 1), last_date=date(this_year + 1, 1, 1)
            )
        )
    data: bytes = calendar.to_ical()
    return data
