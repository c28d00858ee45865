"""The signalling protocol end to end: real WebSockets, the real SFU, real aiortc peers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from signaling import protocol
from signaling.errors import (
    CLOSE_ENDED,
    CLOSE_NOT_NOW,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    CLOSE_VERSION,
)
from signaling.sources import ColorTrack, ToneTrack
from tests.signaling.conftest import Fixture, close_enough, received_color

RED, BLUE = (220, 30, 30), (30, 30, 220)


async def test_two_participants_see_each_other(conf: Fixture) -> None:
    a = conf.client(conf.grant("a", name="陈静"), ColorTrack(RED), ToneTrack())
    b = conf.client(conf.grant("b"), ColorTrack(BLUE), ToneTrack())
    welcome_a = await a.connect()
    assert welcome_a["participants"] == [] and welcome_a["conference"]["title"] == "测试会议"
    assert welcome_a["participant"]["name"] == "陈静"
    welcome_b = await b.connect()
    assert [p["id"] for p in welcome_b["participants"]] == [a.participant]
    await a.wait_for(
        lambda m: m["type"] == "participant_joined" and m["participant"]["id"] == b.participant
    )
    assert b.participant is not None and a.participant is not None
    assert close_enough(await received_color(a, b.participant), BLUE)
    assert close_enough(await received_color(b, a.participant), RED)
    await a.wait_for(
        lambda m: (
            m["type"] == "track_published"
            and m["kind"] == "audio"
            and m["participant"] == b.participant
        )
    )
    live = conf.hub.conferences()["c1"]
    assert {p["id"] for p in live} == {a.participant, b.participant}
    assert conf.presence[0].kind == "joined" and conf.presence[0].grant.identity == "person:a"


async def test_mute_is_announced_and_leave_cleans_up(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"), ColorTrack(RED), ToneTrack())
    b = conf.client(conf.grant("b"), ToneTrack())
    await a.connect()
    await b.connect()
    await a.mute("audio", True)
    muted = await b.wait_for(lambda m: m["type"] == "mute")
    assert muted == {
        "type": "mute",
        "participant": a.participant,
        "kind": "audio",
        "source": "microphone",
        "muted": True,
    }
    await a.leave()
    left = await b.wait_for(lambda m: m["type"] == "participant_left")
    assert left["participant"] == a.participant and left["reason"] == "left"
    for _ in range(50):
        if len(conf.presence) == 3:
            break
        await asyncio.sleep(0.05)
    assert [e.kind for e in conf.presence] == ["joined", "joined", "left"]
    assert conf.presence[-1].stats is not None
    assert conf.hub.engine.participants("c1") == [b.participant]
    await b.leave()
    for _ in range(50):
        if not conf.hub.conferences():
            break
        await asyncio.sleep(0.05)
    assert conf.hub.conferences() == {} and conf.hub.engine.conferences() == []


async def test_rejoining_replaces_the_old_connection_and_keeps_the_participant(
    conf: Fixture,
) -> None:
    token = conf.grant("a")
    first = conf.client(token, ColorTrack(RED))
    watcher = conf.client(conf.grant("w"))
    await first.connect()
    await watcher.connect()
    second = conf.client(token, ColorTrack(RED))
    welcome = await second.connect()
    with pytest.raises(Exception):  # noqa: B017 (the old client's wait ends as closed)
        await first.wait_for(lambda m: False, timeout=5)
    assert first.closed is not None and first.closed.code == CLOSE_REPLACED
    assert welcome["resumed"] is True and second.participant == first.participant
    assert second.participant is not None
    assert close_enough(await received_color(watcher, second.participant), RED)
    assert [p["id"] for p in conf.hub.participants("c1")] == sorted(
        [watcher.participant, second.participant]
    )
    # the others never saw it leave or join again; attendance saw one join
    assert not [m for m in watcher.messages if m["type"] == "participant_left"]
    assert [e.kind for e in conf.presence] == ["joined", "joined"]


async def test_user_errors_keep_the_socket_open(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"))
    await a.connect()
    await a.send({"type": "answer", "sdp": "v=0 this is not sdp"})
    err = await a.wait_for(lambda m: m["type"] == "error")
    assert err["code"] and err["message"]
    await a.send({"type": "ping", "id": 7})
    assert (await a.wait_for(lambda m: m["type"] == "pong"))["id"] == 7


async def test_end_of_conference_says_bye(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"))
    await a.connect()
    assert await conf.hub.end_conference("c1") == 1
    bye = await a.wait_for(lambda m: m["type"] == "bye")
    assert bye["reason"] == "ended"
    await a.wait_until(lambda: a.closed is not None, timeout=5)
    assert a.closed is not None and a.closed.code == CLOSE_ENDED


async def _raw(conf: Fixture, *frames: str | bytes) -> tuple[int | None, list[dict[str, str]]]:
    async with aiohttp.ClientSession() as session, session.ws_connect(conf.url()) as ws:
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_bytes(frame)
            else:
                await ws.send_str(frame)
        received = [json.loads(m.data) async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
        return ws.close_code, received


def _hello(token: str, version: int = 1) -> str:
    return json.dumps({"type": "hello", "version": version, "token": token})


@pytest.mark.parametrize(
    ("frames", "close_code", "error"),
    [
        (["{nope"], CLOSE_PROTOCOL, "protocol_error"),
        ([b"\x00\x01"], CLOSE_PROTOCOL, "protocol_error"),
        (['{"type": "answer", "sdp": "x"}'], CLOSE_PROTOCOL, "protocol_error"),
        (['{"type": "hello", "version": 1}'], CLOSE_PROTOCOL, "protocol_error"),
        (
            ['{"type": "hello", "version": 1, "token": "a", "admin": true}'],
            CLOSE_PROTOCOL,
            "protocol_error",
        ),
        (["[1, 2]"], CLOSE_PROTOCOL, "protocol_error"),
        ([_hello("a", version=9)], CLOSE_VERSION, "unsupported_version"),
        ([_hello("nobody")], CLOSE_UNAUTHORIZED, "invalid_token"),
        ([_hello("late")], CLOSE_NOT_NOW, "ended"),
        ([_hello("a"), '{"type": "teleport"}'], CLOSE_PROTOCOL, "protocol_error"),
        ([_hello("a"), _hello("a")], CLOSE_PROTOCOL, "protocol_error"),
        (
            [_hello("a"), '{"type": "mute", "kind": "smell", "muted": true}'],
            CLOSE_PROTOCOL,
            "protocol_error",
        ),
    ],
    ids=[
        "bad-json",
        "binary",
        "no-hello",
        "no-token",
        "unknown-field",
        "not-object",
        "version",
        "bad-token",
        "ended",
        "unknown-type",
        "second-hello",
        "bad-kind",
    ],
)
async def test_protocol_errors_close_the_socket_with_a_documented_code(
    conf: Fixture, frames: list[str | bytes], close_code: int, error: str
) -> None:
    conf.grant("a")
    conf.closed_tokens.add("late")
    code, received = await _raw(conf, *frames)
    assert code == close_code
    assert received[-1]["type"] == "error" and received[-1]["code"] == error
    assert received[-1]["message"]
    for _ in range(50):
        if not conf.hub.conferences():
            break
        await asyncio.sleep(0.05)
    assert conf.hub.conferences() == {}


async def test_silence_after_connecting_is_a_protocol_error(
    conf: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "HELLO_TIMEOUT", 0.3)
    code, received = await _raw(conf)
    assert code == CLOSE_PROTOCOL and received[-1]["code"] == "protocol_error"


async def test_oversized_messages_are_refused(conf: Fixture) -> None:
    code, _ = await _raw(conf, "x" * (protocol.MAX_MESSAGE_BYTES + 10))
    assert code == 1009  # message too big (WebSocket standard code)


async def test_a_participant_asks_for_its_own_quality(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"), ColorTrack(RED), ToneTrack())
    b = conf.client(conf.grant("b"), ColorTrack(BLUE))
    await a.connect()
    await b.connect()
    assert a.participant is not None
    await received_color(b, a.participant)
    await a.send({"type": "stats"})
    quality = (await a.wait_for(lambda m: m["type"] == "stats"))["quality"]
    assert quality["connection_state"] == "connected"
    sent = {t["kind"]: t for t in quality["inbound"]}
    assert sent["video"]["packets_received"] > 0 and sent["video"]["codec"]


async def test_bad_input_from_one_leaves_the_conference_unharmed(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"), ColorTrack(RED))
    b = conf.client(conf.grant("b"), ColorTrack(BLUE))
    await a.connect()
    await b.connect()
    assert b.participant is not None
    assert close_enough(await received_color(a, b.participant), BLUE)
    # user errors from b: an invalid SDP, muting what it does not send: b stays
    await b.send({"type": "answer", "sdp": "v=0\r\nnonsense"})
    await b.wait_for(lambda m: m["type"] == "error")
    await b.send({"type": "mute", "kind": "audio", "muted": True})
    # protocol errors from a third: it is closed, nobody else is
    for frames in (["{"], [_hello("c"), "[]"], [_hello("c"), "x" * 300_000]):
        conf.grant("c")
        await _raw(conf, *frames)
    await b.send({"type": "ping"})
    await b.wait_for(lambda m: m["type"] == "pong")
    # media still flows both ways
    assert close_enough(await received_color(a, b.participant), BLUE)
    assert a.participant is not None
    assert close_enough(await received_color(b, a.participant), RED)
    assert {p["id"] for p in conf.hub.participants("c1")} == {a.participant, b.participant}
