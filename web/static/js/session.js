// A participant's connection to a SuiMeet conference (signaling/PROTOCOL.md, version 1):
// the WebSocket, the RTCPeerConnection, the bookkeeping of who sends what, and the
// reconnection after a network loss (same token, new socket and peer connection; the
// server gives the same participant id back).
// Emits DOM events: welcome, participants, tracks, mute, speaker, state, closed, chat,
// hands, conference, lobby, lobby_queue, unmute_request, controlled, reconnecting, error.

export const PROTOCOL_VERSION = 1;

const TICK_MS = 250;
const PING_EVERY_MS = 2000;
const PONG_TIMEOUT_MS = 4000;
const OPEN_TIMEOUT_MS = 3000;
const DISCONNECTED_GRACE_MS = 2000;
const BACKOFF_S = [0.5, 1, 2];
const GIVE_UP_MS = 60000;
// Closes after which joining again by ourselves would be wrong (see PROTOCOL.md).
const FINAL_CLOSES = new Set([1000, 4001, 4003, 4004, 4009, 4010, 4011]);
const SOURCE_OF_KIND = { audio: "microphone", video: "camera" };

export class ConferenceSession extends EventTarget {
  constructor(token, localStream) {
    super();
    this.token = token;
    this.local = localStream; // may be null (no devices)
    this.screen = null; // MediaStreamTrack of getDisplayMedia while sharing
    this.ws = null;
    this.pc = null;
    this.me = null;
    this.conference = null;
    this.participants = new Map(); // id -> info (with .state "connected" | "reconnecting")
    this.mids = new Map(); // mid -> participant id (null: our own uplink or inactive)
    this.sources = new Map(); // mid -> "microphone" | "camera" | "screen" | null
    this.muted = { audio: false, video: false };
    this.hands = []; // [{participant, name, raised_at}], oldest first
    this.lobbyQueue = []; // chairs only: [{id, name, kind, since}]
    this.chat = []; // chat messages as received
    this.outbox = []; // what the user sent while reconnecting: sent after the welcome
    this.lobby = null; // "waiting" while in the lobby
    this.reconnecting = false;
    this.reconnects = 0; // successful reconnections
    this.negotiating = Promise.resolve();
    this.closeInfo = null;
    this.welcomedAt = null;
    this.lastError = null;
    this.left = false;
    this.pingId = 0;
    this.lastPong = null; // null until the pong watchdog is armed for this socket
    this.timer = null;
    this.openTimer = null;
    this.lastPing = -Infinity;
    this.retry = null;
    this.retryStarted = null;
    this.attempt = 0;
    this.disconnectedTimer = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  get isChair() {
    return !!this.me && this.me.role === "chair";
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws = ws;
    this.lastPong = null;
    this.lastPing = -Infinity; // the first ping goes right after the hello
    ws.onopen = () => {
      clearTimeout(this.openTimer);
      this.send({ type: "hello", version: PROTOCOL_VERSION, token: this.token, client: "suimeet-web/1" });
      this.tick();
    };
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (ws !== this.ws) return; // an old socket we already gave up on
      if (!this.left && !FINAL_CLOSES.has(event.code) && (this.me || this.lobby || this.reconnecting)) {
        this.startReconnecting(`socket closed (${event.code})`);
        return;
      }
      this.stopTimers();
      if (this.pc) this.pc.close();
      this.closeInfo = { code: event.code, error: this.lastError };
      this.emit("closed", this.closeInfo);
    };
    if (this.reconnecting) {
      // a connection attempt that hangs (packets still dropped) is abandoned, not awaited
      clearTimeout(this.openTimer);
      this.openTimer = setTimeout(() => {
        if (ws === this.ws && ws.readyState === WebSocket.CONNECTING) this.startReconnecting("connect timeout");
      }, OPEN_TIMEOUT_MS);
    }
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  // Pings every 2 s; the server answers with pong. No pong for 4 s: reconnect.
  tick() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    const now = performance.now();
    if (this.lastPong !== null && now - this.lastPong > PONG_TIMEOUT_MS) {
      this.startReconnecting("no pong");
      return;
    }
    if (now - this.lastPing >= PING_EVERY_MS) {
      this.lastPing = now;
      this.send({ type: "ping", id: ++this.pingId });
    }
  }

