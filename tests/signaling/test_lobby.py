"""The lobby: guests wait, without media and without a say, until a chair lets them in."""

from __future__ import annotations

import asyncio

import pytest

from signaling.errors import CLOSE_REMOVED
from signaling.sources import ColorTrack
from tests.signaling.conftest import (
    Fixture,
    close_enough,
    eventually,
    newer,
    of_type,
    received_color,
)

RED = (220, 30, 30)


async def test_a_guest_waits_without_media_until_the_chair_admits_it(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ColorTrack(RED))
    await chair.connect()
    await p.connect()
    guest = conf.client(conf.grant("g", name="访客", kind="guest"))
    await guest.connect(wait=False)
    assert await guest.wait_for(of_type("lobby")) == {
        "type": "lobby",
        "state": "waiting",
        "reason": "guest",
    }
    queue = await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
    [entry] = queue["waiting"]
    assert (entry["name"], entry["kind"]) == ("访客", "guest") and entry["since"]
    assert conf.hub.state("c1")["lobby"] == queue["waiting"]
    assert not [m for m in p.messages if m["type"] == "lobby_queue"]  # chairs only
    # no way around the lobby: whatever it sends is refused, nothing reaches the others
    for message in (
        {"type": "answer", "sdp": "v=0\r\n"},
        {"type": "candidate", "candidate": None},
        {"type": "chat", "text": "let me in", "to": None},
        {"type": "hand", "raised": True},
        {"type": "screen", "sharing": True},
        {"type": "mute", "kind": "audio", "muted": True},
        {"type": "stats"},
    ):
        refused = newer(guest, of_type("error"))
        await guest.send(message)
        assert (await guest.wait_for(refused))["code"] == "forbidden", message
    await guest.send({"type": "ping", "id": 3})
    await guest.wait_for(of_type("pong", id=3))
    await asyncio.sleep(0.3)
    assert [m["type"] for m in guest.messages if m["type"] not in ("error", "pong")] == ["lobby"]
    assert not [m for m in p.messages if m["type"] in ("chat", "hands", "participant_joined")]
    assert guest.participant is None and len(conf.hub.engine.participants("c1")) == 2
    assert conf.activities == []
    # admitted: then welcome and offer as for any join, and media
    await chair.control("admit", entry["id"])
    await guest.wait_for(of_type("lobby", state="admitted", reason="guest"))
    welcome = await guest.wait_for(of_type("welcome"))
    assert welcome["participant"]["kind"] == "guest" and welcome["resumed"] is False
    assert guest.participant is not None
    assert p.participant is not None
    assert close_enough(await received_color(guest, p.participant), RED)
    joined = await p.wait_for(of_type("participant_joined"))
    assert joined["participant"]["id"] == guest.participant
    emptied = await chair.wait_for(of_type("lobby_queue", waiting=[]))
    assert emptied["waiting"] == []
    await chair.wait_for(of_type("controlled", action="admit", participant=entry["id"]))
    await eventually(lambda: [e.kind for e in conf.presence] == ["joined"] * 3)


async def test_a_refused_guest_is_closed_4011_and_cannot_queue_again(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    await chair.connect()
    token = conf.grant("g", kind="guest")
    guest = conf.client(token)
    await guest.connect(wait=False)
    queue = await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
    await chair.control("refuse", queue["waiting"][0]["id"])
    assert (await guest.wait_for(of_type("bye")))["reason"] == "refused"
    await guest.wait_until(lambda: guest.closed is not None)
    assert guest.closed is not None and guest.closed.code == CLOSE_REMOVED
    await chair.wait_for(of_type("lobby_queue", waiting=[]))
    again = conf.client(token)
    with pytest.raises(Exception):  # noqa: B017 (ConnectionClosed)
        await again.connect(timeout=5)
    assert again.closed is not None and again.closed.code == CLOSE_REMOVED
    assert again.closed.error is not None and again.closed.error["code"] == "refused"
    assert conf.presence[-1].grant.identity == "person:c"  # the guest never joined


async def test_nobody_admitting_a_guest_ends_its_wait(conf: Fixture) -> None:
    conf.hub.admissions.timeout = 0.5
    chair = conf.client(conf.grant("c", role="chair"))
    await chair.connect()
    guest = conf.client(conf.grant("g", kind="guest"))
    await guest.connect(wait=False)
    assert (await guest.wait_for(of_type("bye"), timeout=5))["reason"] == "lobby_timeout"
    await guest.wait_until(lambda: guest.closed is not None)
    assert guest.closed is not None and guest.closed.code == CLOSE_REMOVED
    await chair.wait_for(of_type("lobby_queue", waiting=[]))
    # a timeout is not a refusal: the guest may knock again
    again = conf.client(conf.grant("g", kind="guest"))
    await again.connect(wait=False)
    await again.wait_for(of_type("lobby", state="waiting"))


async def test_a_guest_that_goes_away_leaves_the_queue(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    await chair.connect()
    guest = conf.client(conf.grant("g", kind="guest"))
    await guest.connect(wait=False)
    await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
    await guest.leave()
    await chair.wait_for(of_type("lobby_queue", waiting=[]))
    assert conf.hub.state("c1")["lobby"] == []
