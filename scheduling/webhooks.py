"""Webhook subscriptions of the OA system, and the signature every delivery carries.

For administrators (through `web`): a subscription is a URL on the allow-list
(:mod:`scheduling.targets`), the event types it wants (:data:`EVENT_TYPES`; none listed
means all) and a signing secret. The secret is generated and shown once, or set by the
administrator; it is stored sealed (:mod:`scheduling.secretbox`) because the server must
read it to sign, and it is never returned again nor logged.

Signature (see docs/webhooks.md): ``X-SuiMeet-Signature: t=<unix seconds>,v1=<hex>``
where ``v1`` is HMAC-SHA256 under the secret of ``"<t>." + body``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.errors import IntegrationError, IntegrationNotFound
from scheduling.secretbox import SecretBox
from scheduling.targets import AllowList, check_url

EVENT_TYPES = (
    "meeting.created",
    "meeting.updated",
    "meeting.cancelled",
    "meeting.started",
    "meeting.ended",
    "rsvp.changed",
    "attendance.summary",
    "terminal.online",
    "terminal.offline",
)
MIN_SECRET_LENGTH = 24
SIGNATURE_HEADER = "X-SuiMeet-Signature"


class WebhookSubscription(Base):
    """One receiver of events: where, which types, and the sealed signing secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every type
    secret_sealed: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


@dataclass(frozen=True, slots=True)
class Issued:
    """A saved subscription and its secret when it was just generated (shown once)."""

    subscription: WebhookSubscription
    secret: str | None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature of ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (used by the tests and shown in docs/webhooks.md)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(parts.get("v1", ""), sign(secret, timestamp, body))


def _event_types(types: Sequence[str]) -> list[str]:
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise IntegrationError(
            f"unknown event types: {', '.join(unknown)}",
            code="invalid",
            fields={"event_types": f"one of {', '.join(EVENT_TYPES)}"},
        )
    return sorted(set(types))


def _secret(given: str | None) -> tuple[str, bool]:
    if given is None:
        return "whsec_" + secrets.token_urlsafe(32), True
    if len(given) < MIN_SECRET_LENGTH:
        raise IntegrationError(
            "the secret is too short",
            code="invalid",
            fields={"secret": f"at least {MIN_SECRET_LENGTH} characters"},
        )
    return given, False


class Webhooks:
    """Subscriptions over one :class:`Database`, checked against the allow-list."""

    def __init__(self, db: Database, box: SecretBox, allowed: AllowList) -> None:
        self.db = db
        self.box = box
        self.allowed = allowed

    async def create(
        self,
        url: str,
        event_types: Sequence[str],
        actor: str,
        *,
        secret: str | None = None,
        description: str = "",
    ) -> Issued:
        check_url(url, self.allowed)
        plain, generated = _secret(secret)
        now = utcnow()
        row = WebhookSubscription(
            url=url, description=description, event_types=_event_types(event_types),
            secret_sealed=self.box.seal(plain), active=True, created_by=actor,
            created_at=now, updated_at=now,
        )  # fmt: skip
        async with self.db.write() as session:
            session.add(row)
            await session.flush()
        return Issued(row, plain if generated else None)

    async def list(self) -> Sequence[WebhookSubscription]:
        async with self.db.read() as session:
            query = select(WebhookSubscription).order_by(WebhookSubscription.id)
            return (await session.scalars(query)).all()

    async def get(self, subscription_id: int) -> WebhookSubscription:
        async with self.db.read() as session:
            row = await session.get(WebhookSubscription, subscription_id)
        if row is None:
            raise IntegrationNotFound(f"webhook {subscription_id} does not exist")
        return row

    async def update(self, subscription_id: int, changes: dict[str, Any]) -> Issued:
        """Change url, event_types, active, description or secret (``None``: generate)."""
        if "url" in changes:
            check_url(changes["url"], self.allowed)
        generated: str | None = None
        async with self.db.write() as session:
            row = await session.get(WebhookSubscription, subscription_id, with_for_update=True)
            if row is None:
                raise IntegrationNotFound(f"webhook {subscription_id} does not exist")
            for name in ("url", "active", "description"):
                if name in changes:
                    setattr(row, name, changes[name])
            if "event_types" in changes:
                row.event_types = _event_types(changes["event_types"])
            if "secret" in changes:
                plain, fresh = _secret(changes["secret"])
                row.secret_sealed = self.box.seal(plain)
                generated = plain if fresh else None
            row.updated_at = utcnow()
        return Issued(row, generated)

    async def delete(self, subscription_id: int) -> None:
        """Remove the subscription with its deliveries (the log goes too)."""
        async with self.db.write() as session:
            row = await session.get(WebhookSubscription, subscription_id)
            if row is None:
                raise IntegrationNotFound(f"webhook {subscription_id} does not exist")
            await session.delete(row)
