"""Tables of scheduling (meetings, bookings, invitations): filled in by the scheduling work."""

from __future__ import annotations
