"""The one place where errors become HTTP: JSON problems ``{"error", "message", "fields"}``.

Domain errors of every package are mapped here by class; anything unexpected is logged
with its trace and answered with a bare 500 problem, never the trace itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rooms import errors as directory_errors

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error the edge answers with ``status`` and a problem body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}
        self.extra = extra


# Domain error class → HTTP status. Subclasses match through the MRO.
_STATUS: dict[type[Exception], int] = {
    directory_errors.NotFound: 404,
    directory_errors.Invalid: 422,
    directory_errors.Conflict: 409,
    directory_errors.AuthenticationFailed: 401,
}


def register_error(cls: type[Exception], status: int) -> None:
    """Map another package's domain error class to a status (called at app set-up)."""
    _STATUS[cls] = status


def problem(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message, "fields": fields or {}}
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False, default=str),
        content_type="application/problem+json",
        headers=headers,
    )


def _status_of(exc: Exception) -> int | None:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return None


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return problem(exc.status, exc.code, exc.message, exc.fields, exc.headers, **exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request):
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else "the request body is too large"
        return problem(exc.status, code, message)
    except Exception as exc:
        status = _status_of(exc)
        if status is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return problem(500, "internal_error", "an internal error occurred")
        code = getattr(exc, "code", "error")
        message = getattr(exc, "message", str(exc))
        fields = getattr(exc, "fields", None)
        extra = getattr(exc, "extra", {})
        return problem(status, code, message, fields, **extra)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/healthz", "/readyz", "/whip", "/whep"))
