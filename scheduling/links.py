"""Signed links in invitations: a personal join link and accept / tentative / decline links.

Tokens are signed with the server's secret (itsdangerous) and carry the meeting and the
person; they need no login. They do not expire by themselves: what they open is limited by
the meeting (a join token only works while its meeting can be joined), and rotating the
server's secret invalidates every link at once.

Feed tokens (purpose ``feed``) name a subscribed calendar instead: a room's or a person's
(:meth:`LinkSigner.sign_feed`); the same secret-URL rules apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

Purpose = Literal["join", "rsvp", "feed"]
FeedSubject = Literal["room", "person"]


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid token says: this person, for this meeting (or feed subject)."""

    meeting_id: int
    person_id: int


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
