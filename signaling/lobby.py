"""The lobby of a conference: who waits for a chair to let them in, and why.

Every guest (``kind == "guest"``) waits here; when the conference is locked, so does every
other newcomer except chairs and room terminals. A waiting participant has a socket but no
media and no part in the conference: it may only ``ping`` and ``leave`` (anything else is
answered with error ``forbidden``) until a chair admits it (then it gets ``welcome`` and an
``offer`` as for any join) or refuses it (``bye refused``, close 4011). Nobody admitting it
within the lobby timeout ends its wait too (``bye lobby_timeout``, close 4011).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from signaling.errors import CLOSE_REMOVED
from signaling.session import JoinGrant, Session

if TYPE_CHECKING:
    from signaling.conference import LiveConference
    from signaling.hub import ConferenceHub

log = logging.getLogger(__name__)

LobbyReason = Literal["guest", "locked"]


def lobby_reason(grant: JoinGrant, locked: bool) -> LobbyReason | None:
    """Why a newcomer (not a reconnection) must wait, or None if it joins at once."""
    if grant.kind == "guest":
        return "guest"
    if locked and grant.role != "chair" and grant.kind != "terminal":
        return "locked"
    return None


@dataclass
class LobbyEntry:
    session: Session  # its id is the lobby entry's id
    reason: LobbyReason
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    timer: asyncio.Task[None] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.session.id,
            "name": self.session.grant.name,
            "kind": self.session.grant.kind,
            "since": self.since.isoformat(),
        }


class Lobby:
    """Waiting participants of one conference, in order of arrival."""

    def __init__(self) -> None:
        self._entries: dict[str, LobbyEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, entry_id: str) -> LobbyEntry | None:
        return self._entries.get(entry_id)

    def of_identity(self, identity: str) -> LobbyEntry | None:
        return next(
            (e for e in self._entries.values() if e.session.grant.identity == identity), None
        )

    def add(
        self,
        session: Session,
        reason: LobbyReason,
        timeout: float,
        on_timeout: Callable[[LobbyEntry], Awaitable[None]],
    ) -> LobbyEntry:
        """Let ``session`` wait; ``on_timeout(entry)`` runs if nobody decides in time."""
        session.state = "lobby"
        entry = LobbyEntry(session, reason)

        async def expire() -> None:
            await asyncio.sleep(timeout)
            if self._entries.get(session.id) is entry:
                entry.timer = None  # on_timeout runs in this task: do not cancel it
                await on_timeout(entry)

        entry.timer = asyncio.create_task(expire(), name=f"lobby-timeout-{session.id}")
        self._entries[session.id] = entry
        return entry

    def pop(self, entry_id: str) -> LobbyEntry | None:
        """Take an entry out (admitted, refused, gone); stops its timeout."""
        entry = self._entries.pop(entry_id, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        return entry

    def entries(self) -> list[LobbyEntry]:
        return list(self._entries.values())

    def waiting(self) -> list[dict[str, Any]]:
        return [entry.as_json() for entry in self._entries.values()]

    def queue_message(self) -> dict[str, Any]:
        return {"type": "lobby_queue", "waiting": self.waiting()}


class Admissions:
    """Who waits in a hub's lobbies, who is let in and who is sent away."""

    def __init__(self, hub: ConferenceHub, timeout: float) -> None:
        self._hub = hub
        self.timeout = timeout

    def wait(self, live: LiveConference, session: Session, reason: LobbyReason) -> None:
        live.lobby.add(session, reason, self.timeout, self._timed_out)
        session.send_message({"type": "lobby", "state": "waiting", "reason": reason})
        self._hub.to_chairs(live, live.lobby.queue_message())
        grant = session.grant
        log.info(
            "%s (%s) waits in the lobby of %s (%s)", session.id, grant.identity, live.id, reason
        )

    async def admit(self, live: LiveConference, entry: LobbyEntry) -> None:
        """Let a waiting participant in: ``lobby admitted``, then ``welcome`` and ``offer``."""
        if live.lobby.pop(entry.session.id) is None:
            return
        session = entry.session
        session.send_message({"type": "lobby", "state": "admitted", "reason": entry.reason})
        self._hub.to_chairs(live, live.lobby.queue_message())
        await self._hub.join(live, session)

    def refuse(self, live: LiveConference, entry: LobbyEntry, reason: str) -> None:
        """Send a waiting participant away (``refused`` also keeps its identity out)."""
        if live.lobby.pop(entry.session.id) is None:
            return
        if reason == "refused":
            live.removed[entry.session.grant.identity] = "refused"
        entry.session.close(CLOSE_REMOVED, {"type": "bye", "reason": reason})
        self._gone(live, entry.session, reason)

    def left(self, live: LiveConference, session: Session, reason: str) -> None:
        """A waiting participant's socket closed."""
        if live.lobby.pop(session.id) is not None:
            self._gone(live, session, reason)

    def _gone(self, live: LiveConference, session: Session, reason: str) -> None:
        log.info("%s left the lobby of %s (%s)", session.id, live.id, reason)
        self._hub.to_chairs(live, live.lobby.queue_message())
        self._hub.forget_if_idle(live)

    async def _timed_out(self, entry: LobbyEntry) -> None:
        live = self._hub.live_conference(entry.session.grant.conference)
        if live is not None:
            self.refuse(live, entry, "lobby_timeout")
