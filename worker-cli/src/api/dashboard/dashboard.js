// rigworker dashboard: polls the JSON API every few seconds and fills the page. No
// libraries: the chart is plain SVG, so the page works offline. Every shown number also sits
// in a data-value attribute (raw, unformatted) so tests can compare it with the API.
"use strict";

const REFRESH_MS = 3000;

function rate(h) {
  if (h === null || h === undefined) return "–";
  const units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"];
  let v = h, i = 0;
  while (v >= 1000 && i + 1 < units.length) { v /= 1000; i++; }
  return v.toFixed(2) + " " + units[i];
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d) return d + "d " + h + "h";
  if (h) return h + "h " + m + "m";
  return m + "m " + (s % 60) + "s";
}

function set(id, value, text) {
  const el = document.getElementById(id);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
  el.textContent = text;
}

function cell(row, text, cls, value) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  if (value !== undefined) td.dataset.value = value === null ? "" : String(value);
  row.appendChild(td);
  return td;
}

function orDash(v, unit) { return v === null || v === undefined ? "–" : v + unit; }

// As the log prints it: four significant digits, trailing zeros dropped (0.022468356875660244
// → 0.02247), whole numbers from 1000 on, exponent form outside 1e-5..1e6 (3.142e12).
function difficulty(d) {
  if (d === null || d === undefined) return "–";
  if (d !== 0 && (Math.abs(d) >= 1e6 || Math.abs(d) < 1e-5)) {
    return d.toExponential(3).replace(/\.?0+e/, "e").replace("e+", "e");
  }
  if (Math.abs(d) >= 1000) return String(Math.round(d));
  return String(Number(d.toPrecision(4)));
}

