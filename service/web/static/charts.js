"use strict";
// Small SVG charts with axes: minutes along the bottom (a label every 10 minutes), values up the side (ticks at
// round numbers), a legend, and each point's value as its tooltip. No library: the dashboard loads nothing else.

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 200, left: 52, right: 10, top: 24, bottom: 28 };

function svgNode(tag, attributes = {}, text = undefined) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The smallest of 1, 2 or 5 times a power of ten at or above the largest value: round tick labels.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((top) => top >= value);
}

function formatValue(value, decimals) {
  return value === null || value === undefined ? "-" : Number(value).toFixed(decimals);
}

// series: [{ name, values: [number|null] (one per minute), kind: "bar" | "line", cls }]
function drawChart(svg, minutes, series, { decimals = 0 } = {}) {
  const { width, height, left, right, top, bottom } = CHART;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(0, ...values));
  const step = plotWidth / Math.max(1, minutes.length);
  const x = (i) => left + (i + 0.5) * step;
  const y = (v) => top + (1 - v / max) * plotHeight;
  const nodes = [];
  for (let t = 0; t <= 4; t++) {  // the value axis: five ticks from 0 to the top, with grid lines
    const value = (max * t) / 4;
    nodes.push(svgNode("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }));
    nodes.push(svgNode("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end", class: "tick" },
      formatValue(value, max < 4 ? 2 : decimals)));
  }
  nodes.push(svgNode("line", { x1: left, x2: left, y1: top, y2: top + plotHeight, class: "axis" }));
  nodes.push(svgNode("line", { x1: left, x2: width - right, y1: top + plotHeight, y2: top + plotHeight, class: "axis" }));
  minutes.forEach((minute, i) => {  // the time axis: a label every ten minutes
    const at = new Date(minute * 1000);
    if (at.getMinutes() % 10 === 0) {
      nodes.push(svgNode("text", { x: x(i), y: height - 8, "text-anchor": "middle", class: "tick" },
        at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    }
  });
  const bars = series.filter((s) => s.kind === "bar");
  bars.forEach((s, b) => {
    const barWidth = Math.max(1, (step - 2) / bars.length);
    s.values.forEach((value, i) => {
      if (!value) return;
      const bar = svgNode("rect", {
        x: x(i) - step / 2 + 1 + b * barWidth, y: y(value), width: barWidth, height: y(0) - y(value), class: s.cls,
      });
      bar.append(svgNode("title", {}, `${new Date(minutes[i] * 1000).toLocaleTimeString()}: ${formatValue(value, decimals)} ${s.name}`));
      nodes.push(bar);
    });
  });
  for (const s of series.filter((line) => line.kind === "line")) {
    let path = "";
    s.values.forEach((value, i) => {
      if (value === null || value === undefined) return;
      path += `${path && s.values[i - 1] !== null && s.values[i - 1] !== undefined ? "L" : "M"}${x(i)},${y(value)}`;
      const point = svgNode("circle", { cx: x(i), cy: y(value), r: 2.5, class: s.cls });
      point.append(svgNode("title", {}, `${new Date(minutes[i] * 1000).toLocaleTimeString()}: ${formatValue(value, decimals)} ${s.name}`));
      nodes.push(point);
    });
    if (path) nodes.push(svgNode("path", { d: path, class: `line ${s.cls}` }));
  }
  let legendX = left;
  for (const s of series) {  // the legend: each series is per minute, and its value in the latest minute
    const latest = [...s.values].reverse().find((v) => v !== null && v !== undefined);
    nodes.push(svgNode("rect", { x: legendX, y: 6, width: 10, height: 10, class: s.cls }));
    const label = `${s.name} per minute (last: ${formatValue(latest ?? null, decimals)})`;
    nodes.push(svgNode("text", { x: legendX + 14, y: 15, class: "legend" }, label));
    legendX += 24 + label.length * 7;
  }
  svg.replaceChildren(...nodes);
}
