"""The change hook of meetings: what changed, handed to listeners inside the transaction.

For the code that reacts to meeting changes (invitations, reminders, the OA webhook
outbox). The meetings service awaits every listener with the session of the very write
transaction that made the change, after the change is flushed: whatever a listener writes
(an outbox row) commits or rolls back together with the change, and a listener that raises
rolls the whole change back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

ChangeKind = Literal[
    "created", "updated", "cancelled", "occurrence_updated", "occurrence_cancelled"
]


@dataclass(frozen=True, slots=True)
class MeetingChange:
    """One change of one meeting.

    ``recurrence_id`` (UTC) names the occurrence for ``occurrence_*`` kinds, else None.
    ``significant``: the change bumped the iCalendar SEQUENCE (time, recurrence, status,
    rooms), so attendees must be sent the new version. A series split ("this and
    following") is an ``updated`` of the original and a ``created`` of the new tail.
    """

    kind: ChangeKind
    meeting_id: int
    recurrence_id: datetime | None
    significant: bool
    added_person_ids: tuple[int, ...]
    removed_person_ids: tuple[int, ...]
    removed_room_ids: tuple[int, ...]
    actor: str


ChangeListener = Callable[[AsyncSession, MeetingChange], Awaitable[None]]
"""Called once per change, inside the write transaction; raising rolls the change back."""


async def notify(
    listeners: list[ChangeListener], session: AsyncSession, change: MeetingChange
) -> None:
    """Await every listener in order (the list is read at call time, so it can grow)."""
    await session.flush()
    for listener in list(listeners):
        await listener(session, change)
