"""Starting and stopping the recording of a conference, between the chair, ``web`` and the engine.

``hooks.open_recording`` (web) creates the recording's row and directory; the engine writes
the forwarded media there without re-encoding; when the recording stops — because the chair
stopped it or because the last participant left — the engine emits ``recording_stopped``
with the manifest and ``hooks.close_recording`` hears it, exactly once per recording.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from media import MediaEngine, MediaError
from media.messages import RecordingManifest
from signaling.conference import LiveConference, Recording
from signaling.errors import ControlRefused
from signaling.hooks import ConferenceHooks, ParticipantRef, RecordingTarget

log = logging.getLogger(__name__)


class Recorder:
    """Recording of every conference of a hub; ``on_change(conference)`` after each start/stop."""

    def __init__(
        self,
        engine: MediaEngine,
        hooks: ConferenceHooks,
        spawn: Callable[[Awaitable[None]], object],
        on_change: Callable[[LiveConference], None],
    ) -> None:
        self._engine = engine
        self._hooks = hooks
        self._spawn = spawn
        self._on_change = on_change

    async def start(self, conference: LiveConference, by: ParticipantRef | None) -> None:
        """Record ``conference`` from now on; :class:`ControlRefused` if it cannot."""
        open_recording = self._hooks.open_recording
        if open_recording is None:
            raise ControlRefused("recording is not available on this server", code="unavailable")
        if conference.recording is not None or conference.recording_pending:
            raise ControlRefused("the conference is being recorded already")
        conference.recording_pending = True
        try:
            try:
                target = await open_recording(conference.id, by, conference.meta)
            except Exception:
                log.exception("could not open a recording of %s", conference.id)
                raise ControlRefused(
                    "the recording could not be started", code="unavailable"
                ) from None
            try:
                await self._engine.start_recording(conference.id, target.directory)
            except MediaError as exc:
                log.warning("the engine did not start recording %s: %s", conference.id, exc)
                self._close(target, self._empty_manifest(target), {})
                raise ControlRefused(str(exc), code="unavailable") from None
        finally:
            conference.recording_pending = False
        participants = {s.id: s.ref() for s in conference.members.values()}
        conference.recording = Recording(target, by, participants=participants)
        log.info("recording %s into %s (%s)", conference.id, target.directory, target.id)
        self._on_change(conference)

    async def stop(self, conference: LiveConference) -> None:
        if conference.recording is None:
            raise ControlRefused("the conference is not being recorded")
        try:
            manifest = await self._engine.stop_recording(conference.id)
        except MediaError as exc:
            raise ControlRefused(str(exc), code="unavailable") from None
        if manifest is not None:
            self.finished(conference, manifest)
        elif conference.recording is not None:
            # The engine was not recording (any more) and said nothing: keep no ghost.
            log.warning("the engine had no recording of %s to stop", conference.id)
            target = conference.recording.target
            conference.recording = None
            self._close(target, self._empty_manifest(target), {})
            self._on_change(conference)

    def finished(self, conference: LiveConference, manifest: RecordingManifest) -> None:
        """The engine stopped recording ``conference`` (idempotent: the first call wins)."""
        recording = conference.recording
        if recording is None:
            return
        conference.recording = None
        known = recording.participants
        participants = {
            t["participant"]: known.get(t["participant"])
            or ParticipantRef(t["participant"], "", "", "", "")
            for t in manifest["tracks"]
        }
        log.info(
            "recording %s of %s stopped: %d tracks, %d bytes",
            recording.target.id,
            conference.id,
            len(manifest["tracks"]),
            manifest["bytes"],
        )
        self._close(recording.target, manifest, participants)
        self._on_change(conference)

    def _close(
        self,
        target: RecordingTarget,
        manifest: RecordingManifest,
        participants: dict[str, ParticipantRef],
    ) -> None:
        close_recording = self._hooks.close_recording
        if close_recording is None:
            return

        async def close() -> None:
            try:
                await close_recording(target, manifest, participants)
            except Exception:
                log.exception("closing recording %s failed", target.id)

        self._spawn(close())

    @staticmethod
    def _empty_manifest(target: RecordingTarget) -> RecordingManifest:
        """What ``close_recording`` gets for a recording that never started: no tracks."""
        now = datetime.now(UTC).isoformat()
        return RecordingManifest(
            directory=target.directory,
            file="recording.mkv",
            started_at=now,
            stopped_at=now,
            duration_s=0.0,
            bytes=0,
            tracks=[],
        )


__all__ = ["Recorder", "Recording"]
