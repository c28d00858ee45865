// The secretariat's booking page: check conflicts and warnings before saving, then follow
// RSVPs and mail delivery. Talks to the REST API with the session cookie and CSRF token.
"use strict";

(function () {
  const root = document.getElementById("booking");
  const form = document.getElementById("meeting-form");
  const problems = document.getElementById("problems");
  const csrf = root.dataset.csrf;
  const tz = root.dataset.tz;
  const zh = root.dataset.lang !== "en";
  const T = zh
    ? { conflict: "会议室冲突", busy: "参会人员时间冲突", ok: "没有冲突，可以保存", free: "空闲", occupied: "已占用",
        guests: (id, code) => `访客入会：会议号 ${id}，访客密码 ${code}（/guest）`, noGuests: "不接受访客" }
    : { conflict: "Room conflict", busy: "Invitee busy", ok: "No conflicts: ready to save", free: "free", occupied: "busy",
        guests: (id, code) => `Guests: meeting number ${id}, passcode ${code} (/guest)`, noGuests: "No guests" };

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = response.status === 204 ? null : await response.json();
    return { status: response.status, data };
  }

  // "2026-12-01T09:30" in the meeting's zone (Asia/Shanghai has no DST: a fixed offset).
  function withZone(local) {
    const offset = tz === "Asia/Shanghai" ? "+08:00" : "Z";
    return local.length === 16 ? local + ":00" + offset : local + offset;
  }

  function fmt(iso) {
    return new Date(iso).toLocaleString(zh ? "zh-CN" : "en-GB", { timeZone: tz });
  }

  function draft() {
    const f = new FormData(form);
    const body = {
      title: f.get("title"),
      unit_id: Number(f.get("unit_id")),
      start: withZone(f.get("start")),
      end: withZone(f.get("end")),
      mode: f.get("mode"),
      agenda: f.get("agenda") || "",
      room_ids: f.getAll("room").map(Number),
      attendees: f.getAll("people").map((id) => ({ person_id: Number(id) })),
      unit_ids: f.getAll("units").map(Number),
      tzid: tz,
    };
    if (f.get("doc_ref")) body.doc_ref = f.get("doc_ref");
    if (f.get("freq")) body.rrule = "FREQ=" + f.get("freq") + ";COUNT=" + Number(f.get("count") || 1);
    return body;
  }

  function show(lines, cls) {
    problems.replaceChildren(...lines.map((text) => {
      const p = document.createElement("p");
      p.className = cls;
      p.textContent = text;
      return p;
    }));
  }

  function describe(check) {
    const lines = [];
    for (const c of check.conflicts || []) {
      lines.push(`${T.conflict}: ${c.room_name} — ${c.title} (${fmt(c.start_utc)}–${fmt(c.end_utc)})`);
    }
    for (const w of check.warnings || []) {
      lines.push(`${T.busy}: #${w.person_id} — ${w.title} (${fmt(w.start_utc)})`);
    }
    return lines;
  }

  function problemLines(data) {
    const lines = [data.message];
    for (const [field, message] of Object.entries(data.fields || {})) lines.push(`${field}: ${message}`);
    if (data.conflicts) lines.push(...describe({ conflicts: data.conflicts }));
    return lines;
  }

  async function refreshBusy() {
    const f = new FormData(form);
    if (!f.get("start")) return;
    const day = f.get("start").slice(0, 10);
    const ids = [...document.querySelectorAll("[data-room]")].map((el) => el.dataset.room);
    if (!ids.length) return;
    const q = new URLSearchParams({ from: withZone(day + "T00:00"), to: withZone(day + "T23:59") });
    ids.forEach((id) => q.append("room_ids", id));
    const { status, data } = await api("GET", "/api/v1/meetings/freebusy?" + q);
    if (status !== 200) return;
    for (const room of data.rooms) {
      const el = document.querySelector(`[data-room="${room.room_id}"]`);
      el.textContent = room.busy.length
        ? `${T.occupied}: ` + room.busy.map((b) => `${fmt(b.start_utc)}–${fmt(b.end_utc)}`).join(", ")
        : T.free;
      el.classList.toggle("occupied", room.busy.length > 0);
    }
  }

  async function check() {
    const { status, data } = await api("POST", "/api/v1/meetings/check", draft());
    if (status !== 200) return show(problemLines(data), "error");
    const lines = describe(data);
    show(lines.length ? lines : [T.ok], data.ok ? "ok" : "error");
    return data;
  }

  async function follow(meeting) {
    document.getElementById("result").hidden = false;
    document.getElementById("saved-title").textContent = meeting.title;
    document.getElementById("saved-guests").textContent = meeting.passcode
      ? T.guests(meeting.id, meeting.passcode)
      : T.noGuests;
    document.getElementById("saved-records").href = `/secretariat/meetings/${meeting.id}/records`;
    const fill = (id, rows) => {
      const tbody = document.querySelector(`#${id} tbody`);
      tbody.replaceChildren(...rows.map((cells) => {
        const tr = document.createElement("tr");
        cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.append(td); });
        return tr;
      }));
    };
    const tick = async () => {
      const responses = await api("GET", `/api/v1/meetings/${meeting.id}/responses`);
      if (responses.status === 200) {
        fill("responses", responses.data.attendees.map((a) => [a.name || a.person_id, a.partstat]));
      }
      const messages = await api("GET", `/api/v1/meetings/${meeting.id}/messages`);
      if (messages.status === 200) {
        fill("messages", messages.data.map((m) => [m.recipient, m.kind, m.status]));
      }
    };
    await tick();
    setInterval(tick, 3000);
  }

  document.getElementById("check").onclick = check;
  form.addEventListener("change", (e) => { if (e.target.name === "start") refreshBusy(); });
  form.onsubmit = async (event) => {
    event.preventDefault();
    const { status, data } = await api("POST", "/api/v1/meetings", draft());
    if (status !== 201) return show(problemLines(data), "error");
    show(describe(data), "warning");
    root.dataset.meetingId = String(data.id);
    await follow(data);
  };
})();
