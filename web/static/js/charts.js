// Small SVG charts for the administrators' dashboard: no library, no build step.
// Each function replaces the contents of `box` with one <svg> and returns it; the data
// drawn is also set on the svg (data-values) so that tests can read what is shown.

const NS = "http://www.w3.org/2000/svg";
const W = 640, H = 240, LEFT = 44, BOTTOM = 34, TOP = 14;
export const COLOURS = { bar: "#3d6fb6", muted: "#9fb7da", target: "#c0392b",
  good: "#2e8b57", fair: "#e0a800", poor: "#c0392b", unknown: "#b0b6bd", line: "#3d6fb6" };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function frame(box, label, values, height = H) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": label,
    class: "chart", "data-values": JSON.stringify(values) });
  box.replaceChildren(svg);
  return svg;
}

function percentAxis(svg, plotH) {
  for (let step = 0; step <= 4; step++) {
    const y = TOP + plotH - (plotH * step) / 4;
    svg.append(el("line", { x1: LEFT, x2: W - 8, y1: y, y2: y, stroke: "#e3e5e8" }));
    svg.append(el("text", { x: LEFT - 6, y: y + 4, "font-size": 11, "text-anchor": "end" },
      `${step * 25}%`));
  }
}

function tick(svg, x, label) {
  svg.append(el("text", { x, y: H - BOTTOM + 14, "font-size": 10, "text-anchor": "middle" },
    label));
}

/** Bars of shares (0..1) with a dashed target line; bars under the target are paler. */
export function shareBars(box, items, target, label) {
  const svg = frame(box, label, items.map((i) => i.value));
  const plotH = H - BOTTOM - TOP, slot = (W - LEFT - 8) / Math.max(1, items.length);
  percentAxis(svg, plotH);
  items.forEach((item, i) => {
    const v = item.value ?? 0, h = plotH * v, x = LEFT + i * slot + slot * 0.15;
    const bar = el("rect", { x, y: TOP + plotH - h, width: slot * 0.7, height: h,
      fill: v >= target ? COLOURS.bar : COLOURS.muted, class: "bar" });
    bar.append(el("title", {}, `${item.label}: ${item.value == null ? "—" : (v * 100).toFixed(1) + "%"}`));
    svg.append(bar);
    tick(svg, x + slot * 0.35, item.label.slice(-5));
  });
  const y = TOP + plotH * (1 - target);
  svg.append(el("line", { x1: LEFT, x2: W - 8, y1: y, y2: y, stroke: COLOURS.target,
    "stroke-width": 2, "stroke-dasharray": "6 4", class: "target" }));
  svg.append(el("text", { x: W - 10, y: y - 4, "font-size": 11, "text-anchor": "end",
    fill: COLOURS.target }, `${Math.round(target * 100)}%`));
  return svg;
}

/** Horizontal bars: a total (pale) with a part of it (dark), largest first. */
export function pairBars(box, items, label) {
  const row = 18, left = 110, height = TOP + row * Math.max(1, items.length) + 8;
  const svg = frame(box, label, items.map((i) => [i.total, i.part]), height);
  const top = Math.max(1, ...items.map((i) => i.total));
  items.forEach((item, i) => {
    const y = TOP + i * row, scale = (W - left - 50) / top;
    svg.append(el("text", { x: left - 6, y: y + 12, "font-size": 11, "text-anchor": "end" },
      item.label));
    svg.append(el("rect", { x: left, y: y + 2, width: item.total * scale, height: row - 5,
      fill: COLOURS.muted, class: "bar" }));
    svg.append(el("rect", { x: left, y: y + 2, width: item.part * scale, height: row - 5,
      fill: COLOURS.bar }));
    svg.append(el("text", { x: left + item.total * scale + 4, y: y + 12, "font-size": 10 },
      String(item.total)));
  });
  return svg;
}

/** A line of shares (0..1) with dots; months without data leave a gap. */
export function shareLine(box, items, label) {
  const svg = frame(box, label, items.map((i) => i.value));
  const plotH = H - BOTTOM - TOP, slot = (W - LEFT - 8) / Math.max(1, items.length);
  percentAxis(svg, plotH);
  let path = "";
  items.forEach((item, i) => {
    const x = LEFT + i * slot + slot / 2;
    tick(svg, x, item.label.slice(-5));
    if (item.value == null) { path += " "; return; }
    const y = TOP + plotH * (1 - item.value);
    path += `${path.trim() && !path.endsWith(" ") ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)} `;
    const dot = el("circle", { cx: x, cy: y, r: 3.5, fill: COLOURS.line, class: "point" });
    dot.append(el("title", {}, `${item.label}: ${(item.value * 100).toFixed(1)}%`));
    svg.append(dot);
  });
  svg.prepend(el("path", { d: path.trim().replace(/ +M/g, " M"), fill: "none",
    stroke: COLOURS.line, "stroke-width": 2 }));
  return svg;
}

/** Stacked bars of counts as shares: good, fair, poor, unknown. */
export function qualityBars(box, items, label) {
  const svg = frame(box, label, items.map((i) => i.counts));
  const plotH = H - BOTTOM - TOP, slot = (W - LEFT - 8) / Math.max(1, items.length);
  percentAxis(svg, plotH);
  const keys = ["good", "fair", "poor", "unknown"];
  items.forEach((item, i) => {
    const total = item.counts.reduce((a, b) => a + b, 0) || 1, x = LEFT + i * slot + slot * 0.15;
    let y = TOP + plotH;
    item.counts.forEach((count, k) => {
      const h = (plotH * count) / total;
      y -= h;
      const r = el("rect", { x, y, width: slot * 0.7, height: h, fill: COLOURS[keys[k]] });
      r.append(el("title", {}, `${item.label} ${keys[k]}: ${count}`));
      svg.append(r);
    });
    tick(svg, x + slot * 0.35, item.label.slice(-5));
  });
  return svg;
}
