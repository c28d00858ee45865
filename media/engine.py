"""The SFU engine: conferences of participants, driven by plain-data messages.

The signalling layer calls :meth:`MediaEngine.join` and relays the returned offer, then
passes the participant's answer and ICE candidates back in; everything the engine has to
say later (re-offers, published tracks, active speaker, connection state) arrives through
the ``on_event`` callback as plain dicts (:mod:`media.messages`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from media.conference import Conference
from media.config import MediaConfig
from media.errors import EngineClosed, InvalidRequest, NegotiationError, UnknownParticipant
from media.ice import install_host_address_override
from media.messages import (
    MEDIA_KINDS,
    SOURCE_KIND,
    AnswerMessage,
    ConnectionStateEvent,
    IceCandidate,
    LeaveReason,
    MediaEvent,
    MediaKind,
    OfferMessage,
    ParticipantLeftEvent,
    ParticipantMode,
    ParticipantStats,
    RecordingManifest,
    RecordingStoppedEvent,
)
from media.participant import Participant
from media.recording import ConferenceRecorder
from media.stats import participant_stats

logger = logging.getLogger(__name__)


class MediaEngine:
    """Forwards every participant's audio and video to the others in its conference.

    Participant ids are unique across the engine. All methods must be called from the
    event loop that runs the engine.
    """

    def __init__(
        self,
        config: MediaConfig | None = None,
        on_event: Callable[[MediaEvent], None] | None = None,
    ) -> None:
        self.config = config or MediaConfig()
        self._on_event = on_event
        self._conferences: dict[str, Conference] = {}
        self._participants: dict[str, Participant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        if self.config.host_addresses is not None:
            install_host_address_override()

    # -- messages in ---------------------------------------------------------------

    async def join(self, conference_id: str, participant_id: str) -> OfferMessage:
        """Create the participant's connection and return the server's first offer.

        A participant id already connected is replaced (its old connection closes).
        """
        conference, participant = await self._new_participant(conference_id, participant_id, "full")
        try:
            sdp = await participant.create_offer()
        except NegotiationError:
            await self._leave(participant_id, "failed")
            raise
        if sdp is None or participant.closed:
            raise UnknownParticipant(participant_id)
        logger.info("%s joined conference %s", participant_id, conference_id)
        return conference.offer_message(participant, sdp)

    async def join_with_offer(
        self,
        conference_id: str,
        participant_id: str,
        offer_sdp: str,
        mode: ParticipantMode,
        *,
        follow: str | None = None,
    ) -> AnswerMessage:
        """Admit a client that offers first and never renegotiates; return the answer.

        ``mode="publish"`` (WHIP): what the offer sends is published to everyone, and the
        client receives nothing. ``mode="view"`` (WHEP): the offer's recvonly m-lines are
        fed by one publisher at a time, ``follow`` if given and publishing, else the
        active speaker (see :mod:`media.viewers`). A connected id is replaced.
        """
        if mode not in ("publish", "view"):
            raise InvalidRequest("an offer-first client publishes or views")
        conference, participant = await self._new_participant(conference_id, participant_id, mode)
        participant.follow = follow
        try:
            sdp, sending = await participant.accept_offer(offer_sdp)
        except NegotiationError:
            await self._leave(participant_id, "failed")
            raise
        if participant.closed:
            raise UnknownParticipant(participant_id)
        if mode == "publish":
            await conference.update_publications(participant, sending)
            kinds = [SOURCE_KIND[source] for source in sending]
        else:
            conference.feed_viewers()
            kinds = [f.kind for f in participant.forwarders if f.mid is not None]
        logger.info("%s joined conference %s to %s", participant_id, conference_id, mode)
        return AnswerMessage(
            type="answer", conference=conference_id, participant=participant_id, sdp=sdp,
            kinds=kinds,
        )  # fmt: skip

    def set_view_source(self, participant_id: str, publisher: str | None) -> None:
        """Make a viewer follow ``publisher`` (None: the active speaker again)."""
        participant = self._get(participant_id)
        if participant.mode != "view":
            raise InvalidRequest(f"{participant_id} is not a viewer")
        participant.follow = publisher
        self._conferences[participant.conference_id].feed_viewers()

    def view_source(self, participant_id: str) -> str | None:
        """The publisher a viewer receives now (None: nobody publishes)."""
        return self._get(participant_id).view_source

    async def answer(self, participant_id: str, sdp: str) -> None:
        """Apply the participant's answer to the last offer; may trigger re-offers."""
        participant = self._get(participant_id)
        conference = self._conferences[participant.conference_id]
        sending = await participant.apply_answer(sdp)
        await conference.update_publications(participant, sending)
        await conference.renegotiate(participant)

    async def add_ice_candidate(self, participant_id: str, candidate: IceCandidate | None) -> None:
        """Add a trickled candidate (None or an empty candidate: end of candidates)."""
        await self._get(participant_id).add_ice_candidate(candidate)

    async def leave(self, participant_id: str) -> None:
        """Disconnect a participant; unknown ids are ignored (leave is idempotent)."""
        await self._leave(participant_id, "left")

    async def set_screen_share(self, participant_id: str, sharing: bool) -> None:
        """Start or stop receiving the participant's screen share as a second video track.

        ``sharing=True`` adds (or re-enables) a recvonly video m-line with source
        ``"screen"`` and re-offers (the usual ``offer`` event, whose ``tracks`` name that
        m-line); once the answer makes it sendonly, the screen is published to everyone
        like any other track (``track_published`` kind video, source screen).
        ``sharing=False`` unpublishes it, sets the m-line inactive and re-offers. Calling
        it again with the same value does nothing. Only for participants that joined with
        :meth:`join` (WHIP/WHEP clients never renegotiate): InvalidRequest otherwise.
        """
        participant = self._get(participant_id)
        if participant.mode != "full":
            raise InvalidRequest(f"{participant_id} cannot share a screen (offer-first client)")
        conference = self._conferences[participant.conference_id]
        await conference.set_screen_share(participant, sharing)

    async def set_muted(self, participant_id: str, kind: str, muted: bool) -> None:
        """Stop (or resume) forwarding the participant's microphone ("audio") or camera
        ("video") to everyone."""
        if kind not in MEDIA_KINDS:
            raise InvalidRequest(f"unknown media kind {kind!r}")
        participant = self._get(participant_id)
        media_kind: MediaKind = "audio" if kind == "audio" else "video"
        self._conferences[participant.conference_id].set_muted(participant, media_kind, muted)

    # -- recording -----------------------------------------------------------------

    async def start_recording(self, conference_id: str, directory: str) -> None:
        """Record every track of the conference, published now or later, into ``directory``
        (see :mod:`media.recording`) until :meth:`stop_recording` or until the last
        participant leaves. Video publishers are asked for a keyframe. InvalidRequest for
        an unknown conference, one already recorded, or a directory that cannot be made."""
        conference = self._conferences.get(conference_id)
        if conference is None:
            raise InvalidRequest(f"unknown conference {conference_id!r}")
        if conference.recorder is not None:
            raise InvalidRequest(f"conference {conference_id!r} is already recorded")
        recorder = ConferenceRecorder(conference_id, directory)
        recorder.start()
        conference.recorder = recorder
        for track in conference.published_tracks():
            recorder.add(track)

    async def stop_recording(self, conference_id: str) -> RecordingManifest | None:
        """Finish the recording: per-track files, ``recording.mkv`` (a stream per track,
        copied, interleaved) and ``manifest.json``. Returns the manifest (also sent as a
        ``recording_stopped`` event), or None if the conference is not being recorded."""
        conference = self._conferences.get(conference_id)
        if conference is None or conference.recorder is None:
            return None
        return await self._stop_recording(conference)

    def is_recording(self, conference_id: str) -> bool:
        conference = self._conferences.get(conference_id)
        return conference is not None and conference.recorder is not None

    async def _stop_recording(self, conference: Conference) -> RecordingManifest | None:
        recorder, conference.recorder = conference.recorder, None
        if recorder is None:
            return None
        manifest = await recorder.stop()
        self._emit(
            RecordingStoppedEvent(
                type="recording_stopped", conference=conference.id, manifest=manifest
            )
        )
        return manifest

    def _stop_recording_soon(self, conference: Conference) -> None:
        """The conference ended while recorded: finish the files in an engine task."""

        async def stop() -> None:
            await self._stop_recording(conference)

        task = asyncio.get_running_loop().create_task(stop())
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    # -- queries -------------------------------------------------------------------

    async def stats(self, participant_id: str) -> ParticipantStats:
        """A quality sample of one participant (bitrates since the previous sample)."""
        return await participant_stats(self._get(participant_id))

    async def conference_stats(self, conference_id: str) -> list[ParticipantStats]:
        conference = self._conferences.get(conference_id)
        if conference is None:
            return []
        return [await participant_stats(p) for p in list(conference.participants.values())]

    def active_speaker(self, conference_id: str) -> str | None:
        conference = self._conferences.get(conference_id)
        return conference.speaker.speaker if conference else None

    def participants(self, conference_id: str) -> list[str]:
        conference = self._conferences.get(conference_id)
        return list(conference.participants) if conference else []

    def conferences(self) -> list[str]:
        return list(self._conferences)

    # -- lifetime ------------------------------------------------------------------

    async def close(self) -> None:
        """Disconnect everyone and wait for the engine's tasks (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for participant_id in list(self._participants):
            await self._leave(participant_id, "engine_closed")
        # Pending clean-ups (dropped connections) are finite: let them finish.
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    # -- internals -----------------------------------------------------------------

    async def _new_participant(
        self, conference_id: str, participant_id: str, mode: ParticipantMode
    ) -> tuple[Conference, Participant]:
        if self._closed:
            raise EngineClosed("the media engine is closed")
        if not conference_id or not participant_id:
            raise InvalidRequest("conference and participant ids are required")
        if participant_id in self._participants:
            await self._leave(participant_id, "replaced")
        conference = self._conferences.get(conference_id)
        if conference is None:
            conference = self._conferences[conference_id] = Conference(
                conference_id, self.config, self._emit
            )
        participant = Participant(
            conference_id,
            participant_id,
            self.config,
            on_connection_state=self._connection_state_changed,
            on_audio_level=conference.on_audio_level,
            mode=mode,
        )
        self._participants[participant_id] = participant
        conference.add(participant)
        return conference, participant

    def _get(self, participant_id: str) -> Participant:
        participant = self._participants.get(participant_id)
        if participant is None:
            raise UnknownParticipant(participant_id)
        return participant

    def _emit(self, event: MediaEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("media event handler failed on %s", event.get("type"))

    async def _leave(self, participant_id: str, reason: LeaveReason) -> None:
        participant = self._participants.pop(participant_id, None)
        if participant is None:
            return
        conference = self._conferences.get(participant.conference_id)
        if conference is not None:
            await conference.remove(participant)
            if not conference.participants and self._conferences.get(conference.id) is conference:
                del self._conferences[conference.id]
                if conference.recorder is not None:
                    self._stop_recording_soon(conference)
        else:
            await participant.close()
        logger.info("%s left conference %s (%s)", participant_id, participant.conference_id, reason)
        self._emit(
            ParticipantLeftEvent(
                type="participant_left",
                conference=participant.conference_id,
                participant=participant_id,
                reason=reason,
            )
        )

    def _connection_state_changed(self, participant: Participant, state: str) -> None:
        self._emit(
            ConnectionStateEvent(
                type="connection_state",
                conference=participant.conference_id,
                participant=participant.id,
                state=state,
            )
        )
        if state in ("failed", "closed") and self._participants.get(participant.id) is participant:
            reason = cast(LeaveReason, state)
            task = asyncio.get_running_loop().create_task(self._leave(participant.id, reason))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("media engine task failed", exc_info=task.exception())
