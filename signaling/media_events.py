"""What the media engine reports, turned into protocol messages for the participants.

The engine calls back synchronously with plain dicts (:mod:`media.messages`); offers go to
their participant, track and mute changes and the active speaker to everyone, and a
recording that stopped (by the chair or because everyone left) is handed to the recorder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from media.messages import MediaEvent, OfferMessage

if TYPE_CHECKING:
    from signaling.hub import ConferenceHub

# What a track's source is called in participant infos' ``published``.
PUBLISHED_AS = {"microphone": "audio", "camera": "video", "screen": "screen"}


def offer_message(offer: OfferMessage) -> dict[str, Any]:
    """An ``offer`` for the client: which participant's which source each m-line carries
    (``participant`` null with a source: the client's own uplink for that source)."""
    tracks = [
        {"mid": t["mid"], "kind": t["kind"], "participant": t["publisher"], "source": t["source"]}
        for t in offer["tracks"]
    ]
    return {"type": "offer", "sdp": offer["sdp"], "tracks": tracks}


def relay_media_event(hub: ConferenceHub, event: MediaEvent) -> None:
    conference = event["conference"]
    if event["type"] == "recording_stopped":
        live = hub.live_conference(conference)
        if live is not None:
            hub.recorder.finished(live, event["manifest"])
        return
    participant = event.get("participant")
    session = hub.session_of(participant) if isinstance(participant, str) else None
    if event["type"] == "offer":
        if session is not None:
            session.send_message(offer_message(event))
    elif event["type"] == "track_published" or event["type"] == "track_unpublished":
        if session is not None:
            name = PUBLISHED_AS[event["source"]]
            if event["type"] == "track_published":
                session.published.add(name)
            else:
                session.published.discard(name)
        hub.broadcast(
            conference,
            {
                "type": event["type"],
                "participant": event["participant"],
                "kind": event["kind"],
                "source": event["source"],
            },
        )
    elif event["type"] == "track_muted":
        if session is not None and event["source"] != "screen":
            session.muted[event["kind"]] = event["muted"]
        hub.broadcast(
            conference,
            {
                "type": "mute",
                "participant": event["participant"],
                "kind": event["kind"],
                "source": event["source"],
                "muted": event["muted"],
            },
        )
    elif event["type"] == "active_speaker":
        hub.broadcast(conference, {"type": "active_speaker", "participant": event["participant"]})
    elif event["type"] == "connection_state":
        if session is not None:
            session.send_message({"type": "connection_state", "state": event["state"]})
    elif event["type"] == "participant_left" and session is not None:
        if not session.has_socket:  # a WHIP/WHEP participant: gone for good
            hub.spawn(hub.remove(session, event["reason"]))
        elif event["reason"] in ("failed", "closed"):
            hub.reconnection.media_failed(session)
