// The join page: preview and choose camera and microphone, join (perhaps through the
// lobby), then a grid of everyone, a stage for a shared screen, chat, hands, and for
// chairs the controls of the meeting.
import { ConferenceSession } from "./session.js";

const $ = (id) => document.getElementById(id);
const root = $("conference");
const text = { ...JSON.parse($("texts").textContent), ...JSON.parse($("conf-texts").textContent) };
const tiles = new Map(); // participant id -> {figure, video, audio, caption, name, badge, stream}
const stage = { video: $("stage-video"), owner: null, track: null };
const names = new Map(); // everyone seen (also in the lobby): a message about one who left names them
let preview = null;
let session = null;
let noticeTimer = null;

const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");

function setStatus(message, kind = "info") {
  const el = $("status");
  el.textContent = message;
  el.dataset.kind = kind;
}

function notice(message) {
  $("notice").textContent = message;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($("notice").textContent = ""), 8000);
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function button(label, onclick, aria) {
  const b = el("button", { type: "button", textContent: label, onclick });
  if (aria) b.setAttribute("aria-label", aria);
  return b;
}

function setPressed(b, pressed) {
  b.setAttribute("aria-pressed", String(pressed));
  b.textContent = pressed ? b.dataset.off : b.dataset.on;
}

async function openDevices() {
  const camera = $("camera").value;
  const microphone = $("microphone").value;
  if (preview) preview.getTracks().forEach((t) => t.stop());
  try {
    preview = await navigator.mediaDevices.getUserMedia({
      video: camera ? { deviceId: { exact: camera } } : true,
      audio: microphone ? { deviceId: { exact: microphone } } : true,
    });
  } catch (error) {
    preview = null;
    setStatus(text.no_devices, "warning");
  }
  $("preview").srcObject = preview;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind] of [[$("camera"), "videoinput"], [$("microphone"), "audioinput"]]) {
    const current = select.value;
    select.replaceChildren(
      ...devices.filter((d) => d.kind === kind).map((d, i) => el("option", { value: d.deviceId, textContent: d.label || `${kind} ${i + 1}` })),
    );
    if (current) select.value = current;
  }
}

// -- tiles and the stage -------------------------------------------------------------------

function tileFor(id) {
  let tile = tiles.get(id);
  if (tile) return tile;
  const video = el("video", { autoplay: true, muted: true, playsInline: true });
  const audio = el("audio", { autoplay: true });
  const name = el("span", { className: "name" });
  const hand = el("span", { className: "hand", textContent: "✋", hidden: true });
  const badge = el("span", { className: "badge", textContent: text.conf_reconnecting, hidden: true });
  const caption = el("figcaption", {}, name, " ", hand, " ", badge);
  const figure = el("figure", { className: "tile" }, video, audio, caption);
  figure.dataset.participant = id;
  $("tiles").append(figure);
  tile = { figure, video, audio, caption, name, hand, badge, stream: new MediaStream() };
  video.srcObject = tile.stream;
  audio.srcObject = tile.stream;
  tiles.set(id, tile);
  return tile;
}

function renderParticipants() {
  const raised = new Set(session.hands.map((h) => h.participant));
  for (const [id, info] of session.participants) {
    names.set(id, info.name);
    const tile = tileFor(id);
    const reconnecting = info.state === "reconnecting";
    tile.name.textContent = info.name;
    tile.name.classList.toggle("muted", !!info.audio_muted);
    tile.figure.classList.toggle("video-off", !!info.video_muted);
    tile.figure.classList.toggle("reconnecting", reconnecting);
    tile.badge.hidden = !reconnecting;
    tile.hand.hidden = !raised.has(id);
  }
  for (const id of [...tiles.keys()]) {
    if (!session.participants.has(id)) {
      tiles.get(id).figure.remove();
      tiles.delete(id);
    }
  }
  $("self-tile").querySelector(".hand").hidden = !(session.me && raised.has(session.me.id));
  $("count").textContent = String(session.participants.size + 1);
  renderChatRecipients();
  renderRoster();
}

function syncStream(tile, tracks) {
  const have = tile.stream.getTracks();
  let changed = false;
  for (const t of have) if (!tracks.includes(t)) { tile.stream.removeTrack(t); changed = true; }
  for (const t of tracks) if (!have.includes(t)) { tile.stream.addTrack(t); changed = true; }
  if (changed) {
    tile.video.srcObject = tile.stream;
    tile.audio.srcObject = tile.stream;
  }
}

