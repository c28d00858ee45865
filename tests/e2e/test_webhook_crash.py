"""Nothing is lost across a crash: the server is SIGKILLed mid-delivery, restarted, and
every webhook event still arrives, signed, in order per meeting (duplicates allowed).

The server is a real process (``python -m web.cli serve``) on the test database; the
receiver is an aiohttp server in the test process on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.models import Person, Role, Unit, UnitKind
from scheduling.events import WebhookEvent
from scheduling.webhooks import SIGNATURE_HEADER, verify

SECRET = "crash-test-webhook-secret-0123456789"
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


class HoldingReceiver:
    """Records verified events; while ``holding``, deliveries hang (the server waits)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.inflight = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get(SIGNATURE_HEADER, "")
        if not verify(SECRET, header, body, now=int(time.time())):
            self.bad_signatures += 1
            return web.Response(status=400)
        self.inflight += 1
        try:
            await self.release.wait()
        finally:
            self.inflight -= 1
        self.events.append(json.loads(body))
        return web.Response(status=200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[HoldingReceiver, str]]:
    found = HoldingReceiver()
    app = web.Application()
    app.router.add_post("/oa/events", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield found, f"http://127.0.0.1:{port}/oa/events"
    found.release.set()
    await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m web.cli serve`` as a child process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{env['SUIMEET_PORT']}"

    def spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "web.cli", "serve"], cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    async def start(self) -> None:
        await asyncio.to_thread(self.spawn)
        assert self.proc is not None
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log.read_text()[-3000:]
                try:
                    async with http.get(self.url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("the server did not start: " + self.log.read_text()[-3000:])

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server_env(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUIMEET_")}
    env.update(
        SUIMEET_DATA_DIR=str(tmp_path / "data"),
        SUIMEET_DATABASE_URL=database_url,
        SUIMEET_SECRET_KEY="crash-test-server-secret-0123456789",
        SUIMEET_PORT=str(free_port()),
        SUIMEET_MEDIA_HOST_ADDRESSES="127.0.0.1",
        SUIMEET_WEBHOOK_ALLOWED_TARGETS="127.0.0.1",
        SUIMEET_WEBHOOK_TIMEOUT_SECONDS="3",
        SUIMEET_WEBHOOK_RETRY_SECONDS="0.2",
    )
    yield env


async def test_events_survive_sigkill_mid_delivery(
    db: Database, receiver: tuple[HoldingReceiver, str], server_env: dict[str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    hook, hook_url = receiver
    async with db.write() as session:
        unit = Unit(name="广州市人民政府办公厅", short_name="市府办", kind=UnitKind.CITY)
        session.add(unit)
        await session.flush()
        organiser = Person(name="王秘书", email="wang@gz.gov.cn", unit_id=unit.id)
        session.add(organiser)
        await session.flush()
        unit_id, organiser_id = unit.id, organiser.id
    accounts = Accounts(db)
    await accounts.create_account("admin@gz.gov.cn", PASSWORD, Role.ADMIN, name="管理员",
                                  unit_id=unit_id)  # fmt: skip
    key = await accounts.create_key("OA", ["meetings:read", "meetings:write"], created_by=None)
    oa = {"Authorization": f"Bearer {key.token}"}

    server = Server(server_env, tmp_path / "server.log")
    await server.start()
    try:
        async with aiohttp.ClientSession(server.url) as http:
            creds = {"email": "admin@gz.gov.cn", "password": PASSWORD}
            login = await http.post("/api/v1/auth/token", json=creds)
            admin = {"Authorization": f"Bearer {(await login.json())['token']}"}
            sub = await http.post("/api/v1/webhooks", headers=admin,
                                  json={"url": hook_url, "secret": SECRET})  # fmt: skip
            assert sub.status == 201, await sub.text()
            start = datetime.now(UTC) + timedelta(days=3)
            for i in range(4):
                begin = start + timedelta(hours=2 * i)
                body = {"title": f"调度会{i}", "unit_id": unit_id, "organiser_id": organiser_id,
                        "start": begin.isoformat(),
                        "end": (begin + timedelta(hours=1)).isoformat()}  # fmt: skip
                created = await http.post("/api/v1/meetings", json=body,
                                          headers={**oa, "Idempotency-Key": f"oa-{i}"})  # fmt: skip
                assert created.status == 201, await created.text()
                meeting_id = (await created.json())["id"]
                for n in range(2):
                    changed = await http.patch(f"/api/v1/meetings/{meeting_id}", headers=oa,
                                               json={"agenda": f"议程第{n}版"})  # fmt: skip
                    assert changed.status == 200
        deadline = time.monotonic() + 20
        while hook.inflight == 0:  # a delivery is on the wire, waiting for our answer
            assert time.monotonic() < deadline, "no delivery was attempted"
            await asyncio.sleep(0.05)
        server.kill()
    finally:
        server.stop()

    hook.release.set()  # the requests cut by the crash complete on our side (duplicates)
    server = Server(server_env, tmp_path / "server.log")
    await server.start()
    try:
        async with db.read() as session:
            recorded = (await session.execute(
                select(WebhookEvent.event_id, WebhookEvent.meeting_id).order_by(WebhookEvent.id)
            )).all()  # fmt: skip
        assert len(recorded) == 12
        wanted = {r[0] for r in recorded}
        deadline = time.monotonic() + 60
        while not wanted <= {e["id"] for e in hook.events}:
            assert time.monotonic() < deadline, (
                f"{len(wanted - {e['id'] for e in hook.events})} events never arrived"
            )
            await asyncio.sleep(0.1)
    finally:
        server.stop()

    assert hook.bad_signatures == 0
    # what was on the wire at the crash was delivered again after the restart (same id)
    assert len(hook.events) > len(wanted)
    for meeting_id in {r[1] for r in recorded}:
        expected = [r[0] for r in recorded if r[1] == meeting_id]
        first_seen: list[str] = []
        for event in hook.events:
            if event["meeting_id"] == meeting_id and event["id"] not in first_seen:
                first_seen.append(event["id"])
        assert first_seen == expected, f"meeting {meeting_id} out of order"
