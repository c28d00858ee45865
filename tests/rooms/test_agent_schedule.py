"""The terminal agent's schedule (:func:`rooms.agent.schedule.plan`) and reconnection backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rooms.agent.schedule import Booking, Decision, backoff, plan

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
LEAD = timedelta(seconds=5)


def b(conference: str, start_min: float, end_min: float) -> Booking:
    return Booking(
        conference, conference, T0 + timedelta(minutes=start_min), T0 + timedelta(minutes=end_min)
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


A, B = b("1@a", 0, 60), b("2@b", 60, 90)


def test_idle_waits_for_the_lead_before_the_next_start() -> None:
    assert plan(at(-10), [A, B], None, None, lead=LEAD) == Decision(wake_at=T0 - LEAD)
    assert plan(T0 - LEAD, [A, B], None, None, lead=LEAD) == Decision(join="1@a")
    assert plan(at(200), [A, B], None, None, lead=LEAD) == Decision()


def test_a_meeting_that_started_while_away_is_joined_at_once() -> None:
    assert plan(at(30), [A, B], None, None, lead=LEAD).join == "1@a"


def test_in_a_conference_stay_to_the_end_then_the_next_follows() -> None:
    assert plan(at(30), [A, B], "1@a", at(60), lead=LEAD) == Decision(wake_at=at(60) - LEAD)
    assert plan(at(60), [A, B], "1@a", at(60), lead=LEAD).leave == "the meeting is over"
    assert plan(at(60), [B], None, None, lead=LEAD).join == "2@b"


def test_a_booking_gone_means_leaving_but_not_for_a_commanded_conference() -> None:
    assert plan(at(30), [B], "1@a", at(60), lead=LEAD).leave is not None
    kept = plan(at(30), [B], "9@x", at(45), lead=LEAD, commanded="9@x")
    assert kept.leave is None and kept.wake_at == at(45)
    assert plan(at(45), [B], "9@x", at(45), lead=LEAD, commanded="9@x").leave is not None


def test_a_join_command_wins_over_the_current_conference() -> None:
    d = plan(at(30), [A], "1@a", at(60), lead=LEAD, forced="9@x")
    assert d.leave == "told to join 9@x" and d.join == "9@x"
    assert plan(at(30), [A], None, None, lead=LEAD, forced="9@x").join == "9@x"


def test_ended_conferences_are_not_joined_again() -> None:
    assert plan(at(30), [A, B], None, None, lead=LEAD, refused=frozenset({"1@a"})) == Decision(
        wake_at=at(60) - LEAD
    )


@pytest.mark.parametrize("attempt", range(10))
def test_backoff_is_exponential_with_half_jitter_and_capped(attempt: int) -> None:
    delay = min(60.0, 2.0**attempt)
    for _ in range(20):
        assert delay / 2 <= backoff(attempt) <= delay
