"""Delivers the webhook outbox: signed POSTs, in order per stream, retried with backoff.

For `web`, which starts one :class:`WebhookSender` per server process (several processes
or nodes may run one each: rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
and inside the serialised write on SQLite). A delivery is claimed only when every earlier
delivery of its stream to the same subscription has been delivered, so a receiver never
sees event n+1 of a meeting before event n. A claim is a lease (``next_attempt_at`` moves
``lease`` ahead): if the process dies mid-delivery, another pass (or the restarted
server) takes the row again once the lease has run out. Delivery is therefore at least
once; receivers deduplicate on ``X-SuiMeet-Event-Id``.

Every attempt is logged in ``webhook_attempts`` (status code or error, duration) for
administrators. After ``max_attempts`` the delivery is ``failed`` and its stream waits
until an administrator replays it (:meth:`WebhookSender.replay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import ForeignKey, Integer, String, exists, or_, select, update
from sqlalchemy.orm import Mapped, aliased, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.errors import IntegrationNotFound, TargetNotAllowed
from scheduling.events import DeliveryStatus, WebhookDelivery, WebhookEvent
from scheduling.mailqueue import backoff
from scheduling.secretbox import SecretBox, SecretUnreadable
from scheduling.targets import AllowList, GuardedResolver, check_url
from scheduling.webhooks import SIGNATURE_HEADER, WebhookSubscription, signature_header
from scheduling.worker import DrainLoop

log = logging.getLogger(__name__)
USER_AGENT = "SuiMeet-Webhooks/1"


class WebhookAttempt(Base):
    """One try of one delivery: what the receiver answered, or why it could not."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: int
    attempts: int
    url: str
    secret_sealed: str
    event_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class SenderConfig:
    timeout: float = 10.0
    retry_base: float = 30.0
    retry_cap: float = 3600.0
    max_attempts: int = 15
    poll_seconds: float = 2.0
    batch: int = 20

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.timeout + 5)


class WebhookSender:
    """The delivery loop of one process; ``start``/``close`` are owned by the app."""

    def __init__(
        self, db: Database, box: SecretBox, allowed: AllowList, config: SenderConfig
    ) -> None:
        self.db = db
        self.box = box
        self.allowed = allowed
        self.config = config
        self._loop = DrainLoop("webhook-sender", self.deliver_due, config.poll_seconds)
        self._http: aiohttp.ClientSession | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def wake(self) -> None:
        """Look at the outbox now (after committing new events)."""
        self._loop.wake()

    def _wake_in(self, delay: timedelta) -> None:
        """Look again when a retry comes due (sooner than the next poll)."""

        def fire() -> None:
            self._timers.discard(timer)
            self.wake()

        timer = asyncio.get_running_loop().call_later(delay.total_seconds(), fire)
        self._timers.add(timer)

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.allowed))
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                headers={"User-Agent": USER_AGENT},
            )
        return self._http

    async def deliver_due(self) -> int:
        """Try one batch of due deliveries (heads of their streams); how many."""
        jobs = await self._claim()
        await asyncio.gather(*(self._deliver(job) for job in jobs))
        return len(jobs)

    async def _claim(self) -> Sequence[_Job]:
        now = utcnow()
        d = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        blocked = exists().where(
            earlier.subscription_id == d.subscription_id,
            earlier.stream == d.stream,
            earlier.id < d.id,
            earlier.status != DeliveryStatus.DELIVERED,
        )
        due = (
            select(d.id)
            .where(
                or_(d.status == DeliveryStatus.PENDING, d.status == DeliveryStatus.DELIVERING),
                d.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(d.id)
            .limit(self.config.batch)
        )
        if not self.db.is_sqlite:
            due = due.with_for_update(skip_locked=True, of=d)
        async with self.db.write() as session:
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            await session.execute(
                update(d)
                .where(d.id.in_(ids))
                .values(status=DeliveryStatus.DELIVERING, next_attempt_at=now + self.config.lease)
            )
            rows = await session.execute(
                select(
                    d.id, d.attempts, WebhookSubscription.url,
                    WebhookSubscription.secret_sealed, WebhookEvent.event_id,
                    WebhookEvent.type, WebhookEvent.body,
                )
                .join(WebhookSubscription, WebhookSubscription.id == d.subscription_id)
                .join(WebhookEvent, WebhookEvent.id == d.event_id)
                .where(d.id.in_(ids))
                .order_by(d.id)
            )  # fmt: skip
            return [_Job(r[0], r[1], r[2], r[3], r[4], r[5], r[6].encode()) for r in rows.all()]

    async def _deliver(self, job: _Job) -> None:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            check_url(job.url, self.allowed)
            secret = self.box.open(job.secret_sealed)
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "X-SuiMeet-Event-Id": job.event_id,
                "X-SuiMeet-Event-Type": job.event_type,
                "X-SuiMeet-Delivery-Id": str(job.delivery_id),
                SIGNATURE_HEADER: signature_header(secret, stamp, job.body),
            }
            async with self._client().post(
                job.url, data=job.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}"
        except TargetNotAllowed as exc:
            error = f"target_not_allowed: {exc.message}"
        except SecretUnreadable:
            error = "secret_unreadable: set a new secret for this webhook"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = int((time.monotonic() - started) * 1000)
        await self._record(job, status, error[:500] if error else None, elapsed)

    async def _record(
        self, job: _Job, status: int | None, error: str | None, elapsed_ms: int
    ) -> None:
        attempts = job.attempts + 1
        now = utcnow()
        if error is None:
            values: dict[str, object] = {
                "status": DeliveryStatus.DELIVERED, "delivered_at": now, "last_error": None,
            }  # fmt: skip
        else:
            final = attempts >= self.config.max_attempts
            delay = backoff(attempts, base=self.config.retry_base, cap=self.config.retry_cap)
            if not final and delay.total_seconds() < self.config.poll_seconds:
                self._wake_in(delay)
            values = {
                "status": DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
                "next_attempt_at": now + delay, "last_error": error,
            }  # fmt: skip
        async with self.db.write() as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == job.delivery_id)
                .values(attempts=attempts, last_status=status, **values)
            )
            session.add(
                WebhookAttempt(
                    delivery_id=job.delivery_id, at=now, status_code=status, error=error,
                    duration_ms=elapsed_ms,
                )
            )  # fmt: skip
        if error is None:
            log.info("webhook delivery %s (%s) delivered", job.delivery_id, job.event_type)
        else:
            log.warning("webhook delivery %s attempt %s failed: %s", job.delivery_id,
                        attempts, error)  # fmt: skip
        if error is None:
            self.wake()  # the next event of the stream is due now

    async def replay(self, delivery_id: int) -> WebhookDelivery:
        """Send a delivery again now (same event id, so receivers can tell)."""
        async with self.db.write() as session:
            row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
            if row is None:
                raise IntegrationNotFound(f"delivery {delivery_id} does not exist")
            if row.status != DeliveryStatus.DELIVERING:
                row.status = DeliveryStatus.PENDING
                row.attempts = 0
                row.next_attempt_at = utcnow()
        self.wake()
        return row
