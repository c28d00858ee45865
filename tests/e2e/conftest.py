"""Real-browser tests: Debian's Chromium driven by Playwright against a live SuiMeet server.

Run inside a loopback-only network namespace (scripts/test.sh does:
``unshare --net sh -c 'ip link set lo up && exec python -m pytest -m e2e tests/e2e'``), so
that nothing the browser does can leave the machine. The server runs in the test's event
loop on 127.0.0.1 with SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--allow-loopback-in-peer-connection",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
async def server(app: web.Application) -> AsyncIterator[TestServer]:
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        await b.close()


def write_y4m(
    path: Path, rgb: tuple[int, int, int], width: int = 320, height: int = 240, frames: int = 30
) -> Path:
    """A y4m clip of one solid colour, for Chromium's fake camera."""
    import numpy as np

    r, g, b = rgb
    y = round(0.299 * r + 0.587 * g + 0.114 * b)
    u = round(-0.169 * r - 0.331 * g + 0.5 * b + 128)
    v = round(0.5 * r - 0.419 * g - 0.081 * b + 128)
    frame = (
        b"FRAME\n"
        + np.full(width * height, y, np.uint8).tobytes()
        + np.full(width * height // 4, u, np.uint8).tobytes()
        + np.full(width * height // 4, v, np.uint8).tobytes()
    )
    header = f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Any]:
    """Start a Chromium whose fake camera shows one colour: ``await launch((r, g, b))``."""
    async with async_playwright() as pw:
        started: list[Browser] = []

        async def start(rgb: tuple[int, int, int]) -> Browser:
            clip = write_y4m(tmp_path / f"cam-{len(started)}.y4m", rgb)
            b = await pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={clip}"],
            )
            started.append(b)
            return b

        yield start
        for b in started:
            await b.close()


def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def login(page: Any, server: TestServer, email: str, password: str) -> None:
    await page.goto(f"{base_url(server)}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base_url(server)}/")
