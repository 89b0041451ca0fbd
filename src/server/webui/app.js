/*
 * app.js - grok serve's chat page. Conversations live in the browser's
 * localStorage; an answer streams from POST /v1/chat/completions with
 * "grok_routing": true, so each chunk also carries, for the tokens fed back
 * to the model since the last one, the experts every layer chose and their
 * gates. Stop aborts the fetch, and the server cancels the generation when
 * it sees the connection close. Hovering a token shows its experts per
 * layer; each answer's "experts" button opens a layer x expert heatmap of
 * how many of its tokens went where. With grok serve --api-key, the page
 * asks for the key and sends it as a bearer token.
 */
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "grok.conversations", KEY = "grok.apiKey", SETTINGS = "grok.settings";
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac"];
const enc = new TextEncoder(), dec = new TextDecoder();

let model = { id: "", n_ctx: 0 };
let convs = [], current = null, busy = null; // busy: {controller, conv, msg}

function expertColor(e, E) {
  return E <= PALETTE.length ? PALETTE[e] : `hsl(${(360 * e) / E}, 60%, 55%)`;
}

/* ---- storage ---- */
function load() {
  try { convs = JSON.parse(localStorage.getItem(STORE) || "[]"); } catch { convs = []; }
  if (!Array.isArray(convs)) convs = [];
  try {
    const st = JSON.parse(localStorage.getItem(SETTINGS) || "{}");
    for (const [k, v] of Object.entries(st)) if ($(k)) $(k).value = v;
  } catch { /* defaults stay */ }
  $("api-key").value = localStorage.getItem(KEY) || "";
}
function save() {
  for (;;) {
    try { localStorage.setItem(STORE, JSON.stringify(convs, (k, v) => (k === "node" ? undefined : v))); return; } catch (e) {
      // over quota: drop the routing of the oldest answers that still have it, then retry
      const m = convs.flatMap((c) => c.messages).find((x) => x.routing);
      if (!m) return;
      delete m.routing;
      m.note = "(expert record dropped: browser storage is full)";
    }
  }
}
function saveSettings() {
  const st = {};
  for (const k of ["system", "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed"])
    st[k] = $(k).value;
  localStorage.setItem(SETTINGS, JSON.stringify(st));
  localStorage.setItem(KEY, $("api-key").value);
}

/* ---- the server ---- */
function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}
function askKey(message) {
  return new Promise((resolve) => {
    const d = $("key-dialog");
    $("key-error").textContent = message || "";
    $("key-input").value = $("api-key").value;
    d.addEventListener("close", () => {
      $("api-key").value = $("key-input").value.trim();
      saveSettings();
      resolve();
    }, { once: true });
    d.showModal();
    $("key-input").focus();
  });
}
async function connect() {
  for (let tries = 0; ; tries++) {
    let r;
    try { r = await fetch("/v1/models", { headers: headers() }); } catch (e) {
      $("status").textContent = "cannot reach the server";
      setTimeout(connect, 2000);
      return;
    }
    if (r.status === 401) {
      await askKey(tries ? "That key was refused." : "");
      continue;
    }
    if (r.status === 503) {
      $("status").textContent = "the model is loading…";
      setTimeout(connect, 1000);
      return;
    }
    const j = await r.json();
    const m = j.data && j.data[0];
    model = { id: m ? m.id : "", n_ctx: m && m.meta ? m.meta.n_ctx : 0 };
    $("model-name").textContent = model.id;
    $("status").textContent = "ready: " + model.id;
    $("status").dataset.ready = "1";
    return;
  }
}

