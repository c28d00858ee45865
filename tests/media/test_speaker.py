"""Active speaker from the RFC 6464 audio level, without decoding audio."""

from __future__ import annotations

from media.speaker import ActiveSpeakerDetector
from tests.media.conftest import Harness, wait_for


def _detector() -> ActiveSpeakerDetector:
    return ActiveSpeakerDetector(threshold=40, margin=8, hold=0.5, smoothing=0.5)


def _feed(d: ActiveSpeakerDetector, levels: dict[str, int], start: float, seconds: float) -> None:
    t = start
    while t < start + seconds:
        for pid, level in levels.items():
            d.add(pid, level, t)
        t += 0.02


def test_loudest_participant_above_threshold_becomes_speaker() -> None:
    d = _detector()
    _feed(d, {"a": 30, "b": 127}, 0.0, 0.5)  # a at -30 dBov, b silent
    assert d.speaker == "a"


def test_silence_never_makes_a_speaker() -> None:
    d = _detector()
    _feed(d, {"a": 127, "b": 110}, 0.0, 1.0)
    assert d.speaker is None


def test_speaker_changes_only_after_hold_and_with_margin() -> None:
    d = _detector()
    _feed(d, {"a": 30, "b": 127}, 0.0, 1.0)
    assert d.speaker == "a"
    _feed(d, {"a": 30, "b": 27}, 1.0, 1.0)  # b only 3 dB louder: below the margin
    assert d.speaker == "a"
    _feed(d, {"a": 100, "b": 20}, 2.0, 1.0)
    assert d.speaker == "b"


def test_stale_levels_stop_counting_and_removal_re_elects() -> None:
    d = _detector()
    _feed(d, {"a": 20, "b": 40}, 0.0, 1.0)
    assert d.speaker == "a"
    assert d.remove("a", 1.0)
    assert d.speaker == "b"
    assert d.levels(5.0) == {"b": 0.0}


async def test_audio_level_drives_the_active_speaker(harness: Harness) -> None:
    alice = await harness.join("alice", amplitude=0.5)
    bob = await harness.join("bob", amplitude=0.0)
    engine = harness.engine

    await wait_for(lambda: engine.active_speaker("c1") == "alice")
    alice.set_amplitude(0.0)
    bob.set_amplitude(0.5)
    await wait_for(lambda: engine.active_speaker("c1") == "bob")
    speakers = [e["participant"] for e in harness.events_of("active_speaker")]
    assert speakers[-2:] == ["alice", "bob"]


async def test_muting_removes_the_speaker(harness: Harness) -> None:
    await harness.join("alice", amplitude=0.5)
    await harness.join("bob", amplitude=0.0)
    engine = harness.engine
    await wait_for(lambda: engine.active_speaker("c1") == "alice")
    await engine.set_muted("alice", "audio", True)
    assert engine.active_speaker("c1") is None
    muted = harness.events_of("track_muted")[-1]
    assert (muted["participant"], muted["kind"], muted["muted"]) == ("alice", "audio", True)
    # While muted, alice's audio is not forwarded to bob.
    forwarder = next(f for f in engine._participants["bob"].forwarders if f.kind == "audio")
    sent = forwarder.packets_sent
    track = engine._participants["alice"].inbound["microphone"]
    received = track.bytes_received
    await wait_for(lambda: track.bytes_received > received + 1000)  # alice still sends
    assert forwarder.packets_sent == sent
