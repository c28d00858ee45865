"""Who is calling, and may they: principals, access policies, CSRF, login rate limits.

One header serves every machine client, ``Authorization: Bearer <token>``; the token's
prefix says what kind it is (staff ``sms_``, integration key ``smk_``, terminal ``smr_``).
Browsers carry a staff session in an HttpOnly cookie instead; an unsafe request authenticated
by that cookie must also carry the session's CSRF token (header ``X-CSRF-Token`` or form
field ``csrf_token``), which is an HMAC of the session token under the server's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from rooms.models import Role
from web import keys
from web.problems import ApiError

log = logging.getLogger(__name__)

SESSION_COOKIE = "suimeet_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PrincipalKind = Literal["anonymous", "staff", "apikey", "terminal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    kind: PrincipalKind
    role: Role | None = None
    account_id: int | None = None
    person_id: int | None = None
    key_id: int | None = None
    scopes: frozenset[str] = frozenset()
    terminal_id: int | None = None
    room_id: int | None = None
    session_token: str | None = None  # set when authenticated by the session cookie

    @property
    def label(self) -> str:
        """For logs: who, never a secret."""
        ident = self.account_id or self.key_id or self.terminal_id
        return f"{self.kind}:{ident}" if ident else self.kind


ANONYMOUS = Principal("anonymous")


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call an endpoint: staff roles, an integration key scope, terminals."""

    roles: frozenset[Role] = frozenset()
    scope: str | None = None
    terminal: bool = False
    public: bool = False

    def allows(self, who: Principal) -> bool:
        if self.public:
            return True
        if who.kind == "staff":
            return who.role in self.roles
        if who.kind == "apikey":
            return self.scope is not None and self.scope in who.scopes
        if who.kind == "terminal":
            return self.terminal
        return False

    def describe(self) -> str:
        if self.public:
            return "public"
        parts = [f"roles: {', '.join(sorted(r.value for r in self.roles))}"] if self.roles else []
        if self.scope:
            parts.append(f"integration key scope: {self.scope}")
        if self.terminal:
            parts.append("room terminals")
        return "; ".join(parts) or "nobody"


PUBLIC = Access(public=True)
ANY_STAFF = frozenset({Role.ADMIN, Role.SECRETARIAT, Role.STAFF})
ADMIN_ONLY = Access(roles=frozenset({Role.ADMIN}))
DIRECTORY_READ = Access(roles=ANY_STAFF, scope="directory:read")
DIRECTORY_WRITE = Access(roles=frozenset({Role.ADMIN}))
STAFF_SELF = Access(roles=ANY_STAFF)


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


async def authenticate(request: web.Request) -> Principal:
    """Resolve the caller from the bearer token or the session cookie."""
    header = request.headers.get("Authorization", "")
    accounts = request.app[keys.ACCOUNTS]
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthenticated",
                "use 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        kind = token[:3]
        if kind == "sms":
            staff = await accounts.resolve_staff(token)
            if staff is not None and staff[1].kind == "api":
                account = staff[0]
                return Principal(
                    "staff", role=account.role, account_id=account.id, person_id=account.person_id
                )
        elif kind == "smk":
            key = await accounts.resolve_key(token)
            if key is not None:
                return Principal("apikey", key_id=key.id, scopes=frozenset(key.scopes))
        elif kind == "smr":
            terminal = await accounts.resolve_terminal(token)
            if terminal is not None:
                return Principal("terminal", terminal_id=terminal.id, room_id=terminal.room_id)
        log.info("rejected bearer credential from %s", client_address(request))
        raise ApiError(
            401,
            "unauthenticated",
            "the token is unknown, expired or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        staff = await accounts.resolve_staff(cookie)
        if staff is not None and staff[1].kind == "session":
            account = staff[0]
            return Principal(
                "staff",
                role=account.role,
                account_id=account.id,
                person_id=account.person_id,
                session_token=cookie,
            )
    return ANONYMOUS


async def optional_principal(request: web.Request) -> Principal:
    """The caller where a credential is optional: a bad one counts as none."""
    try:
        return await authenticate(request)
    except ApiError:
        return ANONYMOUS


async def check_csrf(request: web.Request, who: Principal) -> None:
    """Refuse an unsafe request authenticated by cookie without the session's CSRF token."""
    if who.session_token is None or request.method in _SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    expected = csrf_token(request.app[keys.SECRET], who.session_token)
    if presented is None or not hmac.compare_digest(presented, expected):
        raise ApiError(403, "csrf_failed", "missing or wrong CSRF token for this session")


async def authorize(request: web.Request, access: Access) -> Principal:
    """The caller, if ``access`` lets them in; 401 for nobody, 403 for the wrong somebody."""
    if access.public:
        return await optional_principal(request)
    who = await authenticate(request)
    if who.kind == "anonymous":
        raise ApiError(
            401,
            "unauthenticated",
            "log in or present a bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not access.allows(who):
        raise ApiError(
            403,
            "forbidden",
            f"not allowed for {who.kind}"
            + (f" ({who.role.value})" if who.role else "")
            + f"; this needs {access.describe()}",
        )
    await check_csrf(request, who)
    return who


@dataclass
class LoginLimiter:
    """Failed logins per key (email, client address) in a sliding minute.

    In-process: with several server processes each keeps its own window (the limit is per
    process); the failures are logged either way.
    """

    per_minute: int
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))

    def retry_after(self, *keys_: str) -> int:
        """Seconds until a login for these keys may be tried; 0 if now."""
        now = self.clock()
        wait = 0.0
        for key in keys_:
            times = self._failures.get(key)
            if not times:
                continue
            while times and now - times[0] >= self.window:
                times.popleft()
            if len(times) >= self.per_minute:
                wait = max(wait, self.window - (now - times[0]))
            if not times:
                self._failures.pop(key, None)
        return int(wait) + (1 if wait > int(wait) else 0)

    def failed(self, *keys_: str) -> None:
        now = self.clock()
        for key in keys_:
            self._failures[key].append(now)

    def succeeded(self, *keys_: str) -> None:
        for key in keys_:
            self._failures.pop(key, None)


@dataclass
class GuestLimits:
    """Wrong passcodes of guests: per client address and per meeting, in a sliding window.

    At most ``per_address`` wrong tries from one address and ``per_meeting`` for one meeting
    (from anywhere) every ``window`` seconds; beyond either, every try (a right one too) is
    answered 429 until the window has moved on. In-process, like :class:`LoginLimiter`.
    """

    per_address: int = 5
    per_meeting: int = 20
    window: float = 600.0
    clock: Callable[[], float] = time.monotonic
    _addresses: LoginLimiter = field(init=False)
    _meetings: LoginLimiter = field(init=False)

    def __post_init__(self) -> None:
        self._addresses = LoginLimiter(self.per_address, self.window, self.clock)
        self._meetings = LoginLimiter(self.per_meeting, self.window, self.clock)

    def retry_after(self, address: str, meeting_id: int | None = None) -> int:
        """Seconds until this address may try (this meeting) again; 0 if now."""
        wait = self._addresses.retry_after(address)
        if meeting_id is not None:
            wait = max(wait, self._meetings.retry_after(str(meeting_id)))
        return wait

    def failed(self, address: str, meeting_id: int | None = None) -> None:
        self._addresses.failed(address)
        if meeting_id is not None:
            self._meetings.failed(str(meeting_id))