function routeTracks() {
  if (!session.pc) return; // reconnecting: keep showing what we had
  const wanted = new Map();
  let screen = null;
  for (const [owner, track, source] of session.receivedTracks()) {
    if (source === "screen") screen = screen || { owner, track };
    else if (session.participants.has(owner)) wanted.set(owner, [...(wanted.get(owner) || []), track]);
  }
  for (const [id, tracks] of wanted) syncStream(tileFor(id), tracks);
  for (const [id, tile] of tiles) if (!wanted.has(id)) syncStream(tile, []);
  showStage(screen);
}

function showStage(screen) {
  const track = screen && screen.track;
  if (track !== stage.track) {
    stage.track = track;
    stage.video.srcObject = track ? new MediaStream([track]) : null;
  }
  stage.owner = screen && screen.owner;
  const info = stage.owner && session.participants.get(stage.owner);
  $("stage-caption").textContent = info ? fill(text.conf_screen_of, { name: info.name }) : "";
  $("stage").hidden = !track;
}

// -- chat, hands, chair panel --------------------------------------------------------------

function nameOf(id) {
  if (session.me && id === session.me.id) return text.me;
  return names.get(id) || null;
}

function logLine(children, className) {
  const log = $("chat-log");
  log.append(el("li", { className }, ...children));
  log.scrollTop = log.scrollHeight;
}

