"""The room terminal agent: the program on a room's terminal that attends its meetings.

It keeps a control channel to the server open (``/terminal/ws``), learns its room's
bookings from it, joins each booked meeting at its start (a few seconds early) as a
participant of the conference protocol (:mod:`signaling.client`) publishing the room's
camera and microphone, and leaves at its end. Run it with ``suimeet terminal``.
"""

VERSION = "suimeet-terminal/0.1.0"
