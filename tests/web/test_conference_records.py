"""What conferences leave behind: chat, the chair-control log and recordings, kept by the
hub's hooks and read back (or downloaded) by those who run the meeting; operators' controls
over REST."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import itsdangerous.timed
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from rooms.db import Database
from rooms.models import Role, Unit
from scheduling.admission import conference_id
from signaling.client import ConferenceClient
from signaling.hooks import Activity, ParticipantRef
from signaling.sources import ColorTrack
from tests.conftest import PASSWORD, Staff, add_person
from web import keys
from web.conference import HUB, LINKS, make_authenticate
from web.settings import Settings

Client = TestClient[Any, Any]
Headers = dict[str, str]


class Meeting:
    """A meeting starting now, organised by one staff member, with an invited colleague."""

    def __init__(self, client: Client, staff: Staff, city: Unit) -> None:
        self.client, self.staff, self.city = client, staff, city
        self.id = 0
        self.conference = ""
        self.organiser: Headers = {}
        self.participant: Headers = {}
        self.outsider: Headers = {}
        self.organiser_person = 0
        self.participant_person = 0
        self.emails: dict[str, str] = {}

    async def login(self, role: Role, who: str) -> tuple[Headers, int]:
        email, person = await self.staff.account(role)
        self.emails[who] = email
        r = await self.client.post(
            "/api/v1/auth/token", json={"email": email, "password": PASSWORD}
        )
        return {"Authorization": f"Bearer {(await r.json())['token']}"}, person

    async def page_login(self, who: str) -> None:
        """Log ``who`` in with a browser session (the client keeps the cookie)."""
        r = await self.client.post(
            "/login", data={"email": self.emails[who], "password": PASSWORD, "next": "/"},
            allow_redirects=False,
        )  # fmt: skip
        assert r.status == 302

    async def create(self, chair: int | None = None) -> Meeting:
        self.organiser, self.organiser_person = await self.login(Role.STAFF, "organiser")
        self.participant, self.participant_person = await self.login(Role.STAFF, "participant")
        self.outsider, _ = await self.login(Role.STAFF, "outsider")
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        r = await self.client.post(
            "/api/v1/meetings",
            headers=await self.staff.headers(Role.SECRETARIAT),
            json={
                "title": "防汛视频调度会", "unit_id": self.city.id,
                "organiser_id": self.organiser_person, "chair_id": chair,
                "start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat(),
                "attendees": [{"person_id": self.participant_person}],
            },
        )  # fmt: skip
        assert r.status == 201, await r.text()
        self.id = (await r.json())["id"]
        self.conference = conference_id(self.id, start)
        return self


@pytest.fixture
async def meeting(client: Client, staff: Staff, city: Unit) -> Meeting:
    return await Meeting(client, staff, city).create()


def ref(pid: str, identity: str, name: str, role: str = "participant") -> ParticipantRef:
    kind = "guest" if identity.startswith("guest:") else "browser"
    return ParticipantRef(pid, identity, name, role, kind, {})


async def _get(client: Client, url: str, headers: Headers, status: int = 200) -> Any:
    r = await client.get(url, headers=headers)
    assert r.status == status, await r.text()
    return await r.json()


async def test_chat_and_controls_are_kept_and_shown_to_those_who_run_the_meeting(
    app: web.Application, client: Client, staff: Staff, meeting: Meeting
) -> None:
    hooks = app[HUB].hooks
    assert hooks.on_activity is not None
    at = datetime.now(UTC).replace(microsecond=0)
    chair = ref("c1", "person:1", "李主持", "chair")
    guest = ref("g1", "guest:ab12", "王敏")
    activities = [
        Activity("chat", meeting.conference, at, chair, None, None, None, "大家好"),
        Activity("chat", meeting.conference, at + timedelta(seconds=1), guest, None, None,
                 chair, "我这边听不清"),
        Activity("control", meeting.conference, at + timedelta(seconds=2), chair, None,
                 "mute", guest, None),
        Activity("control", meeting.conference, at + timedelta(seconds=3), None,
                 "admin@gz.gov.cn", "lock", None, None),
        # not a meeting's conference: nothing kept, nothing raised
        Activity("chat", "lab-test", at, chair, None, None, None, "x"),
    ]  # fmt: skip
    for activity in activities:
        await hooks.on_activity(activity)

    url = f"/api/v1/meetings/{meeting.id}"
    admin = await staff.headers(Role.ADMIN)
    chat = await _get(client, url + "/chat", admin)
    assert chat["total"] == 2
    first, private = chat["items"]
    assert (first["from_name"], first["text"], first["private"]) == ("李主持", "大家好", False)
    assert private["private"] is True and private["to_name"] == "李主持"
    assert private["from_identity"] == "guest:ab12"
    # the organiser sees the public chat only
    mine = await _get(client, url + "/chat", meeting.organiser)
    assert [m["text"] for m in mine["items"]] == ["大家好"]

    log = await _get(client, url + "/conference-log", admin)
    assert [(e["kind"], e["action"]) for e in log["items"]] == [
        ("chat", None), ("chat", None), ("control", "mute"), ("control", "lock"),
    ]  # fmt: skip
    mute, lock = log["items"][2:]
    assert (mute["actor_name"], mute["target_name"]) == ("李主持", "王敏")
    assert (lock["actor_identity"], lock["actor_name"]) == ("operator", "admin@gz.gov.cn")
    controls = await _get(client, url + "/conference-log?kind=control", meeting.organiser)
    assert controls["total"] == 2
    key = first["occurrence"]
    assert (await _get(client, url + f"/chat?occurrence={key}", admin))["total"] == 2
    assert (await _get(client, url + f"/chat?occurrence={key + 60}", admin))["total"] == 0
    assert (await _get(client, url + "/chat?limit=1&offset=1", admin))["items"] == [private]

    # invited staff may see the meeting, not its records; others do not see it at all
    for path in ("/chat", "/conference-log", "/recordings"):
        problem = await _get(client, url + path, meeting.participant, 403)
        assert problem["error"] == "forbidden" and "organiser" in problem["message"]
        await _get(client, url + path, meeting.outsider, 404)
        await _get(client, url + path, await staff.headers(Role.SECRETARIAT))

    # the same on a page, for the organiser's browser session
    page_url = f"/secretariat/meetings/{meeting.id}/records"
    r = await client.get(page_url, allow_redirects=False)
    assert r.status == 302 and r.headers["Location"].startswith("/login")
    await meeting.page_login("organiser")
    r = await client.get(page_url)
    assert r.status == 200
    page = await r.text()
    assert "大家好" in page and "我这边听不清" not in page  # private chat: operators only
    assert "mute" in page and "admin@gz.gov.cn" in page
    await meeting.page_login("participant")
    assert (await client.get(page_url)).status == 403
    await meeting.page_login("outsider")
    assert (await client.get(page_url)).status == 404


async def test_a_recording_is_stored_listed_and_downloaded_by_those_allowed(
    app: web.Application, client: Client, staff: Staff, meeting: Meeting, settings: Settings
) -> None:
    hooks = app[HUB].hooks
    assert hooks.open_recording is not None and hooks.close_recording is not None
    chair = ref("c1", "person:1", "李主持", "chair")
    target = await hooks.open_recording(meeting.conference, chair, {})
    directory = Path(target.directory)
    assert await asyncio.to_thread(directory.is_dir)
    assert directory.parent == settings.data_dir.resolve() / "recordings"
    assert directory.name == target.id

    admin = await staff.headers(Role.ADMIN)
    url = f"/api/v1/recordings/{target.id}"
    row = await _get(client, url, admin)
    assert row["status"] == "recording" and row["download_url"] is None
    assert row["started_by_name"] == "李主持" and row["meeting_id"] == meeting.id
    r = await client.get(url + "/file", headers=admin)
    assert r.status == 409 and (await r.json())["error"] == "recording_not_ready"

    content = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 400  # an EBML header, then data
    await asyncio.to_thread((directory / "recording.mkv").write_bytes, content)
    manifest: Any = {
        "directory": str(directory), "file": "recording.mkv",
        "started_at": "2026-12-10T01:00:00+00:00", "stopped_at": "2026-12-10T01:10:00+00:00",
        "duration_s": 600.0, "bytes": len(content),
        "tracks": [{"participant": "c1", "kind": "video", "source": "camera", "codec": "vp8",
                    "file": "c1-camera-1.mkv", "stream": 0, "start_offset_s": 0.1,
                    "frames": 18000}],
    }  # fmt: skip
    await hooks.close_recording(target, manifest, {"c1": chair})
    row = await _get(client, url, meeting.organiser)
    assert row["status"] == "ready" and row["bytes"] == len(content)
    assert row["duration_s"] == 600.0 and row["download_url"] == url + "/file"
    assert row["participants"]["c1"]["name"] == "李主持"
    assert row["manifest"]["tracks"][0]["codec"] == "vp8"
    assert row["stopped_at"].startswith("2026-12-10T01:10:00")

    r = await client.get(url + "/file", headers=meeting.organiser)
    assert r.status == 200
    assert r.headers["Content-Type"] == "video/x-matroska"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".mkv" in disposition
    assert await r.read() == content
    r = await client.get(url + "/file", headers={**admin, "Range": "bytes=0-3"})
    assert r.status == 206 and await r.read() == content[:4]

    # nothing recorded: failed, no file
    empty = await hooks.open_recording(meeting.conference, None, {})
    await hooks.close_recording(
        empty, {**manifest, "directory": empty.directory, "tracks": [], "bytes": 0}, {}
    )
    failed = await _get(client, f"/api/v1/recordings/{empty.id}", admin)
    assert failed["status"] == "failed" and failed["started_by"] == "operator"
    r = await client.get(f"/api/v1/recordings/{empty.id}/file", headers=admin)
    assert r.status == 404

    listed = await _get(client, f"/api/v1/meetings/{meeting.id}/recordings", meeting.organiser)
    assert [x["id"] for x in listed] == [int(empty.id), int(target.id)]
    for path in (url, url + "/file"):
        await _get(client, path, meeting.participant, 403)
        await _get(client, path, meeting.outsider, 404)
    await _get(client, "/api/v1/recordings/999999", admin, 404)


def test_the_recordings_directory_can_be_moved(tmp_path: Path) -> None:
    moved = Settings(data_dir=tmp_path / "data", recordings_dir=tmp_path / "big-disk")
    assert moved.effective_recordings_dir == (tmp_path / "big-disk").resolve()
    default = Settings(data_dir=tmp_path / "data")
    assert default.effective_recordings_dir == (tmp_path / "data" / "recordings").resolve()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_guest_is_admitted_chats_is_controlled_and_recorded_through_a_real_hub(
    app: web.Application,
    client: Client,
    staff: Staff,
    db: Database,
    city: Unit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chair_person = await add_person(db, city.id, "chair@gz.gov.cn", "李主持")
    meeting = await Meeting(client, staff, city).create(chair=chair_person.id)
    ws = str(client.make_url("/ws")).replace("http://", "ws://")
    admin = await staff.headers(Role.ADMIN)
    passcode = (await _get(client, f"/api/v1/meetings/{meeting.id}", admin))["passcode"]
    r = await client.post(
        "/api/v1/guest-joins",
        json={"meeting": meeting.id, "passcode": passcode, "name": "王敏"},
    )
    guest_token = (await r.json())["token"]
    chair = ConferenceClient(
        ws, app[LINKS].sign("join", meeting.id, chair_person.id),
        tracks=[ColorTrack((30, 160, 60))], host_addresses=["127.0.0.1"],
    )  # fmt: skip
    guest = ConferenceClient(ws, guest_token, host_addresses=["127.0.0.1"])
    try:
        await chair.connect()
        assert chair.welcome["participant"]["role"] == "chair"
        conference = chair.welcome["conference"]["id"]
        assert conference == meeting.conference
        await guest.connect(wait=False)
        waiting = await guest.wait_for(lambda m: m["type"] == "lobby")
        assert waiting["state"] == "waiting" and waiting["reason"] == "guest"
        queue = await chair.wait_for(lambda m: m["type"] == "lobby_queue" and m["waiting"])
        (entry,) = queue["waiting"]
        assert entry["name"] == "王敏" and entry["kind"] == "guest"

        control = f"/api/v1/conferences/{conference}/control"
        r = await client.post(control, json={"action": "admit", "participant": entry["id"]},
                              headers=admin)  # fmt: skip
        assert r.status == 200, await r.text()
        assert (await r.json())["lobby"] == []
        await guest.wait_for(lambda m: m["type"] == "welcome", timeout=15)
        me = guest.welcome["participant"]
        assert me["kind"] == "guest" and me["name"] == "王敏" and me["role"] == "participant"

        # a reload late in the meeting: the expired link still brings the guest back
        identity = (await make_authenticate(app)(guest_token)).identity
        with monkeypatch.context() as patch:
            signed_at = int(time.time()) - 3600
            patch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda _: signed_at)
            expired = app[LINKS].sign_guest(meeting.id, identity.removeprefix("guest:"), "王敏")
        assert (await make_authenticate(app)(expired)).identity == identity

        await guest.chat("主持人好，我是市民代表")
        await chair.wait_for(lambda m: m["type"] == "chat")
        for body, status, code in [
            ({"action": "mute", "participant": me["id"]}, 200, None),
            ({"action": "lock", "participant": me["id"]}, 409, "invalid_request"),
            ({"action": "remove", "participant": "nobody"}, 404, "not_found"),
            ({"action": "launch"}, 422, "validation_failed"),
        ]:
            r = await client.post(control, json=body, headers=admin)
            assert r.status == status, await r.text()
            if code:
                assert (await r.json())["error"] == code
        r = await client.post("/api/v1/conferences/1@20200101T000000Z/control",
                              json={"action": "lock"}, headers=admin)  # fmt: skip
        assert r.status == 404
        r = await client.post(control, json={"action": "lock"}, headers=meeting.organiser)
        assert r.status == 403
        muted = await guest.wait_for(lambda m: m["type"] == "controlled" and m["action"] == "mute")
        assert muted["participant"] == me["id"] and muted["by"] is None and muted["by_name"]

        r = await client.post(control, json={"action": "record_start"}, headers=admin)
        assert r.status == 200 and (await r.json())["recording"] is True, await r.text()
        await chair.wait_for(lambda m: m["type"] == "conference_state" and m["recording"])
        await asyncio.sleep(2.0)  # some media
        r = await client.post(control, json={"action": "record_stop"}, headers=admin)
        assert r.status == 200 and (await r.json())["recording"] is False, await r.text()
        recordings = f"/api/v1/meetings/{meeting.id}/recordings"

        async def finished() -> bool:
            rows = await _get(client, recordings, admin)
            return bool(rows) and rows[0]["status"] != "recording"

        await _until(finished)
        (row,) = await _get(client, recordings, meeting.organiser)
        assert row["status"] == "ready" and row["bytes"] > 0, row
        assert row["started_by"] == "operator"
        file = await client.get(row["download_url"], headers=meeting.organiser)
        assert file.status == 200 and file.headers["Content-Type"] == "video/x-matroska"
        data = await file.read()
        assert data[:4] == b"\x1a\x45\xdf\xa3" and len(data) == row["bytes"]

        log_url = f"/api/v1/meetings/{meeting.id}/conference-log"

        async def logged() -> bool:
            log = await _get(client, log_url, admin)
            return {"admit", "mute", "record_start", "record_stop"} <= {
                e["action"] for e in log["items"]
            }

        await _until(logged)
        log = (await _get(client, log_url, admin))["items"]
        said = [e for e in log if e["kind"] == "chat"]
        assert [(e["actor_name"], e["text"]) for e in said] == [("王敏", "主持人好，我是市民代表")]
        assert said[0]["actor_identity"] == identity
        admitted = next(e for e in log if e["action"] == "admit")
        assert admitted["actor_identity"] == "operator" and admitted["target_name"] == "王敏"
        assert admitted["actor_name"].endswith("@example.gov.cn")
    finally:
        await guest.close()
        await chair.close()
    assert app[keys.RECORDINGS] is not None


async def test_the_api_description_covers_guests_records_and_operator_controls(
    client: Client,
) -> None:
    from signaling.protocol import CONTROL_ACTIONS

    spec = await (await client.get("/api/v1/openapi.json")).json()
    paths = spec["paths"]
    control = paths["/api/v1/conferences/{conference}/control"]["post"]
    assert control["parameters"][0]["schema"]["type"] == "string"  # "<meeting>@<start>"
    assert {"404", "409", "422"} <= set(control["responses"])
    actions = spec["components"]["schemas"]["ControlIn"]["properties"]["action"]["enum"]
    assert set(actions) == CONTROL_ACTIONS  # the same actions as the chair's messages
    download = paths["/api/v1/recordings/{id}/file"]["get"]["responses"]["200"]
    assert "video/x-matroska" in download["content"]
    guests = paths["/api/v1/guest-joins"]["post"]
    assert "security" not in guests  # public
    assert {"201", "403", "404", "409", "413", "422", "429"} <= set(guests["responses"])
    for path in ("/chat", "/conference-log", "/recordings"):
        assert "get" in paths[f"/api/v1/meetings/{{id}}{path}"]