function showChat(message) {
  const time = new Date(message.sent_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const who = message.to ? `${message.from_name} → ${nameOf(message.to) || ""} (${text.conf_private})` : message.from_name;
  logLine([el("time", { textContent: time }), " ", el("b", { textContent: who }), ": ", message.text], message.to ? "private" : "");
}

const ACTION_LABELS = {
  mute: "conf_mute_one", mute_all: "conf_mute_all", request_unmute: "conf_ask_unmute",
  stop_video: "conf_stop_video", remove: "conf_remove", lock: "conf_lock", unlock: "conf_unlock",
  end: "conf_end_all", admit: "conf_admit", refuse: "conf_refuse", lower_hand: "conf_lower",
  record_start: "conf_record_start", record_stop: "conf_record_stop",
};

function showControlled(message) {
  const label = text[ACTION_LABELS[message.action]] || message.action;
  const target = message.participant ? nameOf(message.participant) : null;
  logLine([`${message.by_name || ""}: ${label}${target ? ` · ${target}` : ""}`], "system");
}

function renderChatRecipients() {
  const select = $("chat-to");
  const current = select.value;
  const key = JSON.stringify([...session.participants.values()].map((p) => [p.id, p.name]));
  if (select.dataset.key === key) return; // rebuilding would close the list under the user
  select.dataset.key = key;
  select.replaceChildren(
    el("option", { value: "", textContent: text.conf_everyone }),
    ...[...session.participants.values()].map((p) => el("option", { value: p.id, textContent: p.name })),
  );
  select.value = session.participants.has(current) ? current : "";
}

function renderHands() {
  const mine = !!session.me && session.hands.some((h) => h.participant === session.me.id);
  setPressed($("raise-hand"), mine);
  $("hands-queue").replaceChildren(
    ...session.hands.map((h) => {
      const item = el("li", {}, el("span", { className: "name", textContent: h.name }), " ");
      item.dataset.participant = h.participant;
      if (session.isChair) item.append(button(text.conf_lower, () => session.control("lower_hand", h.participant), `${text.conf_lower} ${h.name}`));
      return item;
    }),
  );
  renderParticipants();
}

function renderLobbyQueue() {
  $("lobby-queue").replaceChildren(
    ...session.lobbyQueue.map((w) => {
      names.set(w.id, w.name);
      const item = el("li", {}, el("span", { className: "name", textContent: w.name }), " ",
        button(text.conf_admit, () => session.control("admit", w.id), `${text.conf_admit} ${w.name}`), " ",
        button(text.conf_refuse, () => session.control("refuse", w.id), `${text.conf_refuse} ${w.name}`));
      item.dataset.lobby = w.id;
      return item;
    }),
  );
}

function renderRoster() {
  $("chair").hidden = !session.isChair;
  if (!session.isChair) return;
  $("roster").replaceChildren(
    ...[...session.participants.values()].map((p) => {
      const item = el("li", {}, el("span", { className: "name", textContent: p.name }));
      item.dataset.participant = p.id;
      if (p.audio_muted) item.append(" 🔇");
      if (p.state === "reconnecting") item.append(` (${text.conf_reconnecting})`);
      for (const [action, key] of [["mute", "conf_mute_one"], ["request_unmute", "conf_ask_unmute"], ["stop_video", "conf_stop_video"], ["remove", "conf_remove"]]) {
        const b = button(text[key], () => session.control(action, p.id), `${text[key]} ${p.name}`);
        b.dataset.action = action;
        item.append(" ", b);
      }
      return item;
    }),
  );
}

function renderConference() {
  const conf = session.conference || {};
  $("recording").hidden = !conf.recording;
  setPressed($("lock"), !!conf.locked);
  setPressed($("record"), !!conf.recording);
}

function renderMuted() {
  setPressed($("mute-audio"), session.muted.audio);
  setPressed($("mute-video"), session.muted.video);
}

function refusal(info) {
  const code = (info.error && info.error.code) || "";
  return text[`refused_${code}`] || (info.error && info.error.message) || `${text.closed} (${info.code})`;
}

// -- joining -------------------------------------------------------------------------------

function join() {
  $("prejoin").hidden = true;
  $("room").hidden = false;
  $("self-video").srcObject = preview;
  setStatus(text.connecting);
  session = new ConferenceSession(root.dataset.token, preview);
  window.suimeet = { session, tiles, stage };
  const on = (type, handler) => session.addEventListener(type, handler);
  on("welcome", (e) => {
    $("title").textContent = e.detail.conference.title || $("title").textContent;
    $("lobby").hidden = true;
    $("room").hidden = false;
    setStatus(text.joined, "ok");
    renderMuted();
    renderLobbyQueue();
  });
  on("participants", () => { renderParticipants(); routeTracks(); });
  on("tracks", routeTracks);
  on("mute", () => { renderParticipants(); renderMuted(); });
  on("speaker", (e) => {
    for (const [id, tile] of tiles) tile.figure.classList.toggle("speaking", id === e.detail);
  });
  on("state", (e) => {
    if (e.detail.media) $("media-state").textContent = text[`state_${e.detail.media}`] || e.detail.media;
  });
  on("chat", (e) => showChat(e.detail));
  on("hands", renderHands);
  on("conference", renderConference);
  on("lobby_queue", renderLobbyQueue);
  on("controlled", (e) => showControlled(e.detail));
  on("screen", (e) => setPressed($("share-screen"), e.detail.sharing));
  on("lobby", (e) => {
    if (e.detail.state !== "waiting") return;
    $("room").hidden = true;
    $("lobby").hidden = false;
    $("lobby-text").textContent = e.detail.reason === "locked" ? text.conf_lobby_locked : text.conf_lobby_waiting;
    setStatus("");
  });
  on("unmute_request", (e) => {
    $("unmute-text").textContent = fill(text.conf_unmute_request, { name: e.detail.by_name || "" });
    $("unmute-request").hidden = false;
    $("unmute-accept").focus();
  });
  on("reconnecting", (e) => {
    root.toggleAttribute("data-reconnecting", e.detail.reconnecting);
    if (e.detail.reconnecting) setStatus(text.conf_reconnecting, "warning");
    else setStatus(text.conf_reconnected, "ok");
  });
  on("error", (e) => notice(text[`conf_error_${e.detail.code}`] || e.detail.message || e.detail.code));
  on("closed", (e) => {
    const normal = e.detail.code === 1000;
    setStatus(normal ? text.left : refusal(e.detail), normal ? "info" : "error");
    root.removeAttribute("data-reconnecting");
    $("media-state").textContent = "";
    $("lobby").hidden = true;
    $("unmute-request").hidden = true;
    if (!normal) $("room").hidden = true;
  });
  session.connect();
}

$("camera").onchange = openDevices;
$("microphone").onchange = openDevices;
$("join").onclick = join;
$("mute-audio").onclick = () => { session.setMuted("audio", !session.muted.audio); renderMuted(); };
$("mute-video").onclick = () => { session.setMuted("video", !session.muted.video); renderMuted(); };
$("share-screen").onclick = async () => {
  if (session.screen) session.stopScreenShare();
  else await session.startScreenShare().catch((error) => notice(`${text.conf_share_failed} (${error.name})`));
};
$("raise-hand").onclick = (e) => session.setHand(e.target.getAttribute("aria-pressed") !== "true");
$("leave").onclick = () => session.leave();
$("unmute-accept").onclick = () => {
  $("unmute-request").hidden = true;
  session.setMuted("audio", false);
  renderMuted();
};
$("unmute-decline").onclick = () => ($("unmute-request").hidden = true);
$("chat-form").onsubmit = (e) => {
  e.preventDefault();
  const message = $("chat-text").value.trim();
  if (!message) return;
  session.sendChat(message, $("chat-to").value || null);
  $("chat-text").value = "";
};
$("mute-all").onclick = () => session.control("mute_all");
$("lock").onclick = () => session.control(session.conference && session.conference.locked ? "unlock" : "lock");
$("record").onclick = () => session.control(session.conference && session.conference.recording ? "record_stop" : "record_start");
$("end-all").onclick = () => { if (confirm(text.conf_end_confirm)) session.control("end"); };
await openDevices();
await listDevices();
$("join").disabled = false;
