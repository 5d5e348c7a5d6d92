// reglab playground: the page. Every control is one entry of the server's controls
// table (name, default, range); the URL hash holds name=value for each, plus the pins,
// so a view is a link. The server checks every value; this page only draws
// (with draw.js).
"use strict";

const CLIENT = Math.random().toString(36).slice(2); // this tab: its jobs are its own
// PALETTE, SIDE, drawBoundary, drawCurves and mean come from draw.js

let CONTROLS = [];
let MAX_MEMBERS = 8;
const state = {};   // control name -> raw string (page and live setting)
let pins = [];      // each: {setting name -> raw string}
let extra = {};     // unknown hash keys: sent on, so the server names them
let request = 0;    // the newest POST; older replies are ignored
let currentJob = null;
let source = null;  // the EventSource of currentJob
let data = null;    // points of currentJob
let lastFrame = null;
let timer = null;
let changedAt = 0;

// --- URL hash <-> state -------------------------------------------------------------

function settingNames() {
  return CONTROLS.filter((c) => c.scope === "setting").map((c) => c.name);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  for (const c of CONTROLS) state[c.name] = String(c.default);
  extra = {};
  pins = [];
  for (const [k, v] of params) {
    if (k === "pins") {
      pins = v.split(";").filter((g) => g.trim()).map((g) => {
        const pin = {}; // a name left out means its default, as on the server
        for (const c of CONTROLS) if (c.scope === "setting") pin[c.name] = String(c.default);
        for (const item of g.split(",")) {
          const at = item.indexOf(":");
          pin[item.slice(0, at)] = item.slice(at + 1);
        }
        return pin;
      });
    } else if (k in state) state[k] = v;
    else extra[k] = v;
  }
}

function pinsString() {
  return pins.map((p) => Object.entries(p).map(([k, v]) => `${k}:${v}`).join(","))
    .join(";");
}

function requestParams() {
  const params = { ...extra, ...state };
  if (pins.length) params.pins = pinsString();
  return params;
}

function writeHash() {
  const params = new URLSearchParams(requestParams());
  history.replaceState(null, "", "#" + params.toString());
}

// --- controls -----------------------------------------------------------------------

function toSlider(c, value) { // value -> slider position in [0, 1000]
  const v = Number(value);
  if (c.scale === "log") {
    return 1000 * Math.log(v / c.low) / Math.log(c.high / c.low);
  }
  return 1000 * (v - c.low) / (c.high - c.low);
}

function fromSlider(c, pos) {
  if (c.scale === "log") {
    const v = c.low * Math.pow(c.high / c.low, pos / 1000);
    return Number(v.toPrecision(2));
  }
  let v = c.low + (pos / 1000) * (c.high - c.low);
  if (c.step) v = Math.round(v / c.step) * c.step;
  return Number(v.toPrecision(6));
}

function buildControls() {
  const aside = document.getElementById("controls");
  const groups = {};
  for (const c of CONTROLS) {
    if (!groups[c.group]) {
      const fs = document.createElement("fieldset");
      fs.innerHTML = `<legend>${c.group}</legend>`;
      aside.appendChild(fs);
      groups[c.group] = fs;
    }
    const div = document.createElement("div");
    div.className = `control ${c.scope}`;
    div.id = `control-${c.name}`;
    const id = `input-${c.name}`;
    let widget;
    if (c.choices.length) {
      widget = `<select id="${id}" name="${c.name}">` +
        c.choices.map((v) => `<option value="${v}">${v}</option>`).join("") +
        "</select>";
    } else if (c.kind === "widths") {
      widget = `<input type="text" id="${id}" name="${c.name}">`;
    } else {
      widget = `<div class="row"><input type="range" id="slider-${c.name}" min="0"
        max="1000" step="1" aria-label="${c.name} slider"><input class="value"
        type="text" id="${id}" name="${c.name}"></div>`;
    }
    div.innerHTML = `<label for="${id}"><span>${c.name}</span></label>
      <div class="meaning">${c.meaning}</div>${widget}
      <div class="error" id="error-${c.name}" hidden></div>`;
    groups[c.group].appendChild(div);
    const input = document.getElementById(id);
    input.addEventListener("change", () => { state[c.name] = input.value; changed(); });
    const slider = document.getElementById(`slider-${c.name}`);
    if (slider) {
      slider.addEventListener("input", () => {
        const v = fromSlider(c, Number(slider.value));
        input.value = String(v);
        state[c.name] = String(v);
        changed();
      });
    }
  }
}

