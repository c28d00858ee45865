"""Conference recording: real aiortc peers publish, the engine records the forwarded RTP,
and the test decodes the Matroska files it wrote with PyAV (the server itself never does)."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from av import AudioFrame, VideoFrame

from media import InvalidRequest
from media.messages import RecordingManifest
from media.recording import ConferenceRecorder
from tests.media.conftest import Client, Harness, ToneTrack, close_to, wait_for
from tests.media.test_screen import YELLOW, join_sharing, mid_of

RED = (220, 30, 30)
BLUE = (30, 30, 220)
GREEN = (30, 200, 40)


async def publisher(harness: Harness, name: str, **kwargs: Any) -> Client:
    """A participant sending a solid colour and a 440 Hz tone."""
    client = harness.client(name, **kwargs)
    client.outgoing.insert(0, ToneTrack(0.3))  # audio first, like the server's m-lines
    await client.join()
    return client


@dataclass
class Decoded:
    """What one stream of a recording decodes to."""

    kind: str
    codec: str
    title: str
    frames: int = 0
    first_s: float | None = None
    last_s: float = 0.0
    colors: list[tuple[float, float, float]] = field(default_factory=list)
    samples: list[Any] = field(default_factory=list)
    packet_times: list[float] = field(default_factory=list)

    @property
    def color(self) -> tuple[float, float, float]:
        """The median colour of the decoded pictures."""
        median = np.median(np.array(self.colors), axis=0)
        return float(median[0]), float(median[1]), float(median[2])

    def peak_hz(self) -> float:
        signal = np.concatenate(self.samples)
        spectrum = np.abs(np.fft.rfft(signal))
        return float(np.fft.rfftfreq(len(signal), 1 / 48000)[int(spectrum.argmax())])


def decode(path: Path) -> list[Decoded]:
    """Decode every stream of a Matroska file (blocking: run it in a thread)."""
    with av.open(str(path)) as container:
        streams = [
            Decoded(s.type, s.codec_context.name, s.metadata.get("title", ""))
            for s in container.streams
        ]
        for packet in container.demux():
            if packet.dts is None:
                continue
            out = streams[packet.stream.index]
            out.packet_times.append(float(packet.pts * packet.time_base))
            for frame in packet.decode():
                seconds = float(frame.pts * frame.time_base)
                out.frames += 1
                out.first_s = seconds if out.first_s is None else out.first_s
                out.last_s = seconds
                if isinstance(frame, VideoFrame):
                    rgb = frame.to_ndarray(format="rgb24")
                    mean = rgb.reshape(-1, 3).mean(axis=0)
                    out.colors.append((float(mean[0]), float(mean[1]), float(mean[2])))
                elif isinstance(frame, AudioFrame):
                    out.samples.append(frame.to_ndarray()[0])
    return streams


def stream_of(manifest: RecordingManifest, participant: str, source: str) -> int:
    return next(
        t["stream"]
        for t in manifest["tracks"]
        if t["participant"] == participant and t["source"] == source
    )


def forwarded(harness: Harness) -> dict[tuple[str, str], int]:
    """Packets forwarded so far per (participant, source): what a recording can hold."""
    return {
        (name, source): track.packets_forwarded
        for name, participant in harness.engine._participants.items()
        for source, track in participant.inbound.items()
    }


async def record(harness: Harness, directory: Path, seconds: float) -> RecordingManifest:
    await harness.engine.start_recording("c1", str(directory))
    await asyncio.sleep(seconds)
    manifest = await harness.engine.stop_recording("c1")
    assert manifest is not None
    return manifest


async def test_recording_holds_every_track_as_published(harness: Harness, tmp_path: Path) -> None:
    alice = await publisher(harness, "alice", color=RED)
    bob = await publisher(harness, "bob", color=BLUE)
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))

    directory = tmp_path / "rec"
    before = forwarded(harness)
    await harness.engine.start_recording("c1", str(directory))
    assert harness.engine.is_recording("c1")
    await asyncio.sleep(3.0)
    # The taps go at once when the stop begins: nothing is forwarded in between.
    sent = {key: count - before.get(key, 0) for key, count in forwarded(harness).items()}
    manifest = await harness.engine.stop_recording("c1")
    assert manifest is not None
    assert not harness.engine.is_recording("c1")

    assert manifest["file"] == "recording.mkv"
    assert manifest["directory"] == str(directory)
    assert 2.9 <= manifest["duration_s"] <= 4.0
    started = datetime.fromisoformat(manifest["started_at"])
    stopped = datetime.fromisoformat(manifest["stopped_at"])
    assert started.utcoffset() is not None and started < stopped
    assert manifest["bytes"] == (directory / "recording.mkv").stat().st_size > 0
    assert json.loads((directory / "manifest.json").read_text()) == manifest
    assert [e["manifest"] for e in harness.events_of("recording_stopped")] == [manifest]
    tracks = {(t["participant"], t["kind"], t["source"], t["codec"]) for t in manifest["tracks"]}
    assert tracks == {
        (p, kind, source, codec)
        for p in ("alice", "bob")
        for kind, source, codec in (("audio", "microphone", "opus"), ("video", "camera", "vp8"))
    }
    assert sorted(t["stream"] for t in manifest["tracks"]) == [0, 1, 2, 3]
    for track in manifest["tracks"]:
        assert track["file"] == f"{track['participant']}-{track['source']}-1.mkv"
        assert (directory / track["file"]).stat().st_size > 0
        assert 0 <= track["start_offset_s"] < manifest["duration_s"] / 2

    streams = await asyncio.to_thread(decode, directory / "recording.mkv")
    assert (
        sorted((s.kind, s.codec) for s in streams)
        == [("audio", "opus")] * 2 + [("video", "vp8")] * 2
    )
    for name, rgb in (("alice", RED), ("bob", BLUE)):
        video = streams[stream_of(manifest, name, "camera")]
        audio = streams[stream_of(manifest, name, "microphone")]
        assert video.title == f"{name} camera"
        assert close_to(video.color, rgb), video.color
        assert video.frames >= 10
        assert 400 <= audio.peak_hz() <= 480
        assert float(np.abs(np.concatenate(audio.samples)).mean()) > 0.05
        # Every 20 ms packet forwarded is in the file but the last (it waits in the jitter
        # buffer for the next one), each at its RTP time. (The test sources pace by frame
        # count: on a loaded machine they fall behind the clock, then catch up.)
        assert sent[name, "microphone"] - 2 <= audio.frames <= sent[name, "microphone"]
        assert audio.first_s is not None and video.first_s is not None
        assert abs(audio.last_s - audio.first_s - (audio.frames - 1) * 0.02) < 0.05
        assert (video.frames - 1) / 30 - 0.05 <= video.last_s - video.first_s
        if 140 <= sent[name, "microphone"] <= 155:  # the source kept time
            assert 2.5 <= audio.last_s - audio.first_s <= 3.1
            assert 2.0 <= video.last_s - video.first_s <= 3.1
        frames = {t["source"]: t["frames"] for t in manifest["tracks"] if t["participant"] == name}
        assert frames == {"camera": video.frames, "microphone": audio.frames}


async def test_h264_is_recorded_as_sent(harness: Harness, tmp_path: Path) -> None:
    await harness.join("terminal", color=GREEN, video_codec="H264")
    viewer = await harness.join("viewer")
    await wait_for(lambda: close_to(viewer.video_from("terminal"), GREEN))

    manifest = await record(harness, tmp_path, 2.0)

    [track] = manifest["tracks"]
    assert (track["kind"], track["codec"], track["file"]) == (
        "video",
        "h264",
        "terminal-camera-1.mkv",
    )
    for path in (tmp_path / "recording.mkv", tmp_path / track["file"]):
        [video] = await asyncio.to_thread(decode, path)
        assert video.codec == "h264" and video.frames >= 10
        assert close_to(video.color, GREEN), video.color


async def test_stop_without_recording_and_second_start(harness: Harness, tmp_path: Path) -> None:
    await harness.join("alice", color=RED)
    assert await harness.engine.stop_recording("c1") is None
    assert await harness.engine.stop_recording("nowhere") is None
    with pytest.raises(InvalidRequest):
        await harness.engine.start_recording("nowhere", str(tmp_path / "x"))
    await harness.engine.start_recording("c1", str(tmp_path / "a"))
    with pytest.raises(InvalidRequest):
        await harness.engine.start_recording("c1", str(tmp_path / "b"))
    assert await harness.engine.stop_recording("c1") is not None
    assert await harness.engine.stop_recording("c1") is None
    assert not (tmp_path / "b").exists()


async def test_last_participant_leaving_stops_the_recording(
    harness: Harness, tmp_path: Path
) -> None:
    await publisher(harness, "alice", color=RED)
    await wait_for(lambda: harness.engine._participants["alice"].inbound["camera"].published)
    await harness.engine.start_recording("c1", str(tmp_path))
    await asyncio.sleep(1.5)

    await harness.engine.leave("alice")

    [event] = await wait_for(lambda: harness.events_of("recording_stopped"))
    assert event["conference"] == "c1"
    assert not harness.engine.is_recording("c1")
    manifest = event["manifest"]
    assert {(t["participant"], t["source"]) for t in manifest["tracks"]} == {
        ("alice", "microphone"),
        ("alice", "camera"),
    }
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    streams = await asyncio.to_thread(decode, tmp_path / "recording.mkv")
    assert all(s.frames >= 5 for s in streams)


async def test_closing_the_engine_finishes_the_recording(harness: Harness, tmp_path: Path) -> None:
    await publisher(harness, "alice", color=RED)
    await wait_for(lambda: harness.engine._participants["alice"].inbound["camera"].published)
    await harness.engine.start_recording("c1", str(tmp_path))
    await asyncio.sleep(1.0)

    await harness.engine.close()

    [event] = harness.events_of("recording_stopped")
    assert len(event["manifest"]["tracks"]) == 2
    assert (tmp_path / "recording.mkv").stat().st_size == event["manifest"]["bytes"] > 0


async def test_participant_joining_mid_recording_is_recorded_from_then(
    harness: Harness, tmp_path: Path
) -> None:
    alice = await publisher(harness, "alice", color=RED)
    await wait_for(lambda: harness.engine._participants["alice"].inbound["camera"].published)
    await harness.engine.start_recording("c1", str(tmp_path))
    await asyncio.sleep(1.5)
    await publisher(harness, "bob", color=GREEN)
    await wait_for(lambda: close_to(alice.video_from("bob"), GREEN))
    await asyncio.sleep(1.5)
    manifest = await harness.engine.stop_recording("c1")
    assert manifest is not None

    offsets = {(t["participant"], t["source"]): t["start_offset_s"] for t in manifest["tracks"]}
    assert len(offsets) == 4
    assert offsets[("alice", "microphone")] < 0.5 and offsets[("alice", "camera")] < 1.0
    assert 1.4 <= offsets[("bob", "microphone")] < manifest["duration_s"]
    assert 1.4 <= offsets[("bob", "camera")] < manifest["duration_s"]
    streams = await asyncio.to_thread(decode, tmp_path / "recording.mkv")
    bob_video = streams[stream_of(manifest, "bob", "camera")]
    assert close_to(bob_video.color, GREEN), bob_video.color
    assert bob_video.first_s is not None and bob_video.first_s >= 1.4
    assert close_to(streams[stream_of(manifest, "alice", "camera")].color, RED)


async def test_muted_audio_is_not_recorded(harness: Harness, tmp_path: Path) -> None:
    await publisher(harness, "alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: bob.audio_frames_from("alice") > 5)
    microphone = harness.engine._participants["alice"].inbound["microphone"]

    def received() -> int:
        return sum(s.packets_received for s in microphone.media_streams())

    before = forwarded(harness)
    await harness.engine.start_recording("c1", str(tmp_path))
    await asyncio.sleep(1.0)
    await harness.engine.set_muted("alice", "audio", True)
    muted_from = received()
    await asyncio.sleep(1.5)
    muted_packets = received() - muted_from
    await harness.engine.set_muted("alice", "audio", False)
    await asyncio.sleep(1.0)
    sent = forwarded(harness)["alice", "microphone"] - before["alice", "microphone"]
    manifest = await harness.engine.stop_recording("c1")
    assert manifest is not None

    streams = await asyncio.to_thread(decode, tmp_path / "recording.mkv")
    audio = streams[stream_of(manifest, "alice", "microphone")]
    video = streams[stream_of(manifest, "alice", "camera")]
    assert muted_packets >= 20
    # What was forwarded, but the frames waiting in the jitter buffer at the mute and at
    # the stop; one hole, as long as the media the publisher sent while muted.
    assert sent - 3 <= audio.frames <= sent
    times = audio.packet_times
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    hole = max(gaps)
    assert abs(hole - (muted_packets + 1) * 0.02) <= 0.1, (hole, muted_packets)
    assert sorted(gaps)[-2] < 0.1
    hole_from = times[gaps.index(hole)]
    assert [t for t in video.packet_times if hole_from < t < hole_from + hole]  # not muted


def screen_frames(client: Client, before: dict[str, int]) -> int:
    """Frames of alice's screen the client decoded since ``before`` (its frame counts)."""
    mid = mid_of(client, "alice", "screen")
    return 0 if mid is None else client.frames.get(mid, 0) - before.get(mid, 0)


