"""The errors the media engine raises; the signalling layer maps them to protocol errors."""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by :mod:`media`."""

    code = "media_error"


class EngineClosed(MediaError):
    """The engine was closed; no more participants can join."""

    code = "engine_closed"


class UnknownParticipant(MediaError):
    """No participant with this id is connected to the engine."""

    code = "unknown_participant"


class NegotiationError(MediaError):
    """An answer or candidate could not be applied (bad SDP, wrong signalling state)."""

    code = "negotiation_failed"


class InvalidRequest(MediaError):
    """A request is malformed (unknown media kind, SDP too long, ...)."""

    code = "invalid_request"
