"""Meeting passcodes: the digits a guest (someone not invited) types to ask to join.

A meeting gets a random 6-digit passcode when it is created (:func:`new_passcode`, from
:mod:`secrets`); the secretariat may set another of 6 to 10 ASCII digits, or none, which
turns guest access off. Digits only, so that it can be read out on the phone and typed on a
numeric keypad. A passcode does not let anyone in by itself: guests wait in the conference's
lobby until a chair admits them, and wrong guesses are rate-limited by ``web``.
"""

from __future__ import annotations

import hmac
import re
import secrets

from scheduling.errors import InvalidMeeting

DEFAULT_LENGTH = 6
MIN_LENGTH, MAX_LENGTH = 6, 10
_PASSCODE = re.compile(f"[0-9]{{{MIN_LENGTH},{MAX_LENGTH}}}", re.ASCII)
RULE = f"{MIN_LENGTH} to {MAX_LENGTH} digits 0-9"


def new_passcode(length: int = DEFAULT_LENGTH) -> str:
    """A fresh random passcode of ``length`` digits (leading zeros kept)."""
    return "".join(secrets.choice("0123456789") for _ in range(length))


def is_passcode(value: str) -> bool:
    """Whether ``value`` has the form of a passcode (6 to 10 ASCII digits)."""
    return _PASSCODE.fullmatch(value) is not None


def check_passcode(value: str | None) -> None:
    """InvalidMeeting unless ``value`` is None (guests off) or a well-formed passcode."""
    if value is not None and not is_passcode(value):
        raise InvalidMeeting(f"the passcode must be {RULE}", fields={"passcode": f"not {RULE}"})


def passcode_matches(expected: str | None, given: str) -> bool:
    """Whether ``given`` is the meeting's passcode, compared in constant time.

    A meeting without a passcode matches nothing.
    """
    if expected is None:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8"))
