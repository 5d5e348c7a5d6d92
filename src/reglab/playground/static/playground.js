// reglab playground: the page. Every control is one entry of the server's controls
// table (name, default, range); the URL hash holds name=value for each, plus the pins,
// so a view is a link, and each committed change is a history entry, so Back steps
// through the views. The server checks every value; this page only draws (draw.js).
"use strict";

// this tab: its jobs are its own (96 random bits, as the job ids)
const CLIENT = Array.from(crypto.getRandomValues(new Uint8Array(12)),
  (b) => b.toString(16).padStart(2, "0")).join("");
let PAGE_SECRET = "";  // this run of the server's secret: sent with every change
let SERVER = "";       // this run of the server's id: another one means it restarted
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
let GROUPS = [];

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

function writeHash(how) {
  // each change (a drag of a slider, a typed value, a button) is one history entry,
  // so Back returns to the view before it; the later steps of a drag rewrite it
  const hash = "#" + new URLSearchParams(requestParams()).toString();
  if (hash === location.hash) return;
  if (how === "push") history.pushState(null, "", hash);
  else if (how === "replace") history.replaceState(null, "", hash);
}

// --- controls -----------------------------------------------------------------------

function toSlider(c, value) { // value -> slider position in [0, 1000]
  const v = Number(value), lo = c.slider_low, hi = c.slider_high;
  let pos;
  if (c.scale === "log") {
    pos = v < lo ? 0 : Math.max(1, 1000 * Math.log(v / lo) / Math.log(hi / lo));
  } else {
    pos = 1000 * (v - lo) / (hi - lo);
  }
  return Math.min(1000, Math.max(0, pos));
}

function fromSlider(c, pos) {
  const lo = c.slider_low, hi = c.slider_high;
  if (c.scale === "log") {
    // the left end is the allowed low itself (0: off) where the decades stop short
    if (pos === 0 && c.low !== null && !c.low_open) return c.low;
    const v = lo * Math.pow(hi / lo, pos / 1000);
    return Number(v.toPrecision(2));
  }
  let v = lo + (pos / 1000) * (hi - lo);
  if (c.step) v = Math.round(v / c.step) * c.step;
  return Number(v.toPrecision(6));
}

function showSlider(c) {
  const slider = document.getElementById(`slider-${c.name}`);
  const v = state[c.name];
  if (slider && v.trim() !== "" && isFinite(Number(v))) {
    slider.value = String(Math.round(toSlider(c, v)));
  }
}

function buildControls() {
  const aside = document.getElementById("controls");
  const groups = {};
  const order = [...GROUPS, ...CONTROLS.map((c) => c.group)];
  for (const group of order) {
    if (groups[group]) continue;
    const fs = document.createElement("fieldset");
    fs.innerHTML = `<legend>${group}</legend>`;
    aside.appendChild(fs);
    groups[group] = fs;
  }
  for (const c of CONTROLS) {
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
    input.addEventListener("change", () => { // a typed value moves its slider
      state[c.name] = input.value.trim();
      showSlider(c);
      changed("push");
    });
    const slider = document.getElementById(`slider-${c.name}`);
    if (slider) {
      let dragging = false; // a drag's first step adds the history entry
      const move = (done) => () => {
        const v = fromSlider(c, Number(slider.value));
        input.value = String(v);
        state[c.name] = String(v);
        changed(dragging ? "replace" : "push");
        dragging = !done;
      };
      slider.addEventListener("input", move(false));
      slider.addEventListener("change", move(true)); // let go
    }
  }
  for (const fs of Object.values(groups)) if (!fs.querySelector(".control")) fs.remove();
}

function showState() {
  for (const c of CONTROLS) {
    document.getElementById(`input-${c.name}`).value = state[c.name];
    showSlider(c);
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

function changed(how) {
  writeHash(how);
  disarmSave(); // the shown settings are no longer those of the finished job
  wait("sending…");
  clearTimeout(timer);
  timer = setTimeout(startJob, 120); // a dragged slider sends at most ~8 jobs a second
}

function disarmSave() {
  document.getElementById("save").disabled = true;
  delete document.body.dataset.finished;
}

function wait(text) { // the last picture stays, dimmed, with what is happening
  document.getElementById("picture").classList.add("dim");
  const box = document.getElementById("waiting");
  box.textContent = text;
  box.hidden = false;
}

function unwait() {
  document.getElementById("picture").classList.remove("dim");
  document.getElementById("waiting").hidden = true;
}

function post(url, payload) {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Reglab-Page": PAGE_SECRET },
    body: JSON.stringify(payload),
  });
}

async function startJob() {
  const mine = ++request;
  changedAt = performance.now();
  const params = requestParams();
  let reply, body;
  try {
    reply = await post("/api/jobs", { client: CLIENT, params });
    body = await reply.json();
  } catch (err) {
    if (mine === request) checkServer(`server unreachable (${err})`);
    return;
  }
  if (mine !== request) return; // a newer request went out meanwhile
  if (!reply.ok) {
    if (body.reason === "stale_page") { checkServer(body.error); return; }
    if (source) source.close(); // nothing of the refused settings will be drawn
    currentJob = null;
    showErrors(body.errors || [{ control: "request", message: body.error }]);
    setStatus("refused: fix the marked setting");
    wait("refused: fix the marked setting");
    return;
  }
  showErrors([]);
  follow(body.job);
}

