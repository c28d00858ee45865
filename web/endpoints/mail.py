"""REST endpoints of invitations: delivery state, answers, the reply gateway, feed URLs.

For the secretariat's pages (who was mailed what, did it go out, who answered), the mail
gateway that forwards attendees' calendar replies (``POST /api/v1/itip/replies``), and
staff who want to subscribe to a room's or their own calendar.
"""

from __future__ import annotations

from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses

from sqlalchemy import select

from rooms.errors import NotFound
from rooms.models import Person, Role, Room
from scheduling import rsvp
from scheduling.errors import (
    InvalidReply,
    MeetingNotFound,
    ReplyClosed,
    ReplyNotAllowed,
    ReplyRefused,
    ReplyUnknown,
)
from scheduling.mailqueue import OutgoingMail
from scheduling.models import Meeting
from scheduling.replies import MAX_REPLY_BYTES, parse_reply
from web import keys
from web.api import Api, Call, OutSchema
from web.auth import ANY_STAFF, Access
from web.conference import LINKS
from web.problems import ApiError, register_error

SECRETARIAT = frozenset({Role.ADMIN, Role.SECRETARIAT})
DELIVERY = Access(roles=SECRETARIAT)
RESPONSES_READ = Access(roles=SECRETARIAT, scope="meetings:read")
ITIP_REPLY = Access(roles=frozenset({Role.ADMIN}), scope="itip:reply")
ROOM_FEED = Access(roles=ANY_STAFF)
PERSON_FEED = Access(roles=ANY_STAFF)  # the handler lets staff have their own only
REPLY_TYPES = ("text/calendar", "application/ics", "message/rfc822")
_T = "invitations"


class MessageOut(OutSchema):
    id: int
    meeting_id: int | None
    recipient: str
    kind: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None


class OccurrenceAnswerOut(OutSchema):
    recurrence_id: datetime
    partstat: str
    reply_sequence: int
    replied_at: datetime


class AttendeeAnswerOut(OutSchema):
    person_id: int
    name: str
    email: str
    role: str
    partstat: str
    reply_sequence: int | None
    replied_at: datetime | None
    occurrences: list[OccurrenceAnswerOut]


class ResponsesOut(OutSchema):
    meeting_id: int
    sequence: int
    counts: dict[str, int]
    attendees: list[AttendeeAnswerOut]


class ReplyOut(OutSchema):
    outcome: str
    meeting_id: int
    person_id: int
    recurrence_id: datetime | None
    partstat: str


class FeedOut(OutSchema):
    subject: str
    id: int
    url: str


