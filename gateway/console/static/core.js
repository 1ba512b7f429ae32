// Shared by every view: the API client, a DOM builder, formatting, the live feed
// and the alarm sound. Plain browser JavaScript, no build step, no external asset.
"use strict";

const C = window.JF = {
  views: {},            // name -> async fn(container, arg) returning an optional cleanup fn
  session: null,
  queue: new Map(),     // event id -> queue item, kept current by the live feed
  onLive: new Set(),    // fns(message) the current view listens with
  clockSkewMs: 0,       // server time - browser time, so timers count from the server's clock
};

// -- API ---------------------------------------------------------------------------
C.api = async function (method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && C.session) headers["X-CSRF-Token"] = C.session.csrf_token;
  const response = await fetch(path, {method, headers, credentials: "same-origin",
                                      body: body === undefined ? undefined : JSON.stringify(body)});
  if (response.status === 401) {
    location.href = "login";
    throw new Error("logged out");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  if (data.now_ms) C.clockSkewMs = data.now_ms - Date.now();
  return data;
};

C.query = function (params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
};

// -- DOM: text goes in as text nodes, never as HTML, so no record can inject markup --
C.h = function (tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    // Styles through the CSSOM: the Content-Security-Policy forbids style="" attributes.
    else if (k === "style") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
};

C.table = function (columns, rows, rowAttrs) {
  const h = C.h;
  return h("table", {}, h("thead", {}, h("tr", {}, columns.map(c => h("th", {}, c[0])))),
    h("tbody", {}, rows.map(r => h("tr", rowAttrs ? rowAttrs(r) : {}, columns.map(c => h("td", {}, c[1](r)))))));
};

C.badge = (text, kind) => C.h("span", {class: "badge " + (kind || text)}, text);

// -- formatting ---------------------------------------------------------------------
C.serverNow = () => Date.now() + C.clockSkewMs;
C.time = ms => ms ? new Date(ms).toLocaleString() : "—";
C.elapsed = function (ms) {
  const s = Math.max(0, Math.floor((C.serverNow() - ms) / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor(s % 3600 / 60), ss = s % 60;
  return (hh ? hh + ":" + String(mm).padStart(2, "0") : mm) + ":" + String(ss).padStart(2, "0");
};
C.ago = ms => ms ? C.elapsed(ms) + " ago" : "never";
C.pad3 = n => String(n).padStart(3, "0");
C.siteName = e => (e.site && e.site.site) || "";
C.qualifier = q => ({1: "new", 3: "restore", 6: "status"})[q] || q;
C.priorityLabel = p => ["life safety", "trouble", "routine"][p] || p;
C.message = (container, text, kind) => container.append(C.h("p", {class: kind || "error"}, text));

// -- alarm sound: two short beeps from WebAudio (no sound file needed) ---------------
C.sound = {
  ctx: null,
  enabled: false,
  enable() {
    this.ctx = this.ctx || new AudioContext();
    this.ctx.resume();
    this.enabled = true;
  },
  beep() {
    if (!this.enabled || !this.ctx) return;
    const t = this.ctx.currentTime;
    for (const offset of [0, 0.28]) {
      const osc = this.ctx.createOscillator(), gain = this.ctx.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, t + offset + 0.2);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.22);
    }
  },
};

// -- live feed: a WebSocket that reconnects, reloading the queue each time ------------
C.live = {
  socket: null,
  retryMs: 1000,
  connect() {
    const url = new URL("api/live", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const status = document.getElementById("live-status");
    const ws = this.socket = new WebSocket(url);
    ws.onopen = async () => {
      this.retryMs = 1000;
      status.textContent = "live";
      status.className = "pill live";
      if (C.can("queue.read")) await C.loadQueue();
    };
    ws.onmessage = ev => C.apply(JSON.parse(ev.data));
    ws.onclose = () => {
      status.textContent = "reconnecting";
      status.className = "pill down";
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15000);
    };
  },
};

C.can = permission => !!C.session && C.session.permissions.includes(permission);

C.loadQueue = async function () {
  const data = await C.api("GET", "api/queue");
  C.queue = new Map(data.items.map(i => [i.id, i]));
  C.queueMeta = data;
  C.updateCount();
  for (const fn of C.onLive) fn({type: "reload"});
};

C.apply = function (message) {
  if (message.type === "alarm") {
    const before = C.queue.get(message.item.id);
    C.queue.set(message.item.id, message.item);
    // Sound for a new alarm, and again when one escalates.
    if (!before || (!before.escalated_at_ms && message.item.escalated_at_ms)) C.sound.beep();
  } else if (message.type === "alarm-disposed") {
    C.queue.delete(message.item.id);
  }
  C.updateCount();
  for (const fn of C.onLive) fn(message);
};

C.updateCount = function () {
  const link = document.querySelector('#nav a[data-page="queue"]');
  if (!link) return;
  link.replaceChildren("Queue", C.queue.size ? C.h("span", {class: "count"}, C.queue.size) : "");
};

C.sortedQueue = () => [...C.queue.values()].sort(
  (a, b) => a.priority - b.priority || a.received_at_ms - b.received_at_ms || a.id - b.id);
