"""REST endpoints of meetings, occurrences, free/busy and free slots (``/api/v1/meetings``).

For the secretariat's booking pages and the office-automation (OA) system. The secretariat,
administrators and integration keys with ``meetings:write`` change meetings; every staff
member and keys with ``meetings:read`` read them, but staff other than the secretariat see
only the meetings they organise, chair or are invited to: others answer 404, as if they did
not exist (a 403 would confirm that they do).

Times: a request time with a UTC offset is taken as given; without one it is local time in
the meeting's ``tzid`` (default: the server's time zone; for ranges and slots, UTC and the
``tzid`` asked for). Answers give both ``*_utc`` and ``*_local``. An occurrence is
addressed by its ``key``: its RECURRENCE-ID (original start) as Unix seconds, as listed by
the occurrences endpoints.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rooms.models import Role
from scheduling.availability import OFFICE_HOURS
from scheduling.errors import InvalidMeeting, MeetingClosed, MeetingNotFound, RoomConflict
from scheduling.models import MeetingStatus
from scheduling.repository import MeetingQuery
from web import keys
from web.api import Api, Call
from web.auth import ANY_STAFF, Access
from web.endpoints.meeting_schemas import (
    CancelQuery,
    CheckOut,
    FreeBusyOut,
    FreeBusyQuery,
    MeetingIn,
    MeetingListQuery,
    MeetingOut,
    MeetingPatch,
    MeetingSaved,
    OccurrenceOut,
    OccurrencePatch,
    OccurrenceQuery,
    PersonBusy,
    Range,
    RoomBusy,
    SlotOut,
    SlotQuery,
    aware,
    busy_out,
    changes_of,
    check_out,
    draft_of,
    key_of,
    meeting_fields,
    passcode_visible,
    range_of,
    recurrence_id_of,
    saved_out,
    service,
    viewer_of,
)
from web.problems import ApiError, register_error
from web.schemas import Page

MEETINGS_READ = Access(roles=ANY_STAFF, scope="meetings:read")
MEETINGS_WRITE = Access(roles=frozenset({Role.ADMIN, Role.SECRETARIAT}), scope="meetings:write")
_T = "meetings"
_ONE = "/meetings/{id}"
_OCC = "/meetings/{id}/occurrences/{key}"


def register(api: Api) -> None:
    """Declare the routes (fixed paths before ``/meetings/{id}``) and map the errors."""
    register_error(InvalidMeeting, 422)
    register_error(MeetingNotFound, 404)
    register_error(MeetingClosed, 409)
    register_error(RoomConflict, 409)
    route = api.route

    @route("GET", "/meetings", summary="List meetings", access=MEETINGS_READ, tag=_T,
           query=MeetingListQuery, response=Page[MeetingOut])  # fmt: skip
    async def list_meetings(call: Call[None, MeetingListQuery]) -> Page[MeetingOut]:
        """Staff other than the secretariat get only their own meetings."""
        q = call.query
        low, high = aware(q.start_from), aware(q.to)
        if low is not None and high is not None and high <= low:
            raise ApiError(422, "validation_failed", "`to` must be after `from`",
                           fields={"to": "not after from"})  # fmt: skip
        rows, total = await service(call).list_meetings(
            MeetingQuery(starts_from=low, starts_to=high, unit_id=q.unit_id, room_id=q.room_id,
                         person_id=q.person_id, status=q.status, search=q.q,
                         sort=q.sort.replace("start", "starts_at"), limit=q.limit,
                         offset=q.offset),
            viewer_of(call.who),
        )  # fmt: skip
        return Page[MeetingOut](
            items=[MeetingOut(**meeting_fields(m, show_passcode=passcode_visible(call.who, m)))
                   for m in rows], total=total,
            limit=q.limit, offset=q.offset,
        )  # fmt: skip

    @route("POST", "/meetings", summary="Create a meeting and book its rooms",
           access=MEETINGS_WRITE, tag=_T, body=MeetingIn, response=MeetingSaved, status=201,
           errors=(409, 422))  # fmt: skip
    async def create_meeting(call: Call[MeetingIn, None]) -> MeetingSaved:
        """409 `room_conflict` lists the meetings holding the rooms (`conflicts`); attendees
        busy elsewhere are `warnings`, not errors."""
        return saved_out(await service(call).create(draft_of(call), call.who.label))

    @route("POST", "/meetings/check", summary="Check a new meeting without saving it",
           access=MEETINGS_WRITE, tag=_T, body=MeetingIn, response=CheckOut,
           errors=(409, 422))  # fmt: skip
    async def check_meeting(call: Call[MeetingIn, None]) -> CheckOut:
        """Room conflicts and busy attendees, as creating would meet them (dry run)."""
        return check_out(await service(call).check(draft_of(call)))

    @route("GET", "/meetings/occurrences", summary="Occurrences of all meetings in a range",
           access=MEETINGS_READ, tag=_T, query=OccurrenceQuery,
           response=list[OccurrenceOut])  # fmt: skip
    async def list_occurrences(call: Call[None, OccurrenceQuery]) -> list[OccurrenceOut]:
        """Every occurrence (cancelled ones too) overlapping the range, in time order."""
        q = call.query
        low, high = range_of(q)
        return await _occurrences(call, low, high, room_id=q.room_id, person_id=q.person_id)

    @route("GET", "/meetings/freebusy", summary="Busy times of rooms and people",
           access=MEETINGS_READ, tag=_T, query=FreeBusyQuery, response=FreeBusyOut)  # fmt: skip
    async def free_busy(call: Call[None, FreeBusyQuery]) -> FreeBusyOut:
        """Meetings the caller may not see show as busy without id and title."""
        q = call.query
        low, high = range_of(q)
        found = await call.app[keys.AVAILABILITY].free_busy(
            q.room_ids, q.person_ids, low, high, viewer_of(call.who)
        )
        return FreeBusyOut(
            start_utc=low, end_utc=high,
            rooms=[RoomBusy(room_id=r, busy=busy_out(b)) for r, b in found.rooms.items()],
            people=[PersonBusy(person_id=p, busy=busy_out(b)) for p, b in found.people.items()],
        )  # fmt: skip

    @route("GET", "/meetings/slots", summary="The earliest free slots for rooms and people",
           access=MEETINGS_READ, tag=_T, query=SlotQuery, response=list[SlotOut])  # fmt: skip
    async def free_slots(call: Call[None, SlotQuery]) -> list[SlotOut]:
        """Starts on a grid of `step_minutes` local time, within working hours by default."""
        q = call.query
        tzid = q.tzid or call.app[keys.SETTINGS].timezone
        try:
            zone = ZoneInfo(tzid)
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(422, "validation_failed", f"unknown time zone {tzid!r}",
                           fields={"tzid": "not an IANA time zone name"}) from None  # fmt: skip
        low, high = range_of(q, timedelta(days=14))
        slots = await call.app[keys.AVAILABILITY].slots(
            q.room_ids, q.person_ids, timedelta(minutes=q.duration_minutes), low, high,
            tzid=tzid, hours=OFFICE_HOURS if q.working_hours else None,
            step=timedelta(minutes=q.step_minutes), count=q.count,
        )  # fmt: skip
        return [
            SlotOut(start_utc=s, end_utc=e, start_local=s.astimezone(zone),
                    end_local=e.astimezone(zone))
            for s, e in slots
        ]  # fmt: skip

    @route("GET", _ONE, summary="Get a meeting", access=MEETINGS_READ, tag=_T,
           response=MeetingOut)  # fmt: skip
    async def get_meeting(call: Call[None, None]) -> MeetingOut:
        meeting = await service(call).get(call.path["id"], viewer_of(call.who))
        return MeetingOut(
            **meeting_fields(meeting, show_passcode=passcode_visible(call.who, meeting))
        )

    @route("PATCH", _ONE, summary="Change a meeting (the whole series)", access=MEETINGS_WRITE,
           tag=_T, body=MeetingPatch, response=MeetingSaved, errors=(409, 422))  # fmt: skip
    async def update_meeting(call: Call[MeetingPatch, None]) -> MeetingSaved:
        """Changing times, recurrence or rooms bumps `sequence` and re-books the rooms; a
        new time also resets attendees' answers to NEEDS-ACTION."""
        saved = await service(call).update(call.path["id"], changes_of(call.body), call.who.label)
        return saved_out(saved)

    @route("POST", _ONE + "/check", summary="Check a change without saving it",
           access=MEETINGS_WRITE, tag=_T, body=MeetingPatch, response=CheckOut,
           errors=(409, 422))  # fmt: skip
    async def check_update(call: Call[MeetingPatch, None]) -> CheckOut:
        return check_out(await service(call).check_update(call.path["id"], changes_of(call.body)))

    @route("POST", _ONE + "/cancel", summary="Cancel a meeting (every occurrence)",
           access=MEETINGS_WRITE, tag=_T, response=MeetingOut, errors=(409,))  # fmt: skip
    async def cancel_meeting(call: Call[None, None]) -> MeetingOut:
        """Frees its rooms. Cancelling a cancelled meeting changes nothing."""
        meeting = await service(call).cancel(call.path["id"], call.who.label)
        return MeetingOut(**meeting_fields(meeting, show_passcode=True))

    @route("GET", _ONE + "/occurrences", summary="Occurrences of a meeting in a range",
           access=MEETINGS_READ, tag=_T, query=Range, response=list[OccurrenceOut])  # fmt: skip
    async def meeting_occurrences(call: Call[None, Range]) -> list[OccurrenceOut]:
        low, high = range_of(call.query, timedelta(days=92))
        return await _occurrences(call, low, high, meeting_id=call.path["id"])

    @route("PATCH", _OCC, summary="Move one occurrence", access=MEETINGS_WRITE, tag=_T,
           body=OccurrencePatch, response=MeetingSaved, errors=(409, 422))  # fmt: skip
    async def move_occurrence(call: Call[OccurrencePatch, None]) -> MeetingSaved:
        """Gives the occurrence its own start and end (RECURRENCE-ID override)."""
        saved = await service(call).move_occurrence(
            call.path["id"], recurrence_id_of(call), call.body.start, call.body.end,
            call.who.label,
        )  # fmt: skip
        return saved_out(saved)

    @route("POST", _OCC + "/cancel", summary="Cancel one occurrence, or it and all after",
           access=MEETINGS_WRITE, tag=_T, query=CancelQuery, response=MeetingOut,
           errors=(409, 422))  # fmt: skip
    async def cancel_occurrence(call: Call[None, CancelQuery]) -> MeetingOut:
        """`scope=following` ends the series before this occurrence (from the first: the
        whole meeting is cancelled)."""
        meetings, rid, actor = service(call), recurrence_id_of(call), call.who.label
        if call.query.scope == "following":
            meeting = await meetings.cancel_following(call.path["id"], rid, actor)
        else:
            meeting = await meetings.cancel_occurrence(call.path["id"], rid, actor)
        return MeetingOut(**meeting_fields(meeting, show_passcode=True))

    @route("POST", _OCC + "/split", summary="Change this and all following occurrences",
           access=MEETINGS_WRITE, tag=_T, body=MeetingPatch, response=MeetingSaved,
           status=201, errors=(409, 422))  # fmt: skip
    async def split_series(call: Call[MeetingPatch, None]) -> MeetingSaved:
        """The original series ends before this occurrence; the rest becomes a new meeting
        (new `uid`, `split_from_id` = the original), which is returned. From the first
        occurrence, the whole series is changed instead and returned."""
        saved = await service(call).split(
            call.path["id"], recurrence_id_of(call), changes_of(call.body), call.who.label
        )
        return saved_out(saved)


async def _occurrences(
    call: Call[None, Any],
    low: datetime,
    high: datetime,
    *,
    meeting_id: int | None = None,
    room_id: int | None = None,
    person_id: int | None = None,
) -> list[OccurrenceOut]:
    found = await service(call).occurrences(
        low, high, viewer_of(call.who), meeting_id=meeting_id, room_id=room_id,
        person_id=person_id,
    )  # fmt: skip
    out = []
    for occurrence, meeting in found:
        zone = ZoneInfo(meeting.tzid)
        cancelled = occurrence.cancelled or meeting.status == MeetingStatus.CANCELLED
        out.append(
            OccurrenceOut(
                key=key_of(occurrence.recurrence_id), meeting_id=meeting.id, title=meeting.title,
                status="cancelled" if cancelled else "scheduled",
                moved=occurrence.starts_at != occurrence.recurrence_id,
                recurrence_id=occurrence.recurrence_id, start_utc=occurrence.starts_at,
                end_utc=occurrence.ends_at, start_local=occurrence.starts_at.astimezone(zone),
                end_local=occurrence.ends_at.astimezone(zone),
            )
        )  # fmt: skip
    return out
