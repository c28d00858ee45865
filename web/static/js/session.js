// A participant's connection to a SuiMeet conference (signaling/PROTOCOL.md, version 1):
// the WebSocket, the RTCPeerConnection, and the bookkeeping of who sends what.
// Emits DOM events: welcome, participants, tracks, mute, speaker, state, closed.

export const PROTOCOL_VERSION = 1;

export class ConferenceSession extends EventTarget {
  constructor(token, localStream) {
    super();
    this.token = token;
    this.local = localStream; // may be null (no devices)
    this.ws = null;
    this.pc = null;
    this.me = null;
    this.conference = null;
    this.participants = new Map(); // id -> info
    this.mids = new Map(); // mid -> participant id (null: our own uplink)
    this.uplinkAttached = false;
    this.negotiating = Promise.resolve();
    this.closeInfo = null;
    this.welcomedAt = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws.onopen = () =>
      this.send({ type: "hello", version: PROTOCOL_VERSION, token: this.token, client: "suimeet-web/1" });
    this.ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    this.ws.onclose = (event) => {
      this.closeInfo = { code: event.code, error: this.lastError || null };
      this.emit("closed", this.closeInfo);
    };
  }

  onMessage(message) {
    switch (message.type) {
      case "welcome":
        this.welcomedAt = performance.now();
        this.me = message.participant;
        this.conference = message.conference;
        for (const p of message.participants) this.participants.set(p.id, p);
        this.createPeerConnection(message.ice_servers || []);
        this.emit("welcome", message);
        this.emit("participants");
        break;
      case "offer":
        // one negotiation at a time, in the order the offers came
        this.negotiating = this.negotiating
          .then(() => this.answer(message))
          .catch((error) => this.emit("state", { media: "failed", error: String(error) }));
        break;
      case "participant_joined":
        this.participants.set(message.participant.id, message.participant);
        this.emit("participants");
        break;
      case "participant_left":
        this.participants.delete(message.participant);
        this.emit("participants");
        break;
      case "mute": {
        const info = this.participants.get(message.participant);
        if (info) info[`${message.kind}_muted`] = message.muted;
        this.emit("mute", message);
        break;
      }
      case "track_published":
      case "track_unpublished":
        this.emit("participants");
        break;
      case "active_speaker":
        this.emit("speaker", message.participant);
        break;
      case "connection_state":
        this.emit("state", { server: message.state });
        break;
      case "error":
        this.lastError = message;
        this.emit("error", message);
        break;
      case "bye":
        this.lastError = { code: message.reason, message: message.reason };
        break;
      default:
        break;
    }
  }

  createPeerConnection(iceServers) {
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc.onicecandidate = (event) =>
      this.send({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    this.pc.ontrack = () => this.emit("tracks");
    this.pc.onconnectionstatechange = () => this.emit("state", { media: this.pc.connectionState });
  }

  async answer(offer) {
    for (const t of offer.tracks) this.mids.set(t.mid, t.participant);
    await this.pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    if (!this.uplinkAttached && this.local) {
      // The m-lines the server only receives on (participant null) carry our own media.
      for (const transceiver of this.pc.getTransceivers()) {
        if (transceiver.mid === null || this.mids.get(transceiver.mid) !== null) continue;
        const kind = transceiver.receiver.track.kind;
        const track = this.local.getTracks().find((t) => t.kind === kind);
        if (track) {
          transceiver.direction = "sendonly";
          await transceiver.sender.replaceTrack(track);
        }
      }
      this.uplinkAttached = true;
    }
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    this.send({ type: "answer", sdp: this.pc.localDescription.sdp });
    this.emit("tracks");
  }

  // [participant id, MediaStreamTrack] for every m-line that carries someone's media now.
  receivedTracks() {
    if (!this.pc) return [];
    const found = [];
    for (const transceiver of this.pc.getTransceivers()) {
      const owner = transceiver.mid === null ? null : this.mids.get(transceiver.mid);
      if (owner) found.push([owner, transceiver.receiver.track]);
    }
    return found;
  }

  setMuted(kind, muted) {
    const track = this.local && this.local.getTracks().find((t) => t.kind === kind);
    if (track) track.enabled = !muted;
    this.send({ type: "mute", kind, muted });
  }

  leave() {
    this.send({ type: "leave" });
    if (this.pc) this.pc.close();
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
  }
}
