"""Shared set-up of the OA integration tests: settings, an integration key, a webhook
receiver on loopback that checks every signature."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from rooms.accounts import Accounts
from rooms.db import Database
from scheduling.webhooks import SIGNATURE_HEADER, verify
from web.settings import Settings

SECRET = "test-webhook-secret-0123456789abcdef"


def oa_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789",
        "port": 8080,
        "media_host_addresses": ["127.0.0.1"],
        "webhook_allowed_targets": ["127.0.0.1"],
        "webhook_timeout_seconds": 2.0,
        "webhook_retry_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


async def key_headers(db: Database, *scopes: str) -> dict[str, str]:
    issued = await Accounts(db).create_key("OA", list(scopes), created_by=None)
    return {"Authorization": f"Bearer {issued.token}"}


@dataclass
class Receiver:
    """An HTTP receiver of webhooks: records verified events; can fail on demand."""

    secret: str = SECRET
    events: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    fail_next: int = 0  # answer the next N deliveries with 503
    hold: asyncio.Event | None = None  # while set to an unset Event, deliveries wait
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(self.secret, request.headers.get(SIGNATURE_HEADER, ""), body,
                      now=int(time.time())):  # fmt: skip
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=503)
        event = json.loads(body)
        assert event["id"] == request.headers["X-SuiMeet-Event-Id"]
        self.events.append(event)
        return web.Response(status=204)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def wait_for(self, count: int, timeout: float = 15.0, *, unique: bool = True) -> None:
        """Until ``count`` events (distinct ids, unless not ``unique``) have arrived."""
        deadline = time.monotonic() + timeout
        while len({e["id"] for e in self.events} if unique else self.events) < count:
            assert time.monotonic() < deadline, f"only {self.types()} arrived"
            await asyncio.sleep(0.05)


async def start_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        await runner.cleanup()
