"""REST endpoints of webhook subscriptions and their delivery log (``/api/v1/webhooks``).

For administrators setting up the OA system's receivers. A subscription's secret is shown
once, in the answer that generated it (create, or a change with ``"secret": null``); a
secret the administrator sets is never echoed. Deliveries can be listed, inspected with
every attempt, and replayed. Event types and payloads: docs/webhooks.md.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from scheduling import webhook_log
from scheduling.errors import IntegrationError, IntegrationNotFound, TargetNotAllowed
from scheduling.webhook_log import LoggedDelivery
from scheduling.webhooks import EVENT_TYPES, Issued, WebhookSubscription
from web import keys
from web.api import Api, Call, Schema
from web.auth import ADMIN_ONLY
from web.problems import register_error
from web.schemas import Page, PageQuery

_T = "webhooks"
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Url = Annotated[str, StringConstraints(min_length=8, max_length=2000)]
Secret = Annotated[str, StringConstraints(min_length=24, max_length=200, strip_whitespace=False)]
Description = Annotated[str, StringConstraints(max_length=200)]


class WebhookIn(Schema):
    url: Url = Field(description="http(s) URL on SUIMEET_WEBHOOK_ALLOWED_TARGETS.")
    event_types: Annotated[list[EventType], Field(max_length=20)] = Field(
        default_factory=list, description="Empty: every event type."
    )
    secret: Secret | None = Field(None, description="Default: generated and shown once.")
    description: Description = ""


class WebhookPatch(Schema):
    """Fields to change; ``"secret": null`` generates a new secret (shown once)."""

    url: Url | None = None
    event_types: Annotated[list[EventType], Field(max_length=20)] | None = None
    secret: Secret | None = None
    active: bool | None = None
    description: Description | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(None, description="Only in the answer that generated it.")


class DeliveryQuery(PageQuery):
    status: Literal["pending", "delivering", "delivered", "failed"] | None = None


class AttemptOut(BaseModel):
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: int
    subscription_id: int
    event_id: str
    event_type: str
    meeting_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryOut):
    event: dict[str, Any]
    attempt_log: list[AttemptOut]


def webhook_out(row: WebhookSubscription, secret: str | None = None) -> WebhookOut:
    return WebhookOut(
        id=row.id, url=row.url, description=row.description, event_types=row.event_types,
        active=row.active, created_by=row.created_by, created_at=row.created_at,
        updated_at=row.updated_at, secret=secret,
    )  # fmt: skip


def _issued(issued: Issued) -> WebhookOut:
    return webhook_out(issued.subscription, issued.secret)


def delivery_out(found: LoggedDelivery) -> DeliveryOut:
    d, e = found.delivery, found.event
    return DeliveryOut(
        id=d.id, subscription_id=d.subscription_id, event_id=e.event_id, event_type=e.type,
        meeting_id=e.meeting_id, status=d.status, attempts=d.attempts,
        next_attempt_at=d.next_attempt_at, last_status=d.last_status, last_error=d.last_error,
        created_at=d.created_at, delivered_at=d.delivered_at,
    )  # fmt: skip


def register(api: Api) -> None:
    """Declare the routes and map the integration's errors."""
    register_error(IntegrationError, 422)
    register_error(TargetNotAllowed, 422)
    register_error(IntegrationNotFound, 404)
    route = api.route

    @route("GET", "/webhooks", summary="List webhook subscriptions", access=ADMIN_ONLY,
           tag=_T, response=list[WebhookOut])  # fmt: skip
    async def list_webhooks(call: Call[None, None]) -> list[WebhookOut]:
        return [webhook_out(row) for row in await call.app[keys.WEBHOOKS].list()]

    @route("POST", "/webhooks", summary="Subscribe a receiver to events", access=ADMIN_ONLY,
           tag=_T, body=WebhookIn, response=WebhookOut, status=201, errors=(422,),
           body_example={"url": "https://oa.example.gov.cn/suimeet/events",
                         "event_types": ["meeting.created", "meeting.updated",
                                         "meeting.cancelled"],
                         "description": "市府办OA"})  # fmt: skip
    async def create_webhook(call: Call[WebhookIn, None]) -> WebhookOut:
        """422 `webhook_target_not_allowed` when the URL's host is not on the allow-list.
        The answer carries the generated `secret`, shown this once."""
        b = call.body
        issued = await call.app[keys.WEBHOOKS].create(
            b.url, list(b.event_types), call.who.label, secret=b.secret,
            description=b.description,
        )  # fmt: skip
        return _issued(issued)

    @route("GET", "/webhooks/{id}", summary="Get a webhook subscription", access=ADMIN_ONLY,
           tag=_T, response=WebhookOut)  # fmt: skip
    async def get_webhook(call: Call[None, None]) -> WebhookOut:
        return webhook_out(await call.app[keys.WEBHOOKS].get(call.path["id"]))

    @route("PATCH", "/webhooks/{id}", summary="Change a webhook subscription",
           access=ADMIN_ONLY, tag=_T, body=WebhookPatch, response=WebhookOut,
           errors=(422,))  # fmt: skip
    async def update_webhook(call: Call[WebhookPatch, None]) -> WebhookOut:
        """`"secret": null` rotates the secret: the new one is in this answer only."""
        changes = call.body.model_dump(exclude_unset=True)
        for name in ("url", "active", "description", "event_types"):
            if name in changes and changes[name] is None:
                changes.pop(name)
        issued = await call.app[keys.WEBHOOKS].update(call.path["id"], changes)
        return _issued(issued)

    @route("DELETE", "/webhooks/{id}", summary="Delete a webhook subscription and its log",
           access=ADMIN_ONLY, tag=_T, status=204)  # fmt: skip
    async def delete_webhook(call: Call[None, None]) -> None:
        await call.app[keys.WEBHOOKS].delete(call.path["id"])

    @route("GET", "/webhooks/{id}/deliveries", summary="The delivery log of a subscription",
           access=ADMIN_ONLY, tag=_T, query=DeliveryQuery,
           response=Page[DeliveryOut])  # fmt: skip
    async def list_deliveries(call: Call[None, DeliveryQuery]) -> Page[DeliveryOut]:
        """Newest first."""
        q = call.query
        rows, total = await webhook_log.deliveries(
            call.app[keys.DATABASE], call.path["id"], status=q.status, limit=q.limit,
            offset=q.offset,
        )  # fmt: skip
        return Page[DeliveryOut](items=[delivery_out(r) for r in rows], total=total,
                                 limit=q.limit, offset=q.offset)  # fmt: skip

    @route("GET", "/webhook-deliveries/{id}", summary="One delivery with its attempts",
           access=ADMIN_ONLY, tag=_T, response=DeliveryDetail)  # fmt: skip
    async def get_delivery(call: Call[None, None]) -> DeliveryDetail:
        found = await webhook_log.delivery(call.app[keys.DATABASE], call.path["id"])
        return DeliveryDetail(
            **delivery_out(found).model_dump(),
            event=json.loads(found.event.body),
            attempt_log=[AttemptOut(at=a.at, status_code=a.status_code, error=a.error,
                                    duration_ms=a.duration_ms) for a in found.attempts],
        )  # fmt: skip

    @route("POST", "/webhook-deliveries/{id}/replay", summary="Deliver an event again",
           access=ADMIN_ONLY, tag=_T, response=DeliveryOut)  # fmt: skip
    async def replay_delivery(call: Call[None, None]) -> DeliveryOut:
        """Same event id (receivers deduplicate); a failed delivery unblocks its stream."""
        await call.app[keys.WEBHOOK_SENDER].replay(call.path["id"])
        return delivery_out(await webhook_log.delivery(call.app[keys.DATABASE], call.path["id"]))
