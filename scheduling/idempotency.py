"""Idempotency keys: a retried creation request never creates a second resource.

For `web` (:mod:`web.idempotency`), which wraps creating requests of integration clients
that send an ``Idempotency-Key`` header. A key is unique per caller (``scope``, e.g.
``apikey:3``) by a database constraint, so concurrent retries race on the insert and only
one runs. The record remembers a fingerprint of the request (method, path, body), and:

- once answered, the stored answer is replayed for the same request;
- the same key with another request is refused (:class:`Outcome` ``mismatch``);
- while the first request runs (a lease), a retry is told to wait (``in_progress``);
- if the first request created its resource but died before storing the answer, the id
  bound in the creating transaction (:meth:`IdempotencyStore.bind`) lets the retry answer
  with that resource (``recovered``) instead of creating another;
- a request that failed releases its key, so a retry runs again.

Records are kept ``ttl`` (24 h by default) and purged after.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rooms.db import Base, Database, UTCDateTime, utcnow

LEASE = timedelta(seconds=60)


class IdempotencyRecord(Base):
    """One key of one caller: the request's fingerprint and, once known, its answer."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))  # processing | completed
    resource_id: Mapped[int | None] = mapped_column(Integer)
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (UniqueConstraint("scope", "key"),)


Kind = Literal["fresh", "replay", "recovered", "mismatch", "in_progress"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with a request carrying a key."""

    kind: Kind
    record_id: int | None = None
    resource_id: int | None = None
    status: int | None = None
    body: str | None = None


def fingerprint(method: str, path: str, body: bytes) -> str:
    """A digest of the request; JSON bodies are compared by content, not by formatting."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
        payload = canonical.encode()
    except (ValueError, UnicodeDecodeError):
        payload = body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


class IdempotencyStore:
    """Claims, binds and completes keys over one :class:`Database`."""

    def __init__(self, db: Database, ttl: timedelta = timedelta(hours=24)) -> None:
        self.db = db
        self.ttl = ttl

    async def claim(self, scope: str, key: str, print_: str) -> Outcome:
        for _ in range(3):  # an expired record may be purged under us: try again
            now = utcnow()
            try:
                async with self.db.write() as session:
                    row = IdempotencyRecord(
                        scope=scope, key=key, fingerprint=print_, state="processing",
                        locked_until=now + LEASE, created_at=now, expires_at=now + self.ttl,
                    )  # fmt: skip
                    session.add(row)
                    await session.flush()
                    return Outcome("fresh", record_id=row.id)
            except IntegrityError:
                pass
            outcome = await self._existing(scope, key, print_, now)
            if outcome is not None:
                return outcome
        return Outcome("in_progress")

    async def _existing(self, scope: str, key: str, print_: str, now: datetime) -> Outcome | None:
        async with self.db.write() as session:
            query = select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
            if not self.db.is_sqlite:
                query = query.with_for_update()
            row = await session.scalar(query)
            if row is None:
                return None
            if row.expires_at <= now:
                await session.delete(row)
                return None
            if row.fingerprint != print_:
                return Outcome("mismatch", record_id=row.id)
            if row.state == "completed":
                return Outcome("replay", row.id, row.resource_id, row.response_status,
                               row.response_body)  # fmt: skip
            if row.resource_id is not None:
                return Outcome("recovered", record_id=row.id, resource_id=row.resource_id)
            if row.locked_until > now:
                return Outcome("in_progress", record_id=row.id)
            row.locked_until = now + LEASE  # the first try died before committing: take over
            return Outcome("fresh", record_id=row.id)

    @staticmethod
    async def bind(session: AsyncSession, record_id: int, resource_id: int) -> None:
        """Tie the created resource to the key, in the transaction that creates it."""
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.resource_id.is_(None))
            .values(resource_id=resource_id)
        )

    async def complete(self, record_id: int, status: int, body: str) -> None:
        async with self.db.write() as session:
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == record_id)
                .values(state="completed", response_status=status, response_body=body)
            )

    async def release(self, record_id: int) -> None:
        """Forget a key whose request failed, unless it created its resource after all."""
        async with self.db.write() as session:
            await session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == record_id, IdempotencyRecord.resource_id.is_(None)
                )
            )

    async def purge_expired(self) -> int:
        async with self.db.write() as session:
            result = await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= utcnow())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
