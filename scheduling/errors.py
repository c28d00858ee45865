"""Domain errors of the scheduling package.

For `web`, which maps them in one place to problem responses
(``{"error": code, "message": human text}``), and for the services of `scheduling` that
catch them. Every error carries a stable machine-readable ``code`` and a human ``message``
written for the secretariat or an administrator reading a log.
"""

from __future__ import annotations


class SchedulingError(Exception):
    """Base class of every error raised by `scheduling`.

    ``code`` is stable (clients and tests match on it); ``message`` is for people.
    """

    code: str = "scheduling_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidEvent(SchedulingError):
    """A calendar event handed to the iTIP builders is inconsistent (naive times, end
    before start, unknown time zone, bad RRULE, mixed UIDs, ...)."""

    code = "invalid_event"


class NotAnAttendee(SchedulingError):
    """An invitation was requested for someone who is not an attendee of the event."""

    code = "not_an_attendee"


class InvalidReply(SchedulingError):
    """An incoming iTIP reply (bare .ics or email) cannot be used.

    ``code`` says why, e.g. ``reply_too_large``, ``reply_unparseable``,
    ``reply_no_calendar``, ``reply_not_a_reply``, ``reply_no_uid``, ``reply_no_attendee``,
    ``reply_multiple_attendees``, ``reply_bad_partstat``.
    """

    code = "invalid_reply"


class CounterNotSupported(InvalidReply):
    """An attendee proposed a new time (iTIP COUNTER); SuiMeet does not take counter
    proposals: the attendee should contact the organizer instead."""

    code = "counter_not_supported"


# --- meetings, bookings and availability (scheduling.meetings, .bookings, .availability) ---


class MeetingError(SchedulingError):
    """Base of the meetings service's errors: per-field messages and extra problem data.

    ``fields`` maps an input field to what is wrong with it; ``extra`` is added to the
    problem body by `web` (e.g. ``conflicts``).
    """

    code = "meeting_error"

    def __init__(
        self, message: str, *, fields: dict[str, str] | None = None, **extra: object
    ) -> None:
        super().__init__(message)
        self.fields = fields or {}
        self.extra = extra


class InvalidMeeting(MeetingError):
    """The input breaks a rule of scheduling (times, recurrence, unknown rooms or people)."""

    code = "invalid_meeting"


class MeetingNotFound(MeetingError):
    """No such meeting or occurrence (or the caller may not see it)."""

    code = "not_found"


class MeetingClosed(MeetingError):
    """The meeting is cancelled or over and can no longer be changed."""

    code = "meeting_closed"


class RoomConflict(MeetingError):
    """A room is already booked at that time; ``extra['conflicts']`` lists by whom."""

    code = "room_conflict"


# --- answers of attendees (scheduling.rsvp) ------------------------------------------------


class ReplyRefused(SchedulingError):
    """An answer (from an RSVP link or an iTIP REPLY) that cannot be taken as given:
    ``reply_sequence_ahead`` (answers a version never sent), ``delegation_not_supported``."""

    code = "reply_refused"


class ReplyUnknown(ReplyRefused):
    """The answer names no meeting or occurrence we know (``unknown_meeting``,
    ``unknown_occurrence``)."""

    code = "unknown_meeting"


class ReplyNotAllowed(ReplyRefused):
    """The answer is not the invitee's own: ``not_an_attendee`` (the ATTENDEE is not
    invited) or ``sender_mismatch`` (the email's From is someone else)."""

    code = "not_an_attendee"


class ReplyClosed(ReplyRefused):
    """The meeting is cancelled: answers are no longer taken (``meeting_cancelled``)."""

    code = "meeting_cancelled"


# --- the OA integration: webhooks, meeting materials (scheduling.webhooks, .materials) ----


class IntegrationError(SchedulingError):
    """Base of the OA integration's errors, with per-field messages like MeetingError."""

    code = "integration_error"

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.fields = fields or {}
        self.extra: dict[str, object] = {}


class TargetNotAllowed(IntegrationError):
    """A webhook URL (or a material's link) points where the administrator has not allowed:
    ``webhook_target_not_allowed``, ``link_host_not_allowed``, ``bad_url``."""

    code = "webhook_target_not_allowed"


class IntegrationNotFound(IntegrationError):
    """No such webhook subscription, delivery or material."""

    code = "not_found"


class MaterialRefused(IntegrationError):
    """An uploaded document is refused: ``material_type_refused`` (the content is not a
    PDF or an Office/OpenDocument file, or disagrees with its name), ``material_empty``."""

    code = "material_type_refused"


class MaterialTooLarge(IntegrationError):
    """An uploaded document is larger than ``material_max_bytes``."""

    code = "material_too_large"


# --- live conferences: recordings, the conference log (scheduling.recordings) --------------


class RecordingNotFound(SchedulingError):
    """No such recording (or the caller may not see it)."""

    code = "not_found"