async def test_each_screen_share_is_a_file_of_its_own(harness: Harness, tmp_path: Path) -> None:
    await join_sharing(harness, "alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    await harness.engine.start_recording("c1", str(tmp_path))
    screen = harness.engine._participants["alice"].inbound

    for _ in range(2):
        await harness.engine.set_screen_share("alice", True)
        await wait_for(lambda: "screen" in screen and screen["screen"].published)
        # Bob decodes it: a keyframe went by, which the recording waits for too.
        seen = dict(bob.frames)
        await wait_for(lambda s=seen: screen_frames(bob, s) >= 10)
        await harness.engine.set_screen_share("alice", False)
        await wait_for(lambda: not screen["screen"].published)
    manifest = await harness.engine.stop_recording("c1")
    assert manifest is not None

    shares = sorted((t["file"], t["stream"]) for t in manifest["tracks"] if t["source"] == "screen")
    assert [file for file, _ in shares] == ["alice-screen-1.mkv", "alice-screen-2.mkv"]
    streams = await asyncio.to_thread(decode, tmp_path / "recording.mkv")
    first, second = (streams[index] for _, index in shares)
    for share in (first, second):
        assert share.frames >= 3 and close_to(share.color, YELLOW), share.color
    # Each segment starts when its first packet arrived (then RTP time: a test source that
    # catches up after a slow start may run ahead of the clock, so no check of its end).
    offsets = [t["start_offset_s"] for t in manifest["tracks"] if t["source"] == "screen"]
    assert [first.first_s, second.first_s] == pytest.approx(sorted(offsets), abs=0.002)
    assert offsets[0] + 0.3 < offsets[1]
    camera = streams[stream_of(manifest, "alice", "camera")]
    assert close_to(camera.color, RED)


async def test_a_writer_that_falls_behind_drops_packets_not_forwarding(
    harness: Harness, tmp_path: Path
) -> None:
    """A writer that takes 20 packets a second (~80 arrive) drops and counts the rest;
    video goes on from the next keyframe (asked for again), so what is written decodes,
    and forwarding never waits for it."""
    await publisher(harness, "alice", color=RED)
    bob = await harness.join("bob")
    await wait_for(lambda: close_to(bob.video_from("alice"), RED))
    recorder = ConferenceRecorder("c1", str(tmp_path), queue_limit=20, batch_interval=1.0)
    recorder.start()
    tracks = harness.engine._participants["alice"].inbound
    for track in tracks.values():
        recorder.add(track)
    frames_before, requests_before = bob.frames.copy(), tracks["camera"].keyframe_requests
    await asyncio.sleep(3.0)
    manifest = await recorder.stop()

    assert recorder.dropped >= 20
    assert tracks["camera"].keyframe_requests >= requests_before + 2
    assert all(track.taps == [] for track in tracks.values())
    streams = await asyncio.to_thread(decode, tmp_path / "recording.mkv")
    video = streams[stream_of(manifest, "alice", "camera")]
    audio = streams[stream_of(manifest, "alice", "microphone")]
    assert video.frames >= 3 and close_to(video.color, RED), video.color
    assert audio.frames >= 10 and 400 <= audio.peak_hz() <= 480
    for mid in bob.mids_from("alice"):
        assert bob.frames.get(mid, 0) >= frames_before.get(mid, 0) + 30
