// ecgrhythm page: upload or pick a record, show its rhythm class and draw it on ECG paper.
// Plain script, no build step and nothing fetched from anywhere but this server.
"use strict";

(() => {
  const Paper = window.EcgPaper; // the ECG paper drawing (paper.js, loaded first)
  const CLASS_NAMES = { N: "Normal sinus rhythm", A: "Atrial fibrillation", O: "Other rhythm", "~": "Too noisy to classify" };
  const CLASS_COLORS = { N: "#008a63", A: "#c94f00", O: "#0067a5", "~": "#7a7a7a" };
  const SPARE_COLORS = ["#b8528f", "#8a6d00", "#3d8fc4", "#5b5b9c", "#2f6b2f"];
  const ZOOMS = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4];
  const AF_BAND_H = 12; // the overview's row of AF episodes
  const OVERVIEW_H = 42;

  const $ = (id) => document.getElementById(id);
  const el = {
    uploadForm: $("upload-form"), files: $("files"), fs: $("fs"),
    exampleForm: $("example-form"), example: $("example"), exampleButton: $("example-button"),
    tokenBox: $("token-box"), token: $("token"),
    message: $("message"), status: $("status"), modelInfo: $("model-info"),
    result: $("result"), badge: $("label-badge"), labelName: $("label-name"), facts: $("facts"), probabilities: $("probabilities"),
    picturePanel: $("picture-panel"), picture: $("picture"),
    tracePanel: $("trace-panel"), lead: $("lead"), zoomIn: $("zoom-in"), zoomOut: $("zoom-out"), zoomLevel: $("zoom-level"),
    earlier: $("earlier"), later: $("later"), position: $("position"), positionText: $("position-text"),
    view: $("trace-view"), trace: $("trace"), overview: $("overview"), legend: $("legend"), segments: $("segments"),
  };

  const state = { result: null, classes: [], lead: 0, zoom: ZOOMS.indexOf(1), t0: 0, busy: false, maxUpload: Infinity };

  // ---------- server calls ----------

  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(path, options = {}) {
    const headers = {};
    const token = el.token.value.trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (err) {
      throw new ApiError(`could not reach the server (${err.message}). Is it still running?`, 0);
    }
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    if (!response.ok) {
      const detail = body && body.detail !== undefined ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : `HTTP ${response.status}`;
      throw new ApiError(detail, response.status);
    }
    return body;
  }

  function showError(title, err) {
    let text = err.message;
    if (err.status === 401) {
      el.tokenBox.open = true;
      text += "\nEnter the server's access token under “Access token” and try again.";
    }
    alertText(title, text);
  }

  function alertText(title, text) {
    setStatus("");
    el.message.replaceChildren(node("strong", title), document.createTextNode(text));
  }

  function clearError() { el.message.replaceChildren(); }

  function setStatus(text, busy = false) {
    el.status.textContent = text;
    el.status.classList.toggle("busy", busy);
  }

  function setBusy(busy) {
    state.busy = busy;
    for (const b of document.querySelectorAll("#upload-form button, #example-form button")) b.disabled = busy || (b === el.exampleButton && !el.example.options.length);
  }

  async function run(description, refusedTitle, request) {
    if (state.busy) return;
    clearError();
    setBusy(true);
    setStatus(`Classifying ${description}…`, true);
    const started = performance.now();
    try {
      const result = await request();
      show(result);
      setStatus(`Classified ${result.record} (${formatSeconds(result.duration_s)}) in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    } catch (err) {
      clearResult(); // the previous record's result must never show under this one's error
      showError(err.status >= 400 && err.status < 500 && err.status !== 401 ? refusedTitle : `Could not classify ${description}`, err);
    } finally {
      setBusy(false);
    }
  }

  async function loadServerInfo() {
    try {
      const health = await api("/health");
      state.classes = health.classes;
      state.maxUpload = health.max_upload_bytes || Infinity;
      if (health.max_upload_bytes) $("max-size").textContent = `${+(health.max_upload_bytes / 2 ** 20).toFixed(1)} MB`;
      el.modelInfo.textContent = `Model ${health.model} · classes ${health.classes.join(", ")}`;
    } catch (err) {
      el.modelInfo.textContent = "Server not reachable";
      showError("The server did not answer", err);
      return;
    }
    await loadExamples();
  }

  async function loadExamples() {
    el.example.replaceChildren();
    try {
      const { examples } = await api("/v1/examples");
      for (const ex of examples) {
        const option = new Option(ex.reference ? `${ex.name} (${ex.reference}: ${className(ex.reference)})` : ex.name, ex.name);
        el.example.add(option);
      }
      if (!examples.length) el.example.add(new Option("No examples on this server", ""));
      el.example.disabled = !examples.length;
      el.exampleButton.disabled = !examples.length;
    } catch (err) {
      el.example.add(new Option("Examples unavailable", ""));
      el.example.disabled = true;
      el.exampleButton.disabled = true;
      if (err.status === 401) el.tokenBox.open = true;
      else showError("Could not list the examples", err);
    }
  }

  // ---------- results ----------

  function className(label) { return CLASS_NAMES[label] || label; }

  function classColor(label) {
    if (CLASS_COLORS[label]) return CLASS_COLORS[label];
    const i = Math.max(0, state.classes.indexOf(label));
    return SPARE_COLORS[i % SPARE_COLORS.length];
  }

  function formatSeconds(s) {
    if (s < 120) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${Math.round(s - 60 * m)} s`;
  }

  function percent(p) { return `${(100 * p).toFixed(1)} %`; }

  function show(result) {
    state.result = result;
    state.classes = result.classes || Object.keys(result.probabilities);
    el.badge.textContent = result.label;
    el.badge.style.background = classColor(result.label);
    el.labelName.textContent = className(result.label);

    const facts = [
      ["Record", result.record],
      ["Duration", formatSeconds(result.duration_s)],
      ["Sampling rate", `${+result.fs.toFixed(2)} Hz`],
      ["Leads", result.signal.leads.join(", ")],
    ];
    if (result.lead) facts.push(["Lead classified", result.lead]);
    if (result.af_burden !== null && result.af_burden !== undefined) {
      const af = afEpisodes(result);
      facts.push(["AF burden", `${percent(result.af_burden)} (${af.length} AF episode${af.length === 1 ? "" : "s"})`]);
    }
    if (result.reference) facts.push(["Reference label", `${result.reference} (${className(result.reference)})`]);
    el.facts.replaceChildren(...facts.flatMap(([k, v]) => [node("dt", k), node("dd", v)]));

    const ranked = state.classes.slice().sort((a, b) => result.probabilities[b] - result.probabilities[a]);
    el.probabilities.replaceChildren(...ranked.map((c) => {
      const p = result.probabilities[c];
      const li = node("li");
      if (c === result.label) li.className = "top";
      const name = node("span", "", "cls-name");
      name.append(node("b", c), className(c));
      const track = node("span", "", "track");
      track.setAttribute("aria-hidden", "true");
      const fill = node("span", "", "fill");
      fill.style.width = `${Math.max(0, Math.min(100, 100 * p))}%`;
      fill.style.background = classColor(c);
      track.append(fill);
      li.append(name, track, node("span", percent(p), "pct"));
      return li;
    }));

    el.lead.replaceChildren(...result.signal.leads.map((name, i) => new Option(name, String(i))));
    state.lead = 0;
    el.lead.disabled = result.signal.leads.length < 2;
    el.legend.replaceChildren(...state.classes.map((c) => {
      const sw = node("span", "", "swatch");
      sw.style.background = classColor(c);
      const li = node("li");
      li.append(sw, `${c}: ${className(c)}`);
      return li;
    }));
    el.segments.replaceChildren(...result.segments.map((s) => {
      const tr = node("tr");
      tr.append(node("td", s.start_s.toFixed(1)), node("td", s.end_s.toFixed(1)), node("td", `${s.label} (${className(s.label)})`), node("td", percent(s.probabilities[s.label])));
      return tr;
    }));
    showPicture(result);
    state.t0 = 0;
    el.result.hidden = false;
    el.tracePanel.hidden = false;
    draw();
  }

  // The server's picture of a long record (a data: URL of a PNG), as `ecgrhythm episodes --plot` draws it.
  function showPicture(result) {
    if (result.picture) {
      el.picture.src = result.picture;
      el.picture.alt = `Rhythm of ${result.record} over the whole recording: AF episodes, AF burden and 8 s of ECG`;
      el.picturePanel.hidden = false;
    } else {
      el.picture.removeAttribute("src");
      el.picturePanel.hidden = true;
    }
  }

  function afEpisodes(result) { return (result.episodes || []).filter((e) => e.label === "A"); }

  function clearResult() {
    state.result = null;
    el.result.hidden = true;
    el.tracePanel.hidden = true;
    showPicture({});
    el.badge.textContent = "";
    el.labelName.textContent = "";
    for (const list of [el.facts, el.probabilities, el.lead, el.legend, el.segments]) list.replaceChildren();
    for (const canvas of [el.trace, el.overview]) canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  function node(tag, text = "", cls = "") {
    const n = document.createElement(tag);
    if (text) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  // ---------- drawing ----------

  const pxPerMm = () => Paper.PX_PER_MM * ZOOMS[state.zoom];
  const pxPerS = () => Paper.MM_PER_S * pxPerMm();
  const viewWidth = () => el.view.clientWidth || 800;
  const visibleSpan = () => viewWidth() / pxPerS();

  function clampT0(t0) {
    const r = state.result;
    return r ? Math.max(0, Math.min(t0, r.duration_s - visibleSpan())) : 0;
  }

  function draw() {
    const r = state.result;
    if (!r) return;
    state.t0 = clampT0(state.t0);
    const sig = r.signal;
    const values = sig.values[state.lead];
    const layout = Paper.layout(values, viewWidth(), pxPerMm(), pxPerS(), state.t0);
    const ctx = Paper.setupCanvas(el.trace, layout.width, layout.height);
    Paper.drawGrid(ctx, layout);
    Paper.drawTrace(ctx, layout, values, sig.fs);
    Paper.drawCalibration(ctx, sig.leads[state.lead]);
    Paper.drawBands(ctx, layout, r.segments, classColor, className);
    Paper.drawTimeAxis(ctx, layout);

    drawOverview();
    updateControls(layout.t1);
  }

  function drawOverview() {
    const r = state.result;
    const w = el.overview.clientWidth || viewWidth();
    const h = OVERVIEW_H;
    const ctx = Paper.setupCanvas(el.overview, w, h);
    const sx = w / r.duration_s;
    ctx.fillStyle = "#e8ebf0";
    ctx.fillRect(0, 0, w, h);
    // AF episodes as bands along the top; a click on one opens its start on the ECG grid.
    ctx.fillStyle = classColor("A");
    for (const e of afEpisodes(r)) ctx.fillRect(e.start_s * sx, 2, Math.max(2, (e.end_s - e.start_s) * sx), AF_BAND_H);
    for (const s of r.segments) {
      ctx.fillStyle = classColor(s.label);
      ctx.fillRect(s.start_s * sx, AF_BAND_H + 6, Math.max(1, (s.end_s - s.start_s) * sx - 1), h - AF_BAND_H - 10);
    }
    const a = state.t0 * sx, b = Math.min(w, (state.t0 + visibleSpan()) * sx);
    ctx.fillStyle = "rgba(255,255,255,.55)";
    ctx.fillRect(0, 0, a, h);
    ctx.fillRect(b, 0, w - b, h);
    ctx.strokeStyle = "#12263f";
    ctx.lineWidth = 2;
    ctx.strokeRect(a + 1, 1, Math.max(2, b - a - 2), h - 2);
  }

  function updateControls(t1) {
    const r = state.result;
    const maxT0 = Math.max(0, r.duration_s - visibleSpan());
    el.position.max = maxT0.toFixed(2);
    el.position.value = state.t0.toFixed(2);
    el.position.disabled = maxT0 <= 0;
    el.position.setAttribute("aria-valuetext", `${state.t0.toFixed(1)} seconds`);
    el.positionText.textContent = `${state.t0.toFixed(1)}–${Math.min(t1, r.duration_s).toFixed(1)} s of ${r.duration_s.toFixed(1)} s`;
    el.zoomLevel.textContent = `${Math.round(ZOOMS[state.zoom] * 100)} %`;
    el.zoomIn.disabled = state.zoom === ZOOMS.length - 1;
    el.zoomOut.disabled = state.zoom === 0;
    el.earlier.disabled = state.t0 <= 0;
    el.later.disabled = state.t0 >= maxT0 - 1e-6;
    const seg = r.segments.find((s) => s.end_s > state.t0) || r.segments[0];
    el.trace.setAttribute("aria-label",
      `ECG lead ${r.signal.leads[state.lead]} from ${state.t0.toFixed(1)} to ${Math.min(t1, r.duration_s).toFixed(1)} seconds; ` +
      `timeline here: ${className(seg.label)}; whole record: ${className(r.label)}.`);
  }

  function scrollTo(t0) { state.t0 = clampT0(t0); draw(); }

  function zoom(step) {
    const centre = state.t0 + visibleSpan() / 2;
    state.zoom = Math.max(0, Math.min(ZOOMS.length - 1, state.zoom + step));
    scrollTo(centre - visibleSpan() / 2);
  }

  // ---------- events ----------

  el.uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = Array.from(el.files.files);
    if (!files.length) {
      alertText("No file chosen", "Choose a record first: a .hea header with its .mat or .dat file, or one .mat, .csv or .npy file.");
      el.files.focus();
      return;
    }
    const size = files.reduce((total, f) => total + f.size, 0);
    if (size > state.maxUpload) {
      alertText("The file was refused", `${files.map((f) => f.name).join(", ")}: ${(size / 2 ** 20).toFixed(1)} MB, more than this server accepts (${(state.maxUpload / 2 ** 20).toFixed(1)} MB). Send a shorter record.`);
      return;
    }
    const body = new FormData();
    for (const f of files) body.append("files", f, f.name);
    if (el.fs.value.trim()) body.append("fs", el.fs.value.trim());
    if ($("lead-choice").value.trim()) body.append("lead", $("lead-choice").value.trim());
    const names = files.map((f) => f.name).join(" + ");
    run(names, files.length > 1 ? "The files were refused" : "The file was refused", () => api("/v1/classify", { method: "POST", body }));
  });

  el.exampleForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = el.example.value;
    if (name) run(`example ${name}`, `Example ${name} could not be classified`, () => api(`/v1/examples/${encodeURIComponent(name)}`));
  });

  el.token.addEventListener("change", () => { clearError(); loadExamples(); });
  el.lead.addEventListener("change", () => { state.lead = Number(el.lead.value); draw(); });
  el.zoomIn.addEventListener("click", () => zoom(1));
  el.zoomOut.addEventListener("click", () => zoom(-1));
  el.earlier.addEventListener("click", () => scrollTo(state.t0 - visibleSpan() * 0.8));
  el.later.addEventListener("click", () => scrollTo(state.t0 + visibleSpan() * 0.8));
  el.position.addEventListener("input", () => scrollTo(Number(el.position.value)));

  el.view.addEventListener("keydown", (event) => {
    if (!state.result) return;
    const span = visibleSpan();
    const actions = {
      ArrowLeft: () => scrollTo(state.t0 - (event.shiftKey ? span : 1)),
      ArrowRight: () => scrollTo(state.t0 + (event.shiftKey ? span : 1)),
      PageUp: () => scrollTo(state.t0 - span),
      PageDown: () => scrollTo(state.t0 + span),
      Home: () => scrollTo(0),
      End: () => scrollTo(Infinity),
      "+": () => zoom(1),
      "=": () => zoom(1),
      "-": () => zoom(-1),
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });

  let drag = null;
  el.view.addEventListener("pointerdown", (event) => {
    if (!state.result) return;
    drag = { x: event.clientX, t0: state.t0 };
    el.view.setPointerCapture(event.pointerId);
    el.view.classList.add("dragging");
  });
  el.view.addEventListener("pointermove", (event) => {
    if (drag) scrollTo(drag.t0 - (event.clientX - drag.x) / pxPerS());
  });
  const endDrag = () => { drag = null; el.view.classList.remove("dragging"); };
  el.view.addEventListener("pointerup", endDrag);
  el.view.addEventListener("pointercancel", endDrag);
  el.view.addEventListener("wheel", (event) => {
    if (!state.result) return;
    const dx = Math.abs(event.deltaX) > Math.abs(event.deltaY) ? event.deltaX : event.shiftKey ? event.deltaY : 0;
    if (dx) { event.preventDefault(); scrollTo(state.t0 + dx / pxPerS()); }
  }, { passive: false });

  const overviewTime = (event) => {
    const rect = el.overview.getBoundingClientRect();
    return ((event.clientX - rect.left) / rect.width) * state.result.duration_s;
  };
  const jump = (event) => {
    if (!state.result) return;
    scrollTo(overviewTime(event) - visibleSpan() / 2);
  };
  el.overview.addEventListener("pointerdown", (event) => {
    if (!state.result) return;
    const t = overviewTime(event);
    const slack = state.result.duration_s / (el.overview.clientWidth || 1); // an episode narrower than a pixel is still clickable
    const episode = afEpisodes(state.result).find((e) => t >= e.start_s - slack && t <= e.end_s + slack);
    if (episode) { scrollTo(episode.start_s); return; } // open that AF stretch from its onset
    el.overview.setPointerCapture(event.pointerId);
    jump(event);
  });
  el.overview.addEventListener("pointermove", (event) => { if (event.buttons) jump(event); });

  new ResizeObserver(() => draw()).observe(el.view);

  loadServerInfo();
})();
