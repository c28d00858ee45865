"""Conference recording from the forwarded RTP, without decoding or re-encoding.

A :class:`ConferenceRecorder` taps every published track of one conference (the packet tap
of :class:`~media.publication.PublishedTrack`, called on the event loop with each packet the
SFU forwards, so muted media is not recorded). The tap only queues the packet; a worker
thread reorders packets and assembles frames with aiortc's ``JitterBuffer`` and
depayloaders, and muxes the encoded frames (``av.Packet``; no codec is ever opened) into one
Matroska file per published track: ``<participant>-<source>-<n>.mkv``, a new ``n`` each
time the participant publishes that source again. Timestamps are milliseconds since the
recording started: the arrival time of a track's first packet, then RTP timestamp deltas.
Video starts at a keyframe (asked for when a track is tapped, and again after a hole).

At :meth:`ConferenceRecorder.stop` the per-track files are closed and copied, packet for
packet and interleaved by time, into one ``recording.mkv`` with a stream per track, and a
``manifest.json`` (:class:`~media.messages.RecordingManifest`) is written beside them.

The event loop never waits for the disk, nor wakes the thread: the tap appends to a
bounded queue that the thread empties every :data:`BATCH_INTERVAL`; a packet that does not
fit is dropped and counted (video then waits for its next keyframe) rather than holding up
forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import av
from aiortc.codecs.h264 import h264_depayload
from aiortc.codecs.vpx import vp8_depayload
from aiortc.jitterbuffer import JitterBuffer

from media.errors import InvalidRequest
from media.matroska import CODECS, TrackFile, can_start, combine, is_keyframe
from media.messages import MediaKind, RecordedTrack, RecordingManifest, TrackSource
from media.publication import PublishedTrack

logger = logging.getLogger(__name__)

RECORDING_FILE = "recording.mkv"
MANIFEST_FILE = "manifest.json"
QUEUE_LIMIT = 4096
"""Packets waiting for the writer thread (~3 s of an 8-party conference) before drops."""
BATCH_INTERVAL = 0.05
"""Seconds between the writer thread's turns: it takes the queued packets in batches, so
the event loop never wakes it (a thread wake-up and GIL hand-off per packet cost several
times the work itself)."""
YIELD_EVERY = 16
"""Packets the writer handles before it lets the event loop have the GIL."""
HOLE_TIMEOUT = 1.0
"""Seconds of RTP time a missing packet may hold back newer frames before it is given up."""
KEYFRAME_RETRY = 0.5
"""Seconds between the writer's keyframe requests while it waits for one."""
REBASE_LIMIT = 5.0
"""A track's RTP clock further than this from its arrival times is re-anchored."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DEPAYLOADERS: dict[str | None, Callable[[bytes], bytes]] = {
    "vp8": vp8_depayload,
    "h264": h264_depayload,
}
"""RTP payload -> codec bitstream (VP8 frame data, H.264 Annex B); Opus is as it is."""

PacketItem = tuple["_TrackWriter", bytes | None, str, int, int, int, float, bool]
"""writer, payload (None: finish the file), codec name, sequence number, timestamp, SSRC,
arrival, resync (packets before this one were dropped)."""


class ConferenceRecorder:
    """Records one conference's published tracks until :meth:`stop`.

    Called on the event loop (:meth:`add`, :meth:`remove`, :meth:`stop`); the files are
    written by a worker thread owned by the recorder.
    """

    def __init__(
        self,
        conference_id: str,
        directory: str,
        *,
        queue_limit: int = QUEUE_LIMIT,
        batch_interval: float = BATCH_INTERVAL,
    ) -> None:
        self.conference_id = conference_id
        self.directory = Path(directory)
        self.dropped = 0
        """Packets dropped because the writer thread fell behind."""
        self._queue: deque[PacketItem] = deque()  # append/popleft are atomic
        self._queue_limit = queue_limit
        self._batch_interval = batch_interval
        self._stop = threading.Event()
        self._taps: dict[PublishedTrack, _TrackTap] = {}
        self._writers: list[_TrackWriter] = []
        self._segments: dict[tuple[str, TrackSource], int] = {}
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{conference_id}", daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._stopping = False

    def start(self) -> None:
        """Create the directory and start the writer thread (InvalidRequest if it fails)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidRequest(f"cannot record to {self.directory}: {exc}") from exc
        self._loop = asyncio.get_running_loop()
        self._started_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._thread.start()
        logger.info("recording conference %s to %s", self.conference_id, self.directory)

    def add(self, track: PublishedTrack) -> None:
        """Record ``track`` (published now) into a new per-track file; asks for a keyframe."""
        if self._stopping or track in self._taps or self._loop is None:
            return
        key = (track.publisher, track.source)
        number = self._segments[key] = self._segments.get(key, 0) + 1
        name = f"{_UNSAFE.sub('_', track.publisher)}-{track.source}-{number}.mkv"
        loop = self._loop

        def request_keyframe() -> None:  # from the writer thread
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(track.request_keyframe)

        writer = _TrackWriter(
            self.directory / name,
            participant=track.publisher,
            kind=track.kind,
            source=track.source,
            started=self._started,
            request_keyframe=request_keyframe,
        )
        self._writers.append(writer)
        tap = self._taps[track] = _TrackTap(self, writer)
        track.taps.append(tap)
        track.request_keyframe()
        logger.debug("recording %s %s into %s", track.publisher, track.source, name)

    def remove(self, track: PublishedTrack) -> None:
        """Stop recording ``track`` (unpublished): its file is finished."""
        tap = self._taps.pop(track, None)
        if tap is None:
            return
        if tap in track.taps:
            track.taps.remove(tap)
        self._queue.append((tap.writer, None, "", 0, 0, 0, 0.0, False))

    async def stop(self) -> RecordingManifest:
        """Finish every file, combine them into ``recording.mkv`` and write the manifest."""
        self._stopping = True
        for track in list(self._taps):
            self.remove(track)
        stopped_at = datetime.now(UTC)
        duration = time.monotonic() - self._started
        self._stop.set()
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
        manifest = await asyncio.to_thread(self._finish, stopped_at, duration)
        logger.info(
            "recorded conference %s: %d tracks, %.1f s, %d bytes, %d packets dropped",
            self.conference_id,
            len(manifest["tracks"]),
            manifest["duration_s"],
            manifest["bytes"],
            self.dropped,
        )
        return manifest

    # -- event loop side -----------------------------------------------------------

    def enqueue(self, item: PacketItem) -> bool:
        """Queue a packet for the writer thread; False (and counted) if the queue is full."""
        if len(self._queue) >= self._queue_limit:
            self.dropped += 1
            return False
        self._queue.append(item)
        return True

    # -- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        pending, take = self._queue, self._queue.popleft
        stopping = False
        while not stopping:
            stopping = self._stop.wait(self._batch_interval)
            count = 0
            while pending:
                writer, payload, codec, seq, timestamp, ssrc, arrival, resync = take()
                try:
                    if payload is None:
                        writer.close()
                    else:
                        writer.packet(payload, codec, seq, timestamp, ssrc, arrival, resync)
                except Exception:  # a bug must not stop the other tracks' files
                    logger.exception("recording %s stops", writer.path.name)
                    writer.close()
                count += 1
                if count % YIELD_EVERY == 0:
                    time.sleep(0)  # releases the GIL: forwarding waits at most a few packets
        for writer in self._writers:
            writer.close()

    def _finish(self, stopped_at: datetime, duration: float) -> RecordingManifest:
        written = sorted(
            (w for w in self._writers if w.frames),
            key=lambda w: (w.start_offset_ms, w.path.name),
        )
        output = self.directory / RECORDING_FILE
        tracks: list[RecordedTrack] = []
        try:
            if written:  # Matroska cannot hold zero streams: nothing recorded, no file
                combine([w.path for w in written], output, [w.title for w in written])
        except (av.FFmpegError, OSError):
            logger.exception("cannot combine the recording of %s", self.conference_id)
            output.unlink(missing_ok=True)
        else:
            tracks = [
                RecordedTrack(
                    participant=w.participant,
                    kind=w.kind,
                    source=w.source,
                    codec=w.codec or "",
                    file=w.path.name,
                    stream=index,
                    start_offset_s=round(w.start_offset_ms / 1000, 3),
                    frames=w.frames,
                )
                for index, w in enumerate(written)
            ]
        manifest = RecordingManifest(
            directory=str(self.directory),
            file=RECORDING_FILE,
            started_at=_iso(self._started_at),
            stopped_at=_iso(stopped_at),
            duration_s=round(duration, 3),
            bytes=output.stat().st_size if output.exists() else 0,
            tracks=tracks,
        )
        temporary = self.directory / (MANIFEST_FILE + ".tmp")
        try:
            temporary.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            os.replace(temporary, self.directory / MANIFEST_FILE)
        except OSError:
            logger.exception("cannot write the manifest of %s", self.conference_id)
        return manifest


