// The join page: preview and choose camera and microphone, join, then a grid of everyone.
import { ConferenceSession } from "./session.js";

const root = document.getElementById("conference");
const text = JSON.parse(document.getElementById("texts").textContent);
const $ = (id) => document.getElementById(id);
const tiles = new Map(); // participant id -> {figure, video, audio, caption, stream}
let preview = null;
let session = null;

function setStatus(message, kind = "info") {
  const el = $("status");
  el.textContent = message;
  el.dataset.kind = kind;
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
      ...devices.filter((d) => d.kind === kind).map((d, i) => {
        const option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || `${kind} ${i + 1}`;
        return option;
      }),
    );
    if (current) select.value = current;
  }
}

function tileFor(id) {
  let tile = tiles.get(id);
  if (tile) return tile;
  const figure = document.createElement("figure");
  figure.className = "tile";
  figure.dataset.participant = id;
  const video = document.createElement("video");
  Object.assign(video, { autoplay: true, muted: true, playsInline: true });
  const audio = document.createElement("audio");
  audio.autoplay = true;
  const caption = document.createElement("figcaption");
  figure.append(video, audio, caption);
  $("tiles").append(figure);
  tile = { figure, video, audio, caption, stream: new MediaStream() };
  video.srcObject = tile.stream;
  audio.srcObject = tile.stream;
  tiles.set(id, tile);
  return tile;
}

function renderParticipants() {
  for (const [id, info] of session.participants) {
    const tile = tileFor(id);
    tile.caption.textContent = info.name;
    tile.caption.classList.toggle("muted", !!info.audio_muted);
    tile.figure.classList.toggle("video-off", !!info.video_muted);
  }
  for (const id of [...tiles.keys()]) {
    if (!session.participants.has(id)) {
      tiles.get(id).figure.remove();
      tiles.delete(id);
    }
  }
  $("count").textContent = String(session.participants.size + 1);
}

function routeTracks() {
  for (const [owner, track] of session.receivedTracks()) {
    for (const [id, tile] of tiles) {
      if (id !== owner && tile.stream.getTracks().includes(track)) tile.stream.removeTrack(track);
    }
    const tile = tileFor(owner);
    if (!tile.stream.getTracks().includes(track)) {
      tile.stream.getTracks().filter((t) => t.kind === track.kind).forEach((t) => tile.stream.removeTrack(t));
      tile.stream.addTrack(track);
      tile.video.srcObject = tile.stream;
      tile.audio.srcObject = tile.stream;
    }
  }
}

function refusal(info) {
  const code = (info.error && info.error.code) || "";
  return text[`refused_${code}`] || (info.error && info.error.message) || `${text.closed} (${info.code})`;
}

function join() {
  $("prejoin").hidden = true;
  $("room").hidden = false;
  $("self-video").srcObject = preview;
  setStatus(text.connecting);
  session = new ConferenceSession(root.dataset.token, preview);
  window.suimeet = { session, tiles };
  session.addEventListener("welcome", (e) => {
    $("title").textContent = e.detail.conference.title || $("title").textContent;
    setStatus(text.joined, "ok");
  });
  session.addEventListener("participants", () => { renderParticipants(); routeTracks(); });
  session.addEventListener("tracks", routeTracks);
  session.addEventListener("mute", renderParticipants);
  session.addEventListener("speaker", (e) => {
    for (const [id, tile] of tiles) tile.figure.classList.toggle("speaking", id === e.detail);
  });
  session.addEventListener("state", (e) => {
    if (e.detail.media) $("media-state").textContent = text[`state_${e.detail.media}`] || e.detail.media;
  });
  session.addEventListener("closed", (e) => {
    const normal = e.detail.code === 1000;
    setStatus(normal ? text.left : refusal(e.detail), normal ? "info" : "error");
    $("media-state").textContent = "";
  });
  session.connect();
}

function toggle(button, kind) {
  const muted = button.getAttribute("aria-pressed") !== "true";
  session.setMuted(kind, muted);
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? button.dataset.off : button.dataset.on;
}

$("camera").onchange = openDevices;
$("microphone").onchange = openDevices;
$("join").onclick = join;
$("mute-audio").onclick = (e) => toggle(e.target, "audio");
$("mute-video").onclick = (e) => toggle(e.target, "video");
$("leave").onclick = () => session.leave();
await openDevices();
await listDevices();
$("join").disabled = false;
