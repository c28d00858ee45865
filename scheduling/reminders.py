"""Reminders and the life of each occurrence (live, then ended) as persistent jobs.

For `web`, which runs these handlers on the :class:`~scheduling.scheduler.JobScheduler`.
Every occurrence of a meeting gets up to three jobs with deterministic ids:

- ``reminder:<meeting>:<recurrence-id>`` at ``reminder_minutes`` before the start: an
  email to every attendee who has not declined. Sent at most once ever (a row of
  ``sent_reminders``, unique per occurrence, is written in the transaction that queues the
  emails); a reminder that comes due while the server is down is sent late if the
  occurrence has not started yet, and never once it has.
- ``start:<meeting>:<recurrence-id>`` at the start: the meeting becomes ``live``.
- ``end:<meeting>:<recurrence-id>`` at the end: ``ended`` after the last occurrence, else
  ``scheduled`` again; ``on_ended`` is told (the web layer closes the conference).

The database is the truth and jobs are derived from it: :meth:`Lifecycle.reconcile`
(re)creates the jobs of a meeting (or of every upcoming occurrence) after each committed
change, on the scheduler leader's start and every few hours (``sweep``), and removes the
jobs of cancelled or vanished occurrences. Handlers re-read the database and do nothing
when the occurrence moved, was cancelled, or was already handled, so a job that runs twice
or late is harmless. Jobs are created for the occurrences of the next ``horizon`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ForeignKey, Integer, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.aftercommit import after_commit
from scheduling.attendance import occurrence_summary
from scheduling.calendar import load
from scheduling.changes import MeetingChange
from scheduling.events import record_meeting_event
from scheduling.imip import Mailbox, format_time
from scheduling.invitations import MailSettings
from scheduling.links import LinkSigner
from scheduling.mailqueue import enqueue
from scheduling.models import Meeting, MeetingStatus, Occurrence, PartStat
from scheduling.reminder_email import reminder_email
from scheduling.rsvp import OccurrenceReply
from scheduling.scheduler import JobHandler

log = logging.getLogger(__name__)

KINDS = ("reminder", "start", "end")
_STAMP = "%Y%m%dT%H%M%SZ"
# Ended occurrences looked at again: a server down over an end still settles the status.
LOOKBACK = timedelta(days=1)
# A job firing this much before its occurrence's time means the occurrence moved later.
_EARLY = timedelta(seconds=1)


class SentReminder(Base):
    """The reminder of one occurrence was queued: it is never sent again."""

    __tablename__ = "sent_reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    recurrence_id: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("meeting_id", "recurrence_id"),)


class Jobs(Protocol):
    """What reconciling needs of the job scheduler."""

    async def schedule(self, job_id: str, kind: str, run_at: datetime, *args: Any) -> None: ...

    async def cancel(self, job_id: str) -> bool: ...

    async def job_ids(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class JobKey:
    """The parts of a job id ``<kind>:<meeting>:<recurrence-id>``."""

    kind: str
    meeting_id: int
    recurrence_id: datetime

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.meeting_id}:{self.recurrence_id.strftime(_STAMP)}"

    @classmethod
    def parse(cls, job_id: str) -> JobKey | None:
        kind, _, rest = job_id.partition(":")
        meeting, _, stamp = rest.partition(":")
        if kind not in KINDS or not meeting.isdigit():
            return None
        try:
            moment = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(kind, int(meeting), moment)


EndedCallback = Callable[[int, datetime], Awaitable[None]]


class Lifecycle:
    """The job handlers, the reconciler and the change listener of meeting occurrences."""

    def __init__(
        self,
        db: Database,
        jobs: Jobs,
        mail: MailSettings,
        links: LinkSigner,
        *,
        on_mail: Callable[[], None],
        on_ended: EndedCallback | None = None,
        clock: Callable[[], datetime] = utcnow,
        horizon: timedelta = timedelta(days=14),
        sweep_every: timedelta = timedelta(hours=6),
    ) -> None:
        self.db = db
        self.jobs = jobs
        self.mail = mail
        self.links = links
        self.on_mail = on_mail
        self.on_ended = on_ended
        self.clock = clock
        self.horizon = horizon
        self.sweep_every = sweep_every
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def handlers(self) -> dict[str, JobHandler]:
        """The job kinds and their handlers, for the job scheduler."""
        return {
            "reminder": self.remind,
            "start": self.start_occurrence,
            "end": self.end_occurrence,
            "sweep": self.sweep,
        }

    # --- after changes ------------------------------------------------------------------
    async def on_change(self, session: AsyncSession, change: MeetingChange) -> None:
        """The change listener: reconcile the meeting's jobs once the change commits."""
        after_commit(session, lambda: self._spawn(change.meeting_id))

    def _spawn(self, meeting_id: int | None) -> None:
        task = asyncio.get_running_loop().create_task(
            self._reconcile_logged(meeting_id), name=f"reconcile-{meeting_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reconcile_logged(self, meeting_id: int | None) -> None:
        try:
            await self.reconcile(meeting_id)
        except Exception:  # the next sweep or leader start catches up
            log.exception("reconciling the jobs of meeting %s failed", meeting_id)

    async def settled(self) -> None:
        """Wait for the reconciles started so far (tests, orderly shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel reconciles still running (the next leader start redoes them); idempotent."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- reconciling --------------------------------------------------------------------
    async def sweep(self) -> None:
        """Reconcile every upcoming occurrence, then come back in ``sweep_every``."""
        await self.reconcile(None)
        await self.jobs.schedule("sweep", "sweep", self.clock() + self.sweep_every)

    async def reconcile(self, meeting_id: int | None) -> None:
        """Make the stored jobs match the database, for one meeting or for all."""
        async with self._lock:
            now = self.clock()
            existing = [
                key
                for key in map(JobKey.parse, await self.jobs.job_ids())
                if key is not None and meeting_id in (None, key.meeting_id)
            ]
            async with self.db.read() as session:
                wanted = await self._wanted(session, now, meeting_id)
                valid = await _live_occurrences(session, {k.meeting_id for k in existing})
            # The job store writes through its own (synchronous) connection. An open write
            # session that runs no statement holds this process's write turn without
            # locking the database: on SQLite none of our writers can then hold the file
            # lock while the store waits for it (and blocks the event loop meanwhile).
            async with self.db.write():
                for key in existing:
                    if key.id not in wanted and (key.meeting_id, key.recurrence_id) not in valid:
                        await self.jobs.cancel(key.id)
                for job_id, (key, run_at) in wanted.items():
                    await self.jobs.schedule(
                        job_id, key.kind, run_at, key.meeting_id, key.recurrence_id.isoformat()
                    )
        log.debug("jobs of meeting %s reconciled: %s wanted", meeting_id or "*", len(wanted))

    async def _wanted(
        self, session: AsyncSession, now: datetime, meeting_id: int | None
    ) -> dict[str, tuple[JobKey, datetime]]:
        stmt = (
            select(Occurrence, Meeting.status, Meeting.reminder_minutes)
            .join(Meeting, Meeting.id == Occurrence.meeting_id)
            .where(
                Occurrence.starts_at < now + self.horizon,
                Occurrence.ends_at > now - LOOKBACK,
                Occurrence.cancelled.is_(False),
                Meeting.status.in_([MeetingStatus.SCHEDULED, MeetingStatus.LIVE]),
            )
            .execution_options(populate_existing=True)
        )
        if meeting_id is not None:
            stmt = stmt.where(Occurrence.meeting_id == meeting_id)
        rows = (await session.execute(stmt)).all()
        ids = {o.meeting_id for o, _, _ in rows}
        found = await session.execute(
            select(SentReminder.meeting_id, SentReminder.recurrence_id).where(
                SentReminder.meeting_id.in_(ids)
            )
        )
        sent = {(m, r) for m, r in found.all()}
        found = await session.execute(
            select(Occurrence.meeting_id, func.max(Occurrence.starts_at))
            .where(Occurrence.meeting_id.in_(ids), Occurrence.cancelled.is_(False))
            .group_by(Occurrence.meeting_id)
        )
        last = {m: latest for m, latest in found.all()}
        wanted: dict[str, tuple[JobKey, datetime]] = {}

        def want(kind: str, occurrence: Occurrence, run_at: datetime) -> None:
            key = JobKey(kind, occurrence.meeting_id, occurrence.recurrence_id)
            wanted[key.id] = (key, run_at)

        for occurrence, status, minutes in rows:
            started = occurrence.starts_at <= now
            ended = occurrence.ends_at <= now
            pair = (occurrence.meeting_id, occurrence.recurrence_id)
            if minutes > 0 and not started and pair not in sent:
                want("reminder", occurrence, occurrence.starts_at - timedelta(minutes=minutes))
            if not started:
                want("start", occurrence, occurrence.starts_at)
            elif not ended and status == MeetingStatus.SCHEDULED:
                want("start", occurrence, now)  # missed while down: live now
            if not ended:
                want("end", occurrence, occurrence.ends_at)
            elif status == MeetingStatus.LIVE or last.get(occurrence.meeting_id) == (
                occurrence.starts_at
            ):
                want("end", occurrence, now)  # missed while down: settle the status now
        return wanted

    # --- handlers -----------------------------------------------------------------------
    async def remind(self, meeting_id: int, recurrence: str) -> None:
        """Queue the reminder of one occurrence, unless sent, started or cancelled."""
        recurrence_id = datetime.fromisoformat(recurrence)
        try:
            async with self.db.write() as session:
                sent = await self._remind(session, meeting_id, recurrence_id)
        except IntegrityError:  # another process claimed it first
            sent = 0
        if sent:
            self.on_mail()
        log.info("reminder %s:%s: %s emails", meeting_id, recurrence, sent)

    async def _remind(self, session: AsyncSession, meeting_id: int, recurrence_id: datetime) -> int:
        meeting, occurrence = await _current(session, meeting_id, recurrence_id)
        if meeting is None or occurrence is None or occurrence.cancelled:
            return 0
        if meeting.status not in (MeetingStatus.SCHEDULED, MeetingStatus.LIVE):
            return 0
        if self.clock() >= occurrence.starts_at:
            return 0  # never once it has started
        claimed = await session.scalar(
            select(SentReminder.id).where(
                SentReminder.meeting_id == meeting_id, SentReminder.recurrence_id == recurrence_id
            )
        )
        if claimed is not None:
            return 0
        session.add(SentReminder(meeting_id=meeting_id, recurrence_id=recurrence_id))
        await session.flush()  # the unique constraint stops a concurrent second sender here
        calendar = await load(session, meeting_id, self.mail.addresses)
        event = calendar.occurrence(recurrence_id)
        declined = set(
            await session.scalars(
                select(OccurrenceReply.person_id).where(
                    OccurrenceReply.meeting_id == meeting_id,
                    OccurrenceReply.recurrence_id == recurrence_id,
                    OccurrenceReply.partstat == PartStat.DECLINED,
                )
            )
        )
        count = 0
        for attendee in calendar.meeting.attendees:
            if attendee.partstat == PartStat.DECLINED or attendee.person_id in declined:
                continue
            person = calendar.people[attendee.person_id]
            join = self.mail.join_url(self.links, meeting_id, person.id)
            message = reminder_email(
                self.mail, Mailbox(person.email, person.name), event.title,
                format_time(event, self.mail.locale), join,
            )  # fmt: skip
            enqueue(session, message, kind="reminder", meeting_id=meeting_id)
            count += 1
        return count

    async def start_occurrence(self, meeting_id: int, recurrence: str) -> None:
        """The occurrence starts: the meeting is live (if it still takes place now)."""
        recurrence_id = datetime.fromisoformat(recurrence)
        now = self.clock()
        async with self.db.write() as session:
            meeting, occurrence = await _current(session, meeting_id, recurrence_id)
            if meeting is None or occurrence is None or occurrence.cancelled:
                return
            if meeting.status != MeetingStatus.SCHEDULED:
                return
            if now < occurrence.starts_at - _EARLY or now >= occurrence.ends_at:
                return  # moved later, or already over (the end job settles it)
            meeting.status = MeetingStatus.LIVE
            await record_meeting_event(
                session, "meeting.started", meeting_id, {"recurrence_id": recurrence_id.isoformat()}
            )
        log.info("meeting %s is live (occurrence %s)", meeting_id, recurrence)

    async def end_occurrence(self, meeting_id: int, recurrence: str) -> None:
        """The occurrence ends: ``ended`` after the last one, else ``scheduled``."""
        recurrence_id = datetime.fromisoformat(recurrence)
        now = self.clock()
        async with self.db.write() as session:
            meeting, occurrence = await _current(session, meeting_id, recurrence_id)
            if meeting is None or occurrence is None or now < occurrence.ends_at - _EARLY:
                return  # gone, or moved later
            if meeting.status in (MeetingStatus.SCHEDULED, MeetingStatus.LIVE):
                later = await session.scalar(
                    select(func.count())
                    .select_from(Occurrence)
                    .where(
                        Occurrence.meeting_id == meeting_id,
                        Occurrence.cancelled.is_(False),
                        Occurrence.ends_at > now,
                    )
                )
                meeting.status = MeetingStatus.SCHEDULED if later else MeetingStatus.ENDED
                await record_meeting_event(
                    session,
                    "meeting.ended",
                    meeting_id,
                    {
                        "recurrence_id": recurrence_id.isoformat(),
                        "final": meeting.status == MeetingStatus.ENDED,
                    },
                )
                summary = await occurrence_summary(
                    session, meeting_id, recurrence_id, occurrence.ends_at
                )
                await record_meeting_event(
                    session,
                    "attendance.summary",
                    meeting_id,
                    {"recurrence_id": recurrence_id.isoformat(), "summary": summary},
                )
        log.info("occurrence %s of meeting %s ended", recurrence, meeting_id)
        if self.on_ended is not None:
            await self.on_ended(meeting_id, recurrence_id)


async def _current(
    session: AsyncSession, meeting_id: int, recurrence_id: datetime
) -> tuple[Meeting | None, Occurrence | None]:
    meeting = await session.get(Meeting, meeting_id, with_for_update=True)
    occurrence = await session.get(Occurrence, (meeting_id, recurrence_id), populate_existing=True)
    return meeting, occurrence


async def _live_occurrences(
    session: AsyncSession, meeting_ids: set[int]
) -> set[tuple[int, datetime]]:
    """(meeting, recurrence-id) of every occurrence of these meetings still taking place."""
    if not meeting_ids:
        return set()
    rows = await session.execute(
        select(Occurrence.meeting_id, Occurrence.recurrence_id)
        .join(Meeting, Meeting.id == Occurrence.meeting_id)
        .where(
            Occurrence.meeting_id.in_(meeting_ids),
            Occurrence.cancelled.is_(False),
            Meeting.status != MeetingStatus.CANCELLED,
        )
    )
    return {(m, r) for m, r in rows.all()}
