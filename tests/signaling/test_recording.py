"""Recording started and stopped by the chair: everyone sees it, web's hooks get the files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from media import MediaConfig, MediaEngine
from signaling.conference import LiveConference
from signaling.errors import ControlRefused
from signaling.hooks import ConferenceHooks
from signaling.recorder import Recorder
from signaling.sources import ColorTrack, ToneTrack
from tests.signaling.conftest import Fixture, eventually, flowing, newer, of_type

RED = (220, 30, 30)


async def test_the_chair_records_and_everyone_sees_it(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", name="主持人", role="chair"))
    p = conf.client(conf.grant("p", name="发言人"), ColorTrack(RED), ToneTrack())
    await chair.connect()
    await p.connect()
    assert p.participant is not None and chair.participant is not None
    await flowing(chair, p.participant, "camera")
    await chair.control("record_start")
    for client in (chair, p):
        state = await client.wait_for(of_type("conference_state"))
        assert state == {"type": "conference_state", "locked": False, "recording": True}
        started = await client.wait_for(of_type("controlled", action="record_start"))
        assert started["participant"] is None and started["by"] == chair.participant
    [(conference, by, meta)] = conf.opened
    assert conference == "c1" and meta == {"meeting_id": 7}
    assert by is not None and by.identity == "person:c" and by.name == "主持人"
    assert conf.hub.state("c1")["recording"] is True
    assert conf.hub.engine.is_recording("c1")
    late = conf.client(conf.grant("late"))
    assert (await late.connect())["conference"]["recording"] is True
    await asyncio.sleep(2.0)  # some media to record
    stopping = newer(p, of_type("conference_state"))
    await chair.control("record_stop")
    assert (await p.wait_for(stopping))["recording"] is False
    await p.wait_for(of_type("controlled", action="record_stop"))
    await eventually(lambda: len(conf.closed) == 1)
    target, manifest, participants = conf.closed[0]
    assert target.id == "1" and manifest["directory"] == target.directory
    assert (Path(target.directory) / manifest["file"]).stat().st_size == manifest["bytes"] > 0
    recorded = {(t["participant"], t["source"]) for t in manifest["tracks"]}
    assert {(p.participant, "camera"), (p.participant, "microphone")} <= recorded
    assert participants[p.participant].name == "发言人"
    assert set(participants) == {t["participant"] for t in manifest["tracks"]}
    assert conf.hub.state("c1")["recording"] is False
    assert not conf.hub.engine.is_recording("c1")
    await eventually(lambda: [a.action for a in conf.activities] == ["record_start", "record_stop"])


async def test_a_recording_stops_when_everyone_has_left(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"), ColorTrack(RED))
    await chair.connect()
    await chair.control("record_start")
    await chair.wait_for(of_type("conference_state", recording=True))
    await asyncio.sleep(1.0)
    await chair.leave()
    await eventually(lambda: len(conf.closed) == 1, timeout=15)
    assert conf.hub.conferences() == {}
    await asyncio.sleep(0.3)
    assert len(conf.closed) == 1  # once


async def test_recording_refused_twice_or_when_storage_fails(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    await chair.connect()
    error = newer(chair, of_type("error"))
    await chair.control("record_stop")
    assert (await chair.wait_for(error))["code"] == "invalid_request"
    await chair.control("record_start")
    await chair.wait_for(of_type("conference_state", recording=True))
    error = newer(chair, of_type("error"))
    await chair.control("record_start")
    assert (await chair.wait_for(error))["code"] == "invalid_request"
    assert len(conf.opened) == 1
    # the storage fails: nothing is recorded
    conf.storage_fails = True
    other = conf.client(conf.grant("c2", conference="c2", role="chair"))
    await other.connect()
    await other.control("record_start")
    refused = await other.wait_for(of_type("error"))
    assert refused["code"] == "unavailable"
    assert conf.hub.state("c2")["recording"] is False


async def test_without_recording_hooks_recording_is_unavailable() -> None:
    engine = MediaEngine(MediaConfig())
    changes: list[LiveConference] = []
    recorder = Recorder(engine, ConferenceHooks(), lambda _: None, changes.append)
    live = LiveConference("c1", {})
    with pytest.raises(ControlRefused) as refused:
        await recorder.start(live, None)
    assert refused.value.code == "unavailable"
    assert live.recording is None and changes == []
    await engine.close()
