"""Run something once the current transaction has committed (never if it rolls back).

For change listeners (invitations, reminders) that write inside the meetings service's
transaction but must act outside it: waking the mail sender, (re)scheduling jobs. Acting
inside the transaction would race the commit: the sender could look for the new rows
before they are visible, or a job could be scheduled for a change that then rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` (synchronously, keep it short) after ``session`` next commits."""

    def fire(_session: Any) -> None:
        callback()

    event.listen(session.sync_session, "after_commit", fire, once=True)
