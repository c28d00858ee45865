"""CPU cost of the SFU per forwarded RTP packet: 1 publisher -> K subscribers on loopback.

The engine runs in this process; the publisher and the subscribers run in a child process
(so their encoding/decoding is not counted). The publisher sends synthetic, pre-packed
VP8 frames (keyframe on request) and Opus packets at a fixed bitrate, so no encoder runs;
subscribers only count packets. Prints one JSON object.

    python bench/sfu_forward.py --subscribers 4 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import multiprocessing
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)


# -- child process: publisher and subscribers ------------------------------------------


def _client_main(conn: Connection, subscribers: int, video_kbps: int) -> None:
    asyncio.run(_clients(conn, subscribers, video_kbps))


async def _clients(conn: Connection, subscribers: int, video_kbps: int) -> None:
    import av
    from aiortc import (
        MediaStreamTrack,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.rtcconfiguration import RTCBundlePolicy

    from media.ice import host_addresses

    class PackedVideo(MediaStreamTrack):  # type: ignore[misc]
        """Pre-packed VP8-like frames at 30 fps; a keyframe first and on request."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            size = max(200, video_kbps * 1000 // 8 // 30)
            self.key = bytes([0x00]) + os.urandom(size * 3)  # P bit 0: keyframe
            self.delta = bytes([0x01]) + os.urandom(size)
            self.want_key = True
            self.count = 0
            self.start = time.monotonic()

        async def recv(self) -> Any:
            self.count += 1
            await asyncio.sleep(max(0, self.start + self.count / 30 - time.monotonic()))
            data, self.want_key = (self.key if self.want_key else self.delta), False
            packet = av.Packet(data)
            packet.pts = self.count * 3000
            packet.time_base = VIDEO_TIME_BASE
            return packet

    class PackedAudio(MediaStreamTrack):  # type: ignore[misc]
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.start = time.monotonic()
            self.data = os.urandom(120)

        async def recv(self) -> Any:
            self.count += 1
            await asyncio.sleep(max(0, self.start + self.count / 50 - time.monotonic()))
            packet = av.Packet(self.data)
            packet.pts = self.count * 960
            packet.time_base = AUDIO_TIME_BASE
            return packet

    received = {"packets": 0}
    pcs: dict[str, Any] = {}

    def make_pc(name: str) -> Any:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        pcs[name] = pc
        if name == "pub":
            audio, video = PackedAudio(), PackedVideo()
            pc.addTrack(audio)
            sender = pc.addTrack(video)

            def keyframe() -> None:
                video.want_key = True

            sender._send_keyframe = keyframe
        else:
            pc.addTransceiver("audio", direction="recvonly")

            @pc.on("track")
            def on_track(track: Any) -> None:
                for t in pc.getTransceivers():
                    if t.receiver.track is track:

                        async def count(packet: Any, arrival_time_ms: int) -> None:
                            received["packets"] += 1

                        t.receiver._handle_rtp_packet = count

        return pc

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    while True:
        message = await inbox.get()
        if message["type"] == "stop":
            conn.send({"type": "received", "packets": received["packets"]})
            break
        if message["type"] == "count":
            conn.send({"type": "received", "packets": received["packets"]})
            continue
        name = message["participant"]
        pc = pcs.get(name) or make_pc(name)
        with host_addresses(["127.0.0.1"]):
            await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        conn.send({"type": "answer", "participant": name, "sdp": pc.localDescription.sdp})
    loop.remove_reader(conn.fileno())
    for pc in pcs.values():
        await pc.close()


# -- this process: the engine ------------------------------------------------------------


async def _run(subscribers: int, duration: float, warmup: float, video_kbps: int) -> dict[str, Any]:
    from media import MediaConfig, MediaEngine

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_client_main, args=(child, subscribers, video_kbps), daemon=True)
    process.start()
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(parent.fileno(), lambda: replies.put_nowait(parent.recv()))
    engine = MediaEngine(
        MediaConfig(host_addresses=["127.0.0.1"]),
        on_event=lambda e: parent.send(dict(e)) if e["type"] == "offer" else None,
    )
    pending_answers: list[asyncio.Task[None]] = []

    async def pump() -> None:
        while True:
            message = await replies.get()
            if message["type"] == "answer":
                await engine.answer(message["participant"], message["sdp"])
            else:
                counts.put_nowait(message)

    counts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    pending_answers.append(loop.create_task(pump()))
    try:
        parent.send(dict(await engine.join("bench", "pub")))
        for i in range(subscribers):
            parent.send(dict(await engine.join("bench", f"sub{i}")))

        def forwarded() -> int:
            return sum(f.packets_sent for p in engine._participants.values() for f in p.forwarders)

        deadline = time.monotonic() + 20
        while forwarded() < subscribers * 50:
            if time.monotonic() > deadline:
                raise RuntimeError("forwarding did not start")
            await asyncio.sleep(0.1)
        await asyncio.sleep(warmup)

        publisher = engine._participants["pub"]
        packets_in0 = sum(t.packets_forwarded for t in publisher.inbound.values())
        out0, cpu0, wall0 = forwarded(), time.process_time(), time.monotonic()
        await asyncio.sleep(duration)
        out1, cpu1, wall1 = forwarded(), time.process_time(), time.monotonic()
        packets_in1 = sum(t.packets_forwarded for t in publisher.inbound.values())
        parent.send({"type": "stop"})
        received = (await asyncio.wait_for(counts.get(), 10))["packets"]
    finally:
        for task in pending_answers:
            task.cancel()
        await asyncio.gather(*pending_answers, return_exceptions=True)
        loop.remove_reader(parent.fileno())
        await engine.close()
        process.join(10)

    packets_out = out1 - out0
    cpu = cpu1 - cpu0
    wall = wall1 - wall0
    return {
        "benchmark": "sfu_forward",
        "subscribers": subscribers,
        "duration_s": round(wall, 3),
        "video_kbps": video_kbps,
        "packets_in": packets_in1 - packets_in0,
        "packets_out": packets_out,
        "packets_out_per_s": round(packets_out / wall, 1),
        "sfu_cpu_s": round(cpu, 3),
        "sfu_cpu_share_of_core": round(cpu / wall, 3),
        "cpu_us_per_forwarded_packet": round(cpu * 1e6 / packets_out, 1) if packets_out else None,
        "subscriber_packets_received_total": received,
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", "-k", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--video-kbps", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (1 s, K=1)")
    args = parser.parse_args()
    if args.smoke:
        args.subscribers, args.duration, args.warmup = 1, 1.0, 0.5
    result = asyncio.run(_run(args.subscribers, args.duration, args.warmup, args.video_kbps))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
