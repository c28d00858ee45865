"""Chair controls: who may do what to whom, carried out, shown to everyone, logged and kept.

Only a participant whose grant has ``role == "chair"`` (or an operator over REST, through
:meth:`ConferenceHub.control`) may control a conference; anyone else gets error
``forbidden`` and nothing changes. Every control that was carried out is logged, sent to
everyone as ``controlled`` and handed to ``hooks.on_activity``. The table of actions is in
``signaling/PROTOCOL.md``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from media import MediaError
from signaling import protocol
from signaling.conference import LiveConference
from signaling.errors import CLOSE_REMOVED, ControlRefused
from signaling.hooks import Activity, ParticipantRef
from signaling.lobby import LobbyEntry
from signaling.session import Session

if TYPE_CHECKING:
    from signaling.hub import ConferenceHub

log = logging.getLogger(__name__)

ON_PARTICIPANT = frozenset({"mute", "request_unmute", "stop_video", "remove", "lower_hand"})
ON_LOBBY_ENTRY = frozenset({"admit", "refuse"})


@dataclass(frozen=True)
class Actor:
    """Who controls: a chair in the conference, or an operator over REST."""

    session: Session | None
    operator: str | None = None

    @property
    def id(self) -> str | None:
        return self.session.id if self.session is not None else None

    @property
    def name(self) -> str:
        if self.session is not None:
            return self.session.grant.name
        return self.operator or "operator"

    @property
    def ref(self) -> ParticipantRef | None:
        return self.session.ref() if self.session is not None else None


class Moderation:
    """Carries out chair controls on the hub's conferences."""

    def __init__(self, hub: ConferenceHub) -> None:
        self._hub = hub

    async def control(
        self,
        conference: LiveConference,
        action: str,
        participant: str | None,
        actor: Actor,
    ) -> None:
        """Do ``action`` (on ``participant``); :class:`ControlRefused` says why not."""
        who = actor.id or f"operator {actor.name}"
        if actor.session is not None and not actor.session.is_chair:
            log.info("%s may not %s in %s (not a chair)", who, action, conference.id)
            raise ControlRefused("only the chair may do this", code="forbidden")
        if action not in protocol.CONTROL_ACTIONS:
            raise ControlRefused(f"unknown action {action!r}")
        target: Session | None = None
        entry: LobbyEntry | None = None
        if action in ON_PARTICIPANT or action in ON_LOBBY_ENTRY:
            if participant is None:
                raise ControlRefused(f"{action!r} needs a participant")
            if action in ON_PARTICIPANT:
                target = conference.members.get(participant)
            else:
                entry = conference.lobby.get(participant)
            if target is None and entry is None:
                raise ControlRefused(f"no participant {participant!r} here", code="not_found")
        elif participant is not None:
            raise ControlRefused(f"{action!r} applies to the whole conference, not a participant")
        target_ref = target.ref() if target else entry.session.ref() if entry else None
        controlled = {
            "type": "controlled",
            "action": action,
            "participant": participant,
            "by": actor.id,
            "by_name": actor.name,
        }
        if action == "end":  # afterwards there is nobody left to tell
            self._hub.broadcast(conference.id, controlled)
        await self._carry_out(conference, action, target, entry, actor)
        log.info("%s: %s by %s on %s", conference.id, action, who, participant or "everyone")
        if action != "end":
            self._hub.broadcast(conference.id, controlled)
        self._hub.report(
            Activity(
                kind="control",
                conference=conference.id,
                at=datetime.now(UTC),
                actor=actor.ref,
                operator_name=actor.operator if actor.session is None else None,
                action=action,
                target=target_ref,
                text=None,
            )
        )

    async def _carry_out(
        self,
        conference: LiveConference,
        action: str,
        target: Session | None,
        entry: LobbyEntry | None,
        actor: Actor,
    ) -> None:
        hub = self._hub
        if target is not None:
            if action == "mute":
                await self._mute(target, "audio")
            elif action == "request_unmute":
                target.send_message(
                    {
                        "type": "unmute_request",
                        "kind": "audio",
                        "by": actor.id,
                        "by_name": actor.name,
                    }
                )
            elif action == "stop_video":
                await self._stop_video(target)
            elif action == "remove":
                conference.removed[target.grant.identity] = "removed"
                bye: dict[str, Any] = {"type": "bye", "reason": "removed"}
                await hub.remove(target, "removed", close=(CLOSE_REMOVED, bye))
            elif action == "lower_hand":
                if not conference.hands.lower(target.id):
                    raise ControlRefused(f"{target.id} has not raised a hand")
                hub.broadcast(conference.id, conference.hands.message())
        elif entry is not None:
            if action == "admit":
                await hub.admissions.admit(conference, entry)
            else:
                hub.admissions.refuse(conference, entry, "refused")
        elif action == "mute_all":
            for session in list(conference.members.values()):
                if not session.is_chair:
                    with contextlib.suppress(ControlRefused):
                        await self._mute(session, "audio")
        elif action in ("lock", "unlock"):
            conference.locked = action == "lock"
            hub.broadcast(conference.id, conference.state_message())
        elif action == "end":
            ends = [s.grant.ends_at for s in conference.members.values() if s.grant.ends_at]
            hub.mark_ended(conference.id, max(ends, default=None))
            await hub.end_conference(conference.id, "ended")
        elif action == "record_start":
            await hub.recorder.start(conference, actor.ref)
        elif action == "record_stop":
            await hub.recorder.stop(conference)

    async def _mute(self, session: Session, kind: str) -> None:
        if session.state == "reconnecting":  # applied again when it is back
            session.muted[kind] = True
            return
        try:
            await self._hub.engine.set_muted(session.id, kind, True)
        except MediaError as exc:
            raise ControlRefused(str(exc)) from None

    async def _stop_video(self, session: Session) -> None:
        await self._mute(session, "video")
        if session.has_socket and session.state == "connected":
            with contextlib.suppress(MediaError):  # idempotent; not sharing is fine
                await self._hub.engine.set_screen_share(session.id, False)
