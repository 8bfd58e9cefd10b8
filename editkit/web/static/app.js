// editkit serve: the page. No framework, nothing fetched from anywhere but this server.
// Page state for people and tests: body[data-state] is starting | empty | loading | busy | ready | error;
// body[data-preview] is the key ("face|method|k:s,...") of the image on screen.
"use strict";

const $ = (id) => document.getElementById(id);
const S = { sid: null, info: null, photo: null, face: 0, method: null, refined: new Set(),
            values: new Map(), gen: 0, wanted: null, shown: null, inflight: false, before: false,
            base: null, patch: null, lastMoved: null, refinePoll: null };

function setState(state) { document.body.dataset.state = state; }
function status(text) { $("status").textContent = text || ""; }
function showMessage(text) {
  const m = $("message");
  m.textContent = text || "";
  m.hidden = !text;
}

async function api(path, opts = {}) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return r;
}
const post = (path, body) => api(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                         body: JSON.stringify(body) });
const sess = (rest) => `/api/sessions/${S.sid}/${rest}`;

async function newSession() {
  S.sid = (await (await api("/api/sessions", { method: "POST" })).json()).id;
}

// ----------------------------------------------------------------------------------- directions
function stepFor(max) { return Math.pow(10, Math.floor(Math.log10(Math.max(max, 1e-3) / 25))); }

function sliderRow(d) {
  const row = document.createElement("div");
  row.className = "slider";
  row.dataset.k = d.index;
  const max = Math.max(Math.abs(d.range[0]), Math.abs(d.range[1]));
  const step = stepFor(max);
  const lim = Math.ceil(max / step - 1e-9) * step;
  const dec = Math.max(0, -Math.floor(Math.log10(step)));
  row.innerHTML = `<label for="s${d.index}"></label><output id="v${d.index}">0</output>` +
    `<button type="button" class="small zero" title="back to 0">0</button>` +
    `<input type="range" id="s${d.index}" min="${(-lim).toFixed(dec)}" max="${lim.toFixed(dec)}" step="${step}" value="0">` +
    `<span class="range"><span>${(-lim).toFixed(dec)}</span><span>recommended range</span><span>+${lim.toFixed(dec)}</span></span>`;
  row.querySelector("label").textContent = d.label ? `${d.label} (${d.index})` : `direction ${d.index}`;
  const input = row.querySelector("input");
  const update = () => {
    const v = parseFloat(input.value);
    row.querySelector("output").textContent = (v > 0 ? "+" : "") + input.value;
    row.classList.toggle("moved", v !== 0);
    S.values.set(d.index, input.value);
    S.lastMoved = d.index;
    $("gif-direction").value = String(d.index);
    schedule();
  };
  input.addEventListener("input", update);
  input.addEventListener("change", update);
  row.querySelector(".zero").addEventListener("click", () => { input.value = "0"; update(); });
  return row;
}

function buildSliders() {
  const named = $("named"), unnamed = $("unnamed"), sel = $("gif-direction");
  const dirs = S.info.directions;
  const labelled = dirs.filter((d) => d.label), plain = dirs.filter((d) => !d.label);
  for (const d of labelled) named.appendChild(sliderRow(d));
  for (const d of plain) unnamed.appendChild(sliderRow(d));
  $("others").querySelector("summary").textContent = `Other directions (${plain.length}, by index)`;
  if (!labelled.length) $("others").open = true;
  for (const d of [...labelled, ...plain]) {
    const o = document.createElement("option");
    o.value = String(d.index);
    o.textContent = d.label ? `${d.label} (${d.index})` : `direction ${d.index}`;
    sel.appendChild(o);
  }
}

function edits() {
  const out = [];
  for (const [k, v] of S.values) if (parseFloat(v) !== 0) out.push([k, parseFloat(v)]);
  out.sort((a, b) => a[0] - b[0]);
  return out;
}
function keyOf(e) { return `${S.face}|${S.method}|` + e.map(([k, s]) => `${k}:${s}`).join(","); }

// ----------------------------------------------------------------------------------- preview
function schedule() {
  if (!S.photo) return;
  S.wanted = keyOf(edits());
  if (!S.inflight) run();
}

async function run() {
  S.inflight = true;
  setState("busy");
  try {
    while (S.wanted !== S.shown) {
      const key = S.wanted, gen = S.gen, body = { face: S.face, method: S.method, edits: edits() };
      const t0 = performance.now();
      status("rendering...");
      const r = await post(sess("preview"), body);
      const blob = await r.blob();
      if (gen !== S.gen) continue;  // a new photo was opened meanwhile: drop this image
      const [x, y, w, h] = (r.headers.get("X-Editkit-Patch") || "0,0,0,0").split(",").map(Number);
      const img = w ? await loadImage(URL.createObjectURL(blob)) : null;
      if (gen !== S.gen) continue;
      if (S.patch && S.patch.img) URL.revokeObjectURL(S.patch.img.src);
      S.patch = { img, x, y, w, h };
      S.shown = key;
      $("command").textContent = r.headers.get("X-Editkit-Command") || "";
      paint();
      document.body.dataset.preview = key;
      const warn = decodeURIComponent(r.headers.get("X-Editkit-Warnings") || "");
      status(`preview in ${Math.round(performance.now() - t0)} ms` + (warn ? ` · ${warn}` : ""));
    }
    showMessage("");
    setState("ready");
  } catch (e) {
    fail(e);
  } finally {
    S.inflight = false;
  }
}

