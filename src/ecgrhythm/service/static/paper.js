// ECG paper for the ecgrhythm page: the grid, the trace, the calibration label, the rhythm bands and the
// time axis, drawn on a canvas. Pure functions of their arguments (nothing read from the page or its state),
// exposed as window.EcgPaper for app.js. Plain script, no build step.
"use strict";

window.EcgPaper = (() => {
  const PX_PER_MM = 96 / 25.4; // CSS pixels per millimetre at 100 %
  const MM_PER_S = 25;
  const MM_PER_MV = 10;
  const BAND_H = 26; // the rhythm bands under the trace
  const AXIS_H = 20; // the time axis under the bands
  const PAPER = { bg: "#fffafa", small: "#f5d0d0", big: "#e29c9c", trace: "#111827" };

  /** Robust range [lo, hi] of a lead: 0.2 and 99.8 percentiles of up to 20000 evenly picked samples. */
  function leadRange(values) {
    const step = Math.max(1, Math.floor(values.length / 20000));
    const picked = [];
    for (let i = 0; i < values.length; i += step) picked.push(values[i]);
    picked.sort((a, b) => a - b);
    const q = (f) => picked[Math.min(picked.length - 1, Math.floor(f * (picked.length - 1)))];
    return [q(0.002), q(0.998)];
  }

  /** Sizes `canvas` to cssW x cssH CSS pixels at the screen's pixel ratio; returns its 2D context, scaled to CSS pixels. */
  function setupCanvas(canvas, cssW, cssH) {
    const dpr = window.devicePixelRatio || 1;
    canvas.style.height = `${cssH}px`;
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  /**
   * The geometry of one view of a lead: `values` (mV) shown `width` CSS pixels wide from `t0` seconds,
   * at `mm` pixels per millimetre and `pxPerS` pixels per second. The paper is 40 to 80 mm high (a
   * multiple of 5 mm) to hold the lead's range; the bands and the axis follow under it.
   * Returns { width, traceH, height, mm, pxPerS, t0, t1, xOf(t), yOf(v) }: x of a time, y of a value.
   */
  function layout(values, width, mm, pxPerS, t0) {
    const [lo, hi] = leadRange(values);
    const heightMm = Math.min(80, Math.max(40, Math.ceil(((hi - lo) * MM_PER_MV + 10) / 5) * 5));
    const traceH = Math.round(heightMm * mm);
    const mid = (hi + lo) / 2;
    return {
      width, traceH, height: traceH + BAND_H + AXIS_H, mm, pxPerS, t0,
      t1: t0 + width / pxPerS,
      xOf: (t) => (t - t0) * pxPerS,
      yOf: (v) => traceH / 2 - (v - mid) * MM_PER_MV * mm,
    };
  }

  /** ECG paper: 1 mm small squares, 5 mm large squares, aligned to 0 s and 0 mV (`view` from `layout`). */
  function drawGrid(ctx, view) {
    const { width: w, traceH, mm, t0, t1, xOf, yOf } = view;
    ctx.fillStyle = PAPER.bg;
    ctx.fillRect(0, 0, w, traceH);
    const y0 = yOf(0);
    const gridLines = (big) => {
      ctx.beginPath();
      const every = big ? 5 : 1;
      if (!big && mm < 2.5) return; // too dense to see
      for (let k = Math.ceil(t0 * MM_PER_S / every) * every; k <= t1 * MM_PER_S; k += every) {
        if (!big && k % 5 === 0) continue;
        const x = Math.round(xOf(k / MM_PER_S)) + 0.5;
        ctx.moveTo(x, 0); ctx.lineTo(x, traceH);
      }
      const jFirst = Math.ceil(-y0 / mm / every) * every;
      for (let j = jFirst; y0 + j * mm <= traceH; j += every) {
        if (!big && j % 5 === 0) continue;
        const y = Math.round(y0 + j * mm) + 0.5;
        ctx.moveTo(0, y); ctx.lineTo(w, y);
      }
      ctx.strokeStyle = big ? PAPER.big : PAPER.small;
      ctx.lineWidth = 1;
      ctx.stroke();
    };
    gridLines(false);
    gridLines(true);
  }

  /** The trace of `values` sampled at `fs` Hz: straight segments when zoomed in, min/max per pixel column when zoomed out. */
  function drawTrace(ctx, view, values, fs) {
    const { width: w, traceH, pxPerS, t0, t1, xOf, yOf } = view;
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, 0, w, traceH);
    ctx.clip();
    ctx.beginPath();
    const i0 = Math.max(0, Math.floor(t0 * fs) - 1);
    const i1 = Math.min(values.length - 1, Math.ceil(t1 * fs) + 1);
    if (pxPerS / fs >= 0.5) {
      for (let i = i0; i <= i1; i++) {
        const x = xOf(i / fs), y = yOf(values[i]);
        if (i === i0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
    } else {
      const perCol = fs / pxPerS;
      for (let col = 0; col < w; col++) {
        const a = Math.max(0, Math.floor((t0 * fs) + col * perCol));
        const b = Math.min(values.length, Math.floor((t0 * fs) + (col + 1) * perCol) + 1);
        if (a >= b) break;
        let vmin = Infinity, vmax = -Infinity;
        for (let i = a; i < b; i++) { if (values[i] < vmin) vmin = values[i]; if (values[i] > vmax) vmax = values[i]; }
        if (col === 0) ctx.moveTo(col, yOf(vmax)); else ctx.lineTo(col, yOf(vmax));
        ctx.lineTo(col, yOf(vmin));
      }
    }
    ctx.strokeStyle = PAPER.trace;
    ctx.lineWidth = 1.3;
    ctx.lineJoin = "round";
    ctx.stroke();
    ctx.restore();
  }

  /** The calibration label in the paper's top left corner, naming the lead `leadName`. */
  function drawCalibration(ctx, leadName) {
    ctx.fillStyle = "rgba(255,250,250,.85)";
    ctx.fillRect(6, 6, 150, 18);
    ctx.fillStyle = "#6b2b2b";
    ctx.font = "12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.fillText(`${leadName} · ${MM_PER_S} mm/s · ${MM_PER_MV} mm/mV`, 10, 15);
  }

  /**
   * The rhythm bands under the paper, on a grey strip that also holds the time axis: one band per
   * segment ({start_s, end_s, label}) in view, coloured `colorOf(label)` and titled with the label,
   * and `nameOf(label)` where it is wide enough.
   */
  function drawBands(ctx, view, segments, colorOf, nameOf) {
    const { width: w, traceH: bandTop, t0, t1, xOf } = view;
    ctx.fillStyle = "#f1f3f6";
    ctx.fillRect(0, bandTop, w, BAND_H + AXIS_H);
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const s of segments) {
      if (s.end_s < t0 || s.start_s > t1) continue;
      const xa = Math.max(0, xOf(s.start_s)), xb = Math.min(w, xOf(s.end_s));
      ctx.fillStyle = colorOf(s.label);
      ctx.fillRect(xa, bandTop + 3, Math.max(1, xb - xa - 1), BAND_H - 6);
      if (xb - xa > 24) {
        ctx.fillStyle = "#fff";
        ctx.fillText(xb - xa > 160 ? `${s.label} · ${nameOf(s.label)}` : s.label, (xa + xb) / 2, bandTop + BAND_H / 2);
      }
    }
  }

  /** The time axis under the bands: a tick and its time every 1, 5 or 30 s, by zoom. */
  function drawTimeAxis(ctx, view) {
    const { traceH: bandTop, pxPerS, t0, t1, xOf } = view;
    const tick = pxPerS >= 60 ? 1 : pxPerS >= 12 ? 5 : 30;
    ctx.fillStyle = "#3d4654";
    ctx.strokeStyle = "#8a93a0";
    ctx.lineWidth = 1;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.moveTo(x, bandTop + BAND_H); ctx.lineTo(x, bandTop + BAND_H + 4);
      ctx.textAlign = x < 15 ? "left" : "center";
      ctx.fillText(`${t} s`, x, bandTop + BAND_H + 12);
    }
    ctx.stroke();
  }

  return Object.freeze({
    PX_PER_MM, MM_PER_S,
    setupCanvas, layout, drawGrid, drawTrace, drawCalibration, drawBands, drawTimeAxis,
  });
})();
