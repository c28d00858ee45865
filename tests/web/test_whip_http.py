"""WHIP and WHEP over real HTTP: aiortc peers speaking plain HTTP (aiohttp), as a hardware
encoder or a player would, against the running app.

A WHIP encoder publishes into the conference its room is booked for now; a WHEP player of
the same room receives it (decoded frames of the test pattern's colour); DELETE leaves;
PATCH trickles or is refused as documented. Every refusal is a clear 4xx problem and
leaves nobody behind in the hub or the media engine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.directory import Directory
from rooms.models import Role, Unit
from signaling.client import ConferenceClient
from tests.conftest import Staff, add_person, create_meeting
from tests.web.terminal_fixtures import (
    LOOPBACK,
    HttpOfferer,
    near,
    room_with_terminal,
    until,
)
from web.conference import HUB, LINKS

GREEN = (40, 200, 60)


def base(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def nobody_left(app: web.Application) -> bool:
    hub = app[HUB]
    return hub.conferences() == {} and hub.engine.conferences() == []


@pytest.fixture
async def offerers() -> Any:
    made: list[HttpOfferer] = []
    yield made
    for o in made:
        await o.close()


async def test_whip_publishes_into_the_booked_conference_and_whep_receives_it(
    app: web.Application,
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    offerers: list[HttpOfferer],
) -> None:
    room, terminal_id, token = await room_with_terminal(db, city, "海珠区视频会议室")
    person = await add_person(db, city.id, "li@gz.gov.cn", "李明")
    meeting = await create_meeting(client, staff, city, [person.id], rooms=[room])
    hub = app[HUB]

    encoder = HttpOfferer(base(client), token)
    offerers.append(encoder)
    status, answer = await encoder.publish(GREEN)
    assert status == 201, answer
    h = encoder.headers
    assert h["Content-Type"].startswith("application/sdp")
    assert encoder.location is not None and encoder.location.startswith("/whip/")
    assert encoder.etag and encoder.etag.startswith('"')
    assert h["Accept-Patch"] == "application/trickle-ice-sdpfrag"
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "a=recvonly" in answer and "a=sendonly" not in answer
    (conference,) = hub.conferences()
    assert conference.startswith(f"{meeting}@")
    (whip,) = hub.participants(conference)
    assert whip["kind"] == "whip"
    await until(lambda: encoder.pc.connectionState == "connected", 10)

    # an invitee (the conference protocol) sees the encoder's picture
    ws = base(client).replace("http://", "ws://") + "/ws"
    invitee = ConferenceClient(ws, app[LINKS].sign("join", meeting, person.id),
                               host_addresses=LOOPBACK)  # fmt: skip
    try:
        await invitee.connect()
        await invitee.wait_until(
            lambda: any(
                who == whip["id"] and t.kind == "video" for who, t in invitee.remote_tracks.values()
            ),
            10,
        )
    finally:
        await invitee.leave()  # (a dropped socket would keep its place for the grace)

    # a WHEP player of the same room receives the encoder (the only one publishing)
    player = HttpOfferer(base(client), token)
    offerers.append(player)
    status, answer = await player.view()
    assert status == 201, answer
    assert player.location is not None and player.location.startswith("/whep/")
    assert "a=sendonly" in answer
    await until(lambda: near(player.colour, GREEN), 10)
    await until(lambda: player.frames["audio"] > 5 and player.frames["video"] > 5, 10)
    assert {p["kind"] for p in hub.participants(conference)} == {"whip", "whep"}

    # trickle: a candidate fragment is taken; a wrong ETag and an ICE restart are refused
    ufrag = next(line for line in answer.splitlines() if line.startswith("a=ice-ufrag"))
    offer_sdp = encoder.pc.localDescription.sdp
    own_ufrag = next(line for line in offer_sdp.splitlines() if line.startswith("a=ice-ufrag"))
    candidate = next(line for line in offer_sdp.splitlines() if line.startswith("a=candidate"))
    frag = f"{own_ufrag}\r\na=mid:0\r\n{candidate}\r\na=end-of-candidates\r\n"
    trickle = "application/trickle-ice-sdpfrag"
    status, _ = await encoder.request("PATCH", body=frag, **{"Content-Type": trickle})
    assert status == 204
    status, _ = await encoder.request(
        "PATCH", body=frag, **{"Content-Type": trickle, "If-Match": encoder.etag or ""}
    )
    assert status == 204
    status, body = await encoder.request(
        "PATCH", body=frag, **{"Content-Type": trickle, "If-Match": '"other"'}
    )
    assert (status, "precondition_failed") == (412, _code(body))
    restart = f"a=ice-ufrag:zzzz\r\na=ice-pwd:{'x' * 24}\r\n"
    status, body = await encoder.request("PATCH", body=restart, **{"Content-Type": trickle})
    assert (status, "ice_restart_unsupported") == (422, _code(body))
    assert ufrag  # the server's own ufrag is in the answer (not needed by the client)
    status, body = await encoder.request("PATCH", body=frag, **{"Content-Type": "text/plain"})
    assert status == 415

    # OPTIONS: CORS preflight without credentials
    r = await client.options("/whip")
    assert r.status == 204 and r.headers["Accept-Post"] == "application/sdp"
    r = await client.options(encoder.location)
    assert r.status == 204 and "PATCH" in r.headers["Allow"]

    # DELETE leaves: the encoder is gone from the conference and the player stays
    status, _ = await encoder.request("DELETE")
    assert status == 200
    await until(lambda: [p["kind"] for p in hub.participants(conference)] == ["whep"], 5)
    status, body = await encoder.request("DELETE")
    assert (status, "not_found") == (404, _code(body))
    status, _ = await player.request("DELETE")
    assert status == 200
    await until(lambda: nobody_left(app), 5)
    assert terminal_id


async def test_a_new_whip_post_of_the_same_terminal_replaces_its_session(
    app: web.Application,
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    offerers: list[HttpOfferer],
) -> None:
    room, _, token = await room_with_terminal(db, city, "荔湾区视频会议室")
    await create_meeting(client, staff, city, [], rooms=[room])
    first = HttpOfferer(base(client), token)
    second = HttpOfferer(base(client), token)
    offerers.extend([first, second])
    assert (await first.publish(GREEN))[0] == 201
    assert (await second.publish(GREEN))[0] == 201
    (conference,) = app[HUB].conferences()
    assert len(app[HUB].participants(conference)) == 1
    status, _ = await first.request("DELETE")
    assert status == 404  # the replaced session is gone
    assert len(app[HUB].participants(conference)) == 1
    assert (await second.request("DELETE"))[0] == 200
    await until(lambda: nobody_left(app), 5)


def _code(body: str) -> str | None:
    import json

    try:
        code = json.loads(body).get("error")
    except ValueError:
        return None
    return str(code) if code is not None else None


BAD_SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"


async def test_refusals_are_clear_and_leave_nothing_behind(
    app: web.Application,
    client: TestClient[Any, Any],
    staff: Staff,
    db: Database,
    city: Unit,
    offerers: list[HttpOfferer],
) -> None:
    booked, _, token = await room_with_terminal(db, city, "白云区视频会议室")
    idle, _, idle_token = await room_with_terminal(db, city, "黄埔区视频会议室")
    later, _, later_token = await room_with_terminal(db, city, "番禺区视频会议室")
    _, revoked_id, revoked_token = await room_with_terminal(db, city, "花都区视频会议室")
    await Directory(db).revoke_terminal(revoked_id)
    await create_meeting(client, staff, city, [], rooms=[booked])
    in_three_hours = datetime.now(UTC) + timedelta(hours=3)
    await create_meeting(client, staff, city, [], rooms=[later], start=in_three_hours)
    staff_token = await staff.token(Role.ADMIN)
    url = base(client)

    def offerer(tok: str) -> HttpOfferer:
        o = HttpOfferer(url, tok)
        offerers.append(o)
        return o

    async def refused(o: HttpOfferer, endpoint: str, sdp: str | None = None) -> tuple[int, Any]:
        if sdp is None:
            o.pc.addTransceiver(
                "video", direction="sendonly" if endpoint == "/whip" else "recvonly"
            )
        status, body = await o.post(endpoint, sdp)
        assert o.headers.get("Access-Control-Allow-Origin") == "*"
        assert nobody_left(app), app[HUB].conferences()
        assert app[HUB].engine.participants  # still a method: nothing cached
        return status, _code(body)

    for endpoint in ("/whip", "/whep"):
        assert await refused(offerer("smr_not-a-real-token"), endpoint) == (401, "unauthenticated")
        assert await refused(offerer(revoked_token), endpoint) == (401, "unauthenticated")
        assert await refused(offerer(staff_token), endpoint) == (403, "forbidden")
        # other rooms' terminals: not booked now (nothing, or only later today)
        assert await refused(offerer(idle_token), endpoint) == (409, "no_meeting_now")
        assert await refused(offerer(later_token), endpoint) == (409, "no_meeting_now")
        # the booked room's own token, but an SDP that cannot be answered
        status, code = await refused(offerer(token), endpoint, BAD_SDP)
        assert status == 400 and code, code
        status, code = await refused(offerer(token), endpoint, "this is not SDP")
        assert status == 400 and code, code
    two_videos = offerer(token)
    two_videos.pc.addTransceiver("video", direction="sendonly")
    two_videos.pc.addTransceiver("video", direction="sendonly")
    status, code = await refused(two_videos, "/whip", await two_videos.offer())
    assert status == 400, code
    sends_only = offerer(token)  # a player must receive something
    sends_only.pc.addTransceiver("video", direction="sendonly")
    status, code = await refused(sends_only, "/whep", await sends_only.offer())
    assert status == 400, code
    # a viewer may only follow someone who is there
    follower = offerer(token)
    follower.pc.addTransceiver("video", direction="recvonly")
    status, code = await refused(follower, "/whep?participant=nobody", await follower.offer())
    assert (status, code) == (404, "no_such_participant")

    # another terminal cannot end or patch this terminal's session
    encoder = offerer(token)
    assert (await encoder.publish(GREEN))[0] == 201
    location = encoder.location
    for tok in (idle_token, later_token):
        other = offerer(tok)
        assert (await other.request("DELETE", location))[0] == 404
        frag = "a=end-of-candidates\r\n"
        status, _ = await other.request(
            "PATCH", location, frag, **{"Content-Type": "application/trickle-ice-sdpfrag"}
        )
        assert status == 404
    assert (await offerer("smr_wrong").request("DELETE", location))[0] == 401
    (conference,) = app[HUB].conferences()
    assert len(app[HUB].participants(conference)) == 1
    assert (await encoder.request("DELETE"))[0] == 200
    await until(lambda: nobody_left(app), 5)
    assert idle
