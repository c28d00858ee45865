"""The iMIP invitation email: structure, headers, bodies, and a trip through real SMTP."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from icalendar import Calendar

from scheduling.errors import InvalidEvent
from scheduling.imip import (
    InvitationLinks,
    Mailbox,
    build_imip_message,
    build_invitation_email,
    render_invitation,
)
from scheduling.itip import CalendarEvent, build_cancel, build_request
from tests.scheduling.test_itip import DOC_REF, LONG_TITLE, make_event, make_series

SENDER = Mailbox("mishu@gz.gov.cn", "广州市人民政府办公厅 秘书处")
RECIPIENT = Mailbox("Zhang.San@gz.gov.cn", "张三（市政务服务数据管理局）")
LINKS = InvitationLinks(
    join_url="https://meet.gz.gov.cn/j/tok?a=1&b=2",
    accept_url="https://meet.gz.gov.cn/rsvp/tok?answer=accepted",
    tentative_url="https://meet.gz.gov.cn/rsvp/tok?answer=tentative",
    decline_url="https://meet.gz.gov.cn/rsvp/tok?answer=declined",
)


def invitation(event: CalendarEvent | None = None, **kwargs: Any) -> tuple[bytes, EmailMessage]:
    event = event or make_event(sequence=0)
    calendar = build_request(event, for_attendee=RECIPIENT.email, join_url=LINKS.join_url)
    message = build_invitation_email(
        event, calendar, sender=SENDER, recipient=RECIPIENT, links=LINKS, **kwargs
    )
    return calendar, message


def reparse(message: EmailMessage | bytes) -> EmailMessage:
    raw = message if isinstance(message, bytes) else message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> dict[str, EmailMessage]:
    return {part.get_content_type(): part for part in message.walk()}


def payload(part: EmailMessage) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def test_message_has_the_structure_outlook_shows_with_accept_and_decline() -> None:
    _, message = invitation()
    parsed = reparse(message)

    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain",
        "text/html",
        "text/calendar",
    ]
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_content_disposition() == "attachment"
    assert attachment.get_filename() == "invite.ics"


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_mime_method_equals_the_objects_method(method: str) -> None:
    event = make_series(sequence=3)
    calendar = (
        build_request(event, for_attendee=RECIPIENT.email)
        if method == "REQUEST"
        else build_cancel(event, for_attendee=RECIPIENT.email)
    )
    message = build_invitation_email(event, calendar, sender=SENDER, recipient=RECIPIENT)

    inline = parts(reparse(message))["text/calendar"]
    assert inline.get_param("method") == method
    assert inline.get_content_charset() == "utf-8"
    assert Calendar.from_ical(payload(inline))["METHOD"] == method


def test_attachment_and_inline_part_carry_the_same_bytes_we_built() -> None:
    calendar, message = invitation()
    found = parts(reparse(message))

    assert payload(found["text/calendar"]) == calendar
    assert payload(found["application/ics"]) == calendar


def test_recipient_is_an_attendee_of_the_attached_object() -> None:
    _, message = invitation()

    inline = Calendar.from_ical(payload(parts(reparse(message))["text/calendar"]))
    attendees = [str(a).lower() for a in inline.events[0].attendees]
    assert f"mailto:{RECIPIENT.email.lower()}" in attendees


def test_message_is_seven_bit_with_rfc2047_headers() -> None:
    _, message = invitation()
    raw = message.as_bytes()

    raw.decode("ascii")  # 8-bit-safe: every body part is base64, every header encoded
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n")[0]
    parsed = reparse(raw)
    assert str(parsed["Subject"]) == f"会议邀请：{LONG_TITLE}"
    assert parsed["From"].addresses[0].display_name == SENDER.name
    assert parsed["From"].addresses[0].addr_spec == SENDER.email
    assert parsed["To"].addresses[0].display_name == RECIPIENT.name
    assert parsed["Message-ID"].endswith("@gz.gov.cn>")


def test_chinese_body_shows_what_the_attendee_needs() -> None:
    _, message = invitation()
    text = parts(reparse(message))["text/plain"].get_content()

    assert text.startswith("张三（市政务服务数据管理局），您好：")
    for expected in [
        f"会议名称：{LONG_TITLE}",
        "时间：2026年3月2日（星期一） 09:30–11:00（Asia/Shanghai，UTC+08:00）",
        "会议室：市政府大楼三楼第一会议室",
        f"文号：{DOC_REF}",
        "一、听取市政务服务数据管理局",
        f"加入会议：{LINKS.join_url}",
        f"接受：{LINKS.accept_url}",
        f"暂定：{LINKS.tentative_url}",
        f"谢绝：{LINKS.decline_url}",
    ]:
        assert expected in text


def test_english_body_on_request() -> None:
    text = render_invitation(
        make_series(sequence=0), method="REQUEST", links=LINKS, locale="en"
    ).text

    assert "Time: Monday 2 March 2026, 09:30–11:00 (Asia/Shanghai, UTC+08:00)" in text
    assert "Repeats: weekly, 10 times" in text
    assert f"Decline: {LINKS.decline_url}" in text


def test_time_is_shown_in_the_meetings_zone_even_if_given_in_utc() -> None:
    event = make_event(start=make_event().start.astimezone(), end=make_event().end)

    assert "09:30–11:00" in render_invitation(event, method="REQUEST").text


def test_update_and_cancel_are_named_so() -> None:
    assert render_invitation(make_event(sequence=0), method="REQUEST").subject.startswith(
        "会议邀请："
    )
    assert render_invitation(make_event(sequence=3), method="REQUEST").subject.startswith(
        "会议更新："
    )
    cancelled = render_invitation(make_event(), method="CANCEL", links=LINKS)
    assert cancelled.subject.startswith("会议取消：")
    assert "rsvp" not in cancelled.text
    assert "rsvp" not in cancelled.html


def test_html_escapes_everything_users_provide() -> None:
    event = make_event(
        title="<script>alert('标题')</script>",
        description="议程 & <b>加粗</b>",
        doc_ref='穗府辦"〔2010〕<41>號',
    )
    links = InvitationLinks(
        join_url='https://meet.gz.gov.cn/j/"><script>x</script>',
        decline_url="javascript:alert(1)",
    )
    html = render_invitation(event, method="REQUEST", links=links).html

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;标题&#x27;)&lt;/script&gt;" in html
    assert "议程 &amp; &lt;b&gt;加粗&lt;/b&gt;" in html
    assert "&quot;〔2010〕&lt;41&gt;號" in html
    assert 'href="https://meet.gz.gov.cn/j/&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in html
    assert "javascript:" not in html


def test_mime_method_must_match_the_object() -> None:
    calendar = build_cancel(make_event())

    with pytest.raises(InvalidEvent) as caught:
        build_imip_message(
            calendar,
            method="REQUEST",
            sender=SENDER,
            recipient=RECIPIENT,
            subject="x",
            text_body="x",
            html_body="x",
        )

    assert caught.value.code == "method_mismatch"


class Inbox:
    """An aiosmtpd handler that keeps what arrives."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
async def smtp_server() -> AsyncIterator[tuple[Inbox, int]]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield inbox, port
    finally:
        server.close()
        await server.wait_closed()


async def test_invitation_survives_a_real_smtp_trip(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    calendar, message = invitation()

    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, start_tls=False)

    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == [RECIPIENT.email]
    assert isinstance(envelope.content, bytes)
    arrived = reparse(envelope.content)
    found = parts(arrived)
    assert payload(found["text/calendar"]) == calendar
    assert payload(found["application/ics"]) == calendar
    assert found["text/calendar"].get_param("method") == "REQUEST"
    assert str(arrived["Subject"]) == f"会议邀请：{LONG_TITLE}"
    assert LINKS.accept_url in found["text/plain"].get_content()
