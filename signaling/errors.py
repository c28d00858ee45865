"""Errors of live conferences, with the WebSocket close code each one ends a socket with.

Protocol errors (the client broke the protocol) close the socket; user errors (a request
that cannot be done now) are answered with an ``error`` message and the socket stays open.
"""

from __future__ import annotations

# WebSocket close codes (4000–4999 are for applications); documented in PROTOCOL.md.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL = 4000
CLOSE_VERSION = 4001
CLOSE_UNAUTHORIZED = 4003
CLOSE_NOT_NOW = 4004
CLOSE_REPLACED = 4009
CLOSE_ENDED = 4010
CLOSE_REMOVED = 4011  # removed or refused by the chair: the client must not reconnect by itself
CLOSE_SERVER = 4500


class SignalingError(Exception):
    """Base: a machine code, a human message, and how the socket is affected."""

    code = "signaling_error"
    close_code: int | None = None  # None: a user error, the socket stays open

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProtocolViolation(SignalingError):
    """Bad JSON, an unknown message type, missing or wrong fields, a message out of order."""

    code = "protocol_error"
    close_code = CLOSE_PROTOCOL


class UnsupportedVersion(SignalingError):
    code = "unsupported_version"
    close_code = CLOSE_VERSION


class JoinRefused(SignalingError):
    """The token does not open this conference (``code`` says why)."""

    code = "invalid_token"
    close_code = CLOSE_UNAUTHORIZED


class NotNow(JoinRefused):
    """The meeting is not open for joining now: too early, ended or cancelled."""

    code = "not_open"
    close_code = CLOSE_NOT_NOW


class RequestFailed(SignalingError):
    """A request could not be carried out; the socket stays open."""

    code = "request_failed"


class Removed(SignalingError):
    """The chair removed (``removed``) or refused (``refused``) this identity: it stays out."""

    code = "removed"
    close_code = CLOSE_REMOVED


class ControlRefused(RequestFailed):
    """A chat, hand, screen or chair-control request that is not carried out.

    ``code``: ``forbidden`` (not a chair, or waiting in the lobby), ``not_found`` (no such
    participant, lobby entry or conference), ``invalid_request`` (does not apply now),
    ``rate_limited``, ``unavailable`` (e.g. recording is not configured). The socket stays
    open; ``web`` maps the codes of its REST operator endpoint to 403/404/409/429/422.
    """

    code = "invalid_request"
