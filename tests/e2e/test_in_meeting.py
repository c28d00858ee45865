"""In a meeting, in real Chromium: chair controls, chat, hands, screen share, recording, the
lobby (a locked meeting, a guest with the passcode), and recovery from a network loss.

Media is checked where it arrives: the other browser's ``getStats()`` per participant and
source (audio packets received, video frames decoded).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Page

from rooms.db import Database
from rooms.models import Role, Unit
from tests.conftest import Staff, add_person
from tests.e2e.conftest import base_url
from tests.e2e.test_browser_conference import open_page, poll
from web.conference import LINKS

CHAIR, RED, GREEN = (220, 200, 40), (200, 40, 40), (40, 170, 40)

# Audio packets received / video frames decoded from one participant's source.
RECEIVED = """async ([owner, source]) => {
  const s = window.suimeet.session;
  if (!s.pc) return -1;
  const stats = await s.pc.getStats();
  let n = 0;
  stats.forEach((r) => {
    if (r.type !== "inbound-rtp" || !r.mid) return;
    if (s.mids.get(r.mid) !== owner || s.sources.get(r.mid) !== source) return;
    n += r.kind === "video" ? r.framesDecoded || 0 : r.packetsReceived || 0;
  });
  return n;
}"""

# framesDecoded of every video m-line (also inactive ones: a reused one counts on).
FRAMES_BY_MID = """async () => {
  const s = window.suimeet.session;
  const out = {};
  if (!s.pc) return out;
  (await s.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video" && r.mid) out[r.mid] = r.framesDecoded || 0;
  });
  return out;
}"""

NEW_FRAMES_OF = """async ([owner, before]) => {
  const s = window.suimeet.session;
  if (!s.pc) return 0;
  let n = 0;
  (await s.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "video" && r.mid && s.mids.get(r.mid) === owner)
      n += (r.framesDecoded || 0) - (before[r.mid] || 0);
  });
  return n;
}"""


async def chaired_meeting(
    client: TestClient[Any, Any], staff: Staff, unit: Unit, chair: int, people: list[int]
) -> int:
    start = datetime.now(UTC) + timedelta(minutes=1)
    response = await client.post(
        "/api/v1/meetings",
        headers=await staff.headers(Role.SECRETARIAT),
        json={
            "title": "防汛工作视频调度会",
            "unit_id": unit.id,
            "chair_id": chair,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "attendees": [{"person_id": p} for p in people],
        },
    )
    assert response.status == 201, await response.text()
    return int((await response.json())["id"])


async def me(page: Page) -> str:
    return str(await page.evaluate("window.suimeet.session.me.id"))


async def received(page: Page, owner: str, source: str) -> int:
    return int(await page.evaluate(RECEIVED, [owner, source]))


async def assert_stopped(page: Page, owner: str, source: str) -> None:
    """Nothing more arrives (after what was in flight, which a busy machine decodes late)."""
    deadline = time.monotonic() + 10.0
    before = await received(page, owner, source)
    while True:
        await asyncio.sleep(1.0)
        after = await received(page, owner, source)
        if after - before <= 1:
            break
        assert time.monotonic() < deadline, (source, before, after)
        before = after
    await asyncio.sleep(1.5)
    assert await received(page, owner, source) - after <= 1, source


async def assert_flowing(page: Page, owner: str, source: str, more: int = 15) -> None:
    base = await received(page, owner, source)
    await poll(page, RECEIVED, [owner, source], lambda v: v > base + more)


async def send_chat(page: Page, message: str, to: str = "") -> None:
    await page.select_option("#chat-to", to)
    await page.fill("#chat-text", message)
    await page.press("#chat-text", "Enter")


async def hands_queue(page: Page) -> list[str]:
    return list(
        await page.eval_on_selector_all(
            "#hands-queue li", "items => items.map((i) => i.dataset.participant)"
        )
    )


async def control(chair: Page, participant: str, action: str) -> None:
    await chair.click(f"#roster li[data-participant='{participant}'] button[data-action={action}]")


async def test_chair_controls_chat_hands_screen_share_and_recording(
    app: web.Application,
    server: TestServer,
    launch: Any,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    people = [(await add_person(db, city.id, f"m{i}@gz.gov.cn", f"成员{i}")).id for i in range(3)]
    meeting = await chaired_meeting(client, staff, city, people[0], people[1:])
    tokens = [app[LINKS].sign("join", meeting, p) for p in people]
    browsers = [await launch(c) for c in (CHAIR, RED, GREEN)]
    chair, a, b = [await open_page(br, server, t) for br, t in zip(browsers, tokens, strict=True)]
    id_a, id_b = await me(a), await me(b)

    # only the chair gets the chair panel
    await chair.wait_for_selector("#chair:not([hidden])")
    assert not await a.is_visible("#chair")
    await assert_flowing(b, id_a, "microphone")
    await assert_flowing(b, id_a, "camera", more=10)

    # chat to everyone, and privately: the third party never sees the private one
    await send_chat(a, "大家好，开始开会")
    for page in (b, chair):
        await page.wait_for_selector("#chat-log li:has-text('大家好，开始开会')")
    await send_chat(a, "会后请留一下", to=id_b)
    await b.wait_for_selector("#chat-log li.private:has-text('会后请留一下')")
    await send_chat(a, "第三条消息")
    await chair.wait_for_selector("#chat-log li:has-text('第三条消息')")
    assert "会后请留一下" not in await chair.inner_text("#chat-log")

    # raised hands reach the chair in the order they were raised
    await b.click("#raise-hand")
    await chair.wait_for_selector(f"#hands-queue li[data-participant='{id_b}']")
    await a.click("#raise-hand")
    await chair.wait_for_function("document.querySelectorAll('#hands-queue li').length === 2")
    assert await hands_queue(chair) == [id_b, id_a]
    assert await b.get_attribute("#raise-hand", "aria-pressed") == "true"
    await chair.click(f"#hands-queue li[data-participant='{id_b}'] button")
    await chair.wait_for_function("document.querySelectorAll('#hands-queue li').length === 1")
    assert await hands_queue(chair) == [id_a]
    await b.wait_for_selector("#raise-hand[aria-pressed=false]")

    # the chair mutes A: B stops receiving A's audio, A's page shows it is muted
    await control(chair, id_a, "mute")
    await a.wait_for_selector("#mute-audio[aria-pressed=true]")
    await b.wait_for_selector(f"figure[data-participant='{id_a}'] .name.muted")
    await assert_stopped(b, id_a, "microphone")

    # asked to unmute, A accepts: B hears A again
    await control(chair, id_a, "request_unmute")
    await a.wait_for_selector("#unmute-request:not([hidden])")
    await a.click("#unmute-accept")
    await a.wait_for_selector("#mute-audio[aria-pressed=false]")
    await assert_flowing(b, id_a, "microphone")

    # the chair stops A's video
    await control(chair, id_a, "stop_video")
    await a.wait_for_selector("#mute-video[aria-pressed=true]")
    await assert_stopped(b, id_a, "camera")

    # B shares its screen: A shows it large, on the stage, and decodes it
    await b.click("#share-screen")
    await b.wait_for_selector("#share-screen[aria-pressed=true]")
    await a.wait_for_selector("#stage:not([hidden])")
    await poll(a, RECEIVED, [id_b, "screen"], lambda v: v > 10)
    width = await a.evaluate("window.suimeet.stage.video.videoWidth")
    assert width >= 640, width
    stage_box = await a.locator("#stage").bounding_box()
    tile_box = await a.locator(f"figure[data-participant='{id_b}']").bounding_box()
    assert stage_box and tile_box and stage_box["width"] > 1.5 * tile_box["width"]
    assert await a.evaluate("window.suimeet.stage.owner") == id_b
    await assert_flowing(a, id_b, "camera", more=10)  # the camera goes on beside it
    await b.click("#share-screen")
    await a.wait_for_selector("#stage", state="hidden")
    # shared again (the same m-line comes back), then stopped by the chair's "stop video"
    await b.click("#share-screen")
    await a.wait_for_selector("#stage:not([hidden])")
    await assert_flowing(a, id_b, "screen", more=10)
    await control(chair, id_b, "stop_video")
    await a.wait_for_selector("#stage", state="hidden")
    await b.wait_for_selector("#share-screen[aria-pressed=false]")
    await b.wait_for_selector("#mute-video[aria-pressed=true]")

    # recording: everyone sees that it is on, and that it stopped
    await chair.click("#record")
    for page in (chair, a, b):
        await page.wait_for_selector("#recording:not([hidden])")
    await chair.click("#record")
    for page in (chair, a, b):
        await page.wait_for_selector("#recording", state="hidden")

    # the chair removes B: B's page says so and does not come back by itself
    await control(chair, id_b, "remove")
    await b.wait_for_selector("#status[data-kind=error]")
    assert "移出" in await b.inner_text("#status")
    await chair.wait_for_selector(f"figure[data-participant='{id_b}']", state="detached")
    await asyncio.sleep(2.0)
    state = await b.evaluate(
        "() => { const s = window.suimeet.session; "
        "return [s.reconnecting, s.closeInfo.code, s.ws.readyState]; }"
    )
    assert state == [False, 4011, 3], state  # closed for good, no new socket
    assert "移出" in await b.inner_text("#status")
    assert await chair.locator(f"figure[data-participant='{id_b}']").count() == 0

    # what was said and recorded stays with the meeting
    headers = await staff.headers(Role.SECRETARIAT)
    chat = await (await client.get(f"/api/v1/meetings/{meeting}/chat", headers=headers)).json()
    assert {(m["text"], m["private"]) for m in chat["items"]} == {
        ("大家好，开始开会", False),
        ("会后请留一下", True),
        ("第三条消息", False),
    }
    deadline = time.monotonic() + 20
    while True:
        url = f"/api/v1/meetings/{meeting}/recordings"
        recordings = await (await client.get(url, headers=headers)).json()
        if recordings and recordings[0]["status"] != "recording":
            break
        assert time.monotonic() < deadline, recordings
        await asyncio.sleep(0.3)
    assert recordings[0]["status"] == "ready", recordings
    file = await client.get(recordings[0]["download_url"], headers=headers)
    assert file.status == 200 and file.content_type == "video/x-matroska"
    assert len(await file.read()) == recordings[0]["bytes"] > 0


async def test_locked_meeting_lobby_and_a_guest_with_the_passcode(
    app: web.Application,
    server: TestServer,
    launch: Any,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    people = [(await add_person(db, city.id, f"l{i}@gz.gov.cn", f"人员{i}")).id for i in range(2)]
    meeting = await chaired_meeting(client, staff, city, people[0], people[1:])
    headers = await staff.headers(Role.SECRETARIAT)
    passcode = (await (await client.get(f"/api/v1/meetings/{meeting}", headers=headers)).json())[
        "passcode"
    ]
    chair_browser, other = await launch(CHAIR), await launch(RED)
    chair = await open_page(chair_browser, server, app[LINKS].sign("join", meeting, people[0]))

    # locked: an invitee waits in the lobby until the chair admits them
    await chair.click("#lock")
    await chair.wait_for_selector("#lock[aria-pressed=true]")
    invitee = await (await other.new_context()).new_page()
    await invitee.goto(f"{base_url(server)}/join/{app[LINKS].sign('join', meeting, people[1])}")
    await invitee.wait_for_selector("#join:not([disabled])")
    await invitee.click("#join")
    await invitee.wait_for_selector("#lobby:not([hidden])")
    assert "锁定" in await invitee.inner_text("#lobby")
    await chair.click("#lobby-queue li:has-text('人员1') button >> nth=0")
    await invitee.wait_for_function("window.suimeet.session.me !== null")
    await assert_flowing(invitee, await me(chair), "camera", more=10)
    await chair.click("#lock")
    await chair.wait_for_selector("#lock[aria-pressed=false]")

    # a guest: a wrong passcode is refused on the page; the right one leads to the lobby
    guest = await (await other.new_context()).new_page()
    await guest.goto(f"{base_url(server)}/guest")
    wrong = str((int(passcode) + 1) % 10 ** len(passcode)).zfill(len(passcode))
    await guest.fill("#meeting", str(meeting))
    await guest.fill("#passcode", wrong)
    await guest.fill("#name", "访客王")
    await guest.click("#guest-join")
    await guest.wait_for_selector("#guest-error:has-text('错误')")
    await guest.fill("#passcode", passcode)
    await guest.click("#guest-join")
    await guest.wait_for_url("**/join/**")
    await guest.wait_for_selector("#join:not([disabled])")
    await guest.click("#join")
    await guest.wait_for_selector("#lobby:not([hidden])")
    await chair.click("#lobby-queue li:has-text('访客王') button >> nth=0")
    await guest.wait_for_function("window.suimeet.session.me !== null")
    await assert_flowing(guest, await me(chair), "camera", more=10)
    await chair.wait_for_selector(f"figure[data-participant='{await me(guest)}']")

    # mute everyone: every page but the chair's shows it is muted
    await chair.click("#mute-all")
    for page in (invitee, guest):
        await page.wait_for_selector("#mute-audio[aria-pressed=true]")
    assert await chair.get_attribute("#mute-audio", "aria-pressed") == "false"

    # a guest the chair refuses is told so
    refused = await (await other.new_context()).new_page()
    await refused.goto(f"{base_url(server)}/guest?meeting={meeting}")
    await refused.fill("#passcode", passcode)
    await refused.fill("#name", "访客李")
    await refused.click("#guest-join")
    await refused.wait_for_selector("#join:not([disabled])")
    await refused.click("#join")
    await refused.wait_for_selector("#lobby:not([hidden])")
    await chair.click("#lobby-queue li:has-text('访客李') button >> nth=1")
    await refused.wait_for_selector("#status[data-kind=error]")
    assert "未准许" in await refused.inner_text("#status")

    # the chair ends the meeting for everyone
    chair.on("dialog", lambda dialog: dialog.accept())
    await chair.click("#end-all")
    for page in (invitee, guest):
        await page.wait_for_selector("#status[data-kind=error]")
        assert "会议已结束" in await page.inner_text("#status")


# -- network loss -----------------------------------------------------------------------------


def ports_in_use(server_port: int) -> tuple[set[int], set[int]]:
    """(client ports of the connections to the server, ports of the UDP sockets) now."""
    tcp, udp = set(), set()
    established = ["ss", "-Htn", "state", "established", f"dport = :{server_port}"]
    for line in subprocess.run(established, capture_output=True, text=True).stdout.splitlines():
        tcp.add(int(line.split()[-2].rsplit(":", 1)[1]))  # Recv-Q Send-Q Local Peer
    for line in subprocess.run(["ss", "-Huan"], capture_output=True, text=True).stdout.splitlines():
        udp.add(int(line.split()[-2].rsplit(":", 1)[1]))  # State Recv-Q Send-Q Local Peer
    return tcp, udp


def cut_all_but(server_port: int, tcp: set[int], udp: set[int]) -> None:
    """Drop every packet of the server's TCP port and every UDP datagram, except those
    of the connections and sockets given: whoever connects later is offline."""
    keep_tcp = ", ".join(str(p) for p in sorted(tcp | {0}))
    keep_udp = ", ".join(str(p) for p in sorted(udp | {0}))
    rules = f"""table inet suimeet_cut {{
  chain out {{
    type filter hook output priority 0; policy accept;
    tcp dport {server_port} tcp sport != {{ {keep_tcp} }} drop
    tcp sport {server_port} tcp dport != {{ {keep_tcp} }} drop
    udp sport != {{ {keep_udp} }} udp dport != {{ {keep_udp} }} drop
  }}
}}
"""
    subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True)


def restore() -> None:
    subprocess.run(["nft", "delete", "table", "inet", "suimeet_cut"], check=False)


@pytest.mark.skipif(shutil.which("nft") is None, reason="nftables (nft) is not installed")
async def test_network_loss_shows_reconnecting_and_media_resumes(
    app: web.Application,
    server: TestServer,
    launch: Any,
    staff: Staff,
    db: Database,
    city: Unit,
    client: TestClient[Any, Any],
) -> None:
    people = [(await add_person(db, city.id, f"n{i}@gz.gov.cn", f"网络{i}")).id for i in range(2)]
    meeting = await chaired_meeting(client, staff, city, people[0], people[1:])
    tokens = [app[LINKS].sign("join", meeting, p) for p in people]
    port = server.port
    assert port is not None
    viewer = await open_page(await launch(CHAIR), server, tokens[0])
    await asyncio.sleep(0.5)
    before_target = ports_in_use(port)  # the viewer's connections and sockets, the server's
    target = await open_page(await launch(RED), server, tokens[1])
    id_t, id_v = await me(target), await me(viewer)
    await assert_flowing(viewer, id_t, "camera", more=10)
    await assert_flowing(target, id_v, "camera", more=10)
    mark = (
        "(id) => { document.querySelector(`figure[data-participant='${id}']`).dataset.mark = 1; }"
    )
    await viewer.evaluate(mark, id_t)
    await target.evaluate(mark, id_v)
    await viewer.evaluate(
        """() => {
      const s = window.suimeet.session; const seen = window.seen = [];
      const original = s.onMessage.bind(s);
      s.onMessage = (m) => { seen.push(m.type); original(m); };
    }"""
    )
    try:
        cut_all_but(port, *before_target)
        started = time.monotonic()
        await viewer.wait_for_selector(
            f"figure[data-participant='{id_t}'].reconnecting .badge", timeout=12000
        )
        shown = time.monotonic() - started
        await target.wait_for_selector("#conference[data-reconnecting]", timeout=5000)
        assert "重新连接" in await target.inner_text("#status")
    finally:
        frames = await viewer.evaluate(FRAMES_BY_MID), await target.evaluate(FRAMES_BY_MID)
        restore()
    restored = time.monotonic()
    print(f"network cut: the other page showed 'reconnecting' after {shown:.1f} s")

    async def resumes(page: Page, owner: str, before: dict[str, int]) -> float:
        await poll(page, NEW_FRAMES_OF, [owner, before], lambda n: n > 5, timeout=15)
        return time.monotonic() - restored

    at_viewer, at_target = await asyncio.gather(
        resumes(viewer, id_t, frames[0]), resumes(target, id_v, frames[1])
    )
    print(
        f"network restored after {restored - started:.1f} s: video decoded again "
        f"{at_viewer:.2f} s later by the other page, {at_target:.2f} s later by the page itself"
    )
    resumed = max(at_viewer, at_target)
    await target.wait_for_selector("#conference:not([data-reconnecting])")
    assert await me(target) == id_t  # the same participant, resumed
    await viewer.wait_for_selector(f"figure[data-participant='{id_t}']:not(.reconnecting)")
    # the tiles were kept (not removed and made again) on both sides
    await viewer.wait_for_selector(f"figure[data-participant='{id_t}'][data-mark]")
    await target.wait_for_selector(f"figure[data-participant='{id_v}'][data-mark]")
    seen = await viewer.evaluate("window.seen")
    assert "participant_left" not in seen and "participant_joined" not in seen, seen
    assert "participant_state" in seen
    assert resumed < 5.0, f"media resumed {resumed:.2f} s after the network came back"
