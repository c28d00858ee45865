"""What a meeting's conferences left behind: chat, the log of chair controls, recordings.

For administrators, the secretariat and the meeting's organiser and chair; other staff get
403 for a meeting they can see (they are invited to it) and 404 for one they cannot.
Private chat messages (to one participant) are shown to administrators and the secretariat
only. Recordings are downloaded as one Matroska file (``video/x-matroska``), streamed from
disk; a recording still under way answers 409, a failed one 404.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from rooms.models import Role
from scheduling.conference_log import LogEntry, LogKind, LogQuery
from scheduling.errors import RecordingNotFound
from scheduling.models import Meeting
from scheduling.recordings import Recording, RecordingStatus
from web import keys
from web.api import Api, Call
from web.auth import ANY_STAFF, Access, Principal
from web.endpoints.meeting_schemas import MAX_KEY, key_of, viewer_of
from web.problems import ApiError, register_error
from web.schemas import Page, PageQuery

_T = "conferences"
RECORDS = Access(roles=ANY_STAFF)
MKV = "video/x-matroska"
OPERATORS = (Role.ADMIN, Role.SECRETARIAT)


class RecordsQuery(PageQuery):
    occurrence: int | None = Field(
        None, ge=0, le=MAX_KEY, description="Only this occurrence (its key, Unix seconds)."
    )


class LogQueryIn(RecordsQuery):
    kind: Literal["chat", "control"] | None = Field(None, description="Only chat or controls.")


class ChatMessageOut(BaseModel):
    id: int
    occurrence: int = Field(description="The occurrence's key (RECURRENCE-ID, Unix seconds).")
    sent_at: datetime
    from_identity: str = Field(description='"person:12", "guest:…", "terminal:3"')
    from_name: str
    to_identity: str | None = Field(description="The recipient of a private message.")
    to_name: str | None
    private: bool
    text: str


class LogEntryOut(BaseModel):
    id: int
    occurrence: int
    at: datetime
    kind: Literal["chat", "control"]
    actor_identity: str = Field(description='Who: "person:12", …; "operator" over REST.')
    actor_name: str
    action: str | None = Field(description="A control: mute, mute_all, remove, lock, …")
    target_identity: str | None
    target_name: str | None
    text: str | None
    private: bool


class RecordingOut(BaseModel):
    id: int
    meeting_id: int
    occurrence: int
    conference: str
    status: RecordingStatus
    started_by: str
    started_by_name: str
    started_at: datetime
    stopped_at: datetime | None
    duration_s: float | None
    bytes: int | None
    download_url: str | None = Field(description="The Matroska file, once ready.")
    participants: dict[str, Any] = Field(description="Participant id → identity, name, kind.")
    manifest: dict[str, Any] | None = Field(
        description="The engine's manifest: per-track files, codecs, offsets."
    )


def may_see_records(who: Principal, meeting: Meeting) -> bool:
    """Administrators, the secretariat, the meeting's organiser and its chair."""
    if who.role in OPERATORS:
        return True
    return who.person_id is not None and who.person_id in (meeting.organiser_id, meeting.chair_id)


async def meeting_for_records(call: Call[Any, Any], meeting_id: int) -> Meeting:
    """The meeting if the caller may see its records: 404 if unseen, 403 if not theirs."""
    meeting = await call.app[keys.MEETINGS].get(meeting_id, viewer_of(call.who))
    if not may_see_records(call.who, meeting):
        raise ApiError(
            403, "forbidden",
            "only administrators, the secretariat and the meeting's organiser or chair see "
            "its chat, log and recordings",
        )  # fmt: skip
    return meeting


def _occurrence(key: int | None) -> datetime | None:
    return datetime.fromtimestamp(key, UTC) if key is not None else None


def chat_out(row: LogEntry) -> ChatMessageOut:
    return ChatMessageOut(
        id=row.id, occurrence=key_of(row.recurrence_id), sent_at=row.at,
        from_identity=row.actor_identity, from_name=row.actor_name,
        to_identity=row.target_identity, to_name=row.target_name, private=row.private,
        text=row.text or "",
    )  # fmt: skip


def entry_out(row: LogEntry) -> LogEntryOut:
    return LogEntryOut(
        id=row.id, occurrence=key_of(row.recurrence_id), at=row.at, kind=row.kind.value,
        actor_identity=row.actor_identity, actor_name=row.actor_name, action=row.action,
        target_identity=row.target_identity, target_name=row.target_name, text=row.text,
        private=row.private,
    )  # fmt: skip


