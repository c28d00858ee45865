"""REST endpoints for operators (administrators, the secretariat): live conferences, their
participants and media quality, and chair controls over REST.

``POST /conferences/{conference}/control`` does what a chair does in the conference (mute,
remove, lock, admit from the lobby, record, end…), as the operator; everyone in the
conference sees it (``controlled``, ``by`` null, ``by_name`` the operator's email) and it is
kept in the conference log. See signaling/PROTOCOL.md for each action.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from media import MediaError
from rooms.models import Account, Role
from signaling.errors import ControlRefused
from web import keys
from web.api import Api, Call, Schema
from web.auth import Access
from web.conference import HUB
from web.problems import ApiError

LIVE_VIEW = Access(roles=frozenset({Role.ADMIN, Role.SECRETARIAT}))
OPERATOR = LIVE_VIEW
# ControlRefused codes → HTTP (anything else: 409, the action does not apply now)
_REFUSED = {"not_found": 404, "forbidden": 403, "rate_limited": 429, "unavailable": 422}

ControlAction = Literal[
    "mute", "mute_all", "request_unmute", "stop_video", "remove", "lock", "unlock", "end",
    "admit", "refuse", "lower_hand", "record_start", "record_stop",
]  # fmt: skip


class ControlIn(Schema):
    action: ControlAction = Field(description="As the chair's `control` message.")
    participant: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None,
        description="The participant id (a lobby entry id for admit/refuse); null for "
        "mute_all, lock, unlock, end, record_start, record_stop.",
    )


class HandOut(BaseModel):
    participant: str
    name: str
    raised_at: str


class LobbyEntryOut(BaseModel):
    id: str
    name: str
    kind: str
    since: str


class ConferenceStateOut(BaseModel):
    """What the chair controls, now."""

    live: bool
    locked: bool
    recording: bool
    hands: list[HandOut] = Field(description="Raised hands, oldest first.")
    lobby: list[LobbyEntryOut] = Field(description="Who waits to be admitted.")


class MediaQuality(BaseModel):
    """A quality sample of one participant's connection (loss as a fraction 0..1)."""

    connection_state: str
    rtt_ms: float | None
    bitrate_in_bps: int
    bitrate_out_bps: int
    packet_loss_in: float
    packet_loss_out: float | None
    inbound: list[dict[str, Any]] = Field(description="Per track the participant sends.")
    outbound: list[dict[str, Any]] = Field(description="Per track forwarded to them.")


class LiveParticipant(BaseModel):
    id: str
    name: str
    kind: str
    role: str
    audio_muted: bool
    video_muted: bool
    published: list[str]
    state: str = Field("connected", description="connected, or reconnecting (network lost)")
    quality: MediaQuality | None


class LiveConference(BaseModel):
    id: str = Field(description="meeting id @ occurrence start (UTC)")
    meeting_id: int | None
    participants: list[LiveParticipant]
    active_speaker: str | None
    state: ConferenceStateOut


def register(api: Api) -> None:
    @api.route(
        "GET",
        "/conferences",
        summary="Live conferences with participants and quality",
        access=LIVE_VIEW,
        tag="conferences",
        response=list[LiveConference],
    )
    async def list_conferences(call: Call[None, None]) -> list[LiveConference]:
        hub = call.app[HUB]
        result = []
        for conference, participants in sorted(hub.conferences().items()):
            live = []
            for info in participants:
                quality = None
                with contextlib.suppress(MediaError):
                    sample = await hub.engine.stats(info["id"])
                    quality = MediaQuality.model_validate(
                        {k: v for k, v in sample.items() if k in MediaQuality.model_fields}
                    )
                live.append(LiveParticipant(**info, quality=quality))
            head = conference.split("@", 1)[0]
            result.append(
                LiveConference(
                    id=conference,
                    meeting_id=int(head) if head.isdigit() else None,
                    participants=live,
                    active_speaker=hub.engine.active_speaker(conference),
                    state=ConferenceStateOut.model_validate(hub.state(conference)),
                )
            )
        return result

    @api.route("POST", "/conferences/{conference}/control",
               summary="Do a chair's control in a live conference, as an operator",
               access=OPERATOR, tag="conferences", body=ControlIn, response=ConferenceStateOut,
               errors=(404, 409, 422, 429), text_params=("conference",),
               body_example={"action": "mute", "participant": "3f9a1c2b7d10"})  # fmt: skip
    async def control_conference(call: Call[ControlIn, None]) -> ConferenceStateOut:
        """`conference` is a live conference's id (`GET /conferences`). 404 `not_found`: no
        such live conference, participant or lobby entry; 409 `invalid_request`: the
        action does not apply now (e.g. a participant for `lock`, recording twice); 422
        `unavailable`: e.g. recording is not possible on this server. Answers the
        conference's state afterwards."""
        conference = call.request.match_info["conference"]
        hub = call.app[HUB]
        async with call.app[keys.DATABASE].read() as session:
            account = await session.get(Account, call.who.account_id)
        operator = account.email if account is not None else call.who.label
        try:
            await hub.control(
                conference, call.body.action, call.body.participant, operator=operator
            )
        except ControlRefused as exc:
            raise ApiError(_REFUSED.get(exc.code, 409), exc.code, exc.message) from None
        return ConferenceStateOut.model_validate(hub.state(conference))
