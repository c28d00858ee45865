"""Chat to everyone or to one, kept through the hooks; raised hands in the order raised."""

from __future__ import annotations

import asyncio
from datetime import datetime

from signaling.chat import RateLimiter
from tests.signaling.conftest import Fixture, eventually, newer, of_type


async def test_a_public_message_reaches_everyone_and_is_kept(conf: Fixture) -> None:
    a = conf.client(conf.grant("a", name="陈静"))
    b = conf.client(conf.grant("b"))
    c = conf.client(conf.grant("c"))
    for client in (a, b, c):
        await client.connect()
    await a.chat("  大家好  ")
    for client in (a, b, c):
        message = await client.wait_for(of_type("chat"))
        assert message["text"] == "大家好" and message["from"] == a.participant
        assert message["from_name"] == "陈静" and message["to"] is None
        assert len(message["id"]) == 16 and datetime.fromisoformat(message["sent_at"])
    await eventually(lambda: len(conf.activities) == 1)
    kept = conf.activities[0]
    assert (kept.kind, kept.text, kept.action, kept.target) == ("chat", "大家好", None, None)
    assert kept.actor is not None and kept.actor.identity == "person:a"
    assert kept.actor.meta == {"meeting_id": 7}


async def test_a_private_message_reaches_only_its_recipient(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"))
    b = conf.client(conf.grant("b"))
    c = conf.client(conf.grant("c"))
    for client in (a, b, c):
        await client.connect()
    await a.chat("只给你", to=b.participant)
    for client in (a, b):
        message = await client.wait_for(of_type("chat"))
        assert message["to"] == b.participant and message["text"] == "只给你"
    await a.send({"type": "ping", "id": 1})
    await a.wait_for(of_type("pong"))
    await asyncio.sleep(0.2)
    assert not [m for m in c.messages if m["type"] == "chat"]
    await eventually(lambda: len(conf.activities) == 1)
    target = conf.activities[0].target
    assert target is not None and target.id == b.participant and target.identity == "person:b"


async def test_chat_errors_keep_the_socket_open(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"))
    b = conf.client(conf.grant("b"))
    await a.connect()
    await b.connect()
    for text, to, code in [
        ("   ", None, "invalid_request"),
        ("x" * 2001, None, "invalid_request"),
        ("hello", "nobody", "not_found"),
    ]:
        error = newer(a, of_type("error"))
        await a.chat(text, to)
        assert (await a.wait_for(error))["code"] == code
    await a.chat("x" * 2000)  # the longest allowed
    assert len((await b.wait_for(of_type("chat")))["text"]) == 2000
    # larger than any chat may be: a malformed message
    await a.send({"type": "chat", "text": "x" * 5000, "to": None})
    error = await a.wait_for(of_type("error", code="protocol_error"))
    assert error["message"]


async def test_more_than_five_messages_in_five_seconds_are_refused(conf: Fixture) -> None:
    a = conf.client(conf.grant("a"))
    b = conf.client(conf.grant("b"))
    await a.connect()
    await b.connect()
    for n in range(6):
        await a.chat(f"message {n}")
    error = await a.wait_for(of_type("error"))
    assert error["code"] == "rate_limited"
    await a.send({"type": "ping", "id": 9})
    await a.wait_for(of_type("pong", id=9))
    await asyncio.sleep(0.2)
    delivered = [m["text"] for m in b.messages if m["type"] == "chat"]
    assert delivered == [f"message {n}" for n in range(5)]
    b_error = newer(b, of_type("error"))
    await b.chat("others may still talk")
    await a.wait_for(of_type("chat", text="others may still talk"))
    assert not [m for m in b.messages if b_error(m)]


def test_the_rate_limit_is_a_sliding_window() -> None:
    limiter = RateLimiter(limit=5, window=5.0)
    assert all(limiter.allow("a", now=t) for t in (0.0, 1.0, 2.0, 3.0, 4.0))
    assert not limiter.allow("a", now=4.9)
    assert limiter.allow("b", now=4.9)
    assert limiter.allow("a", now=5.0)  # the first one is out of the window
    assert not limiter.allow("a", now=5.5)


async def test_hands_are_queued_in_order_and_the_chair_lowers_them(conf: Fixture) -> None:
    chair = conf.client(conf.grant("c", role="chair"))
    a = conf.client(conf.grant("a", name="甲"))
    b = conf.client(conf.grant("b", name="乙"))
    for client in (chair, a, b):
        await client.connect()
    await b.raise_hand()
    await chair.wait_for(lambda m: m["type"] == "hands" and len(m["queue"]) == 1)
    await a.raise_hand()
    await b.raise_hand()  # again: keeps its place
    hands = await chair.wait_for(lambda m: m["type"] == "hands" and len(m["queue"]) == 2)
    assert [(h["participant"], h["name"]) for h in hands["queue"]] == [
        (b.participant, "乙"),
        (a.participant, "甲"),
    ]
    assert hands["queue"][0]["raised_at"] <= hands["queue"][1]["raised_at"]
    assert (await a.wait_for(lambda m: m["type"] == "hands" and len(m["queue"]) == 2)) == hands
    assert conf.hub.state("c1")["hands"] == hands["queue"]
    # a latecomer sees the queue in its welcome
    late = conf.client(conf.grant("late"))
    assert (await late.connect())["hands"] == hands["queue"]
    next_hands = newer(a, of_type("hands"))
    await chair.control("lower_hand", b.participant)
    lowered = await a.wait_for(next_hands)
    assert [h["participant"] for h in lowered["queue"]] == [a.participant]
    await a.wait_for(of_type("controlled", action="lower_hand", participant=b.participant))
    await a.raise_hand(False)
    await chair.wait_for(of_type("hands", queue=[]))
    # leaving takes the hand down too
    raised = newer(chair, of_type("hands"))
    await b.raise_hand()
    await chair.wait_for(raised)
    await b.leave()
    emptied = newer(chair, of_type("hands", queue=[]))
    await chair.wait_for(lambda m: emptied(m) or m["type"] == "participant_left")
    await eventually(lambda: conf.hub.state("c1")["hands"] == [])