def recording_out(row: Recording) -> RecordingOut:
    ready = row.status == RecordingStatus.READY
    return RecordingOut(
        id=row.id, meeting_id=row.meeting_id, occurrence=key_of(row.recurrence_id),
        conference=row.conference, status=row.status, started_by=row.started_by,
        started_by_name=row.started_by_name, started_at=row.started_at,
        stopped_at=row.stopped_at, duration_s=row.duration_s, bytes=row.bytes,
        download_url=f"/api/v1/recordings/{row.id}/file" if ready else None,
        participants=row.participants or {}, manifest=row.manifest,
    )  # fmt: skip


async def _recording(call: Call[Any, Any]) -> Recording:
    """The recording if the caller may see its meeting's records (else 404 / 403)."""
    row = await call.app[keys.RECORDINGS].get(call.path["id"])
    await meeting_for_records(call, row.meeting_id)
    return row


def register(api: Api) -> None:
    register_error(RecordingNotFound, 404)
    route = api.route

    async def log_page(
        call: Call[None, Any], kinds: tuple[LogKind, ...]
    ) -> tuple[list[LogEntry], int]:
        await meeting_for_records(call, call.path["id"])
        q = call.query
        rows, total = await call.app[keys.CONFERENCE_LOG].entries(
            LogQuery(
                meeting_id=call.path["id"], kinds=kinds,
                recurrence_id=_occurrence(q.occurrence),
                include_private=call.who.role in OPERATORS, limit=q.limit, offset=q.offset,
            )
        )  # fmt: skip
        return list(rows), total

    @route("GET", "/meetings/{id}/chat", summary="Chat of a meeting's conferences",
           access=RECORDS, tag=_T, query=RecordsQuery, response=Page[ChatMessageOut],
           errors=(403, 404))  # fmt: skip
    async def meeting_chat(call: Call[None, RecordsQuery]) -> Page[ChatMessageOut]:
        """Oldest first. Private messages only for administrators and the secretariat."""
        rows, total = await log_page(call, (LogKind.CHAT,))
        q = call.query
        return Page[ChatMessageOut](
            items=[chat_out(r) for r in rows], total=total, limit=q.limit, offset=q.offset
        )

    @route("GET", "/meetings/{id}/conference-log",
           summary="Chair controls and chat of a meeting's conferences", access=RECORDS,
           tag=_T, query=LogQueryIn, response=Page[LogEntryOut], errors=(403, 404))  # fmt: skip
    async def conference_log(call: Call[None, LogQueryIn]) -> Page[LogEntryOut]:
        """Who muted, removed, admitted, locked, recorded… and when, oldest first."""
        q = call.query
        kinds = (LogKind(q.kind),) if q.kind else (LogKind.CHAT, LogKind.CONTROL)
        rows, total = await log_page(call, kinds)
        return Page[LogEntryOut](
            items=[entry_out(r) for r in rows], total=total, limit=q.limit, offset=q.offset
        )

    @route("GET", "/meetings/{id}/recordings", summary="Recordings of a meeting",
           access=RECORDS, tag=_T, response=list[RecordingOut], errors=(403, 404))  # fmt: skip
    async def meeting_recordings(call: Call[None, None]) -> list[RecordingOut]:
        """Newest first, including those under way (`recording`) and `failed` ones."""
        await meeting_for_records(call, call.path["id"])
        rows = await call.app[keys.RECORDINGS].of_meeting(call.path["id"])
        return [recording_out(r) for r in rows]

    @route("GET", "/recordings/{id}", summary="A recording's metadata", access=RECORDS,
           tag=_T, response=RecordingOut, errors=(403, 404))  # fmt: skip
    async def get_recording(call: Call[None, None]) -> RecordingOut:
        return recording_out(await _recording(call))

    @route("GET", "/recordings/{id}/file", summary="Download a recording (Matroska)",
           access=RECORDS, tag=_T, errors=(403, 404, 409), produces=MKV)  # fmt: skip
    async def download_recording(call: Call[None, None]) -> web.StreamResponse:
        """The combined `recording.mkv` (every track, as recorded, no re-encoding), as an
        attachment; supports `Range`. 409 `recording_not_ready` while it is recorded."""
        row = await _recording(call)
        if row.status == RecordingStatus.RECORDING:
            raise ApiError(409, "recording_not_ready", "the recording is still under way")
        path = row.file
        if path is None or not await asyncio.to_thread(path.is_file):
            raise ApiError(404, "not_found", "this recording has no file (it failed)")
        name = f"meeting-{row.meeting_id}-recording-{row.id}.mkv"
        return web.FileResponse(
            path,
            headers={
                "Content-Type": MKV,
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
            },
        )
