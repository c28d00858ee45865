"""Invitations: one iMIP email per attendee for every change of a meeting.

A change listener (:mod:`scheduling.changes`) for the meetings service. Inside the change's
transaction it builds each recipient's email and puts it on the durable mail queue
(:mod:`scheduling.mailqueue`), so the invitations commit or roll back with the change; once
the transaction has committed it wakes the mail sender.

==========================  ========================================================
change                      what is sent
==========================  ========================================================
created, updated            REQUEST (series and its overrides) to every attendee;
                            CANCEL listing only them to each removed attendee
occurrence_updated          REQUEST (series and its overrides) to every attendee
occurrence_cancelled        CANCEL of that occurrence (RECURRENCE-ID) to every attendee
cancelled                   CANCEL of the whole meeting to every attendee
==========================  ========================================================

Each REQUEST carries the recipient's personal join link ``{base_url}/join/{token}`` and
RSVP links ``{base_url}/rsvp/{token}?answer=accept|tentative|decline`` (tokens signed by
:class:`~scheduling.links.LinkSigner`), and, when the meeting takes guests, its number and
passcode with the guest page ``{base_url}/guest?meeting={id}``: invitees pass them on to
people joining without an invitation (who still wait in the lobby for a chair). Texts are
in the configured locale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.aftercommit import after_commit
from scheduling.calendar import Addresses, MeetingCalendar, load
from scheduling.changes import MeetingChange
from scheduling.imip import InvitationLinks, Mailbox, build_invitation_email
from scheduling.itip import CalendarEvent, Locale, build_cancel, build_removal, build_request
from scheduling.links import LinkSigner
from scheduling.mailqueue import enqueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MailSettings:
    """What every email of the server needs: who sends, where links point, which language."""

    base_url: str
    sender: Mailbox
    locale: Locale = "zh-CN"

    @property
    def addresses(self) -> Addresses:
        """Calendar addresses: replies go to the sender's mailbox; rooms share its domain."""
        domain = self.sender.email.rpartition("@")[2] or "localhost"
        return Addresses(mail_domain=domain, organizer_email=self.sender.email)

    def join_url(self, links: LinkSigner, meeting_id: int, person_id: int) -> str:
        return f"{self.base_url}/join/{links.sign('join', meeting_id, person_id)}"

    def links_for(
        self, links: LinkSigner, meeting_id: int, person_id: int, passcode: str | None = None
    ) -> InvitationLinks:
        """One recipient's join link and RSVP links (and the guests' passcode, if any)."""
        rsvp = f"{self.base_url}/rsvp/{links.sign('rsvp', meeting_id, person_id)}?answer="
        return InvitationLinks(
            join_url=self.join_url(links, meeting_id, person_id),
            accept_url=rsvp + "accept",
            tentative_url=rsvp + "tentative",
            decline_url=rsvp + "decline",
            meeting_number=meeting_id if passcode else None,
            passcode=passcode,
            guest_url=f"{self.base_url}/guest?meeting={meeting_id}" if passcode else None,
        )


class Invitations:
    """The change listener that queues invitations; ``on_commit`` wakes the mail sender."""

    def __init__(
        self, settings: MailSettings, links: LinkSigner, on_commit: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.links = links
        self.on_commit = on_commit

    async def __call__(self, session: AsyncSession, change: MeetingChange) -> None:
        calendar = await load(
            session, change.meeting_id, self.settings.addresses,
            extra_people=change.removed_person_ids,
        )  # fmt: skip
        queued = 0
        if change.kind == "cancelled":
            queued += self._to_attendees(session, calendar, "cancel", [calendar.series])
        elif change.kind == "occurrence_cancelled":
            assert change.recurrence_id is not None
            occurrence = calendar.occurrence(change.recurrence_id)
            queued += self._to_attendees(session, calendar, "cancel", [occurrence])
        else:  # created, updated, occurrence_updated
            queued += self._to_attendees(session, calendar, "request", calendar.events)
            for person_id in change.removed_person_ids:
                self._removal(session, calendar, person_id)
                queued += 1
        log.info("meeting %s %s: %s emails queued", change.meeting_id, change.kind, queued)
        if queued:
            after_commit(session, self.on_commit)

    def _to_attendees(
        self,
        session: AsyncSession,
        calendar: MeetingCalendar,
        kind: str,
        events: list[CalendarEvent],
    ) -> int:
        meeting, locale = calendar.meeting, self.settings.locale
        for attendee in meeting.attendees:
            person = calendar.people[attendee.person_id]
            recipient = Mailbox(person.email, person.name)
            if kind == "request":
                links = self.settings.links_for(self.links, meeting.id, person.id, meeting.passcode)
                data = build_request(
                    events, for_attendee=person.email, join_url=links.join_url, locale=locale
                )
            else:
                links = None
                data = build_cancel(events, for_attendee=person.email, locale=locale)
            message = build_invitation_email(
                events, data, sender=self.settings.sender, recipient=recipient, links=links,
                locale=locale,
            )  # fmt: skip
            enqueue(session, message, kind=kind, meeting_id=meeting.id)
        return len(meeting.attendees)

    def _removal(self, session: AsyncSession, calendar: MeetingCalendar, person_id: int) -> None:
        removed = calendar.person(person_id)
        data = build_removal(calendar.events, removed, locale=self.settings.locale)
        message = build_invitation_email(
            calendar.events, data, sender=self.settings.sender,
            recipient=Mailbox(removed.email, removed.name), locale=self.settings.locale,
        )  # fmt: skip
        enqueue(session, message, kind="cancel", meeting_id=calendar.meeting.id)
