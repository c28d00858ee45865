"""Mail transports: SMTP through aiosmtplib, or a local maildir when no SMTP server is set."""

from __future__ import annotations

import asyncio
import mailbox
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiosmtplib


@dataclass(frozen=True)
class SmtpTransport:
    """Delivers through an SMTP server: plain, STARTTLS or implicit TLS, with optional login."""

    host: str
    port: int
    security: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        await aiosmtplib.send(
            message,
            sender=sender,
            recipients=[recipient],
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "ssl",
            start_tls=self.security == "starttls",
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )


@dataclass(frozen=True)
class MaildirTransport:
    """Drops every message into a maildir, so a fresh install without SMTP loses nothing."""

    path: Path

    async def send(self, sender: str, recipient: str, message: bytes) -> None:
        await asyncio.to_thread(self._add, message)

    def _add(self, message: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.path, create=True).add(message)
