"""Typed application state: every resource the app holds, declared in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from rooms.accounts import Accounts
    from rooms.db import Database
    from rooms.directory import Directory
    from scheduling.availability import Availability
    from scheduling.changes import ChangeListener
    from scheduling.conference_log import ConferenceLog
    from scheduling.idempotency import IdempotencyStore
    from scheduling.mailqueue import MailSender
    from scheduling.materials import Materials
    from scheduling.meetings import MeetingService
    from scheduling.recordings import Recordings
    from scheduling.reminders import Lifecycle
    from scheduling.rsvp import Responses
    from scheduling.scheduler import JobScheduler
    from scheduling.webhook_sender import WebhookSender
    from scheduling.webhooks import Webhooks
    from web.auth import GuestLimits, LoginLimiter
    from web.metrics import Metrics
    from web.settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DATABASE: web.AppKey[Database] = web.AppKey("database")
DIRECTORY: web.AppKey[Directory] = web.AppKey("directory")
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts")
LOGIN_LIMITER: web.AppKey[LoginLimiter] = web.AppKey("login_limiter")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry")
SECRET: web.AppKey[bytes] = web.AppKey("secret")
MEETINGS: web.AppKey[MeetingService] = web.AppKey("meetings")
# Listeners of meeting changes (invitations, webhooks): append to this list while building
# the app; the meetings service holds the same list and calls each inside its transaction.
MEETING_LISTENERS: web.AppKey[list[ChangeListener]] = web.AppKey("meeting_listeners")
AVAILABILITY: web.AppKey[Availability] = web.AppKey("availability")
# Invitations, answers and scheduled jobs (installed by web.invitations).
MAIL_SENDER: web.AppKey[MailSender] = web.AppKey("mail_sender")
JOBS: web.AppKey[JobScheduler] = web.AppKey("jobs")
LIFECYCLE: web.AppKey[Lifecycle] = web.AppKey("lifecycle")
RESPONSES: web.AppKey[Responses] = web.AppKey("responses")
# The OA integration (installed by web.integration).
WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks")
WEBHOOK_SENDER: web.AppKey[WebhookSender] = web.AppKey("webhook_sender")
MATERIALS: web.AppKey[Materials] = web.AppKey("materials")
IDEMPOTENCY: web.AppKey[IdempotencyStore] = web.AppKey("idempotency")
# Live conferences' records (installed by web.conference_hooks) and guests' wrong tries.
CONFERENCE_LOG: web.AppKey[ConferenceLog] = web.AppKey("conference_log")
RECORDINGS: web.AppKey[Recordings] = web.AppKey("recordings")
GUEST_LIMITS: web.AppKey[GuestLimits] = web.AppKey("guest_limits")
