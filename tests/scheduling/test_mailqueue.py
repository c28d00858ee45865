"""The durable mail queue: real SMTP delivery, retries with backoff, maildir fallback."""

from __future__ import annotations

import asyncio
import mailbox
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select, update

from rooms.db import Database, utcnow
from scheduling.mailqueue import MailSender, MailStatus, OutgoingMail, backoff, enqueue
from scheduling.transports import MaildirTransport, SmtpTransport
from tests.conftest import Inbox


def _message(to: str, subject: str = "会议通知") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "SuiMeet <suimeet@example.gov.cn>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("请准时参加。")
    return msg


async def _queue(db: Database, *recipients: str) -> list[int]:
    async with db.write() as session:
        rows = [enqueue(session, _message(r), kind="request", meeting_id=None) for r in recipients]
        await session.flush()
        return [r.id for r in rows]


async def _rows(db: Database) -> dict[int, OutgoingMail]:
    async with db.read() as session:
        return {r.id: r for r in (await session.scalars(select(OutgoingMail))).all()}


async def test_queued_messages_arrive_at_a_real_smtp_server(
    db: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    ids = await _queue(db, "chen@example.gov.cn", "li@example.gov.cn")
    sender = MailSender(
        db, SmtpTransport("127.0.0.1", port, security="none"), "suimeet@example.gov.cn"
    )
    assert await sender.send_due() == 2
    assert sorted(e.rcpt_tos[0] for e in inbox.envelopes) == [
        "chen@example.gov.cn",
        "li@example.gov.cn",
    ]
    assert [m["Subject"] for m in inbox.messages()] == ["会议通知", "会议通知"]
    rows = await _rows(db)
    assert all(rows[i].status == MailStatus.SENT and rows[i].sent_at for i in ids)
    assert await sender.send_due() == 0  # nothing sent twice


async def test_failures_are_retried_with_backoff_then_given_up(
    db: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    inbox.refuse = 1
    [row_id] = await _queue(db, "wang@example.gov.cn")
    sender = MailSender(
        db,
        SmtpTransport("127.0.0.1", port, security="none"),
        "suimeet@example.gov.cn",
        max_attempts=3,
    )
    await sender.send_due()
    row = (await _rows(db))[row_id]
    assert row.status == MailStatus.QUEUED and row.attempts == 1 and "451" in row.last_error
    assert row.next_attempt_at > utcnow()  # not due again at once
    assert await sender.send_due() == 0
    async with db.write() as session:  # time passes
        await session.execute(update(OutgoingMail).values(next_attempt_at=utcnow()))
    await sender.send_due()
    assert (await _rows(db))[row_id].status == MailStatus.SENT and len(inbox.envelopes) == 1

    # an unreachable server: attempts run out and the row says why
    [dead] = await _queue(db, "zhao@example.gov.cn")
    broken = MailSender(
        db,
        SmtpTransport("127.0.0.1", 9, security="none", timeout=2),
        "suimeet@example.gov.cn",
        max_attempts=2,
    )
    for _ in range(2):
        async with db.write() as session:
            await session.execute(update(OutgoingMail).values(next_attempt_at=utcnow()))
        await broken.send_due()
    row = (await _rows(db))[dead]
    assert row.status == MailStatus.FAILED and row.attempts == 2 and row.last_error


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff(n).total_seconds() for n in range(1, 12)]
    assert 24 <= delays[0] <= 36 and 48 <= delays[1] <= 72
    assert max(delays) <= 3600 * 1.2


async def test_without_smtp_messages_go_to_a_maildir(db: Database, tmp_path: Path) -> None:
    await _queue(db, "sun@example.gov.cn")
    sender = MailSender(db, MaildirTransport(tmp_path / "maildir"), "suimeet@localhost")
    await sender.send_due()
    stored = list(mailbox.Maildir(tmp_path / "maildir", create=False))
    assert len(stored) == 1 and stored[0]["To"] == "sun@example.gov.cn"


async def test_a_message_claimed_by_a_crashed_sender_is_sent_later(
    db: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    [row_id] = await _queue(db, "zhou@example.gov.cn")
    async with db.write() as session:  # a sender claimed it, then died before sending
        await session.execute(update(OutgoingMail).values(status=MailStatus.SENDING))
    sender = MailSender(db, SmtpTransport("127.0.0.1", port, security="none"), "s@x.cn")
    assert await sender.send_due() == 0  # still fresh: maybe being sent right now
    from datetime import timedelta

    async with db.write() as session:
        await session.execute(
            update(OutgoingMail).values(next_attempt_at=utcnow() - timedelta(minutes=10))
        )
    assert await sender.send_due() == 1
    assert (await _rows(db))[row_id].status == MailStatus.SENT and len(inbox.envelopes) == 1


async def test_the_running_sender_is_woken_by_new_mail(
    db: Database, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    sender = MailSender(
        db, SmtpTransport("127.0.0.1", port, security="none"), "s@x.cn", poll_seconds=60
    )
    sender.start()
    try:
        await asyncio.sleep(0.1)
        await _queue(db, "xu@example.gov.cn")
        sender.wake()
        for _ in range(100):
            if inbox.envelopes:
                break
            await asyncio.sleep(0.05)
        assert len(inbox.envelopes) == 1
    finally:
        await sender.close()
        await sender.close()  # idempotent
