"""Recurrence rules of meetings: validation, normalisation, expansion and splitting.

For the meetings service, which stores the normalised RRULE and materialises occurrences.
Pure functions, no database. Only ``FREQ=DAILY|WEEKLY|MONTHLY`` is accepted, and every
rule must end (``UNTIL`` or ``COUNT``) within :data:`MAX_OCCURRENCES` occurrences and
:data:`HORIZON` of its first one. Expansion runs on local wall-clock time in the meeting's
time zone (a 09:00 meeting stays at 09:00 across offset changes), via python-dateutil.

The stored rule is canonical: keys upper case in a fixed order, and ``UNTIL`` always a UTC
date-time (``...Z``) as RFC 5545 requires for a DTSTART with a time zone; a date-only or
local ``UNTIL`` given by a client means "until the end of that day/time in the meeting's
zone".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from scheduling.errors import InvalidMeeting

MAX_OCCURRENCES = 520
HORIZON = timedelta(days=3 * 366)
MAX_RULE_LENGTH = 500
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY")
_ORDER = ("FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYSETPOS", "WKST")
_WEEKDAYS = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"}


@dataclass(frozen=True, slots=True)
class Instance:
    """One occurrence: its RECURRENCE-ID (original start) and actual start and end (UTC)."""

    recurrence_id: datetime
    starts_at: datetime
    ends_at: datetime
    cancelled: bool = False
    moved: bool = False


def _bad(message: str) -> InvalidMeeting:
    return InvalidMeeting(message, fields={"rrule": message})


def _parts(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > MAX_RULE_LENGTH or "\n" in text or "\r" in text:
        raise _bad(f"an RRULE is one line of at most {MAX_RULE_LENGTH} characters")
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        key = key.strip().upper()
        if not sep or not value.strip():
            raise _bad(f"'{item}' is not KEY=VALUE")
        if key not in _ORDER:
            raise _bad(f"{key} is not supported (use {', '.join(_ORDER)})")
        if key in parts:
            raise _bad(f"{key} is given twice")
        parts[key] = value.strip().upper()
    return parts


def _until_utc(value: str, zone: ZoneInfo) -> datetime:
    try:
        if len(value) == 8:  # a date: the end of that day, locally
            day = datetime.strptime(value, "%Y%m%d").replace(tzinfo=zone)
            return (day.replace(hour=23, minute=59, second=59)).astimezone(UTC)
        if value.endswith("Z"):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        raise _bad(
            f"UNTIL={value} is not a date (YYYYMMDD) or date-time (YYYYMMDDTHHMMSSZ)"
        ) from None


def _format(parts: Mapping[str, str]) -> str:
    return ";".join(f"{k}={parts[k]}" for k in _ORDER if k in parts)


def _check_values(parts: Mapping[str, str]) -> None:
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise _bad(f"FREQ must be one of {', '.join(FREQUENCIES)}")
    if ("COUNT" in parts) == ("UNTIL" in parts):
        raise _bad("give exactly one of COUNT or UNTIL: a series must end")
    for key, low, high in (("INTERVAL", 1, 365), ("COUNT", 1, MAX_OCCURRENCES)):
        if key in parts and not (parts[key].isdigit() and low <= int(parts[key]) <= high):
            raise _bad(f"{key} must be a whole number from {low} to {high}")
    for day in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else ():
        if day[-2:] not in _WEEKDAYS:
            raise _bad(f"BYDAY={parts['BYDAY']} names an unknown weekday")
    if "WKST" in parts and parts["WKST"] not in _WEEKDAYS:
        raise _bad("WKST must be a weekday (MO…SU)")


def normalise(rule: str, start: datetime, tzid: str) -> str:
    """The canonical form of ``rule`` for a series starting at ``start``; raises if invalid.

    Checks the grammar we accept, that the rule yields the first occurrence at ``start``
    (as RFC 5545 wants), and the caps on occurrences and horizon.
    """
    zone = ZoneInfo(tzid)
    parts = _parts(rule)
    _check_values(parts)
    if "UNTIL" in parts:
        until = _until_utc(parts["UNTIL"], zone)
        if until < start:
            raise _bad("UNTIL is before the first occurrence")
        parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%SZ")
    canonical = _format(parts)
    local = start.astimezone(zone)
    try:
        rule_obj = rrulestr(canonical, dtstart=local)
    except (ValueError, TypeError) as exc:
        raise _bad(f"the RRULE cannot be used: {exc}") from None
    first: datetime | None = None
    for count, occurrence in enumerate(rule_obj, start=1):
        first = first or occurrence
        if count > MAX_OCCURRENCES:
            raise _bad(f"a series may have at most {MAX_OCCURRENCES} occurrences")
        if occurrence - local > HORIZON:
            raise _bad(f"a series may span at most {HORIZON.days} days; end it sooner")
    if first is None:
        raise _bad("the RRULE yields no occurrence")
    if first != local:
        raise _bad("the first occurrence of the RRULE must be the meeting's start")
    return canonical


def expand(
    start: datetime,
    end: datetime,
    tzid: str,
    rule: str | None,
    exceptions: Iterable[tuple[datetime, bool, datetime | None, datetime | None]] = (),
) -> list[Instance]:
    """Every occurrence of a meeting, exceptions applied, in order of recurrence-id.

    ``exceptions``: (recurrence_id, cancelled, new start, new end), all UTC; those that
    do not match an occurrence of the rule are ignored (the series changed since).
    """
    duration = end - start
    if rule is None:
        starts = [start]
    else:
        zone = ZoneInfo(tzid)
        rule_obj = rrulestr(rule, dtstart=start.astimezone(zone))
        starts = [o.astimezone(UTC) for o in rule_obj[: MAX_OCCURRENCES + 1]]
    by_id = {rid: (cancelled, s, e) for rid, cancelled, s, e in exceptions}
    instances: list[Instance] = []
    for rid in starts:
        found = by_id.get(rid)
        if found is None:
            instances.append(Instance(rid, rid, rid + duration))
        elif found[0]:
            instances.append(Instance(rid, rid, rid + duration, cancelled=True))
        else:
            new_start, new_end = found[1] or rid, found[2] or rid + duration
            instances.append(Instance(rid, new_start, new_end, moved=True))
    return instances


def truncate(rule: str, before: datetime) -> str:
    """The rule ending just before the occurrence at ``before`` (UTC): UNTIL = before − 1 s.

    COUNT is replaced by UNTIL, which is what Outlook and Google do on "this and following".
    """
    parts = _parts(rule)
    parts.pop("COUNT", None)
    parts["UNTIL"] = (before - timedelta(seconds=1)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return _format(parts)


def tail(rule: str, occurrences_before: int) -> str:
    """The rule of the series that continues a split one after ``occurrences_before``."""
    parts = _parts(rule)
    if "COUNT" in parts:
        parts["COUNT"] = str(max(1, int(parts["COUNT"]) - occurrences_before))
    return _format(parts)
