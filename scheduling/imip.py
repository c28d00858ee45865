"""iMIP (RFC 6047): the invitation email that carries an iTIP object.

For the invitation service of `scheduling`, which sends one message per recipient through
SMTP (or the local maildir). The structure is the one Outlook, Gmail and Thunderbird show
with Accept / Decline buttons::

    multipart/mixed
      multipart/alternative
        text/plain                      (the invitation in words)
        text/html                       (the same, every user-provided value escaped)
        text/calendar; method=...; charset=UTF-8   (the iTIP object, base64)
      application/ics; name=invite.ics  (the same bytes as an attachment)

Texts are Simplified Chinese by default, English on request. The signed RSVP and join
links are made by the caller and passed in as URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from typing import cast
from urllib.parse import urlsplit

from icalendar import Calendar, vRecur

from scheduling.errors import InvalidEvent
from scheduling.itip import CalendarEvent, Locale, Method

CALENDAR_FILENAME = "invite.ics"


@dataclass(frozen=True)
class Mailbox:
    """An email address with an optional display name (any script; encoded for headers)."""

    email: str
    name: str = ""

    def address(self) -> Address:
        """The header form of this mailbox."""
        return Address(display_name=self.name, addr_spec=self.email)


@dataclass(frozen=True)
class InvitationLinks:
    """One recipient's links: their personal join link and the signed RSVP links."""

    join_url: str | None = None
    accept_url: str | None = None
    tentative_url: str | None = None
    decline_url: str | None = None
    # guest access: the meeting's number, its passcode and the page guests type them on
    # (every invitee gets them, to pass on to people joining without an invitation)
    meeting_number: int | None = None
    passcode: str | None = None
    guest_url: str | None = None


@dataclass(frozen=True)
class InvitationText:
    """The subject and both bodies of an invitation email, in one locale."""

    subject: str
    text: str
    html: str


_TEXTS: dict[Locale, dict[str, str]] = {
    "zh-CN": {
        "invite": "会议邀请",
        "update": "会议更新",
        "cancel": "会议取消",
        "greeting": "{name}，您好：",
        "greeting_anon": "您好：",
        "lead_invite": "诚邀您参加以下会议。",
        "lead_update": "以下会议有更新，请以本通知为准。",
        "lead_cancel": "以下会议已取消。",
        "title": "会议名称",
        "time": "时间",
        "moved_from": "原定时间",
        "repeat": "重复",
        "rooms": "会议室",
        "location": "地点",
        "doc_ref": "文号",
        "agenda": "议程",
        "join": "加入会议",
        "guests": "访客入会",
        "guests_note": "未受邀的人员可在 {url} 输入会议号 {number} 和访客密码 {passcode} "
        "申请入会，经主持人准入后加入。",
        "accept": "接受",
        "tentative": "暂定",
        "decline": "谢绝",
        "colon": "：",
        "footer": "本邮件由 SuiMeet 会议系统发送。您也可以在日历客户端中直接答复。",
        "DAILY": "每天",
        "WEEKLY": "每周",
        "MONTHLY": "每月",
        "YEARLY": "每年",
        "every_n": "每{n}{unit}",
        "unit_DAILY": "天",
        "unit_WEEKLY": "周",
        "unit_MONTHLY": "个月",
        "unit_YEARLY": "年",
        "count": "，共 {n} 次",
        "until": "，至 {date}",
        "date": "{d.year}年{d.month}月{d.day}日（{weekday}）",
        "weekdays": "星期一,星期二,星期三,星期四,星期五,星期六,星期日",
    },
    "en": {
        "invite": "Invitation",
        "update": "Updated invitation",
        "cancel": "Cancelled",
        "greeting": "Dear {name},",
        "greeting_anon": "Hello,",
        "lead_invite": "You are invited to the following meeting.",
        "lead_update": "The following meeting has changed; this notice replaces earlier ones.",
        "lead_cancel": "The following meeting has been cancelled.",
        "title": "Meeting",
        "time": "Time",
        "moved_from": "Originally",
        "repeat": "Repeats",
        "rooms": "Rooms",
        "location": "Location",
        "doc_ref": "Document reference",
        "agenda": "Agenda",
        "join": "Join",
        "guests": "Guests",
        "guests_note": "People without an invitation can ask to join at {url} with meeting "
        "number {number} and guest passcode {passcode}; a chair admits them.",
        "accept": "Accept",
        "tentative": "Tentative",
        "decline": "Decline",
        "colon": ": ",
        "footer": "Sent by the SuiMeet meeting system. You can also answer from your calendar.",
        "DAILY": "daily",
        "WEEKLY": "weekly",
        "MONTHLY": "monthly",
        "YEARLY": "yearly",
        "every_n": "every {n} {unit}",
        "unit_DAILY": "days",
        "unit_WEEKLY": "weeks",
        "unit_MONTHLY": "months",
        "unit_YEARLY": "years",
        "count": ", {n} times",
        "until": ", until {date}",
        "date": "{weekday} {d.day} {month} {d.year}",
        "weekdays": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    },
}
_MONTHS = "January February March April May June July August September October November December"