function showState() {
  for (const c of CONTROLS) {
    const input = document.getElementById(`input-${c.name}`);
    input.value = state[c.name];
    const slider = document.getElementById(`slider-${c.name}`);
    if (slider && isFinite(Number(state[c.name]))) {
      slider.value = String(Math.round(toSlider(c, state[c.name])));
    }
  }
}

function showErrors(errors) {
  for (const el of document.querySelectorAll(".control")) el.classList.remove("bad");
  for (const el of document.querySelectorAll(".control .error")) el.hidden = true;
  const general = document.getElementById("request-error");
  general.hidden = true;
  general.textContent = "";
  for (const e of errors) {
    const el = document.getElementById(`error-${e.control}`);
    if (el) {
      el.textContent = e.message;
      el.hidden = false;
      document.getElementById(`control-${e.control}`).classList.add("bad");
    } else {
      general.textContent += (general.textContent ? "\n" : "") + `${e.control}: ${e.message}`;
      general.hidden = false;
    }
  }
}

// --- jobs ---------------------------------------------------------------------------

function changed() {
  writeHash();
  clearTimeout(timer);
  timer = setTimeout(startJob, 120); // a dragged slider sends at most ~8 jobs a second
}

async function startJob() {
  const mine = ++request;
  changedAt = performance.now();
  setStatus("sending…");
  let reply, body;
  try {
    reply = await fetch("/api/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client: CLIENT, params: requestParams() }),
    });
    body = await reply.json();
  } catch (err) {
    if (mine === request) setStatus(`server unreachable (${err})`);
    return;
  }
  if (mine !== request) return; // a newer request went out meanwhile
  if (!reply.ok) {
    showErrors(body.errors || [{ control: "request", message: body.error }]);
    setStatus("refused: fix the marked setting");
    return;
  }
  showErrors([]);
  follow(body.job);
}

function follow(jobId) {
  if (source) source.close();
  currentJob = jobId;
  document.getElementById("save").disabled = true;
  document.body.dataset.job = jobId;
  setStatus(`job ${jobId}: compiling or waiting for the previous one…`);
  source = new EventSource(`/api/jobs/${jobId}/events`);
  const mineOnly = (fn) => (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.job !== currentJob) return; // a stale job's event: never drawn
    fn(msg);
  };
  source.addEventListener("data", mineOnly((msg) => { data = msg; }));
  source.addEventListener("frame", mineOnly(drawFrame));
  source.addEventListener("finished", mineOnly((msg) => {
    source.close();
    document.getElementById("save").disabled = false;
    document.body.dataset.finished = msg.job;
    setStatus(`done: ${lastFrame.epoch.toLocaleString("en")} epochs in` +
      ` ${msg.seconds.toFixed(2)} s (job ${msg.job})`);
  }));
  source.addEventListener("failed", mineOnly((msg) => {
    source.close();
    setStatus(`job ${msg.job} failed: ${msg.message}`);
  }));
  source.addEventListener("cancelled", mineOnly(() => source.close()));
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) return; };
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

// --- drawing ------------------------------------------------------------------------

function members() {
  return [state, ...pins];
}

const WORDS = { learning_rate: "lr₀", alpha: "α", tau: "τ" };

function defaults() {
  return Object.fromEntries(CONTROLS.map((c) => [c.name, String(c.default)]));
}

function summary(m) { // a member's settings in words, e.g. "L2 0.0025, dropout 0.2"
  const parts = [];
  const how = m.penalty === "coupled" ? "" : ` (${m.penalty})`;
  if (Number(m.l2_strength) > 0) parts.push(`L2 ${m.l2_strength}${how}`);
  if (Number(m.l1_strength) > 0) parts.push(`L1 ${m.l1_strength}${how}`);
  if (Number(m.p_drop) > 0) {
    parts.push(`dropout ${m.p_drop} (${m.mask.replace("_", " ")} mask)`);
  }
  if (Number(m.smoothing) > 0) parts.push(`label smoothing ${m.smoothing}`);
  if (Number(m.max_norm) > 0) parts.push(`max-norm ${m.max_norm}`);
  const text = parts.length ? parts.join(", ") : "no regularizer";
  const d = defaults();
  const schedule = Object.keys(WORDS).filter((k) => String(m[k]) !== d[k])
    .map((k) => `${WORDS[k]} ${m[k]}`);
  return schedule.length ? `${text}; ${schedule.join(", ")}` : text;
}

