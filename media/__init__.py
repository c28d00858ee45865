"""The SFU engine: forwards RTP between participants' aiortc peer connections.

Imports nothing else of SuiMeet. See ``media/README.md``.
"""

from media.config import IceServer, MediaConfig
from media.engine import MediaEngine
from media.errors import (
    EngineClosed,
    InvalidRequest,
    MediaError,
    NegotiationError,
    UnknownParticipant,
)
from media.messages import AnswerMessage, MediaEvent, OfferMessage, ParticipantStats

__all__ = [
    "AnswerMessage",
    "EngineClosed",
    "IceServer",
    "InvalidRequest",
    "MediaConfig",
    "MediaEngine",
    "MediaError",
    "MediaEvent",
    "NegotiationError",
    "OfferMessage",
    "ParticipantStats",
    "UnknownParticipant",
]
