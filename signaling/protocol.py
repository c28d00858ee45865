"""The WebSocket protocol's messages (version 1), parsed and validated once at the edge.

Client messages are pydantic models (unknown fields refused, sizes limited); server
messages are built by the helpers at the bottom. Every message is documented, with
examples, in ``signaling/PROTOCOL.md``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from signaling.errors import ProtocolViolation

VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
MAX_MESSAGE_BYTES = 256 * 1024  # an SDP with many m-lines stays well below this
MAX_SDP = 128 * 1024
HELLO_TIMEOUT = 10.0
MAX_CHAT_TEXT = 2000  # characters after trimming; longer (or empty) text: invalid_request
MAX_PARTICIPANT_ID = 64

ControlAction = Literal[
    "mute",
    "mute_all",
    "request_unmute",
    "stop_video",
    "remove",
    "lock",
    "unlock",
    "end",
    "admit",
    "refuse",
    "lower_hand",
    "record_start",
    "record_stop",
]
CONTROL_ACTIONS: frozenset[str] = frozenset(get_args(ControlAction))


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hello(_Message):
    type: Literal["hello"]
    version: int
    token: Annotated[str, Field(min_length=1, max_length=2048)]
    client: Annotated[str, Field(max_length=100)] = "unknown"


class Answer(_Message):
    type: Literal["answer"]
    sdp: Annotated[str, Field(min_length=1, max_length=MAX_SDP)]


class Candidate(_Message):
    class Body(BaseModel):
        model_config = ConfigDict(extra="ignore", frozen=True)
        candidate: Annotated[str, Field(max_length=1024)]
        sdpMid: Annotated[str, Field(max_length=64)] | None = None
        sdpMLineIndex: Annotated[int, Field(ge=0, le=1024)] | None = None

    type: Literal["candidate"]
    candidate: Body | None


class Mute(_Message):
    type: Literal["mute"]
    kind: Literal["audio", "video"]
    muted: bool


class Ping(_Message):
    type: Literal["ping"]
    id: Annotated[int, Field(ge=0)] | None = None


class Leave(_Message):
    type: Literal["leave"]


class Stats(_Message):
    type: Literal["stats"]


ParticipantId = Annotated[str, Field(min_length=1, max_length=MAX_PARTICIPANT_ID)]


class Chat(_Message):
    type: Literal["chat"]
    # The hard size limit (a protocol error); 1..MAX_CHAT_TEXT after trimming is checked
    # by the hub as a user error, so a page's slip does not cost the participant its socket.
    text: Annotated[str, Field(max_length=2 * MAX_CHAT_TEXT)]
    to: ParticipantId | None = None


class Hand(_Message):
    type: Literal["hand"]
    raised: bool


class Screen(_Message):
    type: Literal["screen"]
    sharing: bool


class Control(_Message):
    type: Literal["control"]
    action: ControlAction
    participant: ParticipantId | None = None


ClientMessage = Annotated[
    Answer | Candidate | Mute | Ping | Leave | Stats | Chat | Hand | Screen | Control | Hello,
    Field(discriminator="type"),
]
_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)


AnyClientMessage = (
    Hello | Answer | Candidate | Mute | Ping | Leave | Stats | Chat | Hand | Screen | Control
)


def parse(text: str | bytes) -> AnyClientMessage:
    """One client message, or :class:`ProtocolViolation` saying what is wrong with it."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolViolation("a message is a JSON object with a string 'type'")
    try:
        message: AnyClientMessage = _client_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProtocolViolation(f"bad {data['type']!r} message: {where}: {first['msg']}") from None
    return message


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}
