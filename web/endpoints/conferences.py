"""REST endpoints for administrators: live conferences, their participants and media quality."""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import BaseModel, Field

from media import MediaError
from rooms.models import Role
from web.api import Api, Call
from web.auth import Access
from web.conference import HUB

LIVE_VIEW = Access(roles=frozenset({Role.ADMIN, Role.SECRETARIAT}))


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
    quality: MediaQuality | None


class LiveConference(BaseModel):
    id: str = Field(description="meeting id @ occurrence start (UTC)")
    meeting_id: int | None
    participants: list[LiveParticipant]
    active_speaker: str | None


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
                )
            )
        return result
