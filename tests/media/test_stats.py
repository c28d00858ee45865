"""Per-participant statistics as plain, JSON-ready dicts."""

from __future__ import annotations

import json

from tests.media.conftest import Harness, close_to, wait_async, wait_for

RED = (220, 30, 30)
BLUE = (30, 30, 220)


async def test_stats_report_loss_jitter_rtt_and_bitrates(harness: Harness) -> None:
    alice = await harness.join("alice", color=RED, amplitude=0.3)
    await harness.join("bob", color=BLUE, amplitude=0.3)
    await wait_for(lambda: close_to(alice.video_from("bob"), BLUE))
    engine = harness.engine

    # RTT needs a receiver report from the subscriber (every 0.5-1.5 s).
    async def with_rtt() -> object:
        sample = await engine.stats("alice")
        return sample if sample["rtt_ms"] is not None else None

    sample = await wait_async(with_rtt, timeout=8)
    json.dumps(sample)
    assert sample["participant"] == "alice"
    assert sample["connection_state"] == "connected"
    assert 0 <= sample["rtt_ms"] < 500
    assert {s["kind"] for s in sample["inbound"]} == {"audio", "video"}
    for inbound in sample["inbound"]:
        assert inbound["packets_received"] > 0
        assert inbound["jitter_ms"] >= 0
        assert inbound["codec"] in ("opus", "VP8")
    assert sample["packet_loss_in"] == 0
    assert {(s["kind"], s["publisher"]) for s in sample["outbound"]} == {
        ("audio", "bob"),
        ("video", "bob"),
    }
    assert all(s["packets_sent"] > 0 for s in sample["outbound"])
    assert sample["packet_loss_out"] is not None and sample["packet_loss_out"] < 0.05

    assert sample["bitrate_in_bps"] > 0
    assert sample["bitrate_out_bps"] > 0
    everyone = await engine.conference_stats("c1")
    assert {s["participant"] for s in everyone} == {"alice", "bob"}
    assert all(s["bitrate_in_bps"] > 0 for s in everyone)
