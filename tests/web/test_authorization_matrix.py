"""Every route × every kind of caller: 401, 403 or let through, as designed.

The table below is written by hand (not derived from the code's policies), and every route
the app serves must appear in it: a new endpoint without a row fails this test.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.accounts import Accounts
from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Room, Unit
from tests.conftest import Staff

ADMIN, SEC, STAFF = "admin", "secretariat", "staff"
KEY_DIR, KEY_MEET, KEY_METRICS, KEY_REVOKED, TERMINAL = (
    "key:directory",
    "key:meetings",
    "key:metrics",
    "key:revoked",
    "terminal",
)
CALLERS = ("anonymous", ADMIN, SEC, STAFF, KEY_DIR, KEY_MEET, KEY_METRICS, KEY_REVOKED, TERMINAL)
EVERYONE = frozenset(CALLERS) - {"anonymous", KEY_REVOKED}
STAFF_ROLES = frozenset({ADMIN, SEC, STAFF})
DIR_READERS = STAFF_ROLES | {KEY_DIR}
ONLY_ADMIN = frozenset({ADMIN})
PUBLIC = "public"
MEET_READERS = STAFF_ROLES | {KEY_MEET}
MEET_WRITERS = frozenset({ADMIN, SEC, KEY_MEET})

# (method, route) → who gets through; PUBLIC: everybody, even anonymous.
MATRIX: dict[tuple[str, str], frozenset[str] | str] = {
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("DELETE", "/api/v1/auth/token"): STAFF_ROLES,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/accounts"): ONLY_ADMIN,
    ("POST", "/api/v1/accounts"): ONLY_ADMIN,
    ("GET", "/api/v1/api-keys"): ONLY_ADMIN,
    ("POST", "/api/v1/api-keys"): ONLY_ADMIN,
    ("POST", "/api/v1/api-keys/{id}/revoke"): ONLY_ADMIN,
    **{("GET", f"/api/v1/{t}"): DIR_READERS for t in ("units", "people", "rooms")},
    **{("GET", f"/api/v1/{t}/{{id}}"): DIR_READERS for t in ("units", "people", "rooms")},
    **{("POST", f"/api/v1/{t}"): ONLY_ADMIN for t in ("units", "people", "rooms", "terminals")},
    **{
        (m, f"/api/v1/{t}/{{id}}"): ONLY_ADMIN
        for t in ("units", "people", "rooms", "terminals")
        for m in ("PATCH", "DELETE")
    },
    ("GET", "/api/v1/terminals"): ONLY_ADMIN,
    ("GET", "/api/v1/terminals/{id}"): ONLY_ADMIN,
    ("POST", "/api/v1/terminals/{id}/rotate-token"): ONLY_ADMIN,
    ("POST", "/api/v1/terminals/{id}/revoke"): ONLY_ADMIN,
    ("GET", "/metrics"): frozenset({ADMIN, KEY_METRICS}),
    # meetings: every staff role and meetings:read keys read (staff only what they are
    # invited to); the secretariat, admins and meetings:write keys write
    ("GET", "/api/v1/meetings"): MEET_READERS,
    ("POST", "/api/v1/meetings"): MEET_WRITERS,
    ("POST", "/api/v1/meetings/check"): MEET_WRITERS,
    ("GET", "/api/v1/meetings/occurrences"): MEET_READERS,
    ("GET", "/api/v1/meetings/freebusy"): MEET_READERS,
    ("GET", "/api/v1/meetings/slots"): MEET_READERS,
    ("GET", "/api/v1/meetings/{id}"): MEET_READERS,
    ("PATCH", "/api/v1/meetings/{id}"): MEET_WRITERS,
    ("POST", "/api/v1/meetings/{id}/check"): MEET_WRITERS,
    ("POST", "/api/v1/meetings/{id}/cancel"): MEET_WRITERS,
    ("GET", "/api/v1/meetings/{id}/occurrences"): MEET_READERS,
    ("PATCH", "/api/v1/meetings/{id}/occurrences/{key}"): MEET_WRITERS,
    ("POST", "/api/v1/meetings/{id}/occurrences/{key}/cancel"): MEET_WRITERS,
    ("POST", "/api/v1/meetings/{id}/occurrences/{key}/split"): MEET_WRITERS,
    ("GET", "/api/v1/conferences"): frozenset({ADMIN, SEC}),
    # conference pages: the link token (or the login) is the credential
    ("GET", "/ws"): PUBLIC,
    ("GET", "/join/{token}"): PUBLIC,
    ("GET", "/meetings/{meeting_id}/join"): STAFF_ROLES,
    # public by design: probes, the API description, pages that handle their own login
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/docs/init.js"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("GET", "/secretariat"): PUBLIC,  # the page redirects to the login or answers 403 itself
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    # statistics (issue 6): administrators only; the pages redirect or answer 403 themselves
    ("GET", "/api/v1/stats"): ONLY_ADMIN,
    ("GET", "/api/v1/stats/terminals"): ONLY_ADMIN,
    ("GET", "/api/v1/stats/live"): ONLY_ADMIN,
    ("GET", "/admin/dashboard"): PUBLIC,
    ("GET", "/admin/report"): PUBLIC,
}
EXTRA_MATRIX: dict[tuple[str, str], frozenset[str] | str] = {
    # invitations: delivery state and resending for the secretariat; answers also for
    # meetings:read keys; the reply gateway is an admin or an itip:reply key (none here)
    ("GET", "/api/v1/meetings/{id}/messages"): frozenset({ADMIN, SEC}),
    ("POST", "/api/v1/messages/{id}/resend"): frozenset({ADMIN, SEC}),
    ("GET", "/api/v1/meetings/{id}/responses"): frozenset({ADMIN, SEC, KEY_MEET}),
    ("POST", "/api/v1/itip/replies"): ONLY_ADMIN,
    ("GET", "/api/v1/feeds/rooms/{id}"): STAFF_ROLES,
    # staff get their own person feed only: for person 999999 they get 403
    ("GET", "/api/v1/feeds/people/{id}"): frozenset({ADMIN, SEC}),
    # the signed token in the link is the credential
    ("GET", "/rsvp/{token}"): PUBLIC,
    ("POST", "/rsvp/{token}"): PUBLIC,
    ("GET", "/feeds/{token}.ics"): PUBLIC,
}  # later features add rows here


# the OA integration: webhooks for administrators; materials like the meetings they belong to
EXTRA_MATRIX.update(
    {
        ("GET", "/api/v1/webhooks"): ONLY_ADMIN,
        ("POST", "/api/v1/webhooks"): ONLY_ADMIN,
        ("GET", "/api/v1/webhooks/{id}"): ONLY_ADMIN,
        ("PATCH", "/api/v1/webhooks/{id}"): ONLY_ADMIN,
        ("DELETE", "/api/v1/webhooks/{id}"): ONLY_ADMIN,
        ("GET", "/api/v1/webhooks/{id}/deliveries"): ONLY_ADMIN,
        ("GET", "/api/v1/webhook-deliveries/{id}"): ONLY_ADMIN,
        ("POST", "/api/v1/webhook-deliveries/{id}/replay"): ONLY_ADMIN,
        ("GET", "/api/v1/meetings/{id}/materials"): MEET_READERS,
        ("POST", "/api/v1/meetings/{id}/materials"): MEET_WRITERS,
        ("POST", "/api/v1/meetings/{id}/materials/links"): MEET_WRITERS,
        ("GET", "/api/v1/meetings/{id}/materials/{material_id}"): MEET_READERS,
        ("DELETE", "/api/v1/meetings/{id}/materials/{material_id}"): MEET_WRITERS,
        # the join token is the credential; the page handles its own login
        ("GET", "/join/{token}/materials"): PUBLIC,
        ("GET", "/join/{token}/materials/{material_id}"): PUBLIC,
        ("GET", "/secretariat/meetings/{meeting_id}/materials"): PUBLIC,
    }
)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        info = route.resource.canonical if route.resource else ""
        if route.method in ("HEAD", "*") or "/static" in info:
            continue
        found.append((route.method, info))
    return found


async def _credentials(
    client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit
) -> dict[str, dict[str, str]]:
    accounts = Accounts(db)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in Role:
        headers[role.value] = await staff.headers(role)
    for name, scopes in (
        (KEY_DIR, ["directory:read"]),
        (KEY_MEET, ["meetings:read", "meetings:write"]),
        (KEY_METRICS, ["metrics:read"]),
        (KEY_REVOKED, ["directory:read", "meetings:read", "meetings:write", "metrics:read"]),
    ):
        issued = await accounts.create_key(name, scopes, created_by=None)
        headers[name] = {"Authorization": f"Bearer {issued.token}"}
        if name == KEY_REVOKED:
            await accounts.revoke_key(issued.key.id)
    room = await Directory(db).create(Room, {"unit_id": city.id, "name": "matrix room"})
    issued_t = await Directory(db).create_terminal({"room_id": room.id, "name": "t"})
    headers[TERMINAL] = {"Authorization": f"Bearer {issued_t.token}"}
    return headers


async def test_every_route_answers_each_caller_as_designed(
    app: web.Application, client: TestClient[Any, Any], staff: Staff, db: Database, city: Unit
) -> None:
    matrix = {**MATRIX, **EXTRA_MATRIX}
    routes = _routes(app)
    missing = sorted(set(routes) - set(matrix))
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    headers = await _credentials(client, staff, db, city)
    # revoking one's own token goes last, so the other requests still carry it
    ordered = sorted(routes, key=lambda r: r == ("DELETE", "/api/v1/auth/token"))
    failures = []
    for method, route in ordered:
        allowed = matrix[(method, route)]
        path = re.sub(r"\{\w+\}", "999999", route)
        for caller in CALLERS:
            kwargs: dict[str, Any] = {"headers": headers[caller]}
            if method in ("POST", "PATCH", "PUT"):
                kwargs["json"] = {}
            response = await client.request(method, path, allow_redirects=False, **kwargs)
            status = response.status
            if allowed == PUBLIC or caller in allowed:
                ok = status not in (401, 403) and status < 500
                if ok and method == "GET" and "{" not in route and route.startswith("/api/v1"):
                    ok = status == 200
                expected = "let through"
            elif caller in ("anonymous", KEY_REVOKED):
                ok, expected = status == 401, "401"
            else:
                ok, expected = status == 403, "403"
            if not ok:
                failures.append(f"{method} {route} as {caller}: {status}, expected {expected}")
            if status in (401, 403) and route.startswith("/api/"):
                body = await response.json()
                assert body["error"] and body["message"], body
    assert not failures, "\n".join(failures)


# room terminals (issue 5): the control channel, WHIP and WHEP take terminal tokens only
# (CORS preflights are open); the status for administrators; convening for the secretariat
EXTRA_MATRIX.update(
    {
        ("GET", "/terminal/ws"): frozenset({TERMINAL}),
        **{("POST", p): frozenset({TERMINAL}) for p in ("/whip", "/whep")},
        **{
            (m, f"{p}/{{resource}}"): frozenset({TERMINAL})
            for p in ("/whip", "/whep")
            for m in ("DELETE", "PATCH")
        },
        **{
            ("OPTIONS", p): PUBLIC
            for p in ("/whip", "/whep", "/whip/{resource}", "/whep/{resource}")
        },
        ("GET", "/api/v1/terminals/status"): ONLY_ADMIN,
        ("POST", "/api/v1/convene"): frozenset({ADMIN, SEC}),
        ("GET", "/admin/terminals"): PUBLIC,  # the page redirects to the login or answers 403
    }
)


# in-meeting features (issue 8): guests join with a passcode (public, rate-limited); a
# meeting's chat, log and recordings for administrators, the secretariat and the meeting's
# organiser or chair (other staff: 403, or 404 for meetings they cannot see: here 999999
# does not exist, so staff pass the access check and get 404); operators control conferences
EXTRA_MATRIX.update(
    {
        ("POST", "/api/v1/guest-joins"): PUBLIC,
        ("GET", "/guest"): PUBLIC,
        ("GET", "/api/v1/meetings/{id}/chat"): STAFF_ROLES,
        ("GET", "/api/v1/meetings/{id}/conference-log"): STAFF_ROLES,
        ("GET", "/api/v1/meetings/{id}/recordings"): STAFF_ROLES,
        ("GET", "/api/v1/recordings/{id}"): STAFF_ROLES,
        ("GET", "/api/v1/recordings/{id}/file"): STAFF_ROLES,
        ("POST", "/api/v1/conferences/{conference}/control"): frozenset({ADMIN, SEC}),
        ("GET", "/secretariat/meetings/{meeting_id}/records"): PUBLIC,  # redirects or 403/404
    }
)