async function get(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function renderSummary(s) {
  document.getElementById("version").textContent = "v" + s.version;
  set("rate-10s", s.hashrate.total["10s"], rate(s.hashrate.total["10s"]));
  set("rate-60s", s.hashrate.total["60s"], rate(s.hashrate.total["60s"]));
  set("rate-15m", s.hashrate.total["15m"], rate(s.hashrate.total["15m"]));
  set("shares-accepted", s.shares.accepted, s.shares.accepted);
  set("shares-rejected", s.shares.rejected, s.shares.rejected);
  // Red only when there is something to worry about.
  document.getElementById("shares-rejected").classList.toggle("bad", s.shares.rejected > 0);
  document.getElementById("shares-hw").classList.toggle("bad", s.shares.hardware_errors > 0);
  set("shares-stale", s.shares.stale, s.shares.stale);
  set("shares-hw", s.shares.hardware_errors, s.shares.hardware_errors);
  set("uptime", Math.floor(s.uptime_secs), duration(s.uptime_secs));
  set("best-share", s.best_share_difficulty, difficulty(s.best_share_difficulty));
  set("reconnects", s.reconnects, s.reconnects);
  set("failovers", s.failovers, s.failovers);
}

function renderDevices(d) {
  const body = document.querySelector("#devices tbody");
  body.replaceChildren();
  for (const dev of d.devices) {
    const tr = document.createElement("tr");
    tr.dataset.id = dev.id;
    cell(tr, dev.id);
    cell(tr, dev.backend);
    cell(tr, dev.name);
    cell(tr, dev.state, "state-" + dev.state, dev.state);
    cell(tr, rate(dev.hashrate["10s"]), "num", dev.hashrate["10s"]);
    cell(tr, dev.shares.accepted, "num", dev.shares.accepted);
    cell(tr, dev.shares.rejected, "num", dev.shares.rejected);
    cell(tr, dev.hardware_errors, "num", dev.hardware_errors);
    cell(tr, orDash(dev.temperature_c, " °C"), "num", dev.temperature_c);
    cell(tr, orDash(dev.power_w, " W"), "num", dev.power_w);
    cell(tr, orDash(dev.fan_percent, " %"), "num", dev.fan_percent);
    body.appendChild(tr);
  }
}

function renderPools(p) {
  const body = document.querySelector("#pools tbody");
  body.replaceChildren();
  for (const pool of p.pools) {
    const tr = document.createElement("tr");
    tr.dataset.index = pool.index;
    cell(tr, pool.index);
    cell(tr, pool.url);
    const status = pool.current ? (pool.pinned ? "active (pinned)" : "active") : "standby";
    cell(tr, status, pool.current ? "state-running" : "muted", pool.current);
    cell(tr, difficulty(pool.difficulty), "num", pool.difficulty);
    cell(tr, pool.latency_ms === null ? "–" : pool.latency_ms.toFixed(1) + " ms", "num", pool.latency_ms);
    cell(tr, pool.shares.accepted, "num", pool.shares.accepted);
    cell(tr, pool.shares.rejected, "num", pool.shares.rejected);
    cell(tr, pool.shares.stale, "num", pool.shares.stale);
    cell(tr, pool.connects, "num", pool.connects);
    body.appendChild(tr);
  }
}

function renderChart(h) {
  const svg = document.getElementById("chart");
  const W = 900, H = 240, L = 90, R = 10, T = 12, B = 24;
  const pts = h.samples.filter(s => s.total !== null);
  const ns = "http://www.w3.org/2000/svg";
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  svg.replaceChildren();
  svg.dataset.points = pts.length;
  const now = h.samples.length ? h.samples[h.samples.length - 1].t : Date.now();
  const t0 = now - 3600 * 1000;
  const max = Math.max(1, ...pts.map(s => s.total)) * 1.1;
  const x = t => L + (t - t0) / (3600 * 1000) * (W - L - R);
  const y = v => T + (1 - v / max) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) });
    el("text", { class: "axis", x: L - 6, y: y(v) + 4, "text-anchor": "end" }, rate(v));
  }
  for (let m = 0; m <= 60; m += 15) {
    el("text", { class: "axis", x: x(t0 + m * 60000), y: H - 6, "text-anchor": "middle" }, m === 60 ? "now" : "-" + (60 - m) + " min");
  }
  if (pts.length >= 2) {
    const line = pts.map(s => x(s.t).toFixed(1) + "," + y(s.total).toFixed(1)).join(" ");
    el("polygon", { class: "area", points: x(pts[0].t).toFixed(1) + "," + y(0) + " " + line + " " + x(pts[pts.length - 1].t).toFixed(1) + "," + y(0) });
    el("polyline", { class: "total", points: line });
  }
  document.getElementById("chart-note").textContent =
    pts.length < 2 ? "collecting samples (one every " + h.interval_secs + " s)…" : pts.length + " samples, one every " + h.interval_secs + " s";
}

// Shown only when the worker takes proving jobs.
function renderProving(p) {
  document.getElementById("proving").hidden = !p.enabled;
  if (!p.enabled) return;
  document.getElementById("proving-backend").textContent = "on " + p.backend;
  for (const k of ["jobs", "accepted", "rejected", "failed", "refused", "lost"]) {
    set("proofs-" + k, p[k], p[k]);
    if (k !== "jobs" && k !== "accepted") {
      document.getElementById("proofs-" + k).classList.toggle("bad", p[k] > 0);
    }
  }
  const total = p.phase_medians.find(m => m.phase === "total");
  set("proofs-median", total ? total.secs : null, total ? (total.secs * 1000).toFixed(0) + " ms" : "–");
}

async function refresh() {
  try {
    const [s, d, p, h, pr] = await Promise.all([
      get("/api/v1/summary"), get("/api/v1/devices"), get("/api/v1/pools"), get("/api/v1/history"),
      get("/api/v1/proving"),
    ]);
    renderSummary(s);
    renderProving(pr);
    renderDevices(d);
    renderPools(p);
    renderChart(h);
    const pool = s.pool ? "mining on " + s.pool.url : "no pool connected";
    const status = document.getElementById("status");
    status.textContent = pool + " · updated " + new Date().toLocaleTimeString();
    status.dataset.updated = "1";
  } catch (e) {
    document.getElementById("status").textContent = "API unreachable: " + e.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
