"""Which publisher feeds each WHEP viewer's fixed m-lines, re-chosen as the conference changes.

A viewer (``mode="view"``) offered once and never renegotiates: it has at most one audio
and one video m-line for the whole session. The SFU switches what flows into them by
re-pointing their forwarders at another publisher's tracks. The forwarder keeps sequence
numbers and timestamps continuous across the switch and waits for a keyframe, which the new
source's packet path asks for (PLI) at once.

The source is the participant the viewer follows (``participant.follow``) while it
publishes; otherwise the active speaker while it publishes; otherwise the current source
while it still publishes (no flapping when the speaker falls silent); otherwise the first
participant that publishes video, then any that publishes audio.

Viewers receive a publisher's camera and microphone only: a screen share is not offered to
them (their single video m-line follows people, not documents).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from media.messages import DEFAULT_SOURCE, MEDIA_KINDS, MediaKind
from media.participant import Participant
from media.publication import PublishedTrack

logger = logging.getLogger(__name__)


def _viewable(participant: Participant, kind: MediaKind) -> PublishedTrack | None:
    """The participant's published microphone (audio) or camera (video), if any."""
    track = participant.inbound.get(DEFAULT_SOURCE[kind])
    return track if track is not None and track.published else None


def _publishes(participant: Participant | None) -> bool:
    return participant is not None and any(_viewable(participant, k) for k in MEDIA_KINDS)


def choose_source(
    viewer: Participant, participants: Mapping[str, Participant], speaker: str | None
) -> Participant | None:
    """The participant whose media the viewer should receive now (None: nobody publishes)."""
    others = {pid: p for pid, p in participants.items() if p is not viewer and not p.closed}
    for wanted in (viewer.follow, speaker, viewer.view_source):
        if wanted is not None and _publishes(others.get(wanted)):
            return others[wanted]
    video_first: tuple[MediaKind, ...] = ("video", "audio")
    for kind in video_first:
        for participant in others.values():
            if _viewable(participant, kind) is not None:
                return participant
    return None


def feed_viewers(participants: Mapping[str, Participant], speaker: str | None) -> None:
    """Point every viewer's m-lines at its chosen source (no-op where nothing changes)."""
    for viewer in participants.values():
        if viewer.mode != "view" or viewer.closed:
            continue
        source = choose_source(viewer, participants, speaker)
        source_id = source.id if source is not None else None
        if source_id != viewer.view_source:
            logger.info("viewer %s now receives %s", viewer.id, source_id)
        viewer.view_source = source_id
        for forwarder in viewer.forwarders:
            track = _viewable(source, forwarder.kind) if source is not None else None
            current = forwarder.source
            if current is track:
                continue
            if isinstance(current, PublishedTrack):
                current.detach(forwarder)
            if track is not None:
                # attach() makes the forwarder wait for a keyframe, which the new source's
                # packet path requests (PLI) with its next packet.
                track.attach(forwarder)
