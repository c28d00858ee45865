"""WHIP (RFC 9725) and WHEP: hardware encoders publish, players view, over plain HTTP.

For room terminals' encoders and for players/recorders. The bearer token is a terminal's
token (``smr_…``); the conference is the one its room is booked for now (a 409 problem
otherwise). ``POST /whip`` with an SDP offer (``application/sdp``) publishes into the
conference; ``POST /whep`` receives the active speaker (or ``?participant=<id>``). The
answer comes back ``201`` with ``Location: /whip/<resource>`` and an ``ETag``; ``DELETE``
on the Location leaves; ``PATCH`` with ``application/trickle-ice-sdpfrag`` trickles
candidates (ICE restarts are refused with 422). ``OPTIONS`` answers CORS preflights.
Errors are JSON problems, with the CORS headers too.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from media import MediaError
from media.messages import IceCandidate
from rooms.db import utcnow
from scheduling.admission import AdmissionRefused, Admissions
from signaling.hub import ConferenceHub, JoinGrant
from signaling.protocol import MAX_SDP
from web.auth import Principal, authorize
from web.conference import grant_for
from web.problems import ApiError, problem
from web.terminal_control import TERMINALS_ONLY

log = logging.getLogger(__name__)

Mode = Literal["publish", "view"]
SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post",
}


@dataclass(frozen=True, slots=True)
class Resource:
    """One WHIP or WHEP session: a participant of the hub, owned by one terminal."""

    id: str
    path: str
    participant: str
    terminal_id: int
    etag: str
    ice_ufrag: str | None


def _ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.split(":", 1)[1].strip()
    return None


class HttpMedia:
    """The WHIP and WHEP endpoints over one hub; resources live as long as their participant."""

    def __init__(
        self,
        hub: ConferenceHub,
        admissions: Admissions,
        ice_servers: list[str],
    ) -> None:
        self.hub = hub
        self.admissions = admissions
        self.ice_servers = ice_servers
        self.resources: dict[str, Resource] = {}

    # -- handlers ---------------------------------------------------------------------

    async def post_whip(self, request: web.Request) -> web.StreamResponse:
        return await _cors(self._post, request, "publish")

    async def post_whep(self, request: web.Request) -> web.StreamResponse:
        return await _cors(self._post, request, "view")

    async def delete(self, request: web.Request) -> web.StreamResponse:
        return await _cors(self._delete, request)

    async def patch(self, request: web.Request) -> web.StreamResponse:
        return await _cors(self._patch, request)

    async def options(self, request: web.Request) -> web.StreamResponse:
        """CORS preflight (no credentials needed) and what the endpoint accepts."""
        headers = dict(CORS)
        if "resource" in request.match_info:
            headers.update({"Allow": "DELETE, PATCH, OPTIONS", "Accept-Patch": TRICKLE})
        else:
            headers.update({"Allow": "POST, OPTIONS", "Accept-Post": SDP})
        return web.Response(status=204, headers=headers)

    # -- use cases ----------------------------------------------------------------------

    async def _post(self, request: web.Request, mode: Mode) -> web.StreamResponse:
        who = await authorize(request, TERMINALS_ONLY)
        offer = await _body(request, SDP)
        grant = await self._grant(who, mode)
        follow = request.query.get("participant") if mode == "view" else None
        if follow is not None and follow not in {
            p["id"] for p in self.hub.participants(grant.conference)
        }:
            raise ApiError(
                404, "no_such_participant", f"nobody with id {follow!r} is in the conference"
            )
        try:
            participant, answer = await self.hub.join_offer(
                grant, offer, mode, follow=follow, client=request.headers.get("User-Agent", "")
            )
        except MediaError as exc:
            raise ApiError(400, exc.code, f"the offer cannot be answered: {exc}") from None
        resource_id = secrets.token_urlsafe(16)
        base = "/whip" if mode == "publish" else "/whep"
        resource = Resource(
            resource_id, f"{base}/{resource_id}", participant, who.terminal_id or 0,
            secrets.token_hex(8), _ufrag(offer),
        )  # fmt: skip
        self.resources[resource_id] = resource
        log.info("%s %s of terminal %s in %s", base, participant, who.terminal_id, grant.conference)
        headers = {
            "Location": resource.path,
            "ETag": f'"{resource.etag}"',
            "Accept-Patch": TRICKLE,
        }
        links = [f'<{url}>; rel="ice-server"' for url in self.ice_servers]
        if links:
            headers["Link"] = ", ".join(links)
        return web.Response(status=201, text=answer, content_type=SDP, headers=headers)

    async def _grant(self, who: Principal, mode: Mode) -> JoinGrant:
        assert who.terminal_id is not None
        try:
            admission = await self.admissions.terminal(who.terminal_id, utcnow())
        except AdmissionRefused as exc:
            raise ApiError(409, exc.code, exc.message) from None
        grant = grant_for(admission, "terminal")
        if mode == "publish":
            # one encoder per terminal: a new POST replaces the previous session
            return dataclasses.replace(
                grant, identity=f"whip:{grant.identity}", kind="whip", name=f"{grant.name} WHIP"
            )
        return dataclasses.replace(
            grant,
            identity=f"whep:{grant.identity}:{secrets.token_hex(4)}",
            kind="whep",
            name=f"{grant.name} WHEP",
        )

    async def _resource(self, request: web.Request) -> Resource:
        who = await authorize(request, TERMINALS_ONLY)
        resource = self.resources.get(request.match_info["resource"])
        if resource is not None and self.hub.session_of(resource.participant) is None:
            del self.resources[resource.id]  # the participant left (failed, conference ended)
            resource = None
        if resource is None or resource.terminal_id != who.terminal_id:
            raise ApiError(404, "not_found", "no such session (it may have ended)")
        return resource

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        resource = await self._resource(request)
        self.resources.pop(resource.id, None)
        await self.hub.leave_offer(resource.participant)
        return web.Response(status=200)

    async def _patch(self, request: web.Request) -> web.StreamResponse:
        resource = await self._resource(request)
        match = request.headers.get("If-Match")
        if match is not None and match.strip() not in ("*", f'"{resource.etag}"'):
            raise ApiError(412, "precondition_failed", "the ETag does not match this session")
        fragment = await _body(request, TRICKLE)
        ufrag = _ufrag(fragment)
        if ufrag is not None and resource.ice_ufrag is not None and ufrag != resource.ice_ufrag:
            raise ApiError(
                422,
                "ice_restart_unsupported",
                "ICE restarts are not supported: DELETE this session and POST a new offer",
            )
        mid: str | None = None
        for line in fragment.splitlines():
            line = line.strip()
            if line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:"):
                candidate: IceCandidate = {"candidate": line[2:], "sdpMid": mid}
                await self._add_candidate(resource, candidate)
            elif line == "a=end-of-candidates":
                await self._add_candidate(resource, None)
        return web.Response(status=204)

    async def _add_candidate(self, resource: Resource, candidate: IceCandidate | None) -> None:
        try:
            await self.hub.engine.add_ice_candidate(resource.participant, candidate)
        except MediaError as exc:
            raise ApiError(422, exc.code, str(exc)) from None

    async def close(self) -> None:
        self.resources.clear()


async def _body(request: web.Request, content_type: str) -> str:
    if request.content_type != content_type:
        raise ApiError(415, "unsupported_media_type", f"send the body as {content_type}")
    if request.content_length is not None and request.content_length > MAX_SDP:
        raise ApiError(413, "body_too_large", "the SDP is too large")
    text = await request.text()
    if len(text) > MAX_SDP:
        raise ApiError(413, "body_too_large", "the SDP is too large")
    return text


async def _cors(
    handler: Callable[..., Awaitable[web.StreamResponse]], request: web.Request, *args: object
) -> web.StreamResponse:
    """Run ``handler``; every answer, errors included, carries the CORS headers."""
    try:
        response = await handler(request, *args)
    except ApiError as exc:
        return problem(
            exc.status, exc.code, exc.message, exc.fields, {**CORS, **exc.headers}, **exc.extra
        )
    response.headers.update(CORS)
    return response


def install(app: web.Application, media: HttpMedia) -> None:
    for base, post in (("/whip", media.post_whip), ("/whep", media.post_whep)):
        app.router.add_post(base, post)
        app.router.add_route("OPTIONS", base, media.options)
        app.router.add_delete(base + "/{resource}", media.delete)
        app.router.add_patch(base + "/{resource}", media.patch)
        app.router.add_route("OPTIONS", base + "/{resource}", media.options)
