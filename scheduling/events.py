"""The webhook outbox: events of meetings (and terminals) written with the change itself.

For every module that changes something the OA system hears about. Call
:func:`record_event` with the session of the write transaction that makes the change: the
event and one delivery row per subscription that wants it are written in that same
transaction, so the event exists exactly when the change does, and a crash after the
commit loses nothing (:mod:`scheduling.webhook_sender` delivers it later). Outside a
transaction, :func:`publish_event` opens its own.

Events of one *stream* (``meeting:<id>``, ``terminal:<id>``) are delivered to each
subscription in the order they were recorded. The meetings service's changes become
events through :func:`meeting_listener`, a :data:`scheduling.changes.ChangeListener`.

Envelope (the body of every delivery)::

    {"id": "<uuid>", "type": "meeting.updated", "created_at": "<ISO 8601 UTC>",
     "meeting_id": 12, "data": {...}}
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.aftercommit import after_commit
from scheduling.changes import MeetingChange
from scheduling.models import Attendee, Meeting, MeetingRoom
from scheduling.webhooks import EVENT_TYPES, WebhookSubscription

_MEETING_TYPES = {
    "created": "meeting.created",
    "updated": "meeting.updated",
    "occurrence_updated": "meeting.updated",
    "occurrence_cancelled": "meeting.updated",
    "cancelled": "meeting.cancelled",
}


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its turn or its next attempt
    DELIVERING = "delivering"  # claimed by a sender until ``next_attempt_at`` (a lease)
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"  # gave up after the last attempt; blocks its stream until replayed


class WebhookEvent(Base):
    """One event, as recorded; its ``event_id`` is what receivers deduplicate on."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(40))
    stream: Mapped[str] = mapped_column(String(60))
    meeting_id: Mapped[int | None] = mapped_column(Integer, index=True)
    body: Mapped[str] = mapped_column(Text)  # the exact JSON that is signed and sent
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One event for one subscription: its state, attempts and last outcome (the log)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id", ondelete="CASCADE"))
    stream: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(12), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription_id_stream", "subscription_id", "stream", "id"),
    )


async def record_event(
    session: AsyncSession,
    type_: str,
    meeting_id: int | None,
    data: Mapping[str, Any],
    *,
    stream: str | None = None,
    on_commit: Callable[[], None] | None = None,
) -> str:
    """Write an event and its deliveries inside the caller's transaction; its id.

    ``stream`` orders deliveries (default ``meeting:<id>``, or none when there is no
    meeting). ``on_commit`` (e.g. waking the sender) runs once the transaction commits;
    without it the sender finds the event on its next poll.
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    event_id = str(uuid.uuid4())
    now = utcnow()
    if stream is None:
        stream = f"meeting:{meeting_id}" if meeting_id is not None else f"event:{event_id}"
    body = json.dumps(
        {"id": event_id, "type": type_, "created_at": now.isoformat(), "meeting_id": meeting_id,
         "data": data},
        ensure_ascii=False, separators=(",", ":"), default=str,
    )  # fmt: skip
    event = WebhookEvent(
        event_id=event_id, type=type_, stream=stream, meeting_id=meeting_id, body=body,
        created_at=now,
    )  # fmt: skip
    session.add(event)
    await session.flush()
    subscriptions = await session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
    )
    for subscription in subscriptions:
        if subscription.wants(type_):
            session.add(
                WebhookDelivery(
                    subscription_id=subscription.id, event_id=event.id, stream=stream,
                    status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now,
                    created_at=now,
                )
            )  # fmt: skip
    await session.flush()
    if on_commit is not None:
        after_commit(session, on_commit)
    return event_id


async def publish_event(
    db: Database,
    type_: str,
    meeting_id: int | None,
    data: Mapping[str, Any],
    *,
    stream: str | None = None,
    on_commit: Callable[[], None] | None = None,
) -> str:
    """:func:`record_event` in a transaction of its own (for changes not in a transaction,
    e.g. a terminal going offline)."""
    async with db.write() as session:
        return await record_event(
            session, type_, meeting_id, data, stream=stream, on_commit=on_commit
        )


async def meeting_snapshot(session: AsyncSession, meeting_id: int) -> dict[str, Any]:
    """The meeting as events show it (read in the caller's transaction)."""
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None:
        return {"id": meeting_id}
    room_ids = (
        await session.scalars(
            select(MeetingRoom.room_id)
            .where(MeetingRoom.meeting_id == meeting_id)
            .order_by(MeetingRoom.room_id)
        )
    ).all()
    counted = await session.execute(
        select(Attendee.partstat, func.count())
        .where(Attendee.meeting_id == meeting_id)
        .group_by(Attendee.partstat)
    )
    answers = {str(partstat): int(n) for partstat, n in counted.all()}
    return {
        "id": meeting.id, "uid": meeting.uid, "sequence": meeting.sequence,
        "title": meeting.title, "status": meeting.status.value, "doc_ref": meeting.doc_ref,
        "unit_id": meeting.unit_id, "organiser_id": meeting.organiser_id,
        "chair_id": meeting.chair_id, "mode": meeting.mode.value, "tzid": meeting.tzid,
        "rrule": meeting.rrule, "start_utc": meeting.starts_at.isoformat(),
        "end_utc": meeting.ends_at.isoformat(), "room_ids": list(room_ids),
        "answers": answers,
        "updated_at": meeting.updated_at.isoformat(),
    }  # fmt: skip


async def record_meeting_event(
    session: AsyncSession,
    type_: str,
    meeting_id: int,
    extra: Mapping[str, Any] | None = None,
    *,
    on_commit: Callable[[], None] | None = None,
) -> str:
    """An event whose data is the meeting's snapshot plus ``extra`` (e.g. ``change``)."""
    data = {"meeting": await meeting_snapshot(session, meeting_id), **(extra or {})}
    return await record_event(session, type_, meeting_id, data, on_commit=on_commit)


def meeting_listener(on_commit: Callable[[], None] | None = None) -> Any:
    """A change listener turning the meetings service's changes into events."""

    async def listen(session: AsyncSession, change: MeetingChange) -> None:
        rid = change.recurrence_id.isoformat() if change.recurrence_id else None
        await record_meeting_event(
            session,
            _MEETING_TYPES[change.kind],
            change.meeting_id,
            {"change": {"kind": change.kind, "recurrence_id": rid,
                        "significant": change.significant, "actor": change.actor,
                        "added_person_ids": list(change.added_person_ids),
                        "removed_person_ids": list(change.removed_person_ids)}},
            on_commit=on_commit,
        )  # fmt: skip

    return listen
