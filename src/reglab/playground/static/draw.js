// reglab playground: the page's drawings on canvases, the boundary of a member and
// the loss curves of all; playground.js holds the state and calls these.
"use strict";

const PALETTE = ["#222222", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                 "#e377c2", "#17becf"];
// matplotlib's RdBu reversed: P(class 1) = 0 is blue, 1 is red
const RDBU_R = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
                "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"].map(hexRgb);
const SIDE = 240; // boundary canvas pixels

function hexRgb(h) {
  return [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
}

function bandColor(p) {
  const band = Math.min(9, Math.floor(p * 10)); // 10 bands of 0.1, as contourf
  const t = ((band + 0.5) / 10) * (RDBU_R.length - 1);
  const i = Math.floor(t), f = t - i;
  const a = RDBU_R[i], b = RDBU_R[Math.min(i + 1, RDBU_R.length - 1)];
  // alpha 0.8 over white, as the figures draw
  return a.map((v, k) => Math.round(0.8 * (v + f * (b[k] - v)) + 0.2 * 255));
}

function drawBoundary(canvas, prob, offset, grid, data) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(SIDE, SIDE);
  const p = new Float32Array(SIDE * SIDE);
  for (let py = 0; py < SIDE; py++) {
    // canvas rows run downward, the grid's rows upward in y
    const gy = ((SIDE - 1 - py) / (SIDE - 1)) * (grid - 1);
    const y0 = Math.floor(gy), y1 = Math.min(y0 + 1, grid - 1), fy = gy - y0;
    for (let px = 0; px < SIDE; px++) {
      const gx = (px / (SIDE - 1)) * (grid - 1);
      const x0 = Math.floor(gx), x1 = Math.min(x0 + 1, grid - 1), fx = gx - x0;
      const at = (r, c) => prob[offset + r * grid + c] / 255;
      p[py * SIDE + px] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
        fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
    }
  }
  for (let i = 0; i < SIDE * SIDE; i++) {
    const [r, g, b] = bandColor(p[i]);
    const right = i % SIDE < SIDE - 1 ? p[i + 1] : p[i];
    const down = i + SIDE < SIDE * SIDE ? p[i + SIDE] : p[i];
    const edge = (p[i] < 0.5) !== (right < 0.5) || (p[i] < 0.5) !== (down < 0.5);
    img.data.set(edge ? [0, 0, 0, 255] : [r, g, b, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  if (!data) return;
  const [x0, x1, y0, y1] = data.extent;
  const X = (x) => ((x - x0) / (x1 - x0)) * (SIDE - 1);
  const Y = (y) => (SIDE - 1) - ((y - y0) / (y1 - y0)) * (SIDE - 1);
  for (let i = 0; i < data.x.length; i++) {
    ctx.beginPath();
    ctx.arc(X(data.x[i][0]), Y(data.x[i][1]), 2.3, 0, 2 * Math.PI);
    ctx.fillStyle = data.y[i] ? "#d62728" : "#1f77b4";
    ctx.fill();
    ctx.lineWidth = 0.5;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1.2;
  for (let i = 0; i < data.x.length; i++) {
    if (!data.flipped[i]) continue;
    const x = X(data.x[i][0]), y = Y(data.x[i][1]);
    ctx.beginPath();
    ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y + 4);
    ctx.moveTo(x - 4, y + 4); ctx.lineTo(x + 4, y - 4);
    ctx.stroke();
  }
}

function mean(xs) {
  const ok = xs.filter((v) => v !== null);
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : null;
}

function drawCurves(f) {
  // drawn at the canvas's CSS width and the screen's pixel ratio: text stays readable
  const canvas = document.getElementById("curves");
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(260, canvas.clientWidth || 720), H = W < 500 ? 210 : 260;
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
  }
  canvas.style.height = `${H}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const L = 40, R = 16, T = 22, B = 34;
  ctx.clearRect(0, 0, W, H);
  const epochs = f.record_epochs;
  const S = f.train_loss.length, n = f.train_loss[0].length;
  let top = 0;
  for (const set of [f.train_loss, f.test_loss]) {
    for (const row of set) for (const curve of row) for (const v of curve) {
      if (v !== null && isFinite(v)) top = Math.max(top, v);
    }
  }
  top = Math.min(Math.max(top, 0.1), 3) * 1.05;
  // round ticks: the smallest of these steps that needs at most 5 of them
  const step = [0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1].find((d) => top / d <= 5) || 1;
  const lx = (e) => Math.log10(e + 1), xmax = lx(f.epochs);
  const X = (e) => L + (lx(e) / xmax) * (W - L - R);
  const Y = (v) => T + (1 - Math.min(v, top) / top) * (H - T - B);
  ctx.strokeStyle = "#ccc"; ctx.fillStyle = "#444"; ctx.font = "11px sans-serif";
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  for (let k = 0; Math.pow(10, k) <= f.epochs; k++) {
    const x = X(Math.pow(10, k) - 1);
    ctx.beginPath(); ctx.moveTo(x, T); ctx.lineTo(x, H - B); ctx.stroke();
    ctx.fillText(k === 0 ? "0" : Math.pow(10, k).toLocaleString("en"), x, H - B + 14);
  }
  ctx.fillText("epoch (log scale)", L + (W - L - R) / 2, H - 4);
  ctx.textAlign = "right";
  for (let v = 0; v <= top + 1e-9; v += step) {
    const y = Y(v);
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText(v.toFixed(step < 0.1 ? 2 : 1), L - 4, y + 4);
  }
  ctx.textAlign = "left";
  ctx.fillText("loss", 4, 12);
  // the key: line styles (colours are the panels' swatches)
  for (const [dx, dash, text] of [[130, [], "train (flips included)"],
    [0, [5, 4], "clean test"]]) {
    const x = W - R - 70 - dx;
    ctx.strokeStyle = "#444"; ctx.setLineDash(dash); ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x - 24, 9); ctx.lineTo(x - 4, 9); ctx.stroke();
    ctx.setLineDash([]); ctx.fillText(text, x, 13);
  }
  ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1;
  for (let m = 0; m < n; m++) {
    for (const [set, dash] of [[f.train_loss, []], [f.test_loss, [5, 4]]]) {
      const series = epochs.map((e, r) => {
        const vals = set.map((row) => row[m][r]).filter((v) => v !== null);
        return vals.length ? [e, Math.min(...vals), Math.max(...vals), mean(vals)] : null;
      }).filter((s) => s);
      if (!series.length) continue;
      if (S > 1) { // the band over seeds
        ctx.globalAlpha = 0.15; ctx.fillStyle = PALETTE[m];
        ctx.beginPath();
        series.forEach(([e, lo], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, X(e), Y(lo)));
        for (let k = series.length - 1; k >= 0; k--) ctx.lineTo(X(series[k][0]), Y(series[k][2]));
        ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = PALETTE[m]; ctx.setLineDash(dash); ctx.lineWidth = 1.5;
      ctx.beginPath();
      series.forEach(([e, , , v], k) => (k ? ctx.lineTo : ctx.moveTo).call(ctx, X(e), Y(v)));
      ctx.stroke(); ctx.setLineDash([]);
    }
  }
}
