"""Candidates the engine accepts from browsers."""

from __future__ import annotations

import pytest

from media.errors import NegotiationError
from media.ice import parse_candidate

HOST = "candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ host generation 0"
MDNS = "candidate:1 1 udp 2122260223 4b3a2c1d-aaaa-bbbb-cccc-0123456789ab.local 52000 typ host"


@pytest.mark.parametrize("line", [HOST, "a=" + HOST, HOST.removeprefix("candidate:")])
def test_candidate_is_readdressed_to_the_bundle_mid(line: str) -> None:
    candidate = parse_candidate({"candidate": line, "sdpMid": "3", "sdpMLineIndex": 3}, "0")
    assert candidate is not None
    assert (candidate.ip, candidate.port, candidate.type) == ("192.0.2.7", 46154, "host")
    assert (candidate.sdpMid, candidate.sdpMLineIndex) == ("0", 0)


def test_mdns_candidates_are_dropped() -> None:
    assert parse_candidate({"candidate": MDNS, "sdpMid": "0"}, "0") is None


@pytest.mark.parametrize("line", ["candidate:garbage", "candidate:1 1 udp"])
def test_malformed_candidates_are_refused(line: str) -> None:
    with pytest.raises(NegotiationError):
        parse_candidate({"candidate": line, "sdpMid": "0"}, "0")
