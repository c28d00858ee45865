"""The hub's hooks into the database: chat and chair controls kept, recordings stored.

:func:`install` builds the :class:`~signaling.hooks.ConferenceHooks` that
:mod:`web.conference` hands the hub:

- ``on_activity``: every chat message and chair control becomes a row of the conference
  log (:mod:`scheduling.conference_log`); a conference that is not a meeting's occurrence
  (its id is not ``<meeting>@<start>``) keeps nothing. A failure is logged, never raised
  into the hub: losing a log row must not break the conference.
- ``open_recording``: a ``recordings`` row in state ``recording`` and its directory
  ``<SUIMEET_RECORDINGS_DIR>/<id>/`` (default ``DATA_DIR/recordings``), where the engine
  writes the files.
- ``close_recording``: the engine's manifest is kept; the row becomes ``ready``, or
  ``failed`` when nothing was recorded (no track, or an empty or missing
  ``recording.mkv``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from scheduling.admission import parse_conference
from scheduling.conference_log import ConferenceLog, LogEntry, LogKind
from scheduling.recordings import Recordings
from signaling.hooks import Activity, ConferenceHooks, ParticipantRef, RecordingTarget
from web import keys

if TYPE_CHECKING:
    from media.messages import RecordingManifest

log = logging.getLogger(__name__)

OPERATOR = "operator"  # the identity kept for an administrator acting over REST


def occurrence_of(conference: str, meta: Mapping[str, Any]) -> tuple[int, datetime] | None:
    """The meeting and occurrence of a conference: from its id, else from a grant's meta."""
    parsed = parse_conference(conference)
    if parsed is not None:
        return parsed
    meeting_id, recurrence_id = meta.get("meeting_id"), meta.get("recurrence_id")
    if isinstance(meeting_id, int) and isinstance(recurrence_id, datetime):
        return meeting_id, recurrence_id
    return None


def entry_of(activity: Activity) -> LogEntry | None:
    """The log row of one activity (None: not a meeting's conference)."""
    meta = activity.actor.meta if activity.actor is not None else {}
    found = occurrence_of(activity.conference, meta)
    if found is None:
        return None
    meeting_id, recurrence_id = found
    if activity.actor is not None:
        actor_identity, actor_name = activity.actor.identity, activity.actor.name
    else:
        actor_identity, actor_name = OPERATOR, activity.operator_name or OPERATOR
    target = activity.target
    return LogEntry(
        meeting_id=meeting_id, recurrence_id=recurrence_id, at=activity.at,
        kind=LogKind(activity.kind), actor_identity=actor_identity[:100],
        actor_name=actor_name[:200],
        target_identity=target.identity[:100] if target is not None else None,
        target_name=target.name[:200] if target is not None else None,
        action=activity.action, text=activity.text,
        private=activity.kind == "chat" and target is not None,
    )  # fmt: skip


class Hooks:
    """The hook implementations over the conference log and the recordings."""

    def __init__(self, conference_log: ConferenceLog, recordings: Recordings) -> None:
        self.conference_log = conference_log
        self.recordings = recordings

    async def on_activity(self, activity: Activity) -> None:
        try:
            entry = entry_of(activity)
            if entry is not None:
                await self.conference_log.record(entry)
        except Exception:
            log.exception("could not keep a %s of %s", activity.kind, activity.conference)

    async def open_recording(
        self, conference: str, started_by: ParticipantRef | None, meta: Mapping[str, Any]
    ) -> RecordingTarget:
        found = occurrence_of(conference, meta)
        if found is None:
            raise ValueError(f"{conference!r} is not a meeting's conference")
        by, by_name = (
            (started_by.identity, started_by.name) if started_by is not None else (OPERATOR,) * 2
        )
        row = await self.recordings.open(found[0], found[1], conference, by, by_name)
        try:
            await asyncio.to_thread(Path(row.directory).mkdir, parents=True, exist_ok=False)
        except OSError:
            await self.recordings.fail(row.id)
            raise
        log.info("recording %s of %s into %s", row.id, conference, row.directory)
        return RecordingTarget(id=str(row.id), directory=row.directory)

    async def close_recording(
        self,
        target: RecordingTarget,
        manifest: RecordingManifest,
        participants: Mapping[str, ParticipantRef],
    ) -> None:
        try:
            ok = manifest["tracks"] != [] and manifest["bytes"] > 0
            combined = Path(target.directory) / manifest["file"]
            ok = ok and await asyncio.to_thread(combined.is_file)
            who = {
                pid: {"identity": p.identity, "name": p.name, "kind": p.kind, "role": p.role}
                for pid, p in participants.items()
            }
            row = await self.recordings.close(int(target.id), dict(manifest), who, ok=bool(ok))
            log.info("recording %s is %s (%s bytes)", row.id, row.status.value, row.bytes)
        except Exception:
            log.exception("could not close recording %s", target.id)


def install(app: web.Application) -> ConferenceHooks:
    """Create the conference log and the recordings (app keys) and the hooks over them."""
    db = app[keys.DATABASE]
    app[keys.CONFERENCE_LOG] = ConferenceLog(db)
    app[keys.RECORDINGS] = Recordings(db, app[keys.SETTINGS].effective_recordings_dir)
    hooks = Hooks(app[keys.CONFERENCE_LOG], app[keys.RECORDINGS])
    return ConferenceHooks(
        on_activity=hooks.on_activity,
        open_recording=hooks.open_recording,
        close_recording=hooks.close_recording,
    )