def _date(value: datetime, locale: Locale) -> str:
    texts = _TEXTS[locale]
    weekday = texts["weekdays"].split(",")[value.weekday()]
    month = _MONTHS.split()[value.month - 1]
    return texts["date"].format(d=value, weekday=weekday, month=month)


def format_time(event: CalendarEvent, locale: Locale = "zh-CN") -> str:
    """The meeting's time in its own time zone, e.g.
    ``2026年3月2日（星期一） 09:30–11:00（Asia/Shanghai，UTC+08:00）``."""
    start, end = event.local(event.start), event.local(event.end)
    until = f"{end:%H:%M}" if end.date() == start.date() else f"{_date(end, locale)} {end:%H:%M}"
    offset = f"{start:%z}"
    zone = f"{event.tzid}, UTC{offset[:3]}:{offset[3:]}"
    if locale == "zh-CN":
        return f"{_date(start, locale)} {start:%H:%M}–{until}（{zone.replace(', ', '，')}）"
    return f"{_date(start, locale)}, {start:%H:%M}–{until} ({zone})"


def _repeat(event: CalendarEvent, locale: Locale) -> str | None:
    if event.rrule is None:
        return None
    texts = _TEXTS[locale]
    recur = vRecur.from_ical(event.rrule)
    freq = str(recur["FREQ"][0]).upper()
    interval = int(recur.get("INTERVAL", [1])[0])
    if f"unit_{freq}" not in texts:
        return event.rrule  # HOURLY and finer: rare for meetings, shown as the rule itself
    text = (
        texts[freq]
        if interval == 1
        else texts["every_n"].format(n=interval, unit=texts[f"unit_{freq}"])
    )
    if recur.get("COUNT"):
        text += texts["count"].format(n=recur["COUNT"][0])
    if recur.get("UNTIL"):
        text += texts["until"].format(date=_date(event.local(recur["UNTIL"][0]), locale))
    return text


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links become clickable; anything else is dropped."""
    if url and urlsplit(url).scheme.lower() in {"http", "https"}:
        return url
    return None


def _lead_key(events: Sequence[CalendarEvent], method: Method) -> str:
    if method == "CANCEL":
        return "cancel"
    return "update" if any(e.sequence > 0 for e in events) else "invite"


def render_invitation(
    events: CalendarEvent | Sequence[CalendarEvent],
    *,
    method: Method,
    recipient: Mailbox | None = None,
    links: InvitationLinks | None = None,
    locale: Locale = "zh-CN",
) -> InvitationText:
    """Subject, plain text and HTML of the email for ``events`` (one meeting).

    Shows title, time in the meeting's time zone, repetition, rooms, location, document
    reference and agenda; for a REQUEST also the recipient's join and RSVP links. The
    HTML escapes every value given by users.
    """
    chosen = [events] if isinstance(events, CalendarEvent) else list(events)
    if not chosen:
        raise InvalidEvent("no event to describe")
    chosen.sort(key=lambda e: (e.recurrence_id is not None, e.recurrence_id or e.start))
    texts = _TEXTS[locale]
    links = links if method == "REQUEST" and links else InvitationLinks()
    lead = _lead_key(chosen, method)
    first = chosen[0]
    subject = f"{texts[lead]}{texts['colon']}{first.title}"

    # Rows of (label, value); None values are skipped. The agenda is a block of its own.
    rows: list[tuple[str, str | None]] = [(texts["title"], first.title)]
    for event in chosen:
        rows.append((texts["time"], format_time(event, locale)))
        if event.recurrence_id is not None:
            original = event.local(event.recurrence_id)
            rows.append((texts["moved_from"], f"{_date(original, locale)} {original:%H:%M}"))
        rows.append((texts["repeat"], _repeat(event, locale)))
    room_names = [r.name or r.email for r in first.rooms]
    rows += [
        (texts["rooms"], ("、" if locale == "zh-CN" else ", ").join(room_names) or None),
        (texts["location"], first.location or None),
        (texts["doc_ref"], first.doc_ref),
    ]
    present = [(label, value) for label, value in rows if value]
    agenda = first.description.replace("\r\n", "\n").strip()
    actions = [
        (texts[key], _safe_url(url))
        for key, url in [
            ("join", links.join_url),
            ("accept", links.accept_url),
            ("tentative", links.tentative_url),
            ("decline", links.decline_url),
        ]
    ]
    actions_present = [(label, url) for label, url in actions if url]
    greeting = (
        texts["greeting"].format(name=recipient.name)
        if recipient and recipient.name
        else texts["greeting_anon"]
    )
    lead_text = texts[f"lead_{lead}"]

    text_lines = [greeting, "", lead_text, ""]
    text_lines += [f"{label}{texts['colon']}{value}" for label, value in present]
    if agenda:
        text_lines += ["", f"{texts['agenda']}{texts['colon']}".rstrip(), agenda]
    if actions_present:
        text_lines.append("")
        text_lines += [f"{label}{texts['colon']}{url}" for label, url in actions_present]
    guest_url = _safe_url(links.guest_url)
    guests = (
        texts["guests_note"].format(
            url=guest_url, number=links.meeting_number, passcode=links.passcode
        )
        if guest_url and links.passcode and links.meeting_number is not None
        else None
    )
    if guests:
        text_lines += ["", f"{texts['guests']}{texts['colon']}{guests}"]
    text_lines += ["", texts["footer"], ""]

    esc = html.escape
    html_rows = "".join(
        f'<tr><th align="left">{esc(label)}</th><td>{esc(value)}</td></tr>'
        for label, value in present
    )
    html_agenda = (
        f"<h3>{esc(texts['agenda'])}</h3><p>{esc(agenda).replace(chr(10), '<br>')}</p>"
        if agenda
        else ""
    )
    html_actions = " | ".join(
        f'<a href="{esc(url, quote=True)}">{esc(label)}</a>' for label, url in actions_present
    )
    lang = "zh-CN" if locale == "zh-CN" else "en"
    html_body = (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{esc(subject)}</title></head><body>"
        f"<p>{esc(greeting)}</p><p>{esc(lead_text)}</p>"
        f"<table>{html_rows}</table>{html_agenda}"
        + (f"<p>{html_actions}</p>" if html_actions else "")
        + (f"<p>{esc(texts['guests'])}{esc(texts['colon'])}{esc(guests)}</p>" if guests else "")
        + f"<p><small>{esc(texts['footer'])}</small></p></body></html>\n"
    )
    return InvitationText(subject=subject, text="\n".join(text_lines), html=html_body)


_METHOD = re.compile(rb"^METHOD:([A-Za-z-]+)\r?$", re.MULTILINE)


def calendar_method(calendar: bytes) -> str:
    """The METHOD of an iTIP object (upper case), or raise `InvalidEvent`."""
    header = calendar.split(b"BEGIN:VEVENT", 1)[0]
    if calendar.startswith(b"BEGIN:VCALENDAR") and (match := _METHOD.search(header)):
        return match.group(1).decode().upper()
    try:
        parsed = Calendar.from_ical(calendar)
    except ValueError as exc:
        raise InvalidEvent(f"not an iCalendar object: {exc}", code="invalid_calendar") from exc
    method = str(parsed.get("METHOD", "")).upper()
    if not method:
        raise InvalidEvent("an iTIP object needs a METHOD", code="invalid_calendar")
    return method


def build_imip_message(
    calendar: bytes,
    *,
    method: Method,
    sender: Mailbox,
    recipient: Mailbox,
    subject: str,
    text_body: str,
    html_body: str,
    locale: Locale = "zh-CN",
) -> EmailMessage:
    """The iMIP email carrying ``calendar`` (bytes from `scheduling.itip`) to ``recipient``.

    ``method`` must equal the object's METHOD (else `InvalidEvent` with code
    ``method_mismatch``): it is repeated in the MIME type, where clients look first.
    Headers with non-ASCII text are RFC 2047-encoded; every body part is base64, so the
    message passes any SMTP server whether or not it speaks 8BITMIME.
    """
    found = calendar_method(calendar)
    if found != method:
        raise InvalidEvent(
            f"MIME method {method} differs from the object's METHOD:{found}",
            code="method_mismatch",
        )
    message = EmailMessage(policy=SMTP)
    message["From"] = sender.address()
    message["To"] = recipient.address()
    message["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=sender.email.rpartition("@")[2] or None)
    message["MIME-Version"] = "1.0"
    message["Content-Language"] = locale
    # Exchange/Outlook classify the message as a meeting request by this header too.
    message["Content-Class"] = "urn:content-classes:calendarmessage"
    message["Content-Type"] = "multipart/mixed"

    alternative = MIMEPart(policy=SMTP)
    alternative.set_content(text_body, subtype="plain", charset="utf-8", cte="base64")
    alternative.add_alternative(html_body, subtype="html", charset="utf-8", cte="base64")
    alternative.add_alternative(
        calendar,
        maintype="text",
        subtype="calendar",
        cte="base64",
        params={"method": method, "charset": "UTF-8"},
    )
    attachment = MIMEPart(policy=SMTP)
    attachment.set_content(
        calendar,
        maintype="application",
        subtype="ics",
        cte="base64",
        disposition="attachment",
        filename=CALENDAR_FILENAME,
        params={"name": CALENDAR_FILENAME},
    )
    # MIMEPart, not EmailMessage, so the parts carry no MIME-Version of their own; typeshed
    # annotates attach() with EmailMessage only.
    message.attach(cast(EmailMessage, alternative))
    message.attach(cast(EmailMessage, attachment))
    return message


def build_invitation_email(
    events: CalendarEvent | Sequence[CalendarEvent],
    calendar: bytes,
    *,
    sender: Mailbox,
    recipient: Mailbox,
    links: InvitationLinks | None = None,
    locale: Locale = "zh-CN",
) -> EmailMessage:
    """The whole email for one recipient: texts rendered from ``events``, the iTIP object
    ``calendar`` (built from the same events by `scheduling.itip` for this recipient)."""
    method = calendar_method(calendar)
    if method not in ("REQUEST", "CANCEL"):
        raise InvalidEvent(f"unsupported METHOD:{method}", code="invalid_calendar")
    typed: Method = "REQUEST" if method == "REQUEST" else "CANCEL"
    text = render_invitation(events, method=typed, recipient=recipient, links=links, locale=locale)
    return build_imip_message(
        calendar,
        method=typed,
        sender=sender,
        recipient=recipient,
        subject=text.subject,
        text_body=text.text,
        html_body=text.html,
        locale=locale,
    )
