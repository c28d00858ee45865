"""Wiring of attendance: the hub's presence events and quality samples into the database.

The hub calls :func:`listener`'s coroutine on every join and leave; it only enqueues. One
worker task drains the queue into the :class:`~scheduling.attendance.AttendanceRecorder`
in order (a replaced socket's leave before its successor's join), a sampler task asks the
media engine for every live participant's quality every ``attendance_sample_seconds``, and
the statistics' rollup catches up every ``stats_refresh_seconds``. All three are owned by
the app's ``cleanup_ctx`` (:func:`_attendance`): cancelled and awaited when it stops, after
presences left open by an earlier run are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from media import MediaError
from media.messages import ParticipantStats
from rooms.db import utcnow
from scheduling import rollup
from scheduling.attendance import AttendanceRecorder, Join, Quality
from signaling.hub import ConferenceHub, PresenceEvent
from web import keys

log = logging.getLogger(__name__)

Item = tuple[str, Any]


def quality_of(stats: ParticipantStats) -> Quality:
    """One sample, from the engine's stats: the worse loss direction, the worst jitter."""
    loss = max(stats["packet_loss_in"], stats["packet_loss_out"] or 0.0)
    jitters = [track["jitter_ms"] for track in stats["inbound"]]
    return Quality(
        loss=loss,
        jitter_ms=max(jitters) if jitters else None,
        rtt_ms=stats["rtt_ms"],
        bitrate_kbps=(stats["bitrate_in_bps"] + stats["bitrate_out_bps"]) / 1000,
    )


def join_of(event: PresenceEvent) -> Join | None:
    """What the recorder needs of a join (None: not a meeting's conference)."""
    meta = event.grant.meta
    meeting_id, recurrence_id = meta.get("meeting_id"), meta.get("recurrence_id")
    if meeting_id is None or recurrence_id is None:
        # Clients admitted without our metadata: the conference id is "<meeting>@<start>".
        head, _, tail = event.conference.partition("@")
        try:
            meeting_id = int(head)
            recurrence_id = datetime.strptime(tail, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
    return Join(
        participant=event.participant,
        meeting_id=int(meeting_id),
        recurrence_id=recurrence_id,
        identity=event.grant.identity,
        client_kind=event.grant.kind,
        at=event.at,
        person_id=meta.get("person_id"),
        terminal_id=meta.get("terminal_id"),
        room_id=meta.get("room_id"),
    )


@dataclass
class AttendanceFeed:
    """The queue between the hub and the recorder, and the tasks that work it."""

    recorder: AttendanceRecorder
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def on_presence(self, event: PresenceEvent) -> None:
        """The hub's presence listener: never blocks, never raises into the hub."""
        self.queue.put_nowait(("presence", event))

    async def drain(self) -> None:
        """Wait until everything queued so far is recorded (tests, shutdown)."""
        await self.queue.join()

    async def work(self) -> None:
        while True:
            kind, payload = await self.queue.get()
            try:
                await self._handle(kind, payload)
            except Exception:  # one bad event must not stop attendance
                log.exception("attendance: could not record %s", kind)
            finally:
                self.queue.task_done()

    async def _handle(self, kind: str, payload: Any) -> None:
        if kind == "samples":
            samples, at = payload
            await self.recorder.sampled(samples, at)
            return
        if kind == "lost":
            await self.recorder.left(payload, utcnow(), "lost", None)
            return
        event: PresenceEvent = payload
        if event.kind == "joined":
            join = join_of(event)
            if join is not None:
                await self.recorder.joined(join)
        else:
            final = quality_of(event.stats) if event.stats is not None else None
            await self.recorder.left(event.participant, event.at, event.reason, final)

    async def sample(self, hub: ConferenceHub) -> int:
        """Queue one quality sample of every connection with an open presence, and the
        leave of every connection the hub no longer has (a leave event that never came)."""
        live = {p["id"] for members in hub.conferences().values() for p in members}
        samples = {}
        for participant in self.recorder.connected:
            if participant not in live:
                self.queue.put_nowait(("lost", participant))
                continue
            with contextlib.suppress(MediaError):
                samples[participant] = quality_of(await hub.engine.stats(participant))
        if samples:
            self.queue.put_nowait(("samples", (samples, utcnow())))
        return len(samples)


FEED: web.AppKey[AttendanceFeed] = web.AppKey("attendance_feed")


def listener(app: web.Application) -> Callable[[PresenceEvent], Awaitable[None]]:
    """The presence callback to give the hub (the feed is created here, started later)."""
    settings = app[keys.SETTINGS]
    recorder = AttendanceRecorder(
        app[keys.DATABASE], merge_gap=timedelta(seconds=settings.attendance_merge_seconds)
    )
    app[FEED] = AttendanceFeed(recorder)
    app.cleanup_ctx.append(_attendance)
    return app[FEED].on_presence


async def _every(seconds: float, step: Callable[[], Awaitable[Any]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await step()
        except Exception:
            log.exception("%s failed", name)


async def _attendance(app: web.Application) -> AsyncIterator[None]:
    from web.conference import HUB  # the hub is built next to this feed

    settings = app[keys.SETTINGS]
    feed = app[FEED]
    db = app[keys.DATABASE]
    late = timedelta(minutes=settings.stats_late_minutes)
    await feed.recorder.close_stale()

    async def catch_up() -> None:
        await rollup.refresh(db, utcnow(), late_grace=late)

    await catch_up()
    feed.tasks = [
        asyncio.create_task(feed.work(), name="attendance-writer"),
        asyncio.create_task(
            _every(
                settings.attendance_sample_seconds,
                lambda: feed.sample(app[HUB]),
                "attendance sampling",
            ),
            name="attendance-sampler",
        ),
        asyncio.create_task(
            _every(settings.stats_refresh_seconds, catch_up, "statistics rollup"),
            name="statistics-rollup",
        ),
    ]
    yield
    # the hub closes first (it was set up after us): its last leaves are queued by now
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(feed.drain(), timeout=5)
    for task in feed.tasks:
        task.cancel()
    for task in feed.tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    feed.tasks = []
