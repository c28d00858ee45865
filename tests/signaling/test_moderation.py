"""Chair controls end to end: authorised on the server, carried out on the media, shown to
everyone, logged through the hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signaling import protocol
from signaling.client import ConferenceClient
from signaling.errors import CLOSE_ENDED, CLOSE_NOT_NOW, CLOSE_REMOVED, ControlRefused
from signaling.sources import ColorTrack, ToneTrack
from tests.signaling.conftest import Fixture, eventually, flowing, newer, of_type, stopped

RED, GREEN = (220, 30, 30), (30, 200, 30)


async def joined(conf: Fixture, *clients: ConferenceClient) -> None:
    for client in clients:
        await client.connect()


def controlled(action: str, **fields: Any) -> Any:
    return of_type("controlled", action=action, **fields)


async def test_the_chair_mutes_a_participant_and_its_audio_stops_for_everyone(
    conf: Fixture,
) -> None:
    chair = conf.client(conf.grant("c", name="主持人", role="chair"))
    p = conf.client(conf.grant("p"), ToneTrack())
    w = conf.client(conf.grant("w"))
    await joined(conf, chair, p, w)
    assert p.participant is not None
    await flowing(w, p.participant, "microphone")
    await chair.control("mute", p.participant)
    for client in (chair, p, w):
        await client.wait_for(
            of_type("mute", participant=p.participant, source="microphone", muted=True)
        )
        seen = await client.wait_for(controlled("mute"))
        assert seen == {
            "type": "controlled",
            "action": "mute",
            "participant": p.participant,
            "by": chair.participant,
            "by_name": "主持人",
        }
    assert await stopped(w, p.participant, "microphone")
    await eventually(lambda: len(conf.activities) == 1)
    activity = conf.activities[0]
    assert (activity.kind, activity.action, activity.conference) == ("control", "mute", "c1")
    assert activity.actor is not None and activity.actor.identity == "person:c"
    assert activity.target is not None and activity.target.id == p.participant
    assert activity.target.meta == {"meeting_id": 7} and activity.operator_name is None


async def test_an_unmute_is_asked_of_the_participant_who_decides(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ToneTrack())
    w = conf.client(conf.grant("w"))
    await joined(conf, chair, p, w)
    assert p.participant is not None
    await chair.control("mute", p.participant)
    await w.wait_for(of_type("mute", participant=p.participant, muted=True))
    await chair.control("request_unmute", p.participant)
    request = await p.wait_for(of_type("unmute_request"))
    assert request == {
        "type": "unmute_request",
        "kind": "audio",
        "by": chair.participant,
        "by_name": "c",
    }
    await w.wait_for(controlled("request_unmute"))
    assert not [m for m in w.messages if m["type"] == "unmute_request"]
    assert await stopped(w, p.participant, "microphone")  # asking does not unmute
    await p.mute("audio", False)  # the participant accepts
    await w.wait_for(of_type("mute", participant=p.participant, muted=False))
    await flowing(w, p.participant, "microphone")


async def test_mute_all_mutes_everyone_but_the_chairs(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"), ToneTrack())
    p = conf.client(conf.grant("p"), ToneTrack())
    q = conf.client(conf.grant("q"), ToneTrack())
    await joined(conf, chair, p, q)
    assert chair.participant is not None and p.participant is not None
    await flowing(q, chair.participant, "microphone")
    await chair.control("mute_all")
    await q.wait_for(controlled("mute_all", participant=None))
    muted = {m["participant"] for m in q.messages if m["type"] == "mute" and m["muted"]}
    assert muted == {p.participant, q.participant}
    assert await stopped(q, p.participant, "microphone")
    await flowing(q, chair.participant, "microphone")


async def test_stop_video_stops_the_camera_and_the_screen_share(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ColorTrack(RED), ToneTrack())
    await joined(conf, chair, p)
    assert p.participant is not None
    await p.share_screen(ColorTrack(GREEN))
    await chair.wait_for(of_type("track_published", participant=p.participant, source="screen"))
    await flowing(chair, p.participant, "camera")
    await flowing(chair, p.participant, "screen")
    await chair.control("stop_video", p.participant)
    await chair.wait_for(of_type("mute", participant=p.participant, source="camera", muted=True))
    await chair.wait_for(of_type("track_unpublished", participant=p.participant, source="screen"))
    assert await stopped(chair, p.participant, "camera")
    assert await stopped(chair, p.participant, "screen")
    await flowing(chair, p.participant, "microphone")  # the sound goes on


async def test_a_removed_participant_is_closed_4011_and_stays_out(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ToneTrack())
    await joined(conf, chair, p)
    await chair.control("remove", p.participant)
    bye = await p.wait_for(of_type("bye"))
    assert bye["reason"] == "removed"
    await p.wait_until(lambda: p.closed is not None)
    assert p.closed is not None and p.closed.code == CLOSE_REMOVED
    left = await chair.wait_for(of_type("participant_left", participant=p.participant))
    assert left["reason"] == "removed"
    await chair.wait_for(controlled("remove", participant=p.participant))
    assert conf.hub.engine.participants("c1") == [chair.participant]
    await eventually(lambda: [e.kind for e in conf.presence] == ["joined", "joined", "left"])
    # the same person again: refused for the rest of this conference
    again = conf.client("p")
    with pytest.raises(Exception):  # noqa: B017 (ConnectionClosed)
        await again.connect(timeout=5)
    assert again.closed is not None and again.closed.code == CLOSE_REMOVED
    assert again.closed.error is not None and again.closed.error["code"] == "removed"


async def test_ending_the_conference_closes_everyone_with_4010(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"))
    guest = conf.client(conf.grant("g", kind="guest"))
    await joined(conf, chair, p)
    await guest.connect(wait=False)
    await guest.wait_for(of_type("lobby", state="waiting"))
    await chair.control("end")
    for client in (chair, p, guest):
        await client.wait_for(of_type("bye", reason="ended"))
        await client.wait_until(lambda c=client: c.closed is not None)  # type: ignore[misc]
        assert client.closed is not None and client.closed.code == CLOSE_ENDED
    assert (await p.wait_for(controlled("end")))["by"] == chair.participant
    await eventually(lambda: conf.hub.conferences() == {})
    assert conf.hub.engine.conferences() == []
    # a reload (or a reconnecting page) does not open it again
    again = conf.client("p")
    with pytest.raises(Exception):  # noqa: B017 (ConnectionClosed)
        await again.connect(timeout=5)
    assert again.closed is not None and again.closed.code == CLOSE_NOT_NOW
    assert again.closed.error is not None and again.closed.error["code"] == "ended"
    assert conf.hub.conferences() == {}


async def test_lock_sends_newcomers_to_the_lobby_but_not_chairs_or_terminals(
    conf: Fixture,
) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"))
    await joined(conf, chair, p)
    await chair.control("lock")
    for client in (chair, p):
        state = await client.wait_for(of_type("conference_state"))
        assert state == {"type": "conference_state", "locked": True, "recording": False}
    late = conf.client(conf.grant("late"))
    await late.connect(wait=False)
    waiting = await late.wait_for(of_type("lobby"))
    assert waiting == {"type": "lobby", "state": "waiting", "reason": "locked"}
    queue = await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
    entry = queue["waiting"][0]
    assert entry["name"] == "late" and entry["kind"] == "browser"
    # chairs and room terminals still come straight in
    chair2 = conf.client(conf.grant("c2", role="chair"))
    room = conf.client(conf.grant("room", kind="terminal"))
    welcome = await chair2.connect()
    assert welcome["conference"]["locked"] is True
    await room.connect()
    # a reconnection is never held back either
    p_id = p.participant
    resumed = await p.reconnect()
    assert resumed["resumed"] is True and p.participant == p_id
    await chair.control("unlock")
    await p.wait_for(of_type("conference_state", locked=False))
    await chair.control("admit", entry["id"])
    await late.wait_for(of_type("lobby", state="admitted"))
    await late.wait_for(of_type("welcome"))


ALL_ACTIONS = sorted(protocol.CONTROL_ACTIONS)


@pytest.mark.parametrize("action", ALL_ACTIONS)
async def test_a_participant_may_not_control_and_nothing_changes(
    conf: Fixture, action: str
) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ToneTrack())
    q = conf.client(conf.grant("q"), ToneTrack())
    guest = conf.client(conf.grant("g", kind="guest"))
    await joined(conf, chair, p, q)
    await guest.connect(wait=False)
    queue = await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
    await q.raise_hand()
    await chair.wait_for(lambda m: m["type"] == "hands" and m["queue"])
    assert q.participant is not None
    target = {
        "admit": queue["waiting"][0]["id"],
        "refuse": queue["waiting"][0]["id"],
    }.get(action, q.participant)
    before = conf.hub.state("c1")
    await p.control(
        action,
        target
        if action
        in ("admit", "refuse", "mute", "request_unmute", "stop_video", "remove", "lower_hand")
        else None,
    )
    error = await p.wait_for(of_type("error"))
    assert error["code"] == "forbidden"
    await p.send({"type": "ping", "id": 5})
    await p.wait_for(of_type("pong", id=5))  # the socket stays open
    await asyncio.sleep(0.3)
    assert conf.hub.state("c1") == before
    assert {s["id"] for s in conf.hub.participants("c1")} == {
        chair.participant,
        p.participant,
        q.participant,
    }
    assert not [m for m in q.messages if m["type"] in ("controlled", "mute", "unmute_request")]
    assert conf.activities == [] and conf.opened == []
    await flowing(chair, q.participant, "microphone")
    assert guest.closed is None and not [m for m in guest.messages if m["type"] == "welcome"]


async def test_unknown_targets_and_misplaced_participants_are_refused(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    await chair.connect()
    for action, participant, code in [
        ("mute", "nobody", "not_found"),
        ("admit", "nobody", "not_found"),
        ("remove", None, "invalid_request"),
        ("lock", chair.participant, "invalid_request"),
        ("lower_hand", chair.participant, "invalid_request"),  # no hand raised
    ]:
        next_error = newer(chair, of_type("error"))
        await chair.control(action, participant)
        error = await chair.wait_for(next_error)
        assert error["code"] == code, (action, error)
    # an unknown action is a malformed message: a protocol error
    await chair.send({"type": "control", "action": "teleport", "participant": None})
    error = await chair.wait_for(lambda m: m["type"] == "error" and m["code"] == "protocol_error")
    assert error["message"]


async def test_an_operator_controls_over_the_hub_api(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    p = conf.client(conf.grant("p"), ToneTrack())
    await joined(conf, chair, p)
    assert conf.hub.state("c1") == {
        "live": True,
        "locked": False,
        "recording": False,
        "hands": [],
        "lobby": [],
    }
    await conf.hub.control("c1", "mute", p.participant, operator="admin@city")
    seen = await p.wait_for(controlled("mute"))
    assert seen["by"] is None and seen["by_name"] == "admin@city"
    await conf.hub.control("c1", "lock", None, operator="admin@city")
    assert conf.hub.state("c1")["locked"] is True
    await eventually(lambda: len(conf.activities) == 2)
    assert [a.operator_name for a in conf.activities] == ["admin@city", "admin@city"]
    assert all(a.actor is None for a in conf.activities)
    for conference, action, participant, code in [
        ("nowhere", "lock", None, "not_found"),
        ("c1", "mute", "nobody", "not_found"),
        ("c1", "dance", None, "invalid_request"),
        ("c1", "remove", None, "invalid_request"),
    ]:
        with pytest.raises(ControlRefused) as refused:
            await conf.hub.control(conference, action, participant, operator="admin@city")
        assert refused.value.code == code
    assert conf.hub.state("nowhere")["live"] is False