class _TrackTap:
    """The packet tap of one recorded track (event loop side: queue and return)."""

    __slots__ = ("_recorder", "_resync", "writer")

    def __init__(self, recorder: ConferenceRecorder, writer: _TrackWriter) -> None:
        self._recorder = recorder
        self.writer = writer
        self._resync = False

    def __call__(
        self, payload: bytes, codec: str, seq: int, timestamp: int, ssrc: int, arrival: float
    ) -> None:
        item = (self.writer, payload, codec, seq, timestamp, ssrc, arrival, self._resync)
        # A dropped packet leaves a hole: the next one tells the writer to start afresh.
        self._resync = not self._recorder.enqueue(item)


class _Packet:
    """What aiortc's ``JitterBuffer`` reads of an RTP packet (``_data``: depayloaded)."""

    __slots__ = ("_data", "sequence_number", "timestamp")

    def __init__(self, sequence_number: int, timestamp: int, data: bytes) -> None:
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self._data = data


class _TrackWriter:
    """One per-track Matroska file, written from the recorder's thread only."""

    def __init__(
        self,
        path: Path,
        *,
        participant: str,
        kind: MediaKind,
        source: TrackSource,
        started: float,
        request_keyframe: Callable[[], None],
    ) -> None:
        self.path = path
        self.participant = participant
        self.kind: MediaKind = kind
        self.source: TrackSource = source
        self.codec: str | None = None
        self._codec_name: str | None = None
        self.frames = 0
        self.start_offset_ms = 0
        self.title = f"{participant} {source}"
        self._started = started
        self._request_keyframe = request_keyframe
        self._keyframe_asked = -KEYFRAME_RETRY
        self._video = kind == "video"
        self._waiting_keyframe = self._video
        self._jitter = self._new_jitter_buffer()
        self._clock_rate = 90000 if self._video else 48000
        self._hole_ticks = int(HOLE_TIMEOUT * self._clock_rate)
        self._ssrc: int | None = None
        self._last_timestamp = 0  # RTP timestamp of the last frame out (or of a fresh start)
        self._ticks = 0  # ... and the same, unwrapped
        self._base: tuple[float, int] | None = None  # (ms since the start, ticks) of the anchor
        self._last_pts = -1
        self._file: TrackFile | None = None
        self._closed = False

    def _new_jitter_buffer(self) -> JitterBuffer:
        # aiortc's own sizes (rtcrtpreceiver.py), without its prefetch: latency is free here.
        return JitterBuffer(capacity=512, is_video=True) if self._video else JitterBuffer(16)

    def packet(
        self,
        payload: bytes,
        codec: str,
        seq: int,
        timestamp: int,
        ssrc: int,
        arrival: float,
        resync: bool,
    ) -> None:
        if self._closed:
            return
        if codec != self._codec_name:
            if self._codec_name is not None:
                return  # aiortc cannot change codecs after the first negotiation anyway
            self._codec_name = codec
            self.codec = codec.lower() if codec.lower() in CODECS else None
            if self.codec is None:
                logger.warning("cannot record %s %s: codec %s", self.participant, self.kind, codec)
                self._closed = True
                return
        if ssrc != self._ssrc:  # a new stream: new RTP clock and sequence numbers
            self._ssrc = ssrc
            self._base = None
            self._restart(timestamp, arrival)
        elif resync and self._video:  # packets were dropped: go on from the next keyframe
            self._restart(timestamp, arrival)
        # (Audio goes on: its jitter buffer skips the hole after 16 packets.)
        depayload = _DEPAYLOADERS.get(self.codec)
        try:
            data = payload if depayload is None else depayload(payload)
        except (ValueError, IndexError):  # a malformed payload: a hole, as if lost
            return
        packet = _Packet(seq, timestamp, data)
        lost, frame = self._jitter.add(packet)  # type: ignore[arg-type]
        if frame is None and _delta(timestamp, self._last_timestamp) > self._hole_ticks:
            # Newer frames wait behind a packet that is not coming: give it up.
            self._restart(timestamp, arrival)
            lost, frame = self._jitter.add(packet)  # type: ignore[arg-type]
        elif lost and self._video:
            self._waiting_keyframe = True
        while frame is not None:
            self._frame(frame.data, frame.timestamp, arrival)
            # add() hands out one frame per packet; take every frame that is complete.
            frame = self._jitter._remove_frame(seq)

    def _restart(self, timestamp: int, arrival: float) -> None:
        """Drop what waits in the jitter buffer and go on from this packet."""
        self._jitter = self._new_jitter_buffer()
        if self._base is None:
            self._base = ((arrival - self._started) * 1000, 0)
            self._ticks = 0
        else:
            self._ticks += _delta(timestamp, self._last_timestamp)
        self._last_timestamp = timestamp
        if self._video:
            self._waiting_keyframe = True

    def _frame(self, data: bytes, timestamp: int, arrival: float) -> None:
        ticks = self._ticks = self._ticks + _delta(timestamp, self._last_timestamp)
        self._last_timestamp = timestamp
        codec = self.codec
        assert codec is not None and self._base is not None
        keyframe = is_keyframe(codec, data)
        if self._waiting_keyframe:
            if not keyframe or (self._file is None and not can_start(codec, data)):
                if arrival - self._keyframe_asked >= KEYFRAME_RETRY:
                    self._keyframe_asked = arrival
                    self._request_keyframe()
                return
            self._waiting_keyframe = False
        arrival_ms = (arrival - self._started) * 1000
        base_ms, base_ticks = self._base
        pts_ms = base_ms + (ticks - base_ticks) * 1000 / self._clock_rate
        if abs(pts_ms - arrival_ms) > REBASE_LIMIT * 1000:  # the sender's clock jumped
            self._base = (arrival_ms, ticks)
            pts_ms = arrival_ms
        pts = max(int(pts_ms), self._last_pts + 1)
        try:
            if self._file is None:
                self._file = TrackFile(self.path, codec, data, self.title)
                self.start_offset_ms = pts
            self._file.write(data, pts, keyframe)
        except (av.FFmpegError, OSError):
            logger.exception("recording %s stops", self.path.name)
            self.close()
            return
        self._last_pts = pts
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent; from the writer thread)."""
        self._closed = True
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _delta(timestamp: int, previous: int) -> int:
    """``timestamp - previous`` on the 32-bit RTP clock (signed: reordering is negative)."""
    return ((timestamp - previous + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
