"""A live conference: its participants, who receives whose tracks, and who is speaking."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from media.config import MediaConfig
from media.errors import InvalidRequest, NegotiationError
from media.messages import (
    DEFAULT_SOURCE,
    ActiveSpeakerEvent,
    MediaEvent,
    MediaKind,
    OfferMessage,
    TrackMutedEvent,
    TrackPublishedEvent,
    TrackSource,
    TrackUnpublishedEvent,
)
from media.participant import Participant
from media.publication import PublishedTrack
from media.recording import ConferenceRecorder
from media.speaker import ActiveSpeakerDetector
from media.viewers import feed_viewers

logger = logging.getLogger(__name__)


class Conference:
    """Participants of one conference; every published track goes to every other one."""

    def __init__(self, conference_id: str, config: MediaConfig, emit: Callable[[MediaEvent], None]):
        self.id = conference_id
        self.participants: dict[str, Participant] = {}
        self._emit = emit
        self.recorder: ConferenceRecorder | None = None
        """Set while the conference is recorded: it taps every track published."""
        self.speaker = ActiveSpeakerDetector(
            threshold=config.speaker_threshold,
            margin=config.speaker_margin,
            hold=config.speaker_hold,
            smoothing=config.speaker_smoothing,
        )

    def published_tracks(self, *, excluding: str | None = None) -> list[PublishedTrack]:
        return [
            track
            for participant in self.participants.values()
            if participant.id != excluding
            for track in participant.inbound.values()
            if track.published
        ]

    def add(self, participant: Participant) -> None:
        """Register a newcomer and subscribe it to everything already published."""
        self.participants[participant.id] = participant
        if participant.subscribes:
            for track in self.published_tracks(excluding=participant.id):
                participant.subscribe(track)

    def feed_viewers(self) -> None:
        """Re-point WHEP viewers' fixed m-lines (see :mod:`media.viewers`)."""
        feed_viewers(self.participants, self.speaker.speaker)

    def offer_message(self, participant: Participant, sdp: str) -> OfferMessage:
        return OfferMessage(
            type="offer",
            conference=self.id,
            participant=participant.id,
            sdp=sdp,
            tracks=participant.track_infos(),
        )

    async def renegotiate(self, participant: Participant) -> None:
        """Send ``participant`` a new offer now, or after its pending answer."""
        if not participant.needs_offer:
            return
        try:
            sdp = await participant.create_offer()
        except NegotiationError:
            logger.warning("cannot renegotiate with %s", participant.id, exc_info=True)
            return
        if sdp is not None:
            self._emit(self.offer_message(participant, sdp))

    async def renegotiate_all(self, participants: list[Participant]) -> None:
        await asyncio.gather(*(self.renegotiate(p) for p in participants))

    async def update_publications(
        self, participant: Participant, sending: list[TrackSource]
    ) -> None:
        """After an answer: start or stop forwarding what ``participant`` sends, per source."""
        if participant.closed or self.participants.get(participant.id) is not participant:
            return  # left (or was replaced) while its answer was being applied
        changed: list[Participant] = []
        for source, track in participant.inbound.items():
            if source in sending and not track.published:
                track.published = True
                if self.recorder is not None:
                    self.recorder.add(track)
                for other in self.participants.values():
                    if other is not participant and not other.closed and other.subscribes:
                        other.subscribe(track)
                        changed.append(other)
                self._emit(
                    TrackPublishedEvent(
                        type="track_published",
                        conference=self.id,
                        participant=participant.id,
                        kind=track.kind,
                        source=source,
                    )
                )
            elif source not in sending and track.published:
                changed.extend(self._unpublish(track))
        self.feed_viewers()
        await self.renegotiate_all(list({id(p): p for p in changed}.values()))

    def _unpublish(self, track: PublishedTrack) -> list[Participant]:
        """Stop forwarding ``track``; returns the subscribers that need a new offer."""
        track.published = False
        if self.recorder is not None:
            self.recorder.remove(track)
        changed: list[Participant] = []
        for forwarder in track.detach_all():
            for other in self.participants.values():
                # A viewer's m-lines stay as negotiated; feed_viewers re-points them.
                if forwarder in other.forwarders and not other.closed and other.subscribes:
                    other.unsubscribe(forwarder)
                    changed.append(other)
        self._emit(
            TrackUnpublishedEvent(
                type="track_unpublished",
                conference=self.id,
                participant=track.publisher,
                kind=track.kind,
                source=track.source,
            )
        )
        return changed

    async def set_screen_share(self, participant: Participant, sharing: bool) -> None:
        """Open or close ``participant``'s screen uplink and re-offer (no-op if unchanged).

        Publishing follows the answer (:meth:`update_publications`); a stop unpublishes at
        once, so subscribers lose the screen even before the sharer answers.
        """
        if not participant.set_screen_share(sharing):
            return
        changed = [participant]
        track = participant.inbound.get("screen")
        if not sharing and track is not None and track.published:
            changed.extend(self._unpublish(track))
            self.feed_viewers()
        await self.renegotiate_all(list({id(p): p for p in changed}.values()))

    async def remove(self, participant: Participant) -> None:
        """Take ``participant`` out: its tracks stop everywhere, then its connection closes."""
        if self.participants.get(participant.id) is not participant:
            return
        del self.participants[participant.id]
        changed: list[Participant] = []
        for track in participant.inbound.values():
            if track.published:
                changed.extend(self._unpublish(track))
        # Forwarders of this participant are attached to other participants' tracks.
        for forwarder in participant.forwarders:
            for other in self.participants.values():
                for track in other.inbound.values():
                    track.detach(forwarder)
        if self.speaker.remove(participant.id, time.monotonic()):
            self._emit_speaker()
        self.feed_viewers()
        await participant.close()
        await self.renegotiate_all(list({id(p): p for p in changed}.values()))

    def set_muted(self, participant: Participant, kind: MediaKind, muted: bool) -> None:
        """Stop or resume forwarding the participant's microphone (audio) or camera (video)."""
        source = DEFAULT_SOURCE[kind]
        track = participant.inbound.get(source)
        if track is None:
            raise InvalidRequest(f"{participant.id} has no {source} to mute")
        if track.muted == muted:
            return
        track.muted = muted
        if muted and kind == "audio" and self.speaker.remove(participant.id, time.monotonic()):
            self._emit_speaker()
        if not muted:
            for forwarder in track.forwarders:
                forwarder.waiting_keyframe = True
        self._emit(
            TrackMutedEvent(
                type="track_muted",
                conference=self.id,
                participant=participant.id,
                kind=kind,
                source=source,
                muted=muted,
            )
        )

    def on_audio_level(self, participant_id: str, level: int, now: float) -> None:
        if self.speaker.add(participant_id, level, now):
            self._emit_speaker()

    def _emit_speaker(self) -> None:
        self.feed_viewers()
        self._emit(
            ActiveSpeakerEvent(
                type="active_speaker", conference=self.id, participant=self.speaker.speaker
            )
        )
