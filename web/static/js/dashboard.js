// The administrators' dashboard: reads /api/v1/stats (with the page's session cookie) and
// draws the charts with charts.js; the filters re-query and redraw without a reload.
import { pairBars, qualityBars, shareBars, shareLine } from "./charts.js";

const T = JSON.parse(document.getElementById("texts").textContent);
const $ = (id) => document.getElementById(id);
const pct = (v) => (v == null ? "—" : `${(v * 100).toFixed(1)}%`);
const num = (v) => (v == null ? "—" : Number(v).toLocaleString());

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function params(extra) {
  const p = new URLSearchParams(extra);
  if ($("from").value) p.set("from", $("from").value);
  if ($("to").value) p.set("to", $("to").value);
  if ($("unit").value) p.set("unit_id", $("unit").value);
  return p;
}

function tiles(total) {
  const entries = [
    ["held", num(total.held)],
    ["video_share", pct(total.video_share), (total.video_share ?? 0) >= total.target ? "ok" : "below"],
    ["participant_minutes", num(Math.round(total.participant_minutes))],
    ["attendance_rate", pct(total.attendance_rate)],
    ["late_joins", num(total.late_joins)],
    ["mean_duration", num(total.mean_duration_min)],
    ["peak_conferences", num(total.peak_conferences)],
    ["terminal_online", pct(total.terminal_online_ratio)],
  ];
  $("tiles").replaceChildren(...entries.map(([key, value, cls]) => {
    const tile = document.createElement("div");
    tile.className = "figure-tile";
    tile.dataset.figure = key;
    tile.innerHTML = `<div class="value ${cls || ""}"></div><div class="name"></div>`;
    tile.querySelector(".value").textContent = value;
    tile.querySelector(".name").textContent = T[key];
    return tile;
  }));
}

export async function refresh() {
  document.body.dataset.state = "loading";
  const [months, units] = await Promise.all([
    getJSON(`/api/v1/stats?${params({ group_by: "month" })}`),
    getJSON(`/api/v1/stats?${params({ group_by: "unit" })}`),
  ]);
  if (!$("from").value) $("from").value = months.from;
  if (!$("to").value) $("to").value = months.to;
  $("csv").href = `/api/v1/stats?${params({ group_by: "unit", format: "csv" })}`;
  tiles(months.total);
  const rows = months.rows;
  shareBars($("chart-share"), rows.map((r) => ({ label: r.key, value: r.video_share })),
    months.target, T.chart_share);
  pairBars($("chart-units"), units.rows.slice(0, 20).map((r) => (
    { label: r.label, total: r.held, part: r.held_by_video })), T.chart_units);
  shareLine($("chart-attendance"), rows.map((r) => ({ label: r.key, value: r.attendance_rate })),
    T.chart_attendance);
  qualityBars($("chart-quality"), rows.map((r) => ({ label: r.key,
    counts: [r.quality_good, r.quality_fair, r.quality_poor, r.quality_unknown] })),
    T.chart_quality);
  document.body.dataset.state = "ready";
}

async function live() {
  try {
    const [conferences, status] = await Promise.all([
      getJSON("/api/v1/conferences"), getJSON("/api/v1/stats/live")]);
    const box = $("live");
    if (!conferences.length) {
      box.textContent = T.live_none;
    } else {
      const table = document.createElement("table");
      for (const c of conferences) {
        for (const p of c.participants) {
          const q = p.quality || {};
          const row = table.insertRow();
          for (const v of [c.id, p.name, p.kind, pct(q.packet_loss_in), q.rtt_ms == null ? "—" : `${q.rtt_ms} ms`]) {
            row.insertCell().textContent = v;
          }
        }
      }
      box.replaceChildren(table);
    }
    $("terminals").replaceChildren(...status.terminals.map((t) => {
      const span = document.createElement("span");
      span.className = `terminal ${t.in_conference ? "on" : ""}`;
      span.title = `${t.unit} · ${t.room}: ${t.in_conference ? T.in_conference : T.idle}`;
      span.textContent = t.unit;
      return span;
    }));
  } catch (err) {
    console.warn(err);
  }
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  refresh().catch((err) => { document.body.dataset.state = "error"; console.error(err); });
});
refresh().catch((err) => { document.body.dataset.state = "error"; console.error(err); });
live();
setInterval(live, 10000);
