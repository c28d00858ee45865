"""The delivery log of webhooks, as administrators read it.

For `web`: each subscription's deliveries newest first (the event, its state, attempts and
last outcome), and one delivery with its event body and every attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from rooms.db import Database
from scheduling.errors import IntegrationNotFound
from scheduling.events import WebhookDelivery, WebhookEvent
from scheduling.webhook_sender import WebhookAttempt
from scheduling.webhooks import WebhookSubscription


@dataclass(frozen=True, slots=True)
class LoggedDelivery:
    delivery: WebhookDelivery
    event: WebhookEvent
    attempts: Sequence[WebhookAttempt] = ()


async def deliveries(
    db: Database, subscription_id: int, *, status: str | None, limit: int, offset: int
) -> tuple[list[LoggedDelivery], int]:
    """One page of a subscription's deliveries, newest first, and how many there are."""
    async with db.read() as session:
        if await session.get(WebhookSubscription, subscription_id) is None:
            raise IntegrationNotFound(f"webhook {subscription_id} does not exist")
        where = [WebhookDelivery.subscription_id == subscription_id]
        if status is not None:
            where.append(WebhookDelivery.status == status)
        total = await session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(*where)
        )
        rows = await session.execute(
            select(WebhookDelivery, WebhookEvent)
            .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
            .where(*where)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [LoggedDelivery(d, e) for d, e in rows.all()], int(total or 0)


async def delivery(db: Database, delivery_id: int) -> LoggedDelivery:
    """One delivery with its event and its attempts, oldest first."""
    async with db.read() as session:
        found = (
            await session.execute(
                select(WebhookDelivery, WebhookEvent)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).first()
        if found is None:
            raise IntegrationNotFound(f"delivery {delivery_id} does not exist")
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.id)
            )
        ).all()
        return LoggedDelivery(found[0], found[1], attempts)