function fit() {  // show the photo as large as the stage allows (small photos scaled up)
  const img = $("photo");
  if (!S.photo) return;
  const room = $("stage").clientWidth - 280, tall = Math.max(320, window.innerHeight * 0.8 - 60);
  const scale = Math.min(room / S.photo.width, tall / S.photo.height);
  img.style.width = `${Math.floor(S.photo.width * scale)}px`;
}

function loadImage(url) {
  const img = new Image();
  img.src = url;
  return img.decode().then(() => img);
}

// The canvas shows the photo as decoded by the server with the latest edited region drawn over it
// (pixel for pixel when the photo is at most 2400 px; larger ones are shown scaled down).
function paint() {
  const c = $("photo"), ctx = c.getContext("2d");
  if (!S.base) return;
  const k = c.width / S.photo.width;
  ctx.drawImage(S.base, 0, 0, c.width, c.height);
  const p = S.patch;
  if (!S.before && p && p.img) ctx.drawImage(p.img, p.x * k, p.y * k, p.w * k, p.h * k);
  drawZoom();
}

function drawZoom() {  // the chosen face of the image on screen, enlarged
  const img = $("photo"), c = $("zoom"), f = S.photo && S.photo.faces[S.face];
  if (!f || !img.width) return;
  const [x0, y0, x1, y1] = f.box || boundsOf(f.quad);
  const k = img.width / S.photo.width, side = Math.max(x1 - x0, y1 - y0) * 1.7;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2 - 0.08 * side;
  const ctx = c.getContext("2d");
  ctx.imageSmoothingQuality = "high";
  ctx.fillStyle = "#e5e7eb";
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(img, (cx - side / 2) * k, (cy - side / 2) * k, side * k, side * k, 0, 0, c.width, c.height);
}

async function fail(e) {
  if (e.status === 404 && S.sid) {  // session ended (idle too long): start a fresh one
    await newSession().catch(() => {});
    setPhoto(null);
  }
  showMessage(e.message);
  status("");
  setState("error");
}

function setPhoto(p) {
  S.photo = p;
  $("view").hidden = !p;
  $("panel").hidden = !p;
  document.body.classList.toggle("has-photo", !!p);
}

// ----------------------------------------------------------------------------------- photo
async function openFile(file) {
  if (!file) return;
  showMessage("");
  setState("loading");
  status(`reading ${file.name}...`);
  if (file.size > S.info.max_upload) {
    fail(new Error(`${file.name}: file too large (${(file.size / 2 ** 20).toFixed(1)} MiB; the limit is ` +
                   `${Math.round(S.info.max_upload / 2 ** 20)} MiB)`));
    return;
  }
  let photo, base;
  try {
    const r = await api(sess("photo"), { method: "POST", body: file,
                                        headers: { "X-Filename": encodeURIComponent(file.name).slice(0, 200) } });
    photo = await r.json();
    const o = await api(sess("original"));
    base = await loadImage(URL.createObjectURL(await o.blob()));
  } catch (e) {  // the server kept the photo that was open (if any)
    fail(e);
    return;
  }
  // From here on synchronous: a preview of the previous photo still in flight is dropped (S.gen).
  if (S.base) URL.revokeObjectURL(S.base.src);
  S.base = base;
  S.patch = null;
  S.gen += 1;
  document.body.dataset.photo = String(S.gen);
  S.face = photo.chosen;
  S.refined = new Set();
  S.method = S.info.fast_method || S.info.refine_method;
  S.shown = null;
  stopRefinePoll();
  $("refine-progress").hidden = true;
  $("gif-out").hidden = true;
  $("photo").width = base.naturalWidth;
  $("photo").height = base.naturalHeight;
  setPhoto(photo);
  paint();
  fit();
  drawFaces();
  buildFaceButtons();
  updateMethod();
  if (!S.info.fast_method) startRefine(); else schedule();
}