  onMessage(message) {
    switch (message.type) {
      case "pong":
        this.lastPong = performance.now();
        break;
      case "welcome":
        this.onWelcome(message);
        break;
      case "offer": {
        // one negotiation at a time, in the order the offers came (and only on this connection)
        const pc = this.pc;
        this.negotiating = this.negotiating
          .then(() => this.answer(message, pc))
          .catch((error) => {
            if (pc === this.pc) this.emit("state", { media: "failed", error: String(error) });
          });
        break;
      }
      case "participant_joined":
        this.participants.set(message.participant.id, message.participant);
        this.emit("participants");
        break;
      case "participant_left":
        this.participants.delete(message.participant);
        this.emit("participants");
        break;
      case "participant_state": {
        const info = this.participants.get(message.participant);
        if (info) info.state = message.state;
        this.emit("participants");
        break;
      }
      case "mute":
        this.onMute(message);
        break;
      case "track_published":
      case "track_unpublished": {
        const info = this.participants.get(message.participant);
        if (info) {
          const what = message.source === "screen" ? "screen" : message.kind;
          const published = new Set(info.published || []);
          if (message.type === "track_published") published.add(what);
          else published.delete(what);
          info.published = [...published];
        }
        this.emit("participants");
        break;
      }
      case "active_speaker":
        this.emit("speaker", message.participant);
        break;
      case "connection_state":
        this.emit("state", { server: message.state });
        break;
      case "chat":
        this.chat.push(message);
        this.emit("chat", message);
        break;
      case "hands":
        this.hands = message.queue;
        this.emit("hands", this.hands);
        break;
      case "conference_state":
        this.conference = { ...this.conference, locked: message.locked, recording: message.recording };
        this.emit("conference", this.conference);
        break;
      case "lobby":
        this.lobby = message.state === "waiting" ? "waiting" : null;
        this.emit("lobby", message);
        break;
      case "lobby_queue":
        this.lobbyQueue = message.waiting;
        this.emit("lobby_queue", this.lobbyQueue);
        break;
      case "unmute_request":
        this.emit("unmute_request", message);
        break;
      case "controlled":
        if (message.action === "stop_video" && this.me && message.participant === this.me.id) {
          this.stopScreenShare();
        }
        this.emit("controlled", message);
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

  onWelcome(message) {
    const resumed = !!this.me;
    this.welcomedAt = performance.now();
    this.me = message.participant;
    this.conference = message.conference;
    this.lobby = null;
    this.hands = message.hands || [];
    this.participants = new Map(message.participants.map((p) => [p.id, p]));
    this.lastPong = performance.now(); // arm the pong watchdog
    this.createPeerConnection(message.ice_servers || []);
    if (resumed) {
      // what we had chosen before the loss still holds (the chair may have muted us meanwhile)
      for (const kind of ["audio", "video"]) {
        if (this.muted[kind] && !this.me[`${kind}_muted`]) this.send({ type: "mute", kind, muted: true });
        this.applyMuted(kind, this.muted[kind] || !!this.me[`${kind}_muted`]);
      }
      if (this.screen) this.send({ type: "screen", sharing: true });
    } else {
      for (const kind of ["audio", "video"]) if (this.me[`${kind}_muted`]) this.applyMuted(kind, true);
    }
    if (this.reconnecting) {
      this.reconnecting = false;
      this.reconnects += 1;
      clearTimeout(this.retry);
      this.attempt = 0;
      this.emit("reconnecting", { reconnecting: false, resumed: !!message.resumed });
    }
    for (const queued of this.outbox.splice(0)) this.send(queued);
    this.emit("welcome", message);
    this.emit("participants");
    this.emit("hands", this.hands);
    this.emit("conference", this.conference);
  }

  onMute(message) {
    const info = this.participants.get(message.participant);
    if (info) info[`${message.kind}_muted`] = message.muted;
    if (this.me && message.participant === this.me.id) {
      this.me[`${message.kind}_muted`] = message.muted;
      this.applyMuted(message.kind, message.muted);
    }
    this.emit("mute", message);
  }

  applyMuted(kind, muted) {
    this.muted[kind] = muted;
    const track = this.local && this.local.getTracks().find((t) => t.kind === kind);
    if (track) track.enabled = !muted;
  }

  createPeerConnection(iceServers) {
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.mids = new Map();
    this.sources = new Map();
    pc.onicecandidate = (event) =>
      this.send({ type: "candidate", candidate: event.candidate ? event.candidate.toJSON() : null });
    pc.ontrack = () => this.emit("tracks");
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      const state = pc.connectionState;
      clearTimeout(this.disconnectedTimer);
      if (state === "failed") this.startReconnecting("media failed");
      else if (state === "disconnected") {
        this.disconnectedTimer = setTimeout(() => {
          if (pc === this.pc && pc.connectionState === "disconnected") this.startReconnecting("media lost");
        }, DISCONNECTED_GRACE_MS);
      }
      this.emit("state", { media: state });
    };
  }

  // The track this client sends on an uplink m-line of the given source (or null).
  uplinkTrack(source) {
    if (source === "screen") return this.screen;
    const kind = source === "microphone" ? "audio" : "video";
    return (this.local && this.local.getTracks().find((t) => t.kind === kind)) || null;
  }

  async answer(offer, pc) {
    if (!pc || pc !== this.pc) return;
    for (const t of offer.tracks) {
      this.mids.set(t.mid, t.participant);
      const source = "source" in t ? t.source : t.participant === null ? SOURCE_OF_KIND[t.kind] : null;
      this.sources.set(t.mid, source);
    }
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    if (pc !== this.pc) return;
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || this.mids.get(mid) !== null) continue;
      const source = this.sources.get(mid);
      if (!source) continue; // an inactive m-line
      const track = this.uplinkTrack(source);
      if (track && track.readyState === "live") {
        transceiver.direction = "sendonly";
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
      } else if (source === "screen") {
        transceiver.direction = "inactive";
        if (transceiver.sender.track) await transceiver.sender.replaceTrack(null);
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    this.send({ type: "answer", sdp: pc.localDescription.sdp });
    this.emit("tracks");
  }

  // [participant id, MediaStreamTrack, source] for every m-line that carries someone's media.
  receivedTracks() {
    if (!this.pc) return [];
    const found = [];
    for (const transceiver of this.pc.getTransceivers()) {
      const owner = transceiver.mid === null ? null : this.mids.get(transceiver.mid);
      if (!owner) continue;
      const kind = transceiver.receiver.track.kind;
      found.push([owner, transceiver.receiver.track, this.sources.get(transceiver.mid) || SOURCE_OF_KIND[kind]]);
    }
    return found;
  }

  setMuted(kind, muted) {
    this.applyMuted(kind, muted);
    this.send({ type: "mute", kind, muted });
  }

  // A message the user asked for: kept (a few) while the connection is being restored.
  request(message) {
    if (this.me && !this.reconnecting && this.ws && this.ws.readyState === WebSocket.OPEN) this.send(message);
    else if (this.outbox.length < 20) this.outbox.push(message);
  }

  sendChat(text, to = null) {
    this.request({ type: "chat", text, to: to || null });
  }

  setHand(raised) {
    this.request({ type: "hand", raised });
  }

  control(action, participant = null) {
    this.request({ type: "control", action, participant });
  }

  // Asks the user what to share, then the server for a screen uplink (it re-offers).
  async startScreenShare() {
    if (this.screen) return;
    // Documents and slides: sharp pictures at a modest frame rate (and CPU for everyone).
    const video = { frameRate: { ideal: 15, max: 15 } };
    const stream = await navigator.mediaDevices.getDisplayMedia({ video, audio: false });
    const track = stream.getVideoTracks()[0];
    track.contentHint = "detail";
    track.onended = () => this.stopScreenShare();
    this.screen = track;
    this.send({ type: "screen", sharing: true });
    this.emit("screen", { sharing: true });
  }

  stopScreenShare() {
    if (!this.screen) return;
    const track = this.screen;
    this.screen = null;
    track.onended = null;
    track.stop();
    this.send({ type: "screen", sharing: false });
    this.emit("screen", { sharing: false });
  }

  // -- reconnection ---------------------------------------------------------------------

  startReconnecting(why) {
    if (this.left) return;
    console.info(`suimeet: reconnecting (${why})`);
    if (!this.reconnecting) {
      this.reconnecting = true;
      this.retryStarted = performance.now();
      this.attempt = 0;
      this.emit("reconnecting", { reconnecting: true, why });
    }
    this.dropConnection();
    clearTimeout(this.retry);
    if (performance.now() - this.retryStarted > GIVE_UP_MS) {
      this.stopTimers();
      this.reconnecting = false;
      this.closeInfo = { code: "gave_up", error: { code: "gave_up", message: why } };
      this.emit("closed", this.closeInfo);
      return;
    }
    const delay = BACKOFF_S[Math.min(this.attempt, BACKOFF_S.length - 1)] * 1000;
    this.attempt += 1;
    this.retry = setTimeout(() => this.connect(), delay);
  }

  // Forget the socket and the peer connection without their handlers firing again.
  dropConnection() {
    clearTimeout(this.disconnectedTimer);
    clearTimeout(this.openTimer);
    const { ws, pc } = this;
    this.ws = null;
    this.pc = null;
    if (ws) {
      ws.onclose = ws.onmessage = ws.onopen = null;
      ws.close();
    }
    if (pc) {
      pc.onconnectionstatechange = pc.ontrack = pc.onicecandidate = null;
      pc.close();
    }
    this.negotiating = Promise.resolve();
  }

  stopTimers() {
    clearInterval(this.timer);
    clearTimeout(this.openTimer);
    clearTimeout(this.retry);
    clearTimeout(this.disconnectedTimer);
  }

  leave() {
    this.left = true;
    this.stopTimers();
    this.send({ type: "leave" });
    if (this.pc) this.pc.close();
    if (this.screen) this.stopScreenShare();
    if (this.local) this.local.getTracks().forEach((t) => t.stop());
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      this.dropConnection();
      this.emit("closed", { code: 1000, error: null });
    }
  }
}
