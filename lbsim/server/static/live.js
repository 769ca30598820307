/* lbsim live page: renders the twin's event stream (/lbsim/ui/events) and posts controls to
 * the same /lbsim/v1/... endpoints `lbsim ctl` uses. Plain JS, no build step; uPlot is vendored.
 * Every collection the page keeps is bounded: traffic by the simulated window the server
 * announces, the timeline by the server's limits, charts and rows by the live objects. */
"use strict";

/* ---- the control endpoints (the ones `lbsim ctl` posts to) ---- */
const CONTROL = {
  member: (id, behaviour) => ["PUT", `/lbsim/v1/members/${enc(id)}/behaviour`, { behaviour }],
  failAmphora: (id) => ["POST", `/lbsim/v1/amphorae/${enc(id)}/fail`, {}],
  partition: (id, partitioned) => ["PUT", `/lbsim/v1/amphorae/${enc(id)}/partition`, { partitioned }],
  traffic: (id, rate) => ["PUT", `/lbsim/v1/listeners/${enc(id)}/traffic`, { rate }],
  pause: () => ["POST", "/lbsim/v1/clock/pause", {}],
  resume: () => ["POST", "/lbsim/v1/clock/resume", {}],
  speed: (speed) => ["PUT", "/lbsim/v1/clock/speed", { speed }],
  advance: (seconds) => ["POST", "/lbsim/v1/clock/advance", { seconds }],
  save: (folder) => ["POST", "/lbsim/v1/save", { folder }],
};
const BEHAVIOURS = ["refuse", "hang", "error", "slow", "healthy"];

/* ---- state (all bounded) ---- */
const state = {
  window: 300,
  limits: { transitions: 200, events: 100 },
  clock: { now: 0, speed: null, paused: false },
  traffic: new Map(),   // listener id -> {t:[], rate:[], error_rate:[], p50:[], p95:[], p99:[]}
  charts: new Map(),    // listener id -> {rate: uPlot, lat: uPlot, el}
  lbEls: new Map(),     // lb id -> card element
  transitions: [],      // newest last, at most limits.transitions
  events: [],           // newest last, at most limits.events
};
const COLS = ["t", "rate", "error_rate", "p50", "p95", "p99"];

