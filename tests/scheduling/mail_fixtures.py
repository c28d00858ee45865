"""Shared set-up of the invitation tests: an app that mails through a real SMTP server, and
readers of what arrived (the calendar part, the links)."""

from __future__ import annotations

import asyncio
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event

from tests.conftest import Inbox
from web.settings import Settings


def smtp_settings(settings: Settings, port: int, **extra: Any) -> Settings:
    """``settings`` sending through the test SMTP server on loopback."""
    return settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none", **extra}
    )


async def arrived(inbox: Inbox, count: int, timeout: float = 10.0) -> list[EmailMessage]:
    """Wait until the server holds ``count`` messages (not more), and return them."""
    for _ in range(int(timeout / 0.05)):
        if len(inbox.envelopes) >= count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # anything extra would show up now
    messages: list[EmailMessage] = inbox.messages()
    assert len(messages) == count, [m["Subject"] for m in messages]
    inbox.envelopes.clear()
    return messages


def by_recipient(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    found = {}
    for message in messages:
        found[message["To"].addresses[0].addr_spec.lower()] = message
    assert len(found) == len(messages), "one message per recipient"
    return found


def calendar_part(message: EmailMessage) -> tuple[str, Calendar]:
    """The MIME ``method`` parameter and the parsed text/calendar part of an iMIP email."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            method = part.get_param("method")
            assert isinstance(method, str)
            return method, Calendar.from_ical(part.get_content())
    raise AssertionError("no text/calendar part")


def events(calendar: Calendar) -> list[Event]:
    return list(calendar.walk("VEVENT"))


def attendees(event: Event) -> dict[str, Any]:
    """ATTENDEE values by lower-case address (without mailto:)."""
    value = event.get("ATTENDEE")
    values = value if isinstance(value, list) else [value]
    return {str(v).lower().removeprefix("mailto:"): v for v in values if v is not None}


def text_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_paths(message: EmailMessage) -> dict[str, str]:
    """The paths (with query) of the join and RSVP links in the plain text body."""
    found = {}
    for url in re.findall(r"https?://\S+", text_body(message)):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.path.startswith("/join/"):
            found["join"] = path
        elif parts.path.startswith("/rsvp/"):
            found[parts.query.removeprefix("answer=")] = path
    return found
