// Inline SVG bar charts. Values are BigInt fen; bar heights are scaled with integer
// arithmetic (pixels), so no amount ever becomes a float.

import { fenDisplay } from "./money.js";

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/**
 * Grouped bars: labels (x axis), series [{name, class, values: BigInt[]}]. The chart carries a
 * title and a description for screen readers; a table beside it holds the same figures.
 */
export function barChart(title, labels, series, { height = 180 } = {}) {
  const groupWidth = Math.max(18, series.length * 12 + 8);
  const left = 70;
  const width = left + labels.length * groupWidth + 10;
  const top = 10;
  const bottom = 36;
  let max = 0n;
  for (const se of series) for (const v of se.values) if (v > max) max = v;
  if (max === 0n) max = 1n;
  const px = (v) => Number(((v < 0n ? 0n : v) * BigInt(height)) / max);
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height + top + bottom}`,
    width: Math.min(width, 900),
    role: "img",
    "aria-label": title,
    class: "chart",
    preserveAspectRatio: "xMinYMin meet",
  });
  svg.append(s("title", {}, title));
  // Axis: zero and the maximum.
  svg.append(s("line", { x1: left, y1: top + height, x2: width, y2: top + height, class: "axis" }));
  svg.append(s("text", { x: left - 6, y: top + 8, class: "tick", "text-anchor": "end" }, fenDisplay(max)));
  svg.append(s("text", { x: left - 6, y: top + height, class: "tick", "text-anchor": "end" }, "0"));
  labels.forEach((label, i) => {
    const x0 = left + i * groupWidth + 4;
    series.forEach((se, k) => {
      const v = se.values[i] || 0n;
      const h = px(v);
      const r = s("rect", { x: x0 + k * 12, y: top + height - h, width: 10, height: Math.max(h, v > 0n ? 1 : 0), class: se.class });
      r.append(s("title", {}, `${label} ${se.name}: ${fenDisplay(v)}`));
      svg.append(r);
    });
    if (labels.length <= 24 || i % Math.ceil(labels.length / 24) === 0) {
      svg.append(s("text", { x: x0, y: top + height + 14, class: "tick", transform: `rotate(35 ${x0} ${top + height + 14})` }, label));
    }
  });
  const legend = document.createElement("p");
  legend.className = "legend";
  for (const se of series) {
    const k = document.createElement("span");
    k.className = `key ${se.class}`;
    legend.append(k, ` ${se.name}  `);
  }
  const fig = document.createElement("figure");
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap, svg, legend);
  return fig;
}
