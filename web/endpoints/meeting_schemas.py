"""Request and answer schemas of the meetings API and their conversions (for
:mod:`web.endpoints.meetings`, where the rules of access and time are described).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, overload
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from rooms.models import Role
from scheduling.availability import Busy
from scheduling.errors import MeetingNotFound
from scheduling.meetings import Check, MeetingService, Saved
from scheduling.models import AttendeeRole, ExceptionKind, Meeting, MeetingMode, MeetingStatus
from scheduling.passcodes import RULE, is_passcode
from scheduling.planning import Invitee, MeetingDraft
from scheduling.repository import Viewer
from web import keys
from web.api import Call, Schema
from web.auth import Principal
from web.problems import ApiError
from web.schemas import PageQuery

MAX_RANGE = timedelta(days=92)
MAX_KEY = 253402300799  # 9999-12-31T23:59:59Z

Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Agenda = Annotated[str, StringConstraints(max_length=20_000)]
DocRef = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Tzid = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RRule = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Reminder = Annotated[int, Field(ge=0, le=7 * 24 * 60, description="Minutes before the start.")]
RoomIds = Annotated[list[Id], Field(max_length=20)]
UnitIds = Annotated[
    list[Id], Field(max_length=50, description="Invite all of these units' people.")
]


def _passcode(value: str) -> str:
    if not is_passcode(value):
        raise ValueError(f"a passcode is {RULE}")
    return value


Passcode = Annotated[
    str,
    StringConstraints(max_length=10),
    AfterValidator(_passcode),
    Field(
        description="What guests (people not invited) type to ask to join: 6-10 digits; "
        "null: no guest access. Default on creation: 6 random digits.",
        examples=["482913"],
    ),
]


# --- requests ------------------------------------------------------------------------------
class InviteeIn(Schema):
    person_id: Id
    role: Literal["required", "optional"] = "required"


Invitees = Annotated[list[InviteeIn], Field(max_length=2000)]


class MeetingIn(Schema):
    title: Title
    agenda: Agenda = ""
    unit_id: Id = Field(description="The organising unit.")
    organiser_id: Id | None = Field(None, description="Default: the caller's person.")
    chair_id: Id | None = None
    start: datetime
    end: datetime
    tzid: Tzid | None = Field(None, description="IANA time zone; default: the server's.")
    rrule: RRule | None = Field(
        None, description="RFC 5545 RRULE: FREQ=DAILY|WEEKLY|MONTHLY with COUNT or UNTIL."
    )
    mode: MeetingMode = MeetingMode.VIDEO
    doc_ref: DocRef | None = Field(
        None, description="The convening document, e.g. 穗府办〔2010〕41号."
    )
    reminder_minutes: Reminder = 15
    room_ids: RoomIds = []
    attendees: Invitees = []
    unit_ids: UnitIds = []
    passcode: Passcode | None = None


class MeetingPatch(Schema):
    """Fields to change; ``null`` clears ``chair_id``, ``rrule``, ``doc_ref`` and
    ``passcode`` (no guest access)."""

    title: Title | None = None
    agenda: Agenda | None = None
    unit_id: Id | None = None
    organiser_id: Id | None = None
    chair_id: Id | None = None
    start: datetime | None = None
    end: datetime | None = None
    tzid: Tzid | None = None
    rrule: RRule | None = None
    mode: MeetingMode | None = None
    doc_ref: DocRef | None = None
    reminder_minutes: Reminder | None = None
    room_ids: RoomIds | None = None
    attendees: Invitees | None = None
    unit_ids: UnitIds | None = None
    passcode: Passcode | None = None


class OccurrencePatch(Schema):
    start: datetime
    end: datetime


class Range(Schema):
    start_from: datetime | None = Field(None, alias="from", description="Default: now.")
    to: datetime | None = Field(None, description="Default: 7 days after `from`.")


class MeetingListQuery(PageQuery):
    start_from: datetime | None = Field(
        None, alias="from", description="Any occurrence ends after."
    )
    to: datetime | None = Field(None, description="Any occurrence starts before.")
    unit_id: Id | None = None
    room_id: Id | None = None
    person_id: Id | None = None
    status: MeetingStatus | None = None
    sort: Literal["start", "-start", "id", "-id"] = "start"


class OccurrenceQuery(Range):
    room_id: Id | None = None
    person_id: Id | None = None


class FreeBusyQuery(Range):
    room_ids: Annotated[list[Id], Field(max_length=50)] = []
    person_ids: Annotated[list[Id], Field(max_length=200)] = []


class SlotQuery(FreeBusyQuery):
    duration_minutes: Annotated[int, Field(ge=5, le=24 * 60)] = 60
    tzid: Tzid | None = None
    working_hours: bool = Field(True, description="Only 08:30–18:00 local, Monday–Friday.")
    step_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    count: Annotated[int, Field(ge=1, le=50)] = 5


class CancelQuery(Schema):
    scope: Literal["this", "following"] = "this"


# --- answers -------------------------------------------------------------------------------
class AttendeeOut(BaseModel):
    person_id: int
    role: AttendeeRole
    partstat: str
    via_unit_id: int | None


class ExceptionOut(BaseModel):
    key: int
    recurrence_id: datetime
    kind: ExceptionKind
    start_utc: datetime | None
    end_utc: datetime | None


class MeetingOut(BaseModel):
    id: int
    uid: str
    sequence: int
    title: str
    agenda: str
    unit_id: int
    organiser_id: int
    chair_id: int | None
    tzid: str
    start_utc: datetime
    end_utc: datetime
    start_local: datetime
    end_local: datetime
    rrule: str | None
    mode: MeetingMode
    doc_ref: str | None
    status: MeetingStatus
    reminder_minutes: int
    room_ids: list[int]
    attendees: list[AttendeeOut]
    exceptions: list[ExceptionOut]
    split_from_id: int | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    guest_access: bool = Field(description="Whether guests may ask to join with a passcode.")
    passcode: str | None = Field(
        description="The guests' passcode: shown to administrators, the secretariat, "
        "meetings:write keys and the meeting's organiser and chair; null for others "
        "(and when there is none)."
    )


class WarningOut(BaseModel):
    code: Literal["person_busy"] = "person_busy"
    person_id: int
    meeting_id: int
    title: str
    start_utc: datetime
    end_utc: datetime


class MeetingSaved(MeetingOut):
    """A saved meeting, with the attendees who are busy elsewhere at its times."""

    warnings: list[WarningOut]


class ConflictOut(BaseModel):
    meeting_id: int
    title: str
    room_id: int
    room_name: str
    start_utc: datetime
    end_utc: datetime


class CheckOut(BaseModel):
    """What saving would meet: room conflicts (it would be refused) and warnings."""

    ok: bool
    conflicts: list[ConflictOut]
    warnings: list[WarningOut]


class OccurrenceOut(BaseModel):
    key: int
    meeting_id: int
    title: str
    status: Literal["scheduled", "cancelled"]
    moved: bool
    recurrence_id: datetime
    start_utc: datetime
    end_utc: datetime
    start_local: datetime
    end_local: datetime


class BusyOut(BaseModel):
    start_utc: datetime
    end_utc: datetime
    meeting_id: int | None
    title: str | None


class RoomBusy(BaseModel):
    room_id: int
    busy: list[BusyOut]


class PersonBusy(BaseModel):
    person_id: int
    busy: list[BusyOut]


class FreeBusyOut(BaseModel):
    start_utc: datetime
    end_utc: datetime
    rooms: list[RoomBusy]
    people: list[PersonBusy]


class SlotOut(BaseModel):
    start_utc: datetime
    end_utc: datetime
    start_local: datetime
    end_local: datetime


# --- conversions ---------------------------------------------------------------------------
def viewer_of(who: Principal) -> Viewer:
    if who.kind == "apikey" or who.role in (Role.ADMIN, Role.SECRETARIAT):
        return Viewer(sees_all=True)
    return Viewer(person_id=who.person_id)


def key_of(moment: datetime) -> int:
    return int(moment.timestamp())


def recurrence_id_of(call: Call[Any, Any]) -> datetime:
    key = call.path["key"]
    if key > MAX_KEY:
        raise MeetingNotFound(f"no occurrence {key}")
    return datetime.fromtimestamp(key, UTC)


def passcode_visible(who: Principal, meeting: Meeting) -> bool:
    """Who may see a meeting's passcode: those who may change the meeting, its organiser
    and its chair (who hand it to their guests)."""
    if who.kind == "apikey":
        return "meetings:write" in who.scopes
    if who.role in (Role.ADMIN, Role.SECRETARIAT):
        return True
    return who.person_id is not None and who.person_id in (meeting.organiser_id, meeting.chair_id)


def meeting_fields(meeting: Meeting, *, show_passcode: bool) -> dict[str, Any]:
    zone = ZoneInfo(meeting.tzid)
    return {
        **{name: getattr(meeting, name) for name in (
            "id", "uid", "sequence", "title", "agenda", "unit_id", "organiser_id", "chair_id",
            "tzid", "rrule", "mode", "doc_ref", "status", "reminder_minutes", "split_from_id",
            "created_by", "created_at", "updated_at")},
        "guest_access": meeting.passcode is not None,
        "passcode": meeting.passcode if show_passcode else None,
        "start_utc": meeting.starts_at,
        "end_utc": meeting.ends_at,
        "start_local": meeting.starts_at.astimezone(zone),
        "end_local": meeting.ends_at.astimezone(zone),
        "room_ids": [r.room_id for r in meeting.rooms],
        "attendees": [
            AttendeeOut(person_id=a.person_id, role=a.role, partstat=a.partstat.value,
                        via_unit_id=a.via_unit_id)
            for a in meeting.attendees
        ],
        "exceptions": [
            ExceptionOut(key=key_of(e.recurrence_id), recurrence_id=e.recurrence_id, kind=e.kind,
                         start_utc=e.starts_at, end_utc=e.ends_at)
            for e in meeting.exceptions
        ],
    }  # fmt: skip


def warnings_out(check: Check | Saved) -> list[WarningOut]:
    return [
        WarningOut(person_id=w.person_id, meeting_id=w.meeting_id, title=w.title,
                   start_utc=w.starts_at, end_utc=w.ends_at)
        for w in check.warnings
    ]  # fmt: skip


def saved_out(saved: Saved) -> MeetingSaved:
    """A saved meeting, for whoever saved it (they may change it: the passcode is shown)."""
    return MeetingSaved(
        **meeting_fields(saved.meeting, show_passcode=True), warnings=warnings_out(saved)
    )


def check_out(check: Check) -> CheckOut:
    return CheckOut(
        ok=not check.clashes,
        conflicts=[
            ConflictOut(meeting_id=c.meeting_id, title=c.title, room_id=c.room_id,
                        room_name=c.room_name, start_utc=c.starts_at, end_utc=c.ends_at)
            for c in check.clashes
        ],
        warnings=warnings_out(check),
    )  # fmt: skip


def draft_of(call: Call[MeetingIn, Any]) -> MeetingDraft:
    body = call.body
    # no passcode in the body: a new random one; null: no guest access
    passcode = {"passcode": body.passcode} if "passcode" in body.model_fields_set else {}
    organiser = body.organiser_id or call.who.person_id
    if organiser is None:
        raise ApiError(422, "validation_failed", "say who organises the meeting",
                       fields={"organiser_id": "required for integration keys"})  # fmt: skip
    return MeetingDraft(
        title=body.title, agenda=body.agenda, unit_id=body.unit_id, organiser_id=organiser,
        chair_id=body.chair_id, start=body.start, end=body.end,
        tzid=body.tzid or call.app[keys.SETTINGS].timezone, rrule=body.rrule, mode=body.mode,
        doc_ref=body.doc_ref, reminder_minutes=body.reminder_minutes,
        room_ids=tuple(body.room_ids), unit_ids=tuple(body.unit_ids),
        invitees=tuple(Invitee(a.person_id, AttendeeRole(a.role)) for a in body.attendees),
        **passcode,
    )  # fmt: skip


_NOT_NULL = ("title", "agenda", "unit_id", "organiser_id", "start", "end", "tzid", "mode",
             "reminder_minutes", "room_ids", "attendees", "unit_ids")  # fmt: skip


def changes_of(patch: MeetingPatch) -> dict[str, Any]:
    """The patch as MeetingDraft fields (only those sent)."""
    sent = patch.model_dump(exclude_unset=True)
    nulls = {n: "may not be null" for n in _NOT_NULL if n in sent and sent[n] is None}
    if nulls:
        raise ApiError(422, "validation_failed", "the body is not valid", fields=nulls)
    changes: dict[str, Any] = {k: v for k, v in sent.items() if k not in ("attendees",)}
    for name in ("room_ids", "unit_ids"):
        if name in changes:
            changes[name] = tuple(changes[name])
    if patch.attendees is not None:
        changes["invitees"] = tuple(
            Invitee(a.person_id, AttendeeRole(a.role)) for a in patch.attendees
        )
    return changes


def range_of(q: Range, default: timedelta = timedelta(days=7)) -> tuple[datetime, datetime]:
    low = aware(q.start_from) if q.start_from is not None else datetime.now(UTC)
    high = aware(q.to) if q.to is not None else low + default
    if high <= low:
        raise ApiError(422, "validation_failed", "`to` must be after `from`",
                       fields={"to": "not after from"})  # fmt: skip
    if high - low > MAX_RANGE:
        raise ApiError(422, "validation_failed", f"at most {MAX_RANGE.days} days at once",
                       fields={"to": f"more than {MAX_RANGE.days} days after from"})  # fmt: skip
    return low, high


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """A range bound without an offset is UTC."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def busy_out(items: list[Busy]) -> list[BusyOut]:
    return [BusyOut(start_utc=b.starts_at, end_utc=b.ends_at, meeting_id=b.meeting_id,
                    title=b.title) for b in items]  # fmt: skip


def service(call: Call[Any, Any]) -> MeetingService:
    return call.app[keys.MEETINGS]