function drawFaces() {
  const svg = $("overlay");
  svg.setAttribute("viewBox", `0 0 ${S.photo.width} ${S.photo.height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.innerHTML = "";
  const ns = "http://www.w3.org/2000/svg";
  for (const f of S.photo.faces) {
    const [x0, y0, x1, y1] = f.box || boundsOf(f.quad);
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", x0); r.setAttribute("y", y0);
    r.setAttribute("width", x1 - x0); r.setAttribute("height", y1 - y0);
    r.setAttribute("class", "face" + (f.index === S.face ? " chosen" : ""));
    r.addEventListener("click", () => chooseFace(f.index));
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", x0); t.setAttribute("y", Math.max(14, y0 - 5));
    t.textContent = String(f.index);
    svg.appendChild(r); svg.appendChild(t);
  }
}
function boundsOf(q) {
  const xs = q.map((p) => p[0]), ys = q.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function buildFaceButtons() {
  const box = $("faces");
  box.innerHTML = "";
  for (const f of S.photo.faces) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = `face ${f.index}`;
    b.setAttribute("aria-pressed", String(f.index === S.face));
    b.addEventListener("click", () => chooseFace(f.index));
    box.appendChild(b);
  }
}

function chooseFace(i) {
  if (i === S.face) return;
  S.face = i;
  S.method = S.refined.has(i) ? S.info.refine_method : (S.info.fast_method || S.info.refine_method);
  drawFaces();
  buildFaceButtons();
  updateMethod();
  drawZoom();
  if (S.method === S.info.refine_method && !S.refined.has(i)) startRefine(); else schedule();
}

function updateMethod() {
  const refined = S.method === S.info.refine_method;
  $("method").textContent = refined ? `faithful (${S.info.refine_method})` : `fast (${S.method})`;
  $("refine").disabled = refined;
}

// ----------------------------------------------------------------------------------- refine
async function startRefine() {
  $("refine").disabled = true;
  const bar = $("refine-progress");
  bar.hidden = false;
  bar.value = 0;
  status(`refining face ${S.face}...`);
  try {
    await post(sess("refine"), { face: S.face });
  } catch (e) { fail(e); return; }
  const face = S.face;
  stopRefinePoll();
  const poll = async () => {
    try {
      const st = await (await api(sess("refine"))).json();
      if (st.total) bar.value = st.step / st.total;
      if (st.state === "running") {
        status(`refining face ${face}: step ${st.step} of ${st.total || "?"}`);
        S.refinePoll = setTimeout(poll, 250);
        return;
      }
      bar.hidden = true;
      if (st.state === "done") {
        S.refined.add(face);
        if (S.face === face) { S.method = S.info.refine_method; updateMethod(); schedule(); }
      } else if (st.state === "failed") {
        showMessage(`refine failed: ${st.message}`);
        updateMethod();
      }
    } catch (e) { bar.hidden = true; fail(e); }
  };
  poll();
}
function stopRefinePoll() { if (S.refinePoll) clearTimeout(S.refinePoll); S.refinePoll = null; }

// ----------------------------------------------------------------------------------- saving
function filenameOf(r, fallback) {
  const m = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
  return m ? m[1] : fallback;
}
function saveBlob(blob, name) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

async function download() {
  status("preparing the photo...");
  try {
    const r = await post(sess("download"), { face: S.face, method: S.method, edits: edits() });
    saveBlob(await r.blob(), filenameOf(r, "edited.png"));
    status("photo downloaded");
  } catch (e) { fail(e); }
}

async function gif() {
  const k = parseInt($("gif-direction").value, 10);
  status("rendering the GIF...");
  $("gif").disabled = true;
  try {
    const r = await post(sess("gif"), { face: S.face, method: S.method, direction: k });
    const blob = await r.blob();
    const url = URL.createObjectURL(blob);
    $("gif-img").src = url;
    $("gif-link").href = url;
    $("gif-link").download = filenameOf(r, "traversal.gif");
    $("gif-out").hidden = false;
    status("GIF ready");
  } catch (e) { fail(e); } finally { $("gif").disabled = false; }
}

// ----------------------------------------------------------------------------------- wiring
function toggleBefore() {
  S.before = !S.before;
  $("toggle").setAttribute("aria-pressed", String(S.before));
  $("toggle").textContent = S.before ? "After" : "Before";
  paint();
}

function resetAll() {
  for (const input of document.querySelectorAll(".slider input")) input.value = "0";
  for (const row of document.querySelectorAll(".slider")) {
    row.classList.remove("moved");
    row.querySelector("output").textContent = "0";
  }
  S.values.clear();
  schedule();
}

async function init() {
  $("file").addEventListener("change", (e) => { openFile(e.target.files[0]); e.target.value = ""; });
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("over"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("over"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("over");
    openFile(e.dataTransfer.files[0]);
  });
  $("toggle").addEventListener("click", toggleBefore);
  document.addEventListener("keydown", (e) => { if ((e.key === "b" || e.key === "B") && S.photo && e.target.tagName !== "INPUT") toggleBefore(); });
  $("outlines").addEventListener("change", (e) => $("overlay").classList.toggle("hidden", !e.target.checked));
  $("refine").addEventListener("click", startRefine);
  $("reset").addEventListener("click", resetAll);
  $("download").addEventListener("click", download);
  $("gif").addEventListener("click", gif);
  window.addEventListener("resize", fit);
  window.addEventListener("pagehide", () => { if (S.sid) navigator.sendBeacon(sess("end")); });
  try {
    S.info = await (await api("/api/info")).json();
    await newSession();
  } catch (e) { showMessage(`cannot reach the editkit server: ${e.message}`); setState("error"); return; }
  $("model").textContent = `model: ${S.info.model} · ${S.info.directions.length} directions`;
  buildSliders();
  setState("empty");
}

init();