function describe(m, i) {
  return (i === 0 ? "follows the sliders: " : "pinned: ") + summary(m);
}

function ensurePanels(n) {
  const box = document.getElementById("panels");
  while (box.children.length > n) box.lastChild.remove();
  while (box.children.length < n) {
    const i = box.children.length;
    const div = document.createElement("div");
    div.className = "panel" + (i === 0 ? " live" : "");
    div.innerHTML = `<div class="title"><span><span class="swatch"
      style="background:${PALETTE[i]}"></span>${i === 0 ? "live" : "pin " + i}</span>
      ${i === 0 ? "" : `<button class="unpin" title="unpin" data-pin="${i}">×</button>`}
      </div><canvas width="${SIDE}" height="${SIDE}"></canvas>
      <div class="acc"></div><div class="desc"></div>`;
    box.appendChild(div);
    const unpin = div.querySelector(".unpin");
    if (unpin) {
      unpin.addEventListener("click", () => {
        pins.splice(Number(unpin.dataset.pin) - 1, 1);
        changed();
      });
    }
  }
}

function drawFrame(f) {
  lastFrame = f;
  const n = f.test_accuracy[0].length;
  ensurePanels(n);
  const raw = atob(f.prob);
  const prob = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) prob[i] = raw.charCodeAt(i);
  const panels = document.getElementById("panels").children;
  const ms = members();
  for (let m = 0; m < n; m++) {
    drawBoundary(panels[m].querySelector("canvas"), prob, m * f.grid * f.grid, f.grid,
      data);
    const acc = mean(f.test_accuracy.map((row) => row[m]));
    const seeds = f.test_accuracy.length;
    const diverged = f.diverged.some((row) => row[m]);
    panels[m].querySelector(".acc").textContent = acc === null ? "" :
      `clean test acc ${acc.toFixed(3)}` + (seeds > 1 ? ` (mean of ${seeds} seeds)` : "") +
      (diverged ? " · diverged" : "");
    panels[m].querySelector(".desc").textContent = ms[m] ? describe(ms[m], m) : "";
  }
  document.body.dataset.frames = String(Number(document.body.dataset.frames || 0) + 1);
  document.body.dataset.epoch = String(f.epoch);
  document.body.dataset.frameJob = f.job;
  drawCurves(f);
  const since = ((performance.now() - changedAt) / 1000).toFixed(2);
  setStatus(`training: epoch ${f.epoch.toLocaleString("en")} of` +
    ` ${f.epochs.toLocaleString("en")} (${since} s)`);
}

// --- buttons ------------------------------------------------------------------------

function wireButtons() {
  document.getElementById("pin").addEventListener("click", () => {
    if (pins.length >= MAX_MEMBERS - 1) {
      showErrors([{ control: "pins", message: `at most ${MAX_MEMBERS - 1} pins beside ` +
        `the live setting (${MAX_MEMBERS} members train as one program) — unpin one` }]);
      return;
    }
    const pin = {};
    for (const name of settingNames()) pin[name] = state[name];
    pins.push(pin);
    changed();
  });
  document.getElementById("clear").addEventListener("click", () => { pins = []; changed(); });
  document.getElementById("reset").addEventListener("click", () => {
    location.hash = "";
    readHash(); showState(); changed();
  });
  document.getElementById("save").addEventListener("click", async () => {
    const job = currentJob;
    const reply = await fetch(`/api/jobs/${job}/save`, { method: "POST" });
    const body = await reply.json();
    setStatus(reply.ok ? `saved job ${job} as run ${body.run} (experiment ${body.experiment})`
      : `not saved: ${body.error}`);
  });
  window.addEventListener("resize", () => { if (lastFrame) drawCurves(lastFrame); });
  window.addEventListener("hashchange", () => {
    const before = new URLSearchParams(requestParams()).toString();
    readHash();
    if (new URLSearchParams(requestParams()).toString() !== before) {
      showState(); changed();
    }
  });
}

async function main() {
  const reply = await fetch("/api/controls");
  const body = await reply.json();
  CONTROLS = body.controls;
  MAX_MEMBERS = body.max_members;
  readHash();
  buildControls();
  showState();
  wireButtons();
  startJob();
}

main();
