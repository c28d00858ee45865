"""Guests: people without an invitation who join a meeting with its passcode.

``POST /api/v1/guest-joins`` is public (the ``/guest`` page posts it): the meeting's number,
its passcode and a name give a short-lived guest link (``/join/<token>``, valid 30 minutes
for joining). In the conference a guest waits in the lobby until a chair admits them.

Wrong passcodes are limited (:class:`web.auth.GuestLimits`): 5 per client address and 20
per meeting in 10 minutes; past either, every try is answered 429 with ``Retry-After``,
the right passcode too, until the window has moved on. Passcodes are compared in constant
time; the body is limited to 2 KB.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from rooms.db import utcnow
from scheduling.admission import AdmissionRefused
from scheduling.links import GUEST_MAX_AGE, MAX_GUEST_NAME
from scheduling.models import Meeting
from scheduling.passcodes import MAX_LENGTH, passcode_matches
from web import keys
from web.api import MAX_ID, Api, Call, Schema
from web.auth import PUBLIC, client_address
from web.conference import ADMISSIONS, LINKS
from web.problems import ApiError

log = logging.getLogger(__name__)

MAX_BODY = 2048


def _digits(value: str) -> str:
    if not value.isascii() or not value.isdigit():
        raise ValueError("the passcode is digits 0-9 only")
    return value


def _name(value: str) -> str:
    value = " ".join(unicodedata.normalize("NFC", value).split())
    if not value:
        raise ValueError("say your name")
    if len(value) > MAX_GUEST_NAME:
        raise ValueError(f"at most {MAX_GUEST_NAME} characters")
    if not value.isprintable():
        raise ValueError("the name has characters that cannot be shown")
    return value


class GuestJoinIn(Schema):
    meeting: int = Field(ge=1, le=MAX_ID, description="The meeting's number (its id).")
    passcode: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_LENGTH), AfterValidator(_digits)
    ] = Field(description="The meeting's guest passcode (digits).")
    name: Annotated[
        str, StringConstraints(max_length=4 * MAX_GUEST_NAME), AfterValidator(_name)
    ] = Field(description=f"How others will see the guest (1-{MAX_GUEST_NAME} characters).")


class GuestJoinOut(BaseModel):
    token: str = Field(description="The guest's join token (the hello token on /ws).")
    url: str = Field(description="The conference page to open: /join/<token>.")
    expires_at: datetime = Field(description="Until when the token opens the conference.")
    meeting_id: int
    title: str


def register(api: Api) -> None:
    @api.route("POST", "/guest-joins", summary="Join a meeting as a guest, with its passcode",
               access=PUBLIC, tag="conferences", body=GuestJoinIn, response=GuestJoinOut,
               status=201, errors=(403, 404, 409, 429), max_body=MAX_BODY,
               body_example={"meeting": 42, "passcode": "482913",
                             "name": "王敏（市民代表）"})  # fmt: skip
    async def join_as_guest(call: Call[GuestJoinIn, None]) -> GuestJoinOut:
        """403 `wrong_passcode`, or `guests_not_allowed` (the meeting takes no guests); 404
        `not_found` (no such meeting); 409 `too_early`, `ended` or `cancelled` (not open
        for joining now); 429 `too_many_attempts` with `Retry-After` after 5 wrong tries
        from one address or 20 for one meeting in 10 minutes."""
        body, app = call.body, call.app
        limits, address = app[keys.GUEST_LIMITS], client_address(call.request)
        wait = limits.retry_after(address, body.meeting)
        if wait:
            raise ApiError(
                429, "too_many_attempts",
                f"too many wrong passcodes: try again in {wait} seconds",
                headers={"Retry-After": str(wait)}, retry_after=wait,
            )  # fmt: skip
        async with app[keys.DATABASE].read() as session:
            meeting = await session.get(Meeting, body.meeting)
        if meeting is None:
            limits.failed(address)  # numbers are tried too: they count against the address
            raise ApiError(404, "not_found", f"there is no meeting number {body.meeting}",
                           fields={"meeting": "no such meeting"})  # fmt: skip
        if meeting.passcode is None:
            raise ApiError(403, "guests_not_allowed",
                           "this meeting does not take guests: ask its organiser for an "
                           "invitation")  # fmt: skip
        if not passcode_matches(meeting.passcode, body.passcode):
            limits.failed(address, meeting.id)
            log.info("wrong guest passcode for meeting %s from %s", meeting.id, address)
            raise ApiError(403, "wrong_passcode", "the passcode is wrong",
                           fields={"passcode": "wrong passcode"})  # fmt: skip
        guest_id = secrets.token_hex(8)
        now = utcnow()
        try:
            admission = await app[ADMISSIONS].guest(meeting.id, guest_id, body.name, now)
        except AdmissionRefused as exc:
            raise ApiError(409, exc.code, exc.message) from None
        token = app[LINKS].sign_guest(meeting.id, guest_id, body.name)
        log.info("guest %s let into the lobby of meeting %s", guest_id, meeting.id)
        return GuestJoinOut(
            token=token, url=f"/join/{token}",
            expires_at=now + timedelta(seconds=GUEST_MAX_AGE),
            meeting_id=meeting.id, title=admission.title,
        )  # fmt: skip