/* ---- conversations ---- */
function newConv() {
  const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat",
    created: Date.now(), messages: [] };
  convs.unshift(c);
  current = c;
  save();
  render();
}
function renderList() {
  const ul = $("conversations");
  ul.replaceChildren();
  for (const c of convs) {
    const li = document.createElement("li");
    li.className = c === current ? "active" : "";
    const t = document.createElement("span");
    t.className = "title";
    t.textContent = c.title;
    const del = document.createElement("button");
    del.className = "del";
    del.type = "button";
    del.title = "delete this conversation";
    del.textContent = "×";
    del.onclick = (ev) => {
      ev.stopPropagation();
      if (busy && busy.conv === c) busy.controller.abort();
      convs = convs.filter((x) => x !== c);
      if (current === c) current = convs[0] || null;
      save();
      render();
    };
    li.onclick = () => { current = c; render(); };
    li.append(t, del);
    ul.append(li);
  }
}
function render() {
  renderList();
  const box = $("messages");
  box.replaceChildren();
  if (!current) return;
  for (const m of current.messages) box.append(messageNode(m));
  box.scrollTop = box.scrollHeight;
  showContext(current.lastUsage);
}

/* ---- a message ---- */
function messageNode(m) {
  const div = document.createElement("div");
  div.className = "msg " + m.role;
  const who = document.createElement("div");
  who.className = "who";
  const name = document.createElement("span");
  name.textContent = m.role === "user" ? "You" : "grok";
  who.append(name);
  const body = document.createElement("div");
  body.className = "body";
  div.append(who, body);
  m.node = div;
  if (m.role === "assistant") {
    const btn = document.createElement("button");
    btn.type = "button";
    btn.className = "experts-btn";
    btn.textContent = "experts";
    btn.title = "which experts this answer's tokens went to, per layer";
    btn.onclick = () => toggleHeatmap(m, div);
    const stats = document.createElement("span");
    stats.className = "stats";
    who.append(btn, stats);
  }
  fillMessage(m);
  return div;
}

/* Splits the answer's text into its routed tokens (text_offset is in
 * UTF-8 bytes of the answer) and renders each as a span. */
function fillMessage(m) {
  const div = m.node;
  if (!div) return;
  const body = div.querySelector(".body");
  body.replaceChildren();
  const rt = m.routing;
  if (m.role !== "assistant" || !rt || !rt.tokens.length) {
    body.textContent = m.content;
  } else {
    const bytes = enc.encode(m.content);
    let at = 0;
    rt.tokens.forEach((t, i) => {
      if (t.o < at || t.o > bytes.length) return;
      if (t.o > at) body.append(dec.decode(bytes.slice(at, t.o)));
      const next = rt.tokens[i + 1];
      let end = next ? next.o : t.o + enc.encode(t.t).length;
      end = Math.min(Math.max(end, t.o), bytes.length);
      const span = document.createElement("span");
      span.className = "tok";
      span.textContent = dec.decode(bytes.slice(t.o, end));
      span.dataset.i = String(i);
      span.onmouseenter = (ev) => showTokenTip(ev, m, i);
      span.onmousemove = moveTip;
      span.onmouseleave = hideTip;
      body.append(span);
      at = end;
    });
    if (at < bytes.length) body.append(dec.decode(bytes.slice(at)));
  }
  for (const cls of ["error", "note"]) {
    const v = cls === "error" ? m.error : m.note;
    if (!v) continue;
    const p = document.createElement("div");
    p.className = cls;
    p.textContent = v;
    div.querySelector(".body").append(p);
  }
  const stats = div.querySelector(".stats");
  if (stats && m.stats) stats.textContent = `${m.stats.tokens} tokens, ${m.stats.tps.toFixed(1)} tok/s`;
  const hm = div.querySelector(".heatmap");
  if (hm) { hm.remove(); div.querySelector(".heatmap-note")?.remove(); toggleHeatmap(m, div); }
}

