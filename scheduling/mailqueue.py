"""The durable outgoing mail queue: written in the transaction of the change, sent after.

A message is a row of ``outgoing_mail`` from the moment the change that caused it commits,
so a crash or restart between the change and the sending loses nothing. The sender claims
due rows, hands them to a transport (SMTP, or a maildir when no SMTP server is configured),
and records the outcome; failures are retried with exponential backoff until
``max_attempts``, after which the row stays ``failed`` for the secretariat to see (and
resend). Delivery is at least once: a crash between the SMTP server's acceptance and the
row's update sends that one message again.
"""

from __future__ import annotations

import enum
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses
from typing import Protocol

from sqlalchemy import Enum, Integer, LargeBinary, String, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow
from scheduling.worker import DrainLoop

log = logging.getLogger(__name__)


class MailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutgoingMail(Base):
    """One email to one recipient, kept after sending as the delivery record."""

    __tablename__ = "outgoing_mail"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(20))  # request | cancel | reminder | reply ...
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[MailStatus] = mapped_column(
        Enum(
            MailStatus, native_enum=False, length=10, values_callable=lambda e: [m.value for m in e]
        ),
        default=MailStatus.QUEUED,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Transport(Protocol):
    """Something that delivers one RFC 5322 message or raises."""

    async def send(self, sender: str, recipient: str, message: bytes) -> None: ...


def enqueue(
    session: AsyncSession, message: EmailMessage, *, kind: str, meeting_id: int | None
) -> OutgoingMail:
    """Add a message to the queue inside the caller's transaction (one row per recipient)."""
    recipients = [addr for _name, addr in getaddresses(message.get_all("To", []))]
    if len(recipients) != 1:
        raise ValueError("queue one message per recipient")
    row = OutgoingMail(
        meeting_id=meeting_id,
        kind=kind,
        recipient=recipients[0].lower(),
        subject=str(message.get("Subject", ""))[:300],
        message=message.as_bytes(policy=SMTP),
        status=MailStatus.QUEUED,
        attempts=0,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


def backoff(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Delay before attempt ``attempts + 1``: exponential with ±20 % jitter, capped."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


class MailSender:
    """Sends due rows of the queue through a transport; owned by the app's cleanup context."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        sender: str,
        *,
        max_attempts: int = 8,
        poll_seconds: float = 5.0,
        stale_after: timedelta = timedelta(minutes=5),
        batch: int = 20,
    ) -> None:
        self.db = db
        self.transport = transport
        self.sender = sender
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.stale_after = stale_after
        self.batch = batch
        self._loop = DrainLoop("mail-sender", self.send_due, poll_seconds)

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    def wake(self) -> None:
        """Look at the queue now (call after committing new messages)."""
        self._loop.wake()

    async def send_due(self) -> int:
        """Send one batch of due messages; return how many were tried."""
        rows = await self._claim()
        for row_id, recipient, message, attempts in rows:
            try:
                await self.transport.send(self.sender, recipient, message)
            except Exception as exc:  # any transport failure is retried
                await self._failed(row_id, attempts + 1, exc)
            else:
                await self._sent(row_id, attempts + 1)
        return len(rows)

    async def _claim(self) -> Sequence[tuple[int, str, bytes, int]]:
        now = utcnow()
        async with self.db.write() as session:
            due = select(OutgoingMail.id).where(
                or_(
                    (OutgoingMail.status == MailStatus.QUEUED)
                    & (OutgoingMail.next_attempt_at <= now),
                    (OutgoingMail.status == MailStatus.SENDING)
                    & (OutgoingMail.next_attempt_at <= now - self.stale_after),
                )
            )
            if not self.db.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(
                (await session.scalars(due.order_by(OutgoingMail.id).limit(self.batch))).all()
            )
            if not ids:
                return []
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id.in_(ids))
                .values(status=MailStatus.SENDING, next_attempt_at=now)
            )
            rows = await session.execute(
                select(
                    OutgoingMail.id,
                    OutgoingMail.recipient,
                    OutgoingMail.message,
                    OutgoingMail.attempts,
                ).where(OutgoingMail.id.in_(ids))
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows.all()]

    async def _sent(self, row_id: int, attempts: int) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == row_id)
                .values(
                    status=MailStatus.SENT, attempts=attempts, sent_at=utcnow(), last_error=None
                )
            )
        log.info("mail %s sent", row_id)

    async def _failed(self, row_id: int, attempts: int, exc: Exception) -> None:
        final = attempts >= self.max_attempts
        error = f"{type(exc).__name__}: {exc}"[:500]
        async with self.db.write() as session:
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == row_id)
                .values(
                    status=MailStatus.FAILED if final else MailStatus.QUEUED,
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=utcnow() + backoff(attempts),
                )
            )
        log.warning(
            "mail %s attempt %s failed (%s)%s",
            row_id,
            attempts,
            error,
            "; giving up" if final else "",
        )

    async def resend(self, row_id: int) -> None:
        """Put a failed (or sent) message back in the queue now."""
        async with self.db.write() as session:
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == row_id)
                .values(status=MailStatus.QUEUED, next_attempt_at=utcnow(), attempts=0)
            )
        self.wake()
