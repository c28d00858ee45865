"""Three real Chromium participants and one Python participant in one meeting, via the SFU.

Each browser's fake camera shows a known colour (a y4m clip); every participant must
decode every other's video, see the right colour, and receive their audio; a late joiner
decodes video within 2 s; leaving and muting are seen by the others.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page

from rooms.db import Database
from rooms.models import Role, Unit
from signaling.client import ConferenceClient
from signaling.sources import ColorTrack, ToneTrack, mean_rgb
from tests.conftest import Staff, add_person, create_meeting
from tests.e2e.conftest import base_url
from web.conference import LINKS

COLOURS = [(200, 40, 40), (40, 170, 40), (40, 40, 200)]
BOT = (220, 200, 40)

PER_PARTICIPANT = """async () => {
  const s = window.suimeet.session;
  const stats = await s.pc.getStats();
  const out = {};
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp" || !r.mid) return;
    const who = s.mids.get(r.mid);
    if (!who) return;
    out[who] = out[who] || {video: 0, audio: 0};
    if (r.kind === "video") out[who].video += r.framesDecoded || 0;
    if (r.kind === "audio") out[who].audio += r.packetsReceived || 0;
  });
  return out;
}"""

COLOUR_OF = """(id) => {
  const tile = window.suimeet.tiles.get(id);
  if (!tile || tile.video.videoWidth === 0) return null;
  const c = document.createElement("canvas");
  c.width = 16; c.height = 16;
  const g = c.getContext("2d");
  g.drawImage(tile.video, 0, 0, 16, 16);
  const d = g.getImageData(4, 4, 8, 8).data;
  let r = 0, gr = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; }
  const n = d.length / 4;
  return [r / n, gr / n, b / n];
}"""

FIRST_FRAME_AFTER_JOIN = """async () => {
  const s = window.suimeet.session;
  while (true) {
    const stats = await s.pc.getStats();
    let decoded = 0;
    stats.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") decoded += r.framesDecoded || 0;
    });
    if (decoded > 0) return (performance.now() - s.welcomedAt) / 1000;
    await new Promise((ok) => setTimeout(ok, 20));
  }
}"""


def near(a: Any, b: tuple[int, int, int], tolerance: float = 35) -> bool:
    return a is not None and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


async def poll(page: Page, script: str, arg: Any, ok: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    value = None
    while asyncio.get_running_loop().time() < deadline:
        value = await page.evaluate(script, arg)
        if ok(value):
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out; last value {value!r}")


async def open_page(browser: Any, server: TestServer, token: str) -> Page:
    page: Page = await (await browser.new_context()).new_page()
    await page.goto(f"{base_url(server)}/join/{token}")
    await page.wait_for_selector("#join:not([disabled])")
    await page.click("#join")
    await page.wait_for_function("window.suimeet && window.suimeet.session.me")
    return page


async def test_three_browsers_and_a_python_participant(
    app: web.Application,
    server: TestServer,
    launch: Any,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    people = [(await add_person(db, city.id, f"p{i}@gz.gov.cn", f"参会人{i}")).id for i in range(4)]
    meeting = await create_meeting(client, staff, city, people)
    tokens = [app[LINKS].sign("join", meeting, p) for p in people]
    browsers = [await launch(c) for c in COLOURS]

    pages = [await open_page(browsers[i], server, tokens[i]) for i in range(2)]
    ws = base_url(server).replace("http://", "ws://") + "/ws"
    bot = ConferenceClient(
        ws, tokens[3], tracks=[ColorTrack(BOT), ToneTrack()], host_addresses=["127.0.0.1"]
    )
    try:
        ids = [await p.evaluate("window.suimeet.session.me.id") for p in pages]
        await poll(pages[0], PER_PARTICIPANT, None, lambda v: v.get(ids[1], {}).get("video", 0) > 5)

        # the late joiner decodes video within 2 s of joining (measured before the Python
        # participant joins: its encoder and decoders share this test process with the SFU)
        late = await open_page(browsers[2], server, tokens[2])
        seconds = await late.evaluate(FIRST_FRAME_AFTER_JOIN)
        print(f"late joiner: first decoded frame {seconds:.2f} s after joining")
        assert seconds < 2.0, f"late joiner's first frame after {seconds:.2f} s"
        await bot.connect()
        pages.append(late)
        ids.append(await late.evaluate("window.suimeet.session.me.id"))
        assert bot.participant is not None
        everyone = [*ids, bot.participant]
        colour_of = dict(zip(everyone, [*COLOURS, BOT], strict=True))

        # every page decodes every other participant's video, in its colour, and audio
        for me, page in zip(ids, pages, strict=True):
            others = [p for p in everyone if p != me]
            await poll(
                page,
                PER_PARTICIPANT,
                None,
                lambda v, o=others: all(
                    v.get(p, {}).get("video", 0) > 10 and v.get(p, {}).get("audio", 0) > 10
                    for p in o
                ),
            )
            for other in others:
                await poll(page, COLOUR_OF, other, lambda c, o=other: near(c, colour_of[o]))

        # the Python participant decodes each browser's video in its colour
        for browser_id in ids:
            await bot.wait_until(
                lambda b=browser_id: any(
                    who == b and t.kind == "video" for who, t in bot.remote_tracks.values()
                ),
                20,
            )
            track = next(
                t
                for who, t in bot.remote_tracks.values()
                if who == browser_id and t.kind == "video"
            )
            for _ in range(60):
                rgb = mean_rgb(await asyncio.wait_for(track.recv(), 10))  # type: ignore[arg-type]
                if near(rgb, colour_of[browser_id]):
                    break
            assert near(rgb, colour_of[browser_id]), (browser_id, rgb)

        # muting the camera stops that participant's video at the others
        await pages[0].click("#mute-video")
        await asyncio.sleep(1.0)  # let what is in flight arrive
        before = (await pages[1].evaluate(PER_PARTICIPANT))[ids[0]]["video"]
        await asyncio.sleep(1.5)
        after = (await pages[1].evaluate(PER_PARTICIPANT))[ids[0]]["video"]
        assert after - before <= 2, (before, after)
        still = (await pages[1].evaluate(PER_PARTICIPANT))[ids[2]]["video"]
        await asyncio.sleep(1.0)
        assert (await pages[1].evaluate(PER_PARTICIPANT))[ids[2]]["video"] > still + 10

        # when one leaves, the other pages show it
        await pages[2].click("#leave")
        for page in pages[:2]:
            await page.wait_for_function(
                f"!document.querySelector('[data-participant=\"{ids[2]}\"]')"
            )
        assert "已离开" in await pages[2].inner_text("#status")
    finally:
        await bot.close()


async def test_the_page_says_clearly_why_joining_is_refused(
    app: web.Application,
    server: TestServer,
    browser: Any,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    person = (await add_person(db, city.id, "late@gz.gov.cn", "迟到者")).id
    meeting = await create_meeting(
        client,
        staff,
        city,
        [person],
        start=datetime.now(UTC) + timedelta(hours=3),
        title="下午的会议",
    )
    page = await browser.new_page()
    await page.goto(f"{base_url(server)}/join/{app[LINKS].sign('join', meeting, person)}")
    await page.wait_for_selector("#join:not([disabled])")
    await page.click("#join")
    await page.wait_for_selector("#status[data-kind=error]")
    assert "会议尚未开始" in await page.inner_text("#status")

    await client.post(
        f"/api/v1/meetings/{meeting}/cancel", headers=await staff.headers(Role.SECRETARIAT)
    )
    await page.goto(f"{base_url(server)}/join/{app[LINKS].sign('join', meeting, person)}?lang=en")
    await page.click("#join")
    await page.wait_for_selector("#status[data-kind=error]")
    assert "cancelled" in await page.inner_text("#status")