/* ---- the expert views ---- */
function showTokenTip(ev, m, i) {
  const rt = m.routing, t = rt.tokens[i], tip = $("tooltip");
  tip.replaceChildren();
  const head = document.createElement("div");
  head.textContent = `token ${t.i}: ${JSON.stringify(t.t)} (id ${t.id})`;
  const tab = document.createElement("table");
  t.e.forEach((experts, l) => {
    const tr = document.createElement("tr");
    const lab = document.createElement("td");
    lab.textContent = "layer " + l;
    tr.append(lab);
    experts.forEach((e, k) => {
      const td = document.createElement("td");
      const sw = document.createElement("span");
      sw.className = "sw";
      sw.style.background = expertColor(e, rt.experts);
      td.append(sw, `${e} (${t.g[l][k].toFixed(2)})`);
      tr.append(td);
    });
    tab.append(tr);
  });
  tip.append(head, tab);
  tip.hidden = false;
  moveTip(ev);
  const hm = m.node && m.node.querySelector(".heatmap");
  if (hm) for (const c of hm.querySelectorAll(".cell")) {
    const l = +c.dataset.l, e = +c.dataset.e;
    c.classList.toggle("on", t.e[l] && t.e[l].includes(e));
  }
}
function moveTip(ev) {
  const tip = $("tooltip");
  const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  // above the pointer, so the heatmap under the text stays in view
  let y = ev.clientY - tip.offsetHeight - 14;
  if (y < 8) y = Math.min(ev.clientY + 16, window.innerHeight - tip.offsetHeight - 8);
  tip.style.left = x + "px";
  tip.style.top = y + "px";
}
function hideTip() {
  $("tooltip").hidden = true;
  for (const c of document.querySelectorAll(".heatmap .cell.on")) c.classList.remove("on");
}
function toggleHeatmap(m, div) {
  const old = div.querySelector(".heatmap");
  if (old) { old.remove(); div.querySelector(".heatmap-note")?.remove(); return; }
  const rt = m.routing;
  const grid = document.createElement("div");
  grid.className = "heatmap";
  const note = document.createElement("div");
  note.className = "heatmap-note";
  if (!rt || !rt.tokens.length) {
    note.textContent = "no expert record for this answer";
    div.append(note);
    return;
  }
  const L = rt.layers, E = rt.experts, n = rt.tokens.length;
  const count = Array.from({ length: L }, () => new Array(E).fill(0));
  for (const t of rt.tokens) t.e.forEach((experts, l) => { for (const e of experts) count[l][e]++; });
  grid.style.gridTemplateColumns = `auto repeat(${E}, auto)`;
  grid.append(Object.assign(document.createElement("div"), { className: "lab", textContent: "" }));
  for (let e = 0; e < E; e++)
    grid.append(Object.assign(document.createElement("div"), { className: "lab", textContent: "e" + e }));
  for (let l = 0; l < L; l++) {
    grid.append(Object.assign(document.createElement("div"), { className: "lab", textContent: "L" + l }));
    for (let e = 0; e < E; e++) {
      const share = count[l][e] / n; // of the tokens, the fraction that chose e (sums to k per layer)
      const c = document.createElement("div");
      c.className = "cell";
      c.dataset.l = String(l);
      c.dataset.e = String(e);
      c.style.background = `rgba(59, 111, 182, ${Math.min(1, share * 1.6).toFixed(3)})`;
      c.style.color = share > 0.45 ? "#fff" : "#111";
      c.textContent = count[l][e] ? String(count[l][e]) : "";
      c.title = `layer ${l}, expert ${e}: ${count[l][e]} of ${n} tokens (${(100 * share).toFixed(0)}%)`;
      grid.append(c);
    }
  }
  note.textContent = `${n} tokens; each cell: how many chose the expert in that layer (top-${rt.k} of ${E}; ` +
    `even routing would give ${((n * rt.k) / E).toFixed(1)})`;
  div.append(grid, note);
}

/* ---- status ---- */
function showContext(u) {
  if (!u || !model.n_ctx) { $("context-text").textContent = ""; $("context-bar").style.width = "0"; return; }
  const used = u.prompt_tokens + u.completion_tokens;
  $("context-text").textContent = `context ${used} / ${model.n_ctx}`;
  $("context-bar").style.width = Math.min(100, (100 * used) / model.n_ctx).toFixed(1) + "%";
}

/* ---- sending ---- */
function params() {
  const num = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); };
  const p = { temperature: num("temperature"), top_p: num("top_p"), top_k: num("top_k"), min_p: num("min_p"),
    repeat_penalty: num("repeat_penalty"), max_tokens: num("max_tokens"), seed: num("seed") };
  for (const k of Object.keys(p)) if (p[k] === undefined || Number.isNaN(p[k])) delete p[k];
  return p;
}
function setBusy(b) {
  busy = b;
  $("send").hidden = !!b;
  $("stop").hidden = !b;
}

