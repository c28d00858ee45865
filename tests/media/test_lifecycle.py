"""Participants come and go: nothing is left behind, and rejoining works."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from media import MediaConfig, MediaEngine, NegotiationError, UnknownParticipant
from media.ice import host_addresses
from tests.media.conftest import LOOPBACK, ColorTrack, Harness, close_to, wait_for

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def _task_owners() -> set[int]:
    """ids of the objects whose methods the running tasks execute."""
    owners = set()
    # Not the current task: reading its frame's f_locals would pin the test's locals.
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        frame = getattr(task.get_coro(), "cr_frame", None)
        if not task.done() and frame is not None and "self" in frame.f_locals:
            owners.add(id(frame.f_locals["self"]))
    return owners


def _connection_objects(pc: Any) -> set[int]:
    objects: list[object] = [pc]
    for t in pc.getTransceivers():
        dtls = t.receiver.transport
        objects += [t, t.sender, t.receiver, dtls, dtls.transport, dtls.transport._connection]
    return {id(o) for o in objects}


async def _assert_gone(ref: weakref.ref[object]) -> None:
    for _ in range(50):
        gc.collect()
        if ref() is None:
            return
        await asyncio.sleep(0.02)
    referrers = [type(r).__name__ for r in gc.get_referrers(ref())]
    raise AssertionError(f"object still referenced by {referrers}")


async def test_leave_cleans_up_everything(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED, amplitude=0.3)
    await wait_for(lambda: alice.pc.connectionState == "connected")

    bob = await harness.join("bob", color=BLUE, amplitude=0.3)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    server_bob = harness.engine._participants["bob"]
    bob_ref = weakref.ref(server_bob)
    bob_tracks = list(server_bob.inbound.values())
    pc_ref = weakref.ref(server_bob.pc)
    bob_objects = _connection_objects(server_bob.pc)
    assert _task_owners() & bob_objects, "sanity: bob's connection runs tasks"
    del server_bob

    await harness.engine.leave("bob")
    await bob.close()
    del harness.clients["bob"]

    # Alice's m-lines from bob go inactive in a new offer, and she answers it.
    await wait_for(lambda: alice.offers_handled >= 3)
    server_alice = harness.engine._participants["alice"]
    assert [f.publisher for f in server_alice.forwarders] == [None, None]
    assert {t.direction for t in (f.transceiver for f in server_alice.forwarders)} == {"inactive"}
    assert all(not t.forwarders for t in server_alice.inbound.values())
    assert all(not t.forwarders and not t.published for t in bob_tracks)
    unpublished = {(e["participant"], e["kind"]) for e in harness.events_of("track_unpublished")}
    assert unpublished == {("bob", "audio"), ("bob", "video")}
    assert harness.events_of("participant_left")[-1]["reason"] == "left"
    assert harness.engine.participants("c1") == ["alice"]

    del bob_tracks
    await _assert_gone(bob_ref)
    await _assert_gone(pc_ref)
    await wait_for(lambda: not (_task_owners() & bob_objects), timeout=5)

    await harness.engine.leave("bob")  # idempotent


async def test_dropped_connection_is_cleaned_up(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED)
    bob = await harness.join("bob", color=BLUE)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    bob_ref = weakref.ref(harness.engine._participants["bob"])

    await bob.close()  # DTLS close_notify: the server sees the connection close
    del harness.clients["bob"]

    await wait_for(lambda: "bob" not in harness.engine._participants)
    left = harness.events_of("participant_left")
    assert left[-1]["participant"] == "bob"
    assert left[-1]["reason"] in ("closed", "failed")
    states = [
        e["state"] for e in harness.events_of("connection_state") if e["participant"] == "bob"
    ]
    assert states[-1] in ("closed", "failed")
    await wait_for(lambda: alice.offers_handled >= 3)
    await wait_for(lambda: not harness.engine._tasks)
    await _assert_gone(bob_ref)


async def test_rejoin_with_the_same_id_is_seen_again(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED)
    bob = await harness.join("bob", color=BLUE)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    transceivers = len(alice.pc.getTransceivers())

    await harness.engine.leave("bob")
    await bob.close()
    del harness.clients["bob"]
    await wait_for(lambda: alice.offers_handled >= 3)

    green = (30, 200, 40)
    await harness.join("bob", color=green)
    await wait_for(lambda: close_to(alice.video_from("bob"), green))
    # The inactive m-lines were re-pointed at the new bob instead of adding new ones.
    assert len(alice.pc.getTransceivers()) == transceivers


async def test_join_with_a_connected_id_replaces_the_old_connection(harness: Harness) -> None:
    await harness.join("alice", color=RED)
    old = harness.engine._participants["alice"]
    offer = await harness.engine.join("c1", "alice")
    assert offer["participant"] == "alice"
    assert old.closed
    assert harness.events_of("participant_left")[-1]["reason"] == "replaced"


async def test_an_answer_finishing_after_a_replacement_publishes_nothing(
    harness: Harness,
) -> None:
    """The old connection's answer was still being applied when the same id joined again:
    its tracks must not be published (nobody would ever unpublish them)."""
    await harness.join("bob")
    offer = await harness.engine.join("c1", "alice")
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        client.addTrack(ColorTrack(RED))
        with host_addresses(LOOPBACK):
            await client.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
            await client.setLocalDescription(await client.createAnswer())
        answering = asyncio.ensure_future(
            harness.engine.answer("alice", client.localDescription.sdp)
        )
        await asyncio.sleep(0)  # the answer is being applied...
        await harness.engine.join("c1", "alice")  # ...when the id joins again
        await asyncio.gather(answering, return_exceptions=True)
        await asyncio.sleep(0.1)
        assert not [e for e in harness.events_of("track_published") if e["participant"] == "alice"]
        assert all(f.publisher is None for f in harness.engine._participants["bob"].forwarders)
    finally:
        await client.close()


async def test_errors_for_unknown_participants_and_bad_answers(harness: Harness) -> None:
    with pytest.raises(UnknownParticipant):
        await harness.engine.answer("nobody", "v=0")
    await harness.engine.join("c1", "alice")
    with pytest.raises(NegotiationError):
        await harness.engine.answer("alice", "this is not sdp")
    with pytest.raises(NegotiationError):
        await harness.engine.answer("alice", "v=0\r\n" * 100_000)


async def test_engine_close_is_idempotent_and_refuses_new_joins() -> None:
    engine = MediaEngine(MediaConfig(host_addresses=LOOPBACK))
    await engine.join("c1", "alice")
    await engine.close()
    await engine.close()
    assert engine.conferences() == []
    with pytest.raises(Exception, match="closed"):
        await engine.join("c1", "bob")


async def test_server_offers_loopback_candidates_and_no_stun(harness: Harness) -> None:
    offer = await harness.engine.join("c1", "alice")
    assert " 127.0.0.1 " in offer["sdp"]
    assert "srflx" not in offer["sdp"]
    config = harness.engine._participants["alice"].pc._RTCPeerConnection__configuration
    assert config.iceServers == []
