"""The SFU end to end: a real signalling server and synthetic participants, on loopback.

A server process runs ``signaling.hub.ConferenceHub`` (the real hub and media engine) under
aiohttp with a token table instead of the database; every participant is a
``signaling.client.ConferenceClient`` in a child process. Publishers send a pre-encoded
640x480 30 fps VP8 clip (~1 Mbps, encoded once with libvpx at startup and then looped, a
keyframe on PLI) and Opus; subscribers only parse what arrives (no decoding; media SSRCs
through ``media.fastpath``, so the participants' CPU does not starve the server) and NACK.

Measured over a window, printed as one JSON object per scenario:

* ``cpu_us_per_forwarded_packet``: the server process's CPU time / RTP packets it forwarded;
* ``frames_delivered_fraction``: frames (all packets, by VP8 picture id) that reached every
  subscriber, of those the publishers sent in the window;
* ``latency_ms``: publisher send -> subscriber receive of a frame's first packet (the same
  machine's monotonic clock), i.e. what the SFU and loopback add, client scheduling included.

    python bench/sfu.py                          # broadcast 1->16, all-to-all 4, 6 and 8
    python bench/sfu.py --scenario mesh8 --duration 20 --uvloop
    python bench/sfu.py --smoke                  # tiny run for CI
    python bench/sfu.py --scenario mesh4 --record  # the same while the conference is recorded

With ``--record`` the server records the conference (``MediaEngine.start_recording``, see
``media/recording.py``) from before the warm-up to the end of the window; the result gains
``recording`` (files, bytes, packets dropped, seconds to finish), and the CPU figures include
the recorder's writer thread.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import multiprocessing
import os
import statistics
import struct
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)
SCENARIOS = {"broadcast16": ("broadcast", 17), "mesh4": ("mesh", 4), "mesh6": ("mesh", 6)}
SCENARIOS["mesh8"] = ("mesh", 8)


# -- media, encoded once -----------------------------------------------------------------


def encode_media(path: Path, frames: int = 90) -> None:
    """A VP8 clip (keyframe first) and 1 s of Opus, pickled to ``path``."""
    import pickle

    import av
    import numpy as np

    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = 640, 480, "yuv420p"
    video.bit_rate = 1_000_000
    video.framerate, video.time_base = fractions.Fraction(30, 1), fractions.Fraction(1, 30)
    video.gop_size = 100000
    video.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "end-usage": "cbr",
        "buf-initial-sz": "500",
        "buf-sz": "1000",
        "max-intra-rate": "300",
    }
    yy, xx = np.mgrid[0:480, 0:640]
    rng = np.random.default_rng(1)
    clip: list[bytes] = []
    for i in range(frames):
        image = np.zeros((480, 640, 3), np.uint8)
        image[..., 0] = (xx + i * 8) % 256
        image[..., 1] = (yy * 2 + i * 3) % 256
        image[..., 2] = ((xx + yy) // 4 + i * 5) % 256
        noisy = image.astype(np.int16) + rng.integers(-8, 9, image.shape)
        frame = av.VideoFrame.from_ndarray(noisy.clip(0, 255).astype(np.uint8), format="rgb24")
        frame.pts = i
        clip.extend(bytes(p) for p in video.encode(frame))
    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.layout, audio.format, audio.bit_rate = 48000, "mono", "s16", 32000
    t = np.arange(48000) / 48000
    tone = (np.sin(t * 2 * np.pi * 440) * 8000).astype(np.int16).reshape(1, -1)
    samples = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
    samples.sample_rate, samples.pts = 48000, 0
    opus = [bytes(p) for p in [*audio.encode(samples), *audio.encode(None)]]
    path.write_bytes(pickle.dumps({"video": clip, "audio": opus}))


# -- the server process ------------------------------------------------------------------


def _server_main(
    conn: Connection, tokens: dict[str, str], uvloop: bool, profile: str, fast_path: bool
) -> None:
    if uvloop:
        import uvloop as _uvloop

        _uvloop.install()
    asyncio.run(_server(conn, tokens, profile, fast_path))


async def _server(conn: Connection, tokens: dict[str, str], profile: str, fast_path: bool) -> None:
    import cProfile
    import shutil

    from aiohttp import web

    from media import MediaConfig
    from signaling.errors import JoinRefused
    from signaling.hub import ConferenceHub, JoinGrant

    async def authenticate(token: str) -> JoinGrant:
        identity = tokens.get(token)
        if identity is None:
            raise JoinRefused("unknown token")
        return JoinGrant(conference="bench", identity=identity, name=identity, kind="bot")

    config = MediaConfig(host_addresses=["127.0.0.1"], fast_path=fast_path)
    hub = ConferenceHub(config, authenticate)
    profiler = cProfile.Profile() if profile else None

    seen: dict[int, tuple[int, int]] = {}  # forwarder/track id -> (kind, last count)
    left = [0]

    def count() -> tuple[int, int]:
        """Packets forwarded and received so far, departed participants included."""
        for participant in list(hub.engine._participants.values()):
            for f in participant.forwarders:
                seen[id(f)] = (0, f.packets_sent)
            for t in participant.inbound.values():
                seen[id(t)] = (1, t.packets_forwarded)
        totals = [0, 0]
        for kind, value in seen.values():
            totals[kind] += value
        return totals[0], totals[1]

    async def tick() -> None:
        while True:
            count()
            await asyncio.sleep(0.25)

    def on_left(event: Any) -> None:
        if event["type"] == "participant_left":
            left[0] += 1
            if event["reason"] != "left":
                print(f"bench server: {dict(event)}", file=sys.stderr, flush=True)

    hub.engine._on_event = _chain(hub.engine._on_event, on_left)
    ticker = asyncio.get_running_loop().create_task(tick())

    recordings = Path(tempfile.mkdtemp(prefix="sfu-bench-recording-"))

    async def stats(request: web.Request) -> web.Response:
        record = request.query.get("record")
        if record == "start":
            for conference in hub.engine.conferences():
                await hub.engine.start_recording(conference, str(recordings / conference))
        elif record == "stop":
            started = time.monotonic()
            dropped = sum(
                c.recorder.dropped for c in hub.engine._conferences.values() if c.recorder
            )
            manifests = [await hub.engine.stop_recording(c) for c in hub.engine.conferences()]
            recorders = [m for m in manifests if m is not None]
            return web.json_response(
                {
                    "tracks": sum(len(m["tracks"]) for m in recorders),
                    "frames": sum(t["frames"] for m in recorders for t in m["tracks"]),
                    "bytes": sum(m["bytes"] for m in recorders),
                    "stop_s": round(time.monotonic() - started, 3),
                    "packets_dropped": dropped,
                }
            )
        forwarded, received = count()
        action = request.query.get("profile")
        if profiler is not None and action == "start":
            profiler.enable()
        elif profiler is not None and action == "stop":
            profiler.disable()
            profiler.dump_stats(profile)
        return web.json_response(
            {
                "cpu": time.process_time(),
                "forwarded": forwarded,
                "received": received,
                "left": left[0],
            }
        )

    app = web.Application()
    app.router.add_get("/ws", hub.websocket)
    app.router.add_get("/bench/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    conn.send(port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_reader(conn.fileno(), stop.set)
    await stop.wait()
    ticker.cancel()
    await hub.close()
    await runner.cleanup()
    shutil.rmtree(recordings, ignore_errors=True)


def _chain(first: Any, second: Any) -> Any:
    def both(event: Any) -> None:
        if first is not None:
            first(event)
        second(event)

    return both


# -- participant processes ---------------------------------------------------------------


def _participants_main(conn: Connection, url: str, specs: list[tuple[str, bool]], media: str):
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_participants(conn, url, specs, media))


def _vp8_picture_id(payload: bytes) -> tuple[int, bool] | None:
    """(picture id, start of frame) from a VP8 payload descriptor (RFC 7741)."""
    if len(payload) < 4 or not payload[0] & 0x80 or not payload[1] & 0x80:
        return None
    pid = payload[2] & 0x7F
    if payload[2] & 0x80:
        pid = (pid << 8) | payload[3]
    return pid, bool(payload[0] & 0x10)


async def _participants(conn: Connection, url: str, specs: list[tuple[str, bool]], media: str):
    import pickle

    import av
    from aiortc import MediaStreamTrack
    from aiortc.rtcrtpreceiver import NackGenerator

    from media.fastpath import rtp_socket
    from signaling.client import ConferenceClient

    with open(media, "rb") as file:  # noqa: ASYNC230 (once, before anything runs)
        clips = pickle.load(file)

    class ClipVideo(MediaStreamTrack):  # type: ignore[misc]
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.frames: list[bytes] = clips["video"]
            self.index = 0
            self.count = 0
            self.want_key = True
            self.start = time.monotonic()

        async def recv(self) -> Any:
            self.count += 1
            await asyncio.sleep(max(0.0, self.start + self.count / 30 - time.monotonic()))
            if self.want_key:
                self.want_key, self.index = False, 0
            data = self.frames[self.index]
            self.index = self.index + 1 if self.index + 1 < len(self.frames) else 1
            packet = av.Packet(data)
            packet.pts, packet.time_base = self.count * 3000, VIDEO_TIME_BASE
            return packet

    class ClipAudio(MediaStreamTrack):  # type: ignore[misc]
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.count = 0
            self.start = time.monotonic()

        async def recv(self) -> Any:
            self.count += 1
            await asyncio.sleep(max(0.0, self.start + self.count / 50 - time.monotonic()))
            packet = av.Packet(clips["audio"][self.count % len(clips["audio"])])
            packet.pts, packet.time_base = self.count * 960, AUDIO_TIME_BASE
            return packet

    sent: dict[str, dict[int, list[float]]] = {}  # participant -> pid -> [t, packets]
    received: dict[str, dict[tuple[str, int], list[Any]]] = {}  # -> (pub, pid) -> [t, seqs]
    audio_received: dict[str, int] = {}
    clients: list[tuple[str, ConferenceClient, ClipVideo | None]] = []

    def hook_receiver(client: ConferenceClient, transceiver: Any) -> None:
        """Count what arrives (no decoding) and send NACKs; media SSRCs go byte-level.

        The first packet of an SSRC comes through aiortc; then the SSRC is routed on
        ``media.fastpath`` (decrypt + header parse only), so that the participants'
        own CPU does not starve the server on this 2-core machine. RTX stays on aiortc.
        """
        name = client.participant or ""
        receiver = transceiver.receiver
        rtx_ssrc: dict[int, int] = receiver._RTCRtpReceiver__rtx_ssrc
        nacks: dict[int, NackGenerator] = {}
        frames = received.setdefault(name, {})
        audio_received.setdefault(name, 0)
        fields = SimpleNamespace(sequence_number=0)
        tasks: set[asyncio.Task[None]] = set()

        def record(seq: int, ssrc: int, payload: bytes, now: float) -> None:
            nack = nacks.get(ssrc)
            if nack is None:
                nack = nacks[ssrc] = NackGenerator()
            fields.sequence_number = seq
            if nack.add(fields):
                task = asyncio.ensure_future(receiver._send_rtcp_nack(ssrc, sorted(nack.missing)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if transceiver.kind == "audio":
                audio_received[name] += 1
                return
            found = _vp8_picture_id(payload)
            publisher = client.mids.get(transceiver.mid)
            if found is None or publisher is None:
                return
            key = (publisher, found[0])
            entry = frames.get(key)
            if entry is None:
                entry = frames[key] = [now, set()]
            entry[1].add(seq)

        def on_bytes(buffer: Any, cdata: Any, size: int) -> None:
            seq, _, ssrc = struct.unpack_from("!HII", buffer, 2)
            pos = 12 + 4 * (cdata[0] & 0x0F)
            if cdata[0] & 0x10:
                pos += 4 + 4 * struct.unpack_from("!H", buffer, pos + 2)[0]
            record(seq, ssrc, buffer[pos : min(size, pos + 4)], time.monotonic())

        async def handle(packet: Any, arrival_time_ms: int) -> None:
            payload, seq, ssrc = packet.payload, packet.sequence_number, packet.ssrc
            original = rtx_ssrc.get(ssrc)
            if original is not None:
                if len(payload) < 2:
                    return
                seq, ssrc, payload = int.from_bytes(payload[:2], "big"), original, payload[2:]
            else:
                socket = rtp_socket(receiver.transport)
                if socket is not None:
                    socket.route(ssrc, on_bytes)
            record(seq, ssrc, payload, time.monotonic())

        receiver._handle_rtp_packet = handle

    def hook_sender(name: str, client: ConferenceClient) -> bool:
        sender = next(
            (s for s in client.pc.getSenders() if s.track is not None and s.kind == "video"), None
        )
        if sender is None or sender.transport is None:
            return False
        transport, ssrc, log = sender.transport, sender._ssrc, sent[name]
        original = transport._send_rtp

        async def send(data: bytes) -> None:
            if not 192 <= data[1] <= 223 and int.from_bytes(data[8:12], "big") == ssrc:
                pos = 12 + 4 * (data[0] & 0x0F)
                if data[0] & 0x10:
                    pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
                found = _vp8_picture_id(data[pos:])
                if found is not None:
                    entry = log.get(found[0])
                    if entry is None:
                        log[found[0]] = [time.monotonic(), 1]
                    else:
                        entry[1] += 1
            await original(data)

        transport._send_rtp = send
        return True

    async def join(token: str, publish: bool) -> None:
        video = ClipVideo() if publish else None
        tracks = [ClipAudio(), video] if video is not None else []
        client = ConferenceClient(url, token, tracks=tracks, host_addresses=["127.0.0.1"])

        def on_track(publisher: str | None, track: Any) -> None:
            for transceiver in client.pc.getTransceivers():
                if transceiver.receiver.track is track:
                    hook_receiver(client, transceiver)

        client.on_track = on_track
        welcome = await client.connect()
        name = welcome["participant"]["id"]
        sent[name] = {}
        received.setdefault(name, {})
        audio_received.setdefault(name, 0)
        clients.append((name, client, video))
        if video is not None:

            def keyframe() -> None:
                video.want_key = True

            for _ in range(500):
                if hook_sender(name, client):
                    break
                await asyncio.sleep(0.02)
            for sender in client.pc.getSenders():
                if sender.track is video:
                    sender._send_keyframe = keyframe

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    loop.add_reader(conn.fileno(), lambda: inbox.put_nowait(conn.recv()))
    for token, publish in specs:
        await join(token, publish)
    conn.send({"type": "joined", "participants": [c[0] for c in clients]})
    while True:
        message = await inbox.get()
        os.set_blocking(conn.fileno(), True)  # the event loop's reader made it non-blocking
        if message["type"] == "progress":
            publishing = [n for n, _, video in clients if video is not None]
            frames = {n: len(f) for n, f in received.items()}
            conn.send({"type": "progress", "frames": frames, "publishing": publishing})
        elif message["type"] == "report":
            frames = {
                n: {f"{k[0]}/{k[1]}": (v[0], len(v[1])) for k, v in f.items()}
                for n, f in received.items()
            }
            conn.send({"type": "report", "sent": sent, "received": frames, "audio": audio_received})
        elif message["type"] == "stop":
            break
    loop.remove_reader(conn.fileno())
    for _, client, _ in clients:
        await client.close()


# -- the run -----------------------------------------------------------------------------


class Child:
    """A child process and its pipe (``request`` sends a message and waits for the reply)."""

    def __init__(self, ctx: Any, target: Any, *args: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, *args), daemon=True)
        self.process.start()

    async def receive(self, timeout: float = 60.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.conn.poll():
            if loop.time() > deadline or not self.process.is_alive():
                raise RuntimeError("child process did not answer")
            await asyncio.sleep(0.02)
        return self.conn.recv()

    async def request(self, message: dict[str, Any], timeout: float = 60.0) -> Any:
        self.conn.send(message)
        return await self.receive(timeout)


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stats(port: int, profile: str = "", record: str = "") -> dict[str, Any]:
    import aiohttp

    query = f"?profile={profile}" if profile else (f"?record={record}" if record else "")
    url = f"http://127.0.0.1:{port}/bench/stats{query}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        result: dict[str, Any] = await response.json()
        return result


async def run_scenario(
    scenario: str,
    size: int,
    duration: float,
    warmup: float,
    uvloop: bool,
    media: Path,
    processes: int,
    profile: str,
    fast_path: bool = True,
    record: bool = False,
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    tokens = {f"token-{i}": f"bot:{i}" for i in range(size)}
    publishers = size if scenario == "mesh" else 1
    server = Child(ctx, _server_main, tokens, uvloop, profile, fast_path)
    port = await server.receive()
    url = f"http://127.0.0.1:{port}/ws"
    groups: list[list[tuple[str, bool]]] = [[] for _ in range(min(processes, size))]
    for i in range(size):
        groups[i % len(groups)].append((f"token-{i}", i < publishers))
    children: list[Child] = []
    try:
        # Publishers first (in the broadcast the publisher is token-0, in group 0).
        for group in groups:
            child = Child(ctx, _participants_main, url, group, str(media))
            children.append(child)
            await child.receive(timeout=120)
        expected = publishers - 1 if scenario == "mesh" else None
        deadline = time.monotonic() + 120
        while True:  # every subscriber gets frames from every publisher
            progress = [await c.request({"type": "progress"}) for c in children]
            counts = [
                n
                for p in progress
                for name, n in p["frames"].items()
                if scenario == "mesh" or name not in p["publishing"]
            ]
            ready = all(n > 0 for n in counts)
            if ready and expected is not None:
                reports = [await c.request({"type": "report"}) for c in children]
                ready = all(
                    len({k.split("/")[0] for k in f}) >= expected
                    for r in reports
                    for f in r["received"].values()
                )
            if ready:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"media did not start: {progress}")
            await asyncio.sleep(0.5)
        if record:
            await _stats(port, record="start")
        await asyncio.sleep(warmup)
        before = await _stats(port, "start" if profile else "")
        clients0 = sum(_process_cpu(c.process.pid or 0) for c in children)
        t0 = time.monotonic()
        await asyncio.sleep(duration)
        t1 = time.monotonic()
        after = await _stats(port, "stop" if profile else "")
        before["clients_cpu"] = clients0
        after["clients_cpu"] = sum(_process_cpu(c.process.pid or 0) for c in children)
        recording = await _stats(port, record="stop") if record else None
        await asyncio.sleep(1.0)  # let the last frames of the window arrive
        reports = [await c.request({"type": "report"}) for c in children]
    finally:
        for child in children:
            child.conn.send({"type": "stop"})
        server.conn.send({"type": "stop"})
        for child in [*children, server]:
            await asyncio.get_running_loop().run_in_executor(None, child.process.join, 15)
            if child.process.is_alive():
                child.process.kill()
    result = _summarise(scenario, size, publishers, uvloop, before, after, t0, t1, reports)
    result["server_path"] = "fast" if fast_path else "object"
    if recording is not None:
        result["recording"] = recording
    return result


def _summarise(
    scenario: str,
    size: int,
    publishers: int,
    uvloop: bool,
    before: dict[str, Any],
    after: dict[str, Any],
    t0: float,
    t1: float,
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    sent: dict[str, dict[str, list[float]]] = {}
    received: dict[str, dict[str, tuple[float, int]]] = {}
    audio = 0
    for report in reports:
        sent.update(report["sent"])
        received.update(report["received"])
        audio += sum(report["audio"].values())
    wall = t1 - t0
    cpu = after["cpu"] - before["cpu"]
    forwarded = after["forwarded"] - before["forwarded"]
    expected = delivered = 0
    per_subscriber: list[float] = []
    latencies: list[float] = []
    for subscriber, frames in received.items():
        got = 0
        want = 0
        for publisher, log in sent.items():
            if publisher == subscriber:
                continue
            for pid, (t_send, packets) in log.items():
                if not t0 <= t_send <= t1:
                    continue
                want += 1
                entry = frames.get(f"{publisher}/{pid}")
                if entry is not None and entry[1] >= packets:
                    got += 1
                    latencies.append((entry[0] - t_send) * 1000)
        if want:
            expected += want
            delivered += got
            per_subscriber.append(got / wall)
    latencies.sort()

    def pct(q: float) -> float | None:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)
            if latencies
            else None
        )

    return {
        "benchmark": "sfu",
        "scenario": scenario,
        "participants": size,
        "publishers": publishers,
        "server_loop": "uvloop" if uvloop else "asyncio",
        "duration_s": round(wall, 2),
        "packets_in": after["received"] - before["received"],
        "packets_forwarded": forwarded,
        "forwarded_packets_per_s": round(forwarded / wall, 1),
        "sfu_cpu_share_of_core": round(cpu / wall, 3),
        "cpu_us_per_forwarded_packet": round(cpu * 1e6 / forwarded, 1) if forwarded else None,
        "participants_cpu_share_of_core": round(
            (after["clients_cpu"] - before["clients_cpu"]) / wall, 3
        ),
        "frames_expected": expected,
        "frames_delivered": delivered,
        "frames_delivered_fraction": round(delivered / expected, 4) if expected else None,
        "frames_per_s_per_subscriber": round(statistics.mean(per_subscriber), 2)
        if per_subscriber
        else None,
        "latency_ms": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "p99": pct(0.99),
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "audio_packets_received": audio,
        "participants_left_during_window": after["left"] - before["left"],
        "machine_load_average_1min": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="repeatable; default: all of broadcast16, mesh4, mesh6, mesh8",
    )
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--uvloop", action="store_true", help="run the server on uvloop")
    parser.add_argument(
        "--processes", type=int, default=8, help="participant processes (at most one each)"
    )
    parser.add_argument(
        "--object-path", action="store_true", help="server without the RTP fast path (before)"
    )
    parser.add_argument("--profile", default="", help="cProfile the server's window to FILE")
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (mesh of 3, 2 s)")
    parser.add_argument("--record", action="store_true", help="record the conference meanwhile")
    args = parser.parse_args()
    scenarios = args.scenario or ["broadcast16", "mesh4", "mesh6", "mesh8"]
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media.pickle"
        encode_media(media, frames=30 if args.smoke else 90)
        if args.smoke:
            runs = [("mesh", 3, 2.0, 0.5)]
        else:
            runs = [(*SCENARIOS[s], args.duration, args.warmup) for s in scenarios]
        for kind, size, duration, warmup in runs:
            result = asyncio.run(
                run_scenario(
                    kind,
                    size,
                    duration,
                    warmup,
                    args.uvloop,
                    media,
                    args.processes,
                    args.profile,
                    not args.object_path,
                    args.record,
                )
            )
            print(json.dumps(result), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
