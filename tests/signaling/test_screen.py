"""Screen share: a third uplink, forwarded to everyone as a video track with source screen."""

from __future__ import annotations

import asyncio

from signaling.client import ConferenceClient
from signaling.sources import ColorTrack, ToneTrack, mean_rgb
from tests.signaling.conftest import Fixture, close_enough, flowing, of_type, stopped

RED, GREEN = (220, 30, 30), (30, 200, 30)


async def screen_color(client: ConferenceClient, publisher: str) -> tuple[float, float, float]:
    for _ in range(150):
        for mid, (who, track) in list(client.remote_tracks.items()):
            if who == publisher and client.sources.get(mid) == "screen":
                frame = await asyncio.wait_for(track.recv(), 10)
                return mean_rgb(frame)  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
    raise TimeoutError("no screen track arrived")


async def test_a_shared_screen_reaches_the_others_as_a_third_track(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"), ColorTrack(RED), ToneTrack())
    b = conf.client(conf.grant("b"))
    first = await a.connect()
    await b.connect()
    assert a.participant is not None
    offer = await a.wait_for(of_type("offer"))
    uplinks = [t for t in offer["tracks"] if t["participant"] is None]
    assert {t["source"] for t in uplinks} == {"microphone", "camera"}
    assert first["participant"]["published"] == []
    await flowing(b, a.participant, "camera")
    await a.share_screen(ColorTrack(GREEN))
    reoffer = await a.wait_for(
        lambda m: m["type"] == "offer" and any(t["source"] == "screen" for t in m["tracks"])
    )
    [screen] = [t for t in reoffer["tracks"] if t["source"] == "screen"]
    assert screen["participant"] is None and screen["kind"] == "video"
    published = await b.wait_for(of_type("track_published", source="screen"))
    assert published == {
        "type": "track_published",
        "participant": a.participant,
        "kind": "video",
        "source": "screen",
    }
    assert close_enough(await screen_color(b, a.participant), GREEN)
    await flowing(b, a.participant, "screen")
    await flowing(b, a.participant, "camera")  # the camera goes on beside it
    listed = {p["id"]: p for p in conf.hub.participants("c1")}
    assert listed[a.participant]["published"] == ["audio", "screen", "video"]
    # a latecomer gets it in its first offer and sees it in the welcome
    late = conf.client(conf.grant("late"))
    welcome = await late.connect()
    assert welcome["participants"][0]["published"] == ["audio", "screen", "video"]
    assert close_enough(await screen_color(late, a.participant), GREEN)
    await a.stop_screen()
    await b.wait_for(of_type("track_unpublished", participant=a.participant, source="screen"))
    assert await stopped(b, a.participant, "screen")
    await flowing(b, a.participant, "camera")
    # and it can share again
    await a.share_screen(ColorTrack(RED))
    await b.wait_for(
        lambda m: (
            m["type"] == "track_published"
            and m["source"] == "screen"
            and len(
                [
                    x
                    for x in b.messages
                    if x["type"] == "track_published" and x["source"] == "screen"
                ]
            )
            == 2
        )
    )
    await flowing(b, a.participant, "screen")


async def test_a_participant_without_a_screen_answers_the_screen_uplink_inactive(
    conf: Fixture,
) -> None:
    a = conf.client(conf.grant("a"), ColorTrack(RED))
    b = conf.client(conf.grant("b"))
    await a.connect()
    await b.connect()
    await a.send({"type": "screen", "sharing": True})  # asks, but has nothing to send
    await a.wait_for(
        lambda m: m["type"] == "offer" and any(t["source"] == "screen" for t in m["tracks"])
    )
    await asyncio.sleep(1.0)
    assert not [m for m in b.messages if m["type"] == "track_published" and m["source"] == "screen"]
    assert a.participant is not None
    await flowing(b, a.participant, "camera")
