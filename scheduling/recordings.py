"""Recordings of conferences: one row per recording, its files in a directory of its own.

The chair starts and stops a recording in the conference; the media engine writes the
forwarded RTP without re-encoding into per-track Matroska files plus one combined
``recording.mkv`` and a ``manifest.json`` (see ``media``). ``web`` calls
:meth:`Recordings.open` when a recording starts (a row in state ``recording`` and the
directory ``<recordings dir>/<id>/``) and :meth:`Recordings.close` when it stops, with the
engine's manifest: the row becomes ``ready`` (``failed`` when nothing was recorded) and
keeps the manifest, the duration, the size of ``recording.mkv`` and who the recorded
participants were. Administrators, the secretariat and the meeting's organiser or chair
download it through ``/api/v1/recordings/{id}/file``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.errors import RecordingNotFound


class RecordingStatus(enum.StrEnum):
    """recording → ready, or failed (nothing was recorded, or the files are missing)."""

    RECORDING = "recording"
    READY = "ready"
    FAILED = "failed"


class Recording(Base):
    """One recording of one occurrence's conference."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    conference: Mapped[str] = mapped_column(String(100))
    # who started it: "person:12", or "operator" for an administrator over REST
    started_by: Mapped[str] = mapped_column(String(100))
    started_by_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[float | None] = mapped_column(Float)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[RecordingStatus] = mapped_column(
        Enum(
            RecordingStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    directory: Mapped[str] = mapped_column(String(500))
    # the engine's manifest.json (files, tracks, offsets) and who each participant was
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    participants: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def file(self) -> Path | None:
        """The combined recording (``recording.mkv``), once the recording is ready."""
        if self.status != RecordingStatus.READY or not self.manifest:
            return None
        return Path(self.directory) / str(self.manifest.get("file") or "recording.mkv")


class Recordings:
    """Rows of recordings: opened when a recording starts, closed when it stops."""

    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = root

    async def open(
        self,
        meeting_id: int,
        recurrence_id: datetime,
        conference: str,
        started_by: str,
        started_by_name: str,
    ) -> Recording:
        """A new row in state ``recording``; its directory is ``root/<id>`` (not created)."""
        async with self.db.write() as session:
            row = Recording(
                meeting_id=meeting_id, recurrence_id=recurrence_id, conference=conference,
                started_by=started_by, started_by_name=started_by_name[:200],
                started_at=utcnow(), status=RecordingStatus.RECORDING, directory="",
            )  # fmt: skip
            session.add(row)
            await session.flush()
            row.directory = str(self.root / str(row.id))
        return row

    async def close(
        self,
        recording_id: int,
        manifest: Mapping[str, Any],
        participants: Mapping[str, Mapping[str, Any]],
        *,
        ok: bool,
    ) -> Recording:
        """Keep the manifest; ``ready`` if ``ok`` (something was recorded), else ``failed``."""
        async with self.db.write() as session:
            row = await session.get(Recording, recording_id, with_for_update=True)
            if row is None:
                raise RecordingNotFound(f"recording {recording_id} does not exist")
            row.manifest = dict(manifest)
            row.participants = {k: dict(v) for k, v in participants.items()}
            row.stopped_at = _when(manifest.get("stopped_at")) or utcnow()
            row.duration_s = float(manifest.get("duration_s") or 0.0)
            row.bytes = int(manifest.get("bytes") or 0)
            row.status = RecordingStatus.READY if ok else RecordingStatus.FAILED
        return row

    async def fail(self, recording_id: int) -> None:
        """Mark a recording failed (its files could not be written)."""
        async with self.db.write() as session:
            row = await session.get(Recording, recording_id, with_for_update=True)
            if row is not None and row.status == RecordingStatus.RECORDING:
                row.status, row.stopped_at = RecordingStatus.FAILED, utcnow()

    async def get(self, recording_id: int) -> Recording:
        async with self.db.read() as session:
            row = await session.get(Recording, recording_id)
        if row is None:
            raise RecordingNotFound(f"recording {recording_id} does not exist")
        return row

    async def of_meeting(self, meeting_id: int) -> Sequence[Recording]:
        """Every recording of a meeting, newest first."""
        async with self.db.read() as session:
            rows = await session.scalars(
                select(Recording)
                .where(Recording.meeting_id == meeting_id)
                .order_by(Recording.started_at.desc(), Recording.id.desc())
            )
            return rows.all()


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