function enc(s) { return encodeURIComponent(s); }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/* ---- status colours, the way Octavia's statuses read ---- */
function colour(value) {
  if (!value) return "";
  if (["ONLINE", "ACTIVE", "UP", "ALLOCATED", "READY", "STANDALONE", "MASTER", "BACKUP"].includes(value)) return "green";
  if (value === "DEGRADED") return "amber";
  if (["ERROR", "DOWN", "FAILED"].includes(value)) return "red";
  if (["OFFLINE", "NO_MONITOR", "MAINT", "no check", "DELETED", "FAILOVER_STOPPED"].includes(value)) return "grey";
  if (value.startsWith("PENDING_") || value === "BOOTING") return "blue";
  if (value === "DRAINING" || value === "DRAIN") return "purple";
  if (value.startsWith("UP ")) return "light-green";     // still up, failing checks
  if (value.startsWith("DOWN ")) return "light-red";     // still down, passing checks
  return "";
}
function badge(value, testid) {
  const b = el("span", { class: "st", "data-colour": colour(value || ""), text: value || "" });
  if (testid) b.dataset.testid = testid;
  return b;
}
function setBadge(b, value) {
  if (b.textContent !== (value || "")) b.textContent = value || "";
  b.dataset.colour = colour(value || "");
}
function fmtT(t) {
  if (t == null) return "–";
  const s = Math.floor(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  const sec = (t - h * 3600 - m * 60).toFixed(1).padStart(4, "0");
  return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${sec}`;
}
function shortId(id) { return id.length > 12 ? id.slice(0, 8) : id; }
function fmtSecs(x) { return x >= 100 ? `${x.toFixed(0)} s` : `${x.toFixed(1)} s`; }

/* ---- notices ---- */
let noticeTimer = null;
function notice(text, isError = false) {
  const n = document.getElementById("notice");
  n.textContent = text; n.hidden = false; n.classList.toggle("error", isError);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { n.hidden = true; }, 6000);
}

/* ---- controls ---- */
async function control([method, url, payload], what, done = null) {
  try {
    const r = await fetch(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    let msg = "", body = null;
    try { body = await r.json(); msg = body.faultstring || body.detail || body.message || ""; } catch (_) { /* no body */ }
    if (!r.ok) notice(`${what}: ${r.status} ${typeof msg === "string" ? msg : JSON.stringify(msg)}`, true);
    else notice(done && body ? done(body) : `${what}: done`);
  } catch (e) {
    notice(`${what}: ${e}`, true);
  }
}
document.getElementById("pause").addEventListener("click", () => {
  const paused = !state.clock.paused;
  control(paused ? CONTROL.pause() : CONTROL.resume(), paused ? "pause" : "resume");
});
document.getElementById("clock-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const speed = Number(document.getElementById("speed").value);
  if (!Number.isFinite(speed) || speed < 0) { notice("speed must be a number ≥ 0", true); return; }
  control(CONTROL.speed(speed), `speed ×${speed}`);
});
document.getElementById("save").addEventListener("click", () => {
  const folder = document.getElementById("save-to").value.trim();
  if (!folder) { notice("name a folder on the server to save the session to", true); return; }
  control(CONTROL.save(folder), `save to ${folder}`,
    (j) => `session saved to ${j.folder} (replay: lbsim run ${j.folder}/scenario.yaml)`);
});
document.getElementById("advance").addEventListener("click", () => {
  const seconds = Number(document.getElementById("advance-by").value);
  if (!Number.isFinite(seconds) || seconds < 0) { notice("seconds must be a number ≥ 0", true); return; }
  control(CONTROL.advance(seconds), `advance ${seconds} s`);
});

/* ---- the status tree of one load balancer ---- */
function rowKey(kind, id) { return `${kind}:${id}`; }

function lbCard(lb) {
  let card = state.lbEls.get(lb.id);
  if (!card) {
    card = el("article", { class: "lb", "data-lb": lb.id, "data-testid": "lb" },
      el("div", { class: "lb-head" },
        el("h2", { class: "lb-name" }), badge("", "lb-prov"), badge("", "lb-op"),
        el("span", { class: "id" })),
      el("div", { class: "amps" }),
      el("table", { class: "tree" },
        el("thead", {}, el("tr", {},
          el("th", { text: "object" }), el("th", { text: "provisioning" }), el("th", { text: "operating (API)" }),
          el("th", { text: "HAProxy" }), el("th", { text: "API vs HAProxy" }), el("th", { text: "control" }))),
        el("tbody")),
      el("div", { class: "charts" }));
    card._rows = new Map();
    state.lbEls.set(lb.id, card);
    document.getElementById("lbs").append(card);
  }
  const head = card.querySelector(".lb-head");
  head.querySelector(".lb-name").textContent = lb.name || "(no name)";
  setBadge(head.querySelector('[data-testid="lb-prov"]'), lb.provisioning_status);
  setBadge(head.querySelector('[data-testid="lb-op"]'), lb.operating_status);
  head.querySelector(".id").textContent =
    `${lb.vip_address ? "VIP " + lb.vip_address + "  " : ""}${lb.id}${lb.project_id ? "  project " + lb.project_id : ""}`;
  renderAmphorae(card.querySelector(".amps"), lb.amphorae || []);
  renderRows(card, lb);
  return card;
}

function renderAmphorae(box, amps) {
  const seen = new Set();
  for (const a of amps) {
    seen.add(a.id);
    let chip = box.querySelector(`[data-amp="${CSS.escape(a.id)}"]`);
    if (!chip) {
      chip = el("span", { class: "amp", "data-amp": a.id, "data-testid": "amphora" },
        el("span", { class: "role" }), badge(""),
        el("button", { type: "button", text: "fail", title: "fail this amphora", "data-testid": "fail-amphora",
          onclick: () => control(CONTROL.failAmphora(a.id), `fail amphora ${shortId(a.id)}`) }),
        el("button", { type: "button", text: "partition", title: "cut this amphora's network",
          onclick: () => control(CONTROL.partition(a.id, true), `partition amphora ${shortId(a.id)}`) }),
        el("button", { type: "button", text: "reconnect", title: "restore this amphora's network",
          onclick: () => control(CONTROL.partition(a.id, false), `reconnect amphora ${shortId(a.id)}`) }));
      box.append(chip);
    }
    chip.querySelector(".role").textContent = `amphora ${a.role || ""} ${shortId(a.id)}`;
    setBadge(chip.querySelector(".st"), a.status);
  }
  for (const chip of [...box.children]) if (!seen.has(chip.dataset.amp)) chip.remove();
}

function flatten(lb) {
  const rows = [];
  for (const li of lb.listeners || []) {
    rows.push({ kind: "listener", obj: li });
    for (const pool of li.pools || []) {
      rows.push({ kind: "pool", obj: pool });
      if (pool.health_monitor) rows.push({ kind: "healthmonitor", obj: pool.health_monitor });
      for (const m of pool.members || []) rows.push({ kind: "member", obj: m });
    }
  }
  return rows;
}

function newRow(kind, obj) {
  const tr = el("tr", { "data-kind": kind, "data-id": obj.id, "data-testid": kind },
    el("td", { class: "obj" }, el("span", { class: "kind", text: kind === "healthmonitor" ? "monitor" : kind }),
      el("span", { class: "name" }), " ", el("span", { class: "mono where" })),
    el("td", {}, badge("", "prov")), el("td", {}, badge("", "api")),
    el("td", {}, kind === "member" ? badge("", "haproxy") : null),
    el("td", { class: "gap", "data-testid": "gap" }),
    el("td", { class: "ctl" }));
  const ctl = tr.querySelector(".ctl");
  if (kind === "member") {
    const sel = el("select", { "data-testid": "behaviour", "aria-label": "member behaviour" },
      ...BEHAVIOURS.map((b) => el("option", { value: b, text: b })));
    ctl.append(sel, " ", el("button", { type: "button", text: "apply", "data-testid": "apply-behaviour",
      onclick: () => control(CONTROL.member(obj.id, sel.value), `${sel.value} ${tr.dataset.name || obj.id}`) }));
  } else if (kind === "listener") {
    const inp = el("input", { type: "number", min: "0", step: "any", placeholder: "req/s", "data-testid": "rate",
      "aria-label": "traffic rate (requests per second)" });
    ctl.append(inp, " ", el("button", { type: "button", text: "set rate", "data-testid": "set-rate",
      onclick: () => {
        const raw = inp.value.trim();
        const rate = raw === "" ? null : Number(raw);
        if (rate !== null && (!Number.isFinite(rate) || rate < 0)) { notice("rate must be a number ≥ 0", true); return; }
        control(CONTROL.traffic(obj.id, rate), rate === null ? "stop traffic" : `traffic ${rate}/s`);
      } }));
  }
  return tr;
}

function renderRows(card, lb) {
  const tbody = card.querySelector("tbody");
  const rows = flatten(lb);
  const wanted = rows.map((r) => rowKey(r.kind, r.obj.id));
  const current = [...tbody.children].map((tr) => rowKey(tr.dataset.kind, tr.dataset.id));
  if (wanted.join("|") !== current.join("|")) {
    for (const [key, tr] of card._rows) if (!wanted.includes(key)) { tr.remove(); card._rows.delete(key); }
    for (const r of rows) {
      const key = rowKey(r.kind, r.obj.id);
      let tr = card._rows.get(key);
      if (!tr) { tr = newRow(r.kind, r.obj); card._rows.set(key, tr); }
      tbody.append(tr);  // re-appending keeps order and the controls' values
    }
  }
  for (const r of rows) {
    const tr = card._rows.get(rowKey(r.kind, r.obj.id));
    const o = r.obj;
    const name = o.name || (r.kind === "member" ? `${o.address}:${o.protocol_port}` : o.id.slice(0, 8));
    tr.dataset.name = name;
    tr.querySelector(".name").textContent = r.kind === "healthmonitor" && o.type ? `${name} (${o.type})` : name;
    const where = r.kind === "member" && o.name ? `${o.address}:${o.protocol_port}`
      : r.kind === "listener" && o.protocol ? `${o.protocol}:${o.protocol_port}` : "";
    const whereEl = tr.querySelector(".where");
    if (whereEl.textContent !== where) whereEl.textContent = where;
    setBadge(tr.querySelector('[data-testid="prov"]'), o.provisioning_status);
    setBadge(tr.querySelector('[data-testid="api"]'), o.operating_status);
    const gap = tr.querySelector(".gap");
    if (r.kind === "member") {
      setBadge(tr.querySelector('[data-testid="haproxy"]'), o.haproxy);
      const g = o.gap || {};
      gap.className = "gap";
      if (g.agree === true) {
        gap.textContent = g.lag > 0 ? `API followed after ${fmtSecs(g.lag)}` : "agree";
        gap.classList.add("lag");
      } else if (g.agree === false) {
        gap.textContent = `API behind ${fmtSecs(g.behind)} (→ ${g.expected})`;
        gap.classList.add("behind");
      } else gap.textContent = "";
    }
  }
}

/* ---- charts (uPlot, one pair per listener) ---- */
function chartFor(card, li) {
  let c = state.charts.get(li.id);
  if (c && c.card === card) return c;
  if (c) dropChart(li.id);
  const box = card.querySelector(".charts");
  const w = Math.max(300, Math.floor((box.clientWidth || 700) / 2) - 12);
  const rateEl = el("div", { class: "chart", "data-testid": "chart-rate" }, el("h3", {}, `${li.name || li.id.slice(0, 8)} · requests/s and errors/s`, el("span", { class: "now" })));
  const latEl = el("div", { class: "chart", "data-testid": "chart-latency" }, el("h3", {}, `${li.name || li.id.slice(0, 8)} · latency (ms)`, el("span", { class: "now" })));
  box.append(rateEl, latEl);
  const axes = [{ values: (u, ticks) => ticks.map((t) => fmtT(t)) }, {}];
  const base = { width: w, height: 170, scales: { x: { time: false } }, axes, legend: { show: true }, cursor: { drag: { x: false, y: false } } };
  const rate = new uPlot({ ...base, series: [{ label: "t" },
    { label: "req/s", stroke: "#2f6fd6", width: 1.5 }, { label: "errors/s", stroke: "#d62728", width: 1.5 }] }, [[], [], []], rateEl);
  const lat = new uPlot({ ...base, series: [{ label: "t" },
    { label: "p50", stroke: "#2e9e44", width: 1.5 }, { label: "p95", stroke: "#e08a00", width: 1.5 },
    { label: "p99", stroke: "#d62728", width: 1.5 }] }, [[], [], [], []], latEl);
  c = { card, rate, lat, rateEl, latEl };
  state.charts.set(li.id, c);
  return c;
}
function dropChart(id) {
  const c = state.charts.get(id);
  if (!c) return;
  c.rate.destroy(); c.lat.destroy(); c.rateEl.remove(); c.latEl.remove();
  state.charts.delete(id);
}
function ms(v) { return v == null ? null : v * 1000; }
function drawCharts(listenerCards) {
  for (const [id, { card, li }] of listenerCards) {
    const c = chartFor(card, li);
    const s = state.traffic.get(id) || { t: [], rate: [], error_rate: [], p50: [], p95: [], p99: [] };
    c.rate.setData([s.t, s.rate, s.error_rate]);
    c.lat.setData([s.t, s.p50.map(ms), s.p95.map(ms), s.p99.map(ms)]);
    const n = s.t.length - 1;
    c.rateEl.querySelector(".now").textContent = n >= 0 ? `${(s.rate[n] ?? 0).toFixed(1)} req/s · ${(s.error_rate[n] ?? 0).toFixed(1)} err/s` : "no traffic";
    c.latEl.querySelector(".now").textContent = n >= 0 && s.p95[n] != null ? `p95 ${ms(s.p95[n]).toFixed(1)} ms` : "";
  }
  for (const id of [...state.charts.keys()]) if (!listenerCards.has(id)) dropChart(id);
  for (const id of [...state.traffic.keys()]) if (!listenerCards.has(id)) state.traffic.delete(id);
}

/* ---- traffic ring buffers ---- */
function mergeTraffic(traffic, replace) {
  if (replace) state.traffic.clear();
  for (const [id, cols] of Object.entries(traffic || {})) {
    let s = state.traffic.get(id);
    if (!s) { s = Object.fromEntries(COLS.map((c) => [c, []])); state.traffic.set(id, s); }
    const last = s.t.length ? s.t[s.t.length - 1] : -Infinity;
    (cols.t || []).forEach((t, i) => {
      if (t == null || t <= last) return;
      for (const c of COLS) s[c].push(c === "t" ? t : (cols[c] || [])[i] ?? null);
    });
  }
  const cutoff = state.clock.now - state.window;
  for (const s of state.traffic.values()) {
    let k = 0;
    while (k < s.t.length && s.t[k] < cutoff) k++;
    if (k) for (const c of COLS) s[c].splice(0, k);
  }
}

/* ---- timeline (transitions and injected events, newest first) ---- */
function mergeTimeline(transitions, events, replace) {
  if (replace) { state.transitions = []; state.events = []; }
  state.transitions.push(...(transitions || []));
  state.events.push(...(events || []));
  if (state.transitions.length > state.limits.transitions) state.transitions.splice(0, state.transitions.length - state.limits.transitions);
  if (state.events.length > state.limits.events) state.events.splice(0, state.events.length - state.limits.events);
  if (!replace && !(transitions || []).length && !(events || []).length) return;
  const items = [
    ...state.transitions.map((tr) => ({ t: tr.t, tr })),
    ...state.events.map((ev) => ({ t: Number(ev.at), ev })),
  ].sort((a, b) => b.t - a.t);
  const ol = document.getElementById("timeline");
  const frag = document.createDocumentFragment();
  for (const it of items) {
    if (it.tr) {
      const tr = it.tr;
      const field = tr.field === "data_plane_state" ? "HAProxy" : tr.field.replace("_status", "");
      frag.append(el("li", { class: "transition", "data-kind": tr.kind },
        el("span", { class: "t", text: fmtT(tr.t) }),
        el("span", { class: "what" }, `${tr.kind} ${tr.name} ${field} `, tr.old ? badge(tr.old) : "", tr.old ? " → " : "", badge(tr.new))));
    } else {
      frag.append(el("li", { class: "event", "data-testid": "event" },
        el("span", { class: "t", text: fmtT(it.t) }), el("span", { class: "what", text: it.ev.text })));
    }
  }
  ol.replaceChildren(frag);
}

/* ---- applying a message ---- */
function apply(msg, replace) {
  if (msg.window) state.window = msg.window;
  if (msg.limits) state.limits = msg.limits;
  state.clock = msg.clock || state.clock;
  document.getElementById("clock-now").textContent = fmtT(state.clock.now);
  document.getElementById("clock-speed").textContent = state.clock.speed == null ? "–" : `×${state.clock.speed}`;
  document.getElementById("clock-paused").hidden = !state.clock.paused;
  const lag = document.getElementById("clock-lag");
  lag.hidden = !(state.clock.lag > 1);
  lag.textContent = `simulation ${fmtSecs(state.clock.lag || 0)} behind the clock`;
  document.getElementById("pause").textContent = state.clock.paused ? "resume" : "pause";
  const speedInput = document.getElementById("speed");
  if (document.activeElement !== speedInput && state.clock.speed != null) speedInput.value = String(state.clock.speed);
  const lbs = msg.loadbalancers || [];
  const seen = new Set();
  const listenerCards = new Map();
  for (const lb of lbs) {
    seen.add(lb.id);
    const card = lbCard(lb);
    for (const li of lb.listeners || []) listenerCards.set(li.id, { card, li });
  }
  for (const [id, card] of state.lbEls) if (!seen.has(id)) { card.remove(); state.lbEls.delete(id); }
  document.getElementById("empty").hidden = lbs.length > 0;
  mergeTraffic(msg.traffic, replace);
  drawCharts(listenerCards);
  mergeTimeline(msg.transitions, msg.events, replace);
  document.body.dataset.simNow = String(state.clock.now);
}

function connect() {
  const conn = document.getElementById("conn");
  // ?interval=S on the page's URL asks for a message every S wall seconds (default 0.5)
  const interval = new URLSearchParams(location.search).get("interval");
  const es = new EventSource("/lbsim/ui/events" + (interval ? `?interval=${enc(interval)}` : ""));
  es.addEventListener("snapshot", (e) => { apply(JSON.parse(e.data), true); conn.dataset.state = "live"; conn.textContent = "live"; });
  es.addEventListener("delta", (e) => { apply(JSON.parse(e.data), false); });
  es.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "reconnecting…"; };
  return es;
}
window.lbsimLive = { state, colour, connect: connect() };
