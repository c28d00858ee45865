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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from media.participant import Participant
from media.publication import PublishedTrack

logger = logging.getLogger(__name__)


def _publishes(participant: Participant | None) -> bool:
    return participant is not None and any(t.published for t in participant.inbound.values())


def choose_source(
    viewer: Participant, participants: Mapping[str, Participant], speaker: str | None
) -> Participant | None:
    """The participant whose media the viewer should receive now (None: nobody publishes)."""
    others = {pid: p for pid, p in participants.items() if p is not viewer and not p.closed}
    for wanted in (viewer.follow, speaker, viewer.view_source):
        if wanted is not None and _publishes(others.get(wanted)):
            return others[wanted]
    for kind in ("video", "audio"):
        for participant in others.values():
            track = participant.inbound.get(kind)
            if track is not None and track.published:
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
            track = source.inbound.get(forwarder.kind) if source is not None else None
            if track is not None and not track.published:
                track = None
            current = forwarder.source
            if current is track:
                continue
            if isinstance(current, PublishedTrack):
                current.detach(forwarder)
            if track is not None:
                # attach() makes the forwarder wait for a keyframe, which the new source's
                # packet path requests (PLI) with its next packet.
                track.attach(forwarder)
