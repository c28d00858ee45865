"""Signed links in invitations: a personal join link and accept / tentative / decline links.

Tokens are signed with the server's secret (itsdangerous) and carry the meeting and the
person; they need no login. They do not expire by themselves: what they open is limited by
the meeting (a join token only works while its meeting can be joined), and rotating the
server's secret invalidates every link at once.

Feed tokens (purpose ``feed``) name a subscribed calendar instead: a room's or a person's
(:meth:`LinkSigner.sign_feed`); the same secret-URL rules apply.

Guest tokens (:meth:`LinkSigner.sign_guest`) are what a guest gets for typing the meeting's
passcode: the meeting, a random guest id and the name the guest gave. Unlike the others
they carry their time of signing and expire (:data:`GUEST_MAX_AGE`): a guest asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

Purpose = Literal["join", "rsvp", "feed"]
FeedSubject = Literal["room", "person"]
GUEST_MAX_AGE = 30 * 60  # seconds a guest token opens the conference for
MAX_GUEST_NAME = 80
# a guest's name is up to 80 characters of any script: its token is longer than the others
_MAX_GUEST_TOKEN = 1024


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says: this person, for this meeting (or feed subject)."""

    meeting_id: int
    person_id: int


@dataclass(frozen=True, slots=True)
class GuestClaim:
    """What a valid guest token says: this guest, with this name, for this meeting."""

    meeting_id: int
    guest_id: str
    name: str
    expired: bool = False


@dataclass(frozen=True, slots=True)
class FeedClaim:
    """What a valid feed token says: the calendar of this room or this person."""

    subject: FeedSubject
    subject_id: int


class LinkSigner:
    """Makes and checks the tokens of one purpose; a token of one purpose opens no other."""

    def __init__(self, secret: bytes) -> None:
        self._serializers = {
            purpose: URLSafeSerializer(secret, salt=f"suimeet-{purpose}")
            for purpose in ("join", "rsvp", "feed")
        }
        self._guests = URLSafeTimedSerializer(secret, salt="suimeet-guest")

    def sign(self, purpose: Purpose, meeting_id: int, person_id: int) -> str:
        return str(self._serializers[purpose].dumps([meeting_id, person_id]))

    def verify(self, purpose: Purpose, token: str) -> LinkClaim | None:
        """The claim of a token made by :meth:`sign` for ``purpose``, or None."""
        if len(token) > 512:
            return None
        try:
            value = self._serializers[purpose].loads(token)
        except BadSignature:
            return None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            return None
        return LinkClaim(value[0], value[1])

    def sign_feed(self, subject: FeedSubject, subject_id: int) -> str:
        """The secret token of a room's or a person's calendar feed."""
        return str(self._serializers["feed"].dumps([subject, subject_id]))

    def verify_feed(self, token: str) -> FeedClaim | None:
        """The claim of a token made by :meth:`sign_feed`, or None."""
        if len(token) > 512:
            return None
        try:
            value = self._serializers["feed"].loads(token)
        except BadSignature:
            return None
        if not isinstance(value, list) or len(value) != 2:
            return None
        subject, subject_id = value
        if subject not in ("room", "person"):
            return None
        if not isinstance(subject_id, int) or isinstance(subject_id, bool):
            return None
        return FeedClaim(subject, subject_id)

    def sign_guest(self, meeting_id: int, guest_id: str, name: str) -> str:
        """A guest's token for ``meeting_id`` (valid for :data:`GUEST_MAX_AGE` seconds)."""
        return str(self._guests.dumps([meeting_id, guest_id, name]))

    def verify_guest(self, token: str, max_age: int = GUEST_MAX_AGE) -> GuestClaim | None:
        """The claim of a guest token made by :meth:`sign_guest`, or None if it is not one.

        A genuine token older than ``max_age`` gives a claim with ``expired=True`` (the
        caller decides: a guest still in the conference may reconnect with it).
        """
        if len(token) > _MAX_GUEST_TOKEN:
            return None
        expired = False
        try:
            value = self._guests.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            if exc.date_signed is None or not isinstance(exc.payload, bytes):
                return None
            expired, value = True, self._guests.load_payload(exc.payload)
        except BadSignature:
            return None
        if not isinstance(value, list) or len(value) != 3:
            return None
        meeting_id, guest_id, name = value
        if not isinstance(meeting_id, int) or isinstance(meeting_id, bool):
            return None
        if not isinstance(guest_id, str) or not isinstance(name, str):
            return None
        if not guest_id or len(guest_id) > 64 or not 0 < len(name) <= MAX_GUEST_NAME:
            return None
        return GuestClaim(meeting_id, guest_id, name, expired)
