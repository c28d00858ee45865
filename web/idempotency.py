"""``Idempotency-Key`` on creating requests: retries of the OA system never create twice.

For integration clients (and staff tokens): a ``POST /api/v1/meetings`` carrying the
header is run once per key and caller (:mod:`scheduling.idempotency`). This middleware
claims the key before the route runs, binds the created meeting to the key inside the
meetings service's transaction (a change listener reading the claim from a context
variable), and stores the answer afterwards. Answers:

- same key, same body: the first answer again, with ``Idempotent-Replayed: true``;
- same key, another body: 422 ``idempotency_key_reused``;
- same key while the first request still runs: 409 ``idempotency_in_progress``
  (``Retry-After: 1``);
- a key that is not 1–200 visible ASCII characters: 400 ``bad_idempotency_key``.

Only 2xx answers are stored; after an error the key is free again (nothing was created).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.changes import ChangeListener, MeetingChange
from scheduling.idempotency import IdempotencyStore, Outcome, fingerprint
from scheduling.meetings import Saved
from web import keys
from web.api import Api
from web.auth import Principal, authenticate
from web.endpoints.meeting_schemas import saved_out
from web.problems import ApiError, Handler

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MEETINGS_PATH = "/api/v1/meetings"
ROUTES = frozenset({("POST", MEETINGS_PATH)})
_CLAIM: ContextVar[int | None] = ContextVar("suimeet_idempotency_claim", default=None)

PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Any unique string (e.g. a UUID or the OA document's id), at most 200 "
    "characters. A retry with the same key and body returns the first answer (header "
    "`Idempotent-Replayed: true`) and creates nothing; the same key with another body is "
    "refused with 422 `idempotency_key_reused`; keys are per API key and kept "
    "SUIMEET_IDEMPOTENCY_HOURS (24 h).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    "example": "oa-2026-0412-001",
}
EXAMPLE: dict[str, Any] = {
    "title": "全市防汛工作视频调度会",
    "agenda": "一、通报汛情；二、部署防御工作",
    "unit_id": 1,
    "organiser_id": 12,
    "start": "2026-12-03T09:00:00+08:00",
    "end": "2026-12-03T10:30:00+08:00",
    "doc_ref": "穗府办〔2026〕41号",
    "room_ids": [1, 2],
    "attendees": [{"person_id": 12}, {"person_id": 31, "role": "optional"}],
    "unit_ids": [3],
}


def _scope(who: Principal) -> str | None:
    if who.kind == "apikey":
        return f"apikey:{who.key_id}"
    if who.kind == "staff":
        return f"account:{who.account_id}"
    return None


def _valid(key: str) -> bool:
    return 0 < len(key) <= 200 and all(33 <= ord(c) <= 126 for c in key)


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get(HEADER)
    if key is None or (request.method, request.path) not in ROUTES:
        return await handler(request)
    if not _valid(key):
        raise ApiError(400, "bad_idempotency_key",
                       f"{HEADER} must be 1 to 200 visible ASCII characters",
                       fields={HEADER: "invalid"})  # fmt: skip
    try:
        who = await authenticate(request)
    except ApiError:
        return await handler(request)  # the route answers 401 itself
    scope = _scope(who)
    if scope is None:
        return await handler(request)
    store = request.app[keys.IDEMPOTENCY]
    body = await request.read()
    outcome = await store.claim(scope, key, fingerprint(request.method, request.path, body))
    if outcome.kind == "fresh":
        assert outcome.record_id is not None
        return await _run(request, handler, store, outcome.record_id)
    return await _answer(request, store, outcome)


async def _run(
    request: web.Request, handler: Handler, store: IdempotencyStore, record_id: int
) -> web.StreamResponse:
    token = _CLAIM.set(record_id)
    try:
        response = await handler(request)
    except BaseException:
        await store.release(record_id)
        raise
    finally:
        _CLAIM.reset(token)
    body = response.body if isinstance(response, web.Response) else None
    if 200 <= response.status < 300 and isinstance(body, bytes):
        await store.complete(record_id, response.status, body.decode())
    else:
        await store.release(record_id)
    return response


async def _answer(
    request: web.Request, store: IdempotencyStore, outcome: Outcome
) -> web.StreamResponse:
    if outcome.kind == "mismatch":
        raise ApiError(
            422, "idempotency_key_reused",
            f"this {HEADER} was already used with a different request; use a new key",
            fields={HEADER: "used with another body"},
        )  # fmt: skip
    if outcome.kind == "in_progress":
        raise ApiError(
            409, "idempotency_in_progress",
            f"a request with this {HEADER} is still being processed; retry shortly",
            headers={"Retry-After": "1"},
        )  # fmt: skip
    if outcome.kind == "recovered":
        # the first request created the meeting but its answer was never stored
        assert outcome.resource_id is not None and outcome.record_id is not None
        meeting = await request.app[keys.MEETINGS].get(outcome.resource_id)
        text = saved_out(Saved(meeting, [])).model_dump_json(by_alias=True)
        await store.complete(outcome.record_id, 201, text)
        outcome = Outcome("replay", status=201, body=text)
    return web.Response(
        status=outcome.status or 200,
        text=outcome.body or "",
        content_type="application/json",
        headers={REPLAYED: "true"},
    )


def listener(store: IdempotencyStore) -> ChangeListener:
    """Binds the meeting a claimed request creates to its key, in the same transaction."""

    async def bind(session: AsyncSession, change: MeetingChange) -> None:
        record_id = _CLAIM.get()
        if record_id is not None and change.kind == "created":
            await store.bind(session, record_id, change.meeting_id)

    return bind


def install(app: web.Application, api: Api) -> None:
    """Add the middleware and the listener; document the header on the wrapped routes."""
    store = app[keys.IDEMPOTENCY]
    app.middlewares.append(idempotency_middleware)
    app[keys.MEETING_LISTENERS].append(listener(store))
    for endpoint in api.endpoints:
        if (endpoint.method, endpoint.path) in ROUTES:
            endpoint.parameters.append(PARAMETER)
            endpoint.body_example = endpoint.body_example or EXAMPLE
            endpoint.errors = tuple(sorted({*endpoint.errors, 409, 422}))