async function send(text) {
  if (busy) return;
  if (!current) newConv();
  const conv = current;
  conv.messages.push({ role: "user", content: text });
  if (conv.title === "New chat") conv.title = text.slice(0, 40);
  const msg = { role: "assistant", content: "", routing: null };
  conv.messages.push(msg);
  save();
  render();
  const history = [];
  const sys = $("system").value.trim();
  if (sys) history.push({ role: "system", content: sys });
  for (const m of conv.messages.slice(0, -1)) history.push({ role: m.role, content: m.content });
  let max = params().max_tokens;
  if (model.n_ctx && max) max = Math.min(max, model.n_ctx - 1);
  const body = Object.assign(params(), { messages: history, stream: true,
    stream_options: { include_usage: true }, grok_routing: true });
  if (max) body.max_tokens = max;
  const controller = new AbortController();
  setBusy({ controller, conv, msg });
  const t0 = performance.now();
  let tFirst = 0, nTok = 0, usage = null, stopped = false;
  const update = () => {
    if (nTok && tFirst) {
      const dt = (performance.now() - tFirst) / 1000;
      msg.stats = { tokens: nTok, tps: dt > 0 ? (nTok - 1) / dt : 0 };
      $("speed").textContent = `${msg.stats.tps.toFixed(1)} tok/s`;
    }
    if (current === conv) fillMessage(msg);
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  try {
    let r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body),
      signal: controller.signal });
    if (r.status === 401) {
      await askKey("The server asks for an API key.");
      r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body),
        signal: controller.signal });
    }
    if (!r.ok) {
      let m = r.statusText;
      try { m = (await r.json()).error.message; } catch { /* the status line says it */ }
      throw new Error(`${r.status}: ${m}`);
    }
    const reader = r.body.getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of ev.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const j = JSON.parse(data);
          if (j.error) throw new Error(j.error.message);
          if (j.usage) usage = j.usage;
          const ch = j.choices && j.choices[0];
          if (!ch) continue;
          if (ch.delta && ch.delta.content) {
            if (!tFirst) tFirst = performance.now();
            msg.content += ch.delta.content;
          }
          const gr = ch.grok_routing;
          if (gr) {
            if (!msg.routing) msg.routing = { layers: gr.layers, experts: gr.experts, k: gr.k, tokens: [] };
            for (const t of gr.tokens)
              msg.routing.tokens.push({ i: t.index, id: t.id, t: t.token, o: t.text_offset, e: t.experts, g: t.gates });
            nTok = Math.max(nTok, msg.routing.tokens.length + 1);
          }
        }
      }
      update();
    }
  } catch (e) {
    if (e.name === "AbortError") { stopped = true; msg.note = "(stopped)"; } else msg.error = String(e.message || e);
  }
  const t1 = performance.now();
  if (usage) {
    nTok = usage.completion_tokens;
    conv.lastUsage = usage;
    if (current === conv) showContext(usage);
  }
  if (nTok) {
    const dt = (t1 - (tFirst || t0)) / 1000;
    msg.stats = { tokens: nTok, tps: dt > 0 && nTok > 1 ? (nTok - 1) / dt : 0 };
    $("speed").textContent = `${msg.stats.tps.toFixed(1)} tok/s`;
  }
  msg.stopped = stopped;
  setBusy(null);
  delete msg.node;
  save();
  if (current === conv) render();
}

/* ---- wiring ---- */
function init() {
  load();
  current = convs[0] || null;
  render();
  $("new-chat").onclick = () => newConv();
  $("settings-btn").onclick = () => {
    const s = $("settings");
    s.hidden = !s.hidden;
    $("settings-btn").setAttribute("aria-expanded", String(!s.hidden));
  };
  $("settings").addEventListener("change", saveSettings);
  $("composer").onsubmit = (ev) => {
    ev.preventDefault();
    const text = $("input").value;
    if (!text.trim() || busy) return;
    $("input").value = "";
    send(text);
  };
  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("composer").requestSubmit(); }
  });
  $("stop").onclick = () => { if (busy) busy.controller.abort(); };
  connect();
}
init();