function follow(jobId) {
  if (source) source.close();
  currentJob = jobId;
  disarmSave();
  document.body.dataset.job = jobId;
  setStatus(`job ${jobId.slice(0, 6)}…: waiting for the server`);
  source = new EventSource(`/api/jobs/${jobId}/events`);
  const mineOnly = (fn) => (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.job !== currentJob) return; // a stale job's event: never drawn
    fn(msg);
  };
  source.addEventListener("status", mineOnly((msg) => {
    let text = "starting…";
    if (msg.state === "queued" && msg.ahead > 0) {
      text = `queued behind ${msg.ahead} job${msg.ahead === 1 ? "" : "s"}`;
    } else if (msg.state === "compiling") {
      text = `compiling for ${msg.members} member${msg.members === 1 ? "" : "s"},` +
        ` ~${msg.estimate_s} s`;
    }
    wait(text);
    setStatus(text);
  }));
  source.addEventListener("data", mineOnly((msg) => { data = msg; }));
  source.addEventListener("frame", mineOnly((msg) => { unwait(); drawFrame(msg); }));
  source.addEventListener("finished", mineOnly((msg) => {
    source.close();
    document.getElementById("save").disabled = false;
    document.body.dataset.finished = msg.job;
    setStatus(`done: ${lastFrame.epoch.toLocaleString("en")} epochs in` +
      ` ${msg.seconds.toFixed(2)} s`);
  }));
  source.addEventListener("failed", mineOnly((msg) => {
    source.close();
    setStatus(`the job failed: ${msg.message}`);
  }));
  source.addEventListener("cancelled", mineOnly(() => source.close()));
  source.onerror = () => {
    if (jobId !== currentJob) return;
    source.close();
    checkServer("lost the server");
  };
}

async function checkServer(why) {
  // a different server id means it restarted: this page's jobs are gone
  try {
    const body = await (await fetch("/api/controls")).json();
    if (body.server !== SERVER) {
      document.getElementById("restarted").hidden = false;
      document.body.dataset.restarted = "1";
      wait("the server restarted: re-run to train again");
      setStatus("the server restarted");
      disarmSave();
      return;
    }
    setStatus(why);
  } catch (err) {
    setStatus(`${why}: server unreachable`);
    wait("the server is unreachable");
  }
}

async function rerun() {
  const body = await (await fetch("/api/controls")).json();
  PAGE_SECRET = body.page_secret;
  SERVER = body.server;
  document.getElementById("restarted").hidden = true;
  delete document.body.dataset.restarted;
  startJob();
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

// short names of the post's regularizers; a row added to the table shows its own name
const NAMES = { l2_strength: "L2", l1_strength: "L1", p_drop: "dropout",
  smoothing: "label smoothing", max_norm: "max-norm" };

function summary(m) { // a member's settings in words, e.g. "L2 0.0025, dropout 0.2"
  const parts = [];
  for (const c of CONTROLS) { // each regularizer moved off what does nothing
    if (c.scope !== "setting" || c.group !== "regularizers" || c.off === null) continue;
    const v = m[c.name];
    if (String(v) === String(c.off) || Number(v) === Number(c.off)) continue;
    let part = `${NAMES[c.name] || c.name.replace(/_/g, " ")} ${v}`;
    if (c.name.endsWith("1_strength") || c.name.endsWith("2_strength")) {
      if (m.penalty !== "coupled") part += ` (${m.penalty})`;
    }
    if (c.name === "p_drop") part += ` (${m.mask.replace("_", " ")} mask)`;
    parts.push(part);
  }
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
        changed("push");
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
    changed("push");
  });
  document.getElementById("clear").addEventListener("click", () => {
    pins = []; changed("push");
  });
  document.getElementById("reset").addEventListener("click", () => {
    for (const c of CONTROLS) state[c.name] = String(c.default);
    pins = []; extra = {};
    showState(); changed("push");
  });
  document.getElementById("rerun").addEventListener("click", rerun);
  document.getElementById("save").addEventListener("click", async () => {
    // the job and the settings the page shows: the server refuses a mismatch
    const job = currentJob;
    let reply, body;
    try {
      reply = await post(`/api/jobs/${job}/save`,
        { client: CLIENT, params: requestParams() });
      body = await reply.json();
    } catch (err) {
      checkServer(`not saved: server unreachable (${err})`);
      return;
    }
    if (reply.ok) {
      setStatus(`saved as run ${body.run} (experiment ${body.experiment})`);
      document.body.dataset.saved = body.run;
    } else if (body.reason === "unknown_job" || body.reason === "stale_page") {
      checkServer(`not saved: ${body.error}`);
    } else {
      setStatus(`not saved: ${body.error}`);
    }
  });
  window.addEventListener("resize", () => { if (lastFrame) drawCurves(lastFrame); });
  const back = () => { // Back/Forward, or an edited address: show that view
    const before = new URLSearchParams(requestParams()).toString();
    readHash();
    if (new URLSearchParams(requestParams()).toString() !== before) {
      showState(); changed("none");
    }
  };
  window.addEventListener("popstate", back);
  window.addEventListener("hashchange", back);
}

async function main() {
  const reply = await fetch("/api/controls");
  const body = await reply.json();
  CONTROLS = body.controls;
  MAX_MEMBERS = body.max_members;
  GROUPS = body.groups;
  PAGE_SECRET = body.page_secret;
  SERVER = body.server;
  readHash();
  buildControls();
  showState();
  wireButtons();
  startJob();
  // still here: the server keeps this page's finished jobs (and a restart shows)
  setInterval(async () => {
    try {
      const body = await (await fetch(`/api/controls?client=${CLIENT}`)).json();
      if (body.server !== SERVER) checkServer("the server restarted");
    } catch (err) { /* unreachable for now: the next try tells */ }
  }, 60_000);
}

main();