def register(api: Api) -> None:
    """Declare the routes and map the errors of answers to HTTP."""
    register_error(InvalidReply, 422)
    register_error(ReplyRefused, 422)
    register_error(ReplyUnknown, 404)
    register_error(ReplyNotAllowed, 403)
    register_error(ReplyClosed, 409)
    route = api.route

    @route("GET", "/meetings/{id}/messages", summary="Emails sent for a meeting",
           access=DELIVERY, tag=_T, response=list[MessageOut])  # fmt: skip
    async def meeting_messages(call: Call[None, None]) -> list[MessageOut]:
        """Every email queued for the meeting (invitations, cancellations, reminders), oldest
        first, with its delivery state: `queued`, `sending`, `sent` or `failed`."""
        async with call.app[keys.DATABASE].read() as session:
            if await session.get(Meeting, call.path["id"]) is None:
                raise MeetingNotFound(f"meeting {call.path['id']} does not exist")
            rows = await session.scalars(
                select(OutgoingMail)
                .where(OutgoingMail.meeting_id == call.path["id"])
                .order_by(OutgoingMail.id)
            )
            return [MessageOut.model_validate(row) for row in rows]

    @route("POST", "/messages/{id}/resend", summary="Send an email again",
           access=DELIVERY, tag=_T, response=MessageOut)  # fmt: skip
    async def resend_message(call: Call[None, None]) -> MessageOut:
        """Puts the email back in the queue now (attempts start again from zero)."""
        sender = call.app[keys.MAIL_SENDER]
        async with call.app[keys.DATABASE].read() as session:
            if await session.get(OutgoingMail, call.path["id"]) is None:
                raise NotFound(f"message {call.path['id']} does not exist")
        await sender.resend(call.path["id"])
        async with call.app[keys.DATABASE].read() as session:
            row = await session.get(OutgoingMail, call.path["id"])
            return MessageOut.model_validate(row)

    @route("GET", "/meetings/{id}/responses", summary="Attendees' answers",
           access=RESPONSES_READ, tag=_T, response=ResponsesOut)  # fmt: skip
    async def meeting_responses(call: Call[None, None]) -> ResponsesOut:
        """Each attendee's answer to the meeting (PARTSTAT) and to single occurrences."""
        async with call.app[keys.DATABASE].read() as session:
            meeting = await session.get(Meeting, call.path["id"])
            if meeting is None:
                raise MeetingNotFound(f"meeting {call.path['id']} does not exist")
            attendees = await rsvp.responses(session, meeting.id)
            per_occurrence = await rsvp.occurrence_answers(session, meeting.id)
        counts: dict[str, int] = {}
        out = []
        for attendee, person in attendees:
            counts[attendee.partstat.value] = counts.get(attendee.partstat.value, 0) + 1
            mine = [
                OccurrenceAnswerOut(
                    recurrence_id=r.recurrence_id, partstat=r.partstat.value,
                    reply_sequence=r.reply_sequence, replied_at=r.reply_dtstamp,
                )
                for r in per_occurrence
                if r.person_id == person.id
            ]  # fmt: skip
            out.append(
                AttendeeAnswerOut(
                    person_id=person.id, name=person.name, email=person.email,
                    role=attendee.role.value, partstat=attendee.partstat.value,
                    reply_sequence=attendee.reply_sequence, replied_at=attendee.reply_dtstamp,
                    occurrences=mine,
                )
            )  # fmt: skip
        return ResponsesOut(
            meeting_id=meeting.id, sequence=meeting.sequence, counts=counts, attendees=out
        )

    @route("POST", "/itip/replies", summary="Take an attendee's iTIP REPLY",
           access=ITIP_REPLY, tag=_T, response=ReplyOut,
           errors=(403, 404, 409, 413, 415, 422))  # fmt: skip
    async def post_reply(call: Call[None, None]) -> ReplyOut:
        """For the mail gateway. The body is the reply as `text/calendar` (a bare .ics) or
        the whole email as `message/rfc822`; an email is taken only if its From is the
        answering ATTENDEE. A reply older than the one stored (SEQUENCE, then DTSTAMP) is
        ignored (`outcome: stale`), the same one again changes nothing (`duplicate`).
        COUNTER (a proposed new time) is refused: `counter_not_supported`."""
        request = call.request
        if request.content_type not in REPLY_TYPES:
            raise ApiError(
                415, "unsupported_media_type", f"send the reply as one of {', '.join(REPLY_TYPES)}"
            )
        if request.content_length is not None and request.content_length > MAX_REPLY_BYTES:
            raise ApiError(413, "body_too_large", f"a reply is at most {MAX_REPLY_BYTES} bytes")
        raw = await request.read()
        sender = _sender(raw) if request.content_type == "message/rfc822" else None
        reply = parse_reply(raw, default_tzid=call.app[keys.SETTINGS].timezone)
        taken = await call.app[keys.RESPONSES].apply_reply(reply, sender=sender)
        return ReplyOut(
            outcome=taken.outcome, meeting_id=taken.meeting_id, person_id=taken.person_id,
            recurrence_id=taken.recurrence_id, partstat=taken.partstat.value,
        )  # fmt: skip

    @route("GET", "/feeds/rooms/{id}", summary="The calendar feed URL of a room",
           access=ROOM_FEED, tag=_T, response=FeedOut)  # fmt: skip
    async def room_feed(call: Call[None, None]) -> FeedOut:
        """A secret URL to subscribe to in a calendar client; it lists the room's meetings."""
        async with call.app[keys.DATABASE].read() as session:
            if await session.get(Room, call.path["id"]) is None:
                raise NotFound(f"room {call.path['id']} does not exist")
        return _feed(call, "room")

    @route("GET", "/feeds/people/{id}", summary="The calendar feed URL of a person",
           access=PERSON_FEED, tag=_T, response=FeedOut)  # fmt: skip
    async def person_feed(call: Call[None, None]) -> FeedOut:
        """Staff get their own feed only; the secretariat and administrators anyone's."""
        who = call.who
        if who.role not in SECRETARIAT and who.person_id != call.path["id"]:
            raise ApiError(403, "forbidden", "staff may only get their own calendar feed")
        async with call.app[keys.DATABASE].read() as session:
            if await session.get(Person, call.path["id"]) is None:
                raise NotFound(f"person {call.path['id']} does not exist")
        return _feed(call, "person")


def _feed(call: Call[None, None], subject: str) -> FeedOut:
    token = call.app[LINKS].sign_feed("room" if subject == "room" else "person", call.path["id"])
    url = f"{call.app[keys.SETTINGS].base_url}/feeds/{token}.ics"
    return FeedOut(subject=subject, id=call.path["id"], url=url)


def _sender(raw: bytes) -> str:
    """The address in the From header of an email, or a 422."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw[:MAX_REPLY_BYTES])
        found = [
            addr for _name, addr in getaddresses([str(v) for v in headers.get_all("From", [])])
        ]
    except Exception as exc:  # a broken header is the sender's problem, not a 500
        raise InvalidReply(
            f"the From header cannot be read: {exc}", code="reply_no_sender"
        ) from exc
    if len(found) != 1 or "@" not in found[0]:
        raise InvalidReply("the email needs exactly one From address", code="reply_no_sender")
    return found[0].lower()
