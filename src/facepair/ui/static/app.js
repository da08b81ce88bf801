// facepair ui: one page, five screens, polling the server's JSON API (server.py). No framework
// and nothing fetched from the internet: the page works offline.
// Nothing that came from the server or a file is ever parsed as markup: the page builds its
// elements with el() and writes every value as text (the server's CSP forbids inline script too).
"use strict";
const $ = (id) => document.getElementById(id);
let S = null;                    // the last /api/state
const watched = {};              // job box id -> job id being shown there
const stopping = {};             // job id -> Stop clicked (a second SIGTERM would not wait)
// the server's secret, written into this page only: every request proves it comes from here
const TOKEN = document.querySelector('meta[name="facepair-token"]').content;

// an element with attributes (set as properties or attributes, never parsed) and children
// (elements, or strings that become text nodes)
function el(tag, attrs = {}, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
                                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.setAttribute("class", v);
    else if (k === "style") Object.assign(e.style, v);
    else if (k in e && !tag.startsWith("svg:")) e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children.flat().filter((c) => c != null).map((c) => (c instanceof Node ? c : String(c))));
  return e;
}

async function call(method, url, body) {
  const opt = { method, headers: { "X-Facepair-Token": TOKEN } };
  if (body instanceof Blob) opt.body = body;
  else if (body !== undefined) { opt.body = JSON.stringify(body); opt.headers["Content-Type"] = "application/json"; }
  const r = await fetch(url, opt);
  const data = await r.json().catch(() => ({}));
  if (r.status === 403 && /token/.test(data.error || "")) stale(data.error);
  if (!r.ok) throw new Error(data.error || (typeof data.detail === "string" ? data.detail : r.statusText));
  return data;
}
// the server refused this page's token (it was started again: a new token): one banner, and the
// polling stops (each button failed in its own words, and the reads went on)
let isStale = false;
function stale(line) {
  if (isStale) return;
  isStale = true;
  $("stale").textContent = `${line}.`;
  $("stale").hidden = false;
}
const get = (url) => call("GET", url);
const post = (url, body) => call("POST", url, body);

function options(select, values, labels) {
  const keep = select.value;
  select.replaceChildren(...values.map((v, i) => new Option(labels ? labels[i] : v, v)));
  if (values.includes(keep)) select.value = keep;
}
function checklist(box, values, name) {
  const checked = new Set([...box.querySelectorAll("input:checked")].map((c) => c.value));
  box.replaceChildren(...(values.length ? values.map((v) => el("label", {},
    el("input", { type: "checkbox", name, value: v.path || v, checked: checked.has(v.path || v) }),
    " ", v.path ? `${v.path} (${v.kind})` : v)) : [el("span", { class: "hint" }, "none yet")]));
}
const ticked = (box) => [...box.querySelectorAll("input:checked")].map((c) => c.value);
function fail(where, e) { $(where).textContent = e.message; $(where).classList.add("no"); }

// ---- state, screens, the consent dialog ----------------------------------------------------
async function refresh() {
  S = await get("/api/state");
  $("workdir").textContent = S.workdir;
  $("policy").textContent = S.policy;
  $("upload").accept = S.media_types.join(",");      // the picker offers what the server takes
  $("verify-file").accept = S.media_types.join(",");
  $("consent").hidden = S.consent;
  // the user's footage first, the app's own swaps (synthetic, labelled) after it: the first was
  // the Swap screen's default input, which re-swapped an earlier output
  const media = [...S.media.filter((m) => !m.path.startsWith("swaps/")), ...S.media.filter((m) => m.path.startsWith("swaps/"))];
  checklist($("media"), media, "media");
  options($("swap-input"), media.filter((m) => m.kind !== "folder").map((m) => m.path));
  options($("faceset"), S.facesets);
  checklist($("train-a"), S.facesets, "a");
  checklist($("train-b"), S.facesets, "b");
  for (const id of ["swap-model", "report-model"]) options($(id), S.models);
  refreshPeople();
  $("model-names").replaceChildren(...S.models.map((m) => el("option", { value: m })));
  renderJobs(S.jobs);
}

function show(screen) {
  document.querySelectorAll(".screen").forEach((s) => (s.hidden = s.id !== screen));
  document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.screen === screen));
  if (screen === "faces") loadGallery();
}
document.querySelectorAll("nav button").forEach((b) => (b.onclick = () => show(b.dataset.screen)));
$("consent-ok").onclick = async () => {     // a refusal is said, not swallowed
  try { await post("/api/consent"); await refresh(); } catch (e) { fail("consent-status", e); }
};

// ---- jobs: a progress bar, the last line the command printed, and Stop -----------------------
function jobBox(boxId, job) {
  const box = $(boxId);
  if (!job) { box.replaceChildren(); return; }
  const pct = job.progress == null ? 0 : Math.round(job.progress * 100);
  box.className = `job ${job.state}`;
  box.dataset.state = job.state;
  box.replaceChildren(...[
    el("div", {}, el("b", {}, job.kind), ` ${job.state} ${job.progress == null ? "" : pct + "%"} (${job.seconds} s)`),
    el("div", { class: "bar" }, el("div", { style: { width: `${pct}%` } })),
    el("div", { class: "msg" }, job.message),
    // what the job warned of at its start (a small face set, ...), kept after its progress bar
    ...(job.warnings || []).map((w) => el("div", { class: "msg warn" }, w)),
    // Stop for extract, swap and evaluate (training has its own button, beside its chart): SIGTERM,
    // which they answer by keeping what is done (a swap's first frames, labelled) and exiting
    job.state === "running" && job.id && boxId !== "train-job" ?
      el("button", { class: "stop", disabled: !!stopping[job.id], textContent: stopping[job.id] ? "Stopping ..." : "Stop",
                     onclick: async () => {
                       stopping[job.id] = true;
                       try { jobBox(boxId, await post(`/api/jobs/${job.id}/stop`)); }
                       catch (e) { stopping[job.id] = false; jobBox(boxId, { ...job, message: e.message }); }
                     } }) : null].filter(Boolean));      // (a null child shows as the word "null")
}
function starting(boxId, kind) { jobBox(boxId, { kind, state: "starting", message: "", seconds: 0 }); }
async function watch(boxId, job, onEnd) {
  watched[boxId] = job.id;
  let misses = 0;
  for (;;) {
    jobBox(boxId, job);
    if (job.state !== "running") break;
    await new Promise((r) => setTimeout(r, 700));
    if (watched[boxId] !== job.id) return;
    try { job = await get(`/api/jobs/${job.id}`); misses = 0; }
    catch (e) {             // gone (the server stopped): said, not "running" for ever; a moment's
      if (++misses < 5) continue;        // loss of the connection is not the job's end
      jobBox(boxId, { ...job, state: "ended", message: `${e.message} (the server stopped? its jobs stop with it: start it again and open the address it prints)` });
      return;
    }
  }
  await refresh();
  if (onEnd) await onEnd(job);
}
function renderJobs(jobs) {
  $("jobs").replaceChildren(...jobs.slice().reverse().map((j) =>
    el("tr", {}, [j.id, j.kind, j.target, j.state, `${j.seconds} s`].map((t) => el("td", {}, t)))));
}

// ---- 1. Faces ---------------------------------------------------------------------------------
async function upload(file) {
  if (S && file.size > S.max_upload_mb * 2 ** 20)      // the server refuses it too, after reading it
    throw new Error(`${file.name}: file larger than the upload limit (${S.max_upload_mb} MB)`);
  const r = await post(`/api/upload?name=${encodeURIComponent(file.name)}`, file);
  return r.path;
}
$("upload").onchange = async (ev) => {
  const files = [...ev.target.files], refused = [];
  $("upload-status").classList.remove("no");
  for (const [i, f] of files.entries()) {     // one refused file does not stop the others
    $("upload-status").textContent = `uploading ${f.name} (${i + 1}/${files.length}) ...`;
    try { await upload(f); } catch (e) { refused.push(e.message.startsWith(f.name) ? e.message : `${f.name}: ${e.message}`); }
  }
  $("upload-status").textContent = refused.length ?
    `uploaded ${files.length - refused.length} of ${files.length} file(s); refused: ${refused.join("; ")}` :
    `uploaded ${files.length} file(s)`;
  $("upload-status").classList.toggle("no", refused.length > 0);
  ev.target.value = "";
  await refresh();
};
$("extract").onclick = async () => {
  const name = $("fs-name").value.trim();
  starting("extract-job", "extract");
  try {
    const job = await post("/api/extract", {
      name, inputs: ticked($("media")), every: $("fs-every").value, size: $("fs-size").value,
      detector: $("fs-detector").value, min_size: $("fs-min-size").value,
      min_blur: $("fs-min-blur").value, all_faces: $("fs-all").checked, append: $("fs-append").checked });
    watch("extract-job", job, extracted);
  } catch (e) { jobBox("extract-job", { kind: "extract", state: "failed", message: e.message, seconds: 0 }); }
};
async function extracted(job) {      // a stopped extract kept the faces it found: shown too
  if (job.state !== "done" && job.state !== "stopped") return;
  await refresh();
  if (![...$("faceset").options].some((o) => o.value === job.faceset)) return;  // stopped before a face
  $("faceset").value = job.faceset; loadGallery();
}
let galleryAsked = 0;             // the newest gallery asked for: an older answer is dropped
async function loadGallery() {
  const name = $("faceset").value, asked = ++galleryAsked;
  const g = $("gallery");
  if (!name) { g.replaceChildren(); $("fs-counts").textContent = ""; return; }
  let fs;
  try { fs = await get(`/api/faces/${encodeURIComponent(name)}`); }
  catch (e) { if (asked === galleryAsked) { $("fs-counts").textContent = e.message; g.replaceChildren(); } return; }
  if (asked !== galleryAsked) return;
  const s = fs.summary;
  $("fs-counts").textContent = `${fs.faces.length} faces, ${fs.size} px` + (s ?
    ` — last extract: ${s.frames_read} frames read, ${s.faces_kept} kept, ${s.frames_without_face} ` +
    `without a face; rejected: ` + Object.entries(s.rejected).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ") : "");
  g.replaceChildren();
  for (const f of fs.faces) {
    const img = new Image();
    img.src = f.url; img.title = `${f.file} (${f.source} frame ${f.frame})`; img.dataset.file = f.file;
    img.loading = "lazy";
    img.onclick = () => { img.classList.toggle("marked"); updateRemove(); };
    g.append(img);
  }
  updateRemove();
}
function updateRemove() {
  const n = $("gallery").querySelectorAll(".marked").length;
  $("remove").disabled = !n;
  $("remove").textContent = n ? `Remove ${n} marked face${n > 1 ? "s" : ""}` : "Remove marked faces";
}
$("faceset").onchange = loadGallery;
$("remove").onclick = async () => {
  const files = [...$("gallery").querySelectorAll(".marked")].map((i) => i.dataset.file);
  $("remove-status").textContent = "";
  try { await post(`/api/faces/${encodeURIComponent($("faceset").value)}/remove`, { files }); }
  catch (e) { fail("remove-status", e); return; }        // (409 while the set is extracted)
  await loadGallery();
};

// ---- 2. Train ---------------------------------------------------------------------------------
$("preset").onchange = () => {
  const p = S.presets.find((x) => x.name === $("preset").value);
  $("preset-desc").textContent = p ? p.use : "";         // when to pick it; what it changes on hover
  $("preset-desc").title = p ? p.description : "";
};
$("train-start").onclick = async () => {
  starting("train-job", "train");
  try {
    const job = await post("/api/train", {
      model: $("model-name").value.trim(), a: ticked($("train-a")), b: ticked($("train-b")),
      preset: $("preset").value, minutes: $("minutes").value, steps: $("steps").value,
      preview_every: $("preview-every").value, calibrate_faces: $("calibrate-faces").value });
    jobBox("train-job", job);
  } catch (e) { jobBox("train-job", { kind: "train", state: "failed", message: e.message, seconds: 0 }); }
};
$("train-stop").onclick = async () => {
  const id = $("train-stop").dataset.job;
  if (!id) return;
  try { jobBox("train-job", await post(`/api/jobs/${id}/stop`)); }
  catch (e) { jobBox("train-job", { kind: "train", state: "failed", message: e.message, seconds: 0 }); }
};
function lossChart(log) {
  const svg = $("loss-chart");
  const keys = [["loss_a", "#2a6fdb", ""], ["loss_b", "#e8710a", ""],
                ["val_loss_a", "#2a6fdb", "4 3"], ["val_loss_b", "#e8710a", "4 3"]];
  const vals = log.flatMap((r) => keys.map(([k]) => r[k]).filter((v) => v != null));
  if (log.length < 2 || !vals.length) { svg.replaceChildren(); return; }
  const x0 = log[0].step, x1 = log[log.length - 1].step || 1, top = Math.max(...vals), low = Math.min(...vals);
  const X = (s) => ((s - x0) / Math.max(1, x1 - x0)) * 396 + 2;
  const Y = (v) => 156 - ((v - low) / Math.max(1e-9, top - low)) * 150;
  const lines = keys.map(([k, c, dash]) => {
    const pts = log.filter((r) => r[k] != null).map((r) => `${X(r.step).toFixed(1)},${Y(r[k]).toFixed(1)}`);
    return pts.length > 1 ? el("svg:polyline", { class: k, fill: "none", stroke: c, "stroke-width": "1.5",
                                                 "stroke-dasharray": dash, points: pts.join(" ") }) : null;
  }).filter(Boolean);
  svg.replaceChildren(...lines, el("svg:text", { x: "4", y: "12", "font-size": "10" }, top.toFixed(3)),
                      el("svg:text", { x: "4", y: "156", "font-size": "10" }, low.toFixed(3)));
}
async function pollModel() {
  const name = $("model-name").value.trim();
  if ($("train").hidden || !name) return;
  let m;
  try { m = await get(`/api/models/${encodeURIComponent(name)}`); } catch (e) { return; }
  for (const side of ["a", "b"])             // an existing model: its face sets, unless chosen
    if (m[side] && !ticked($(`train-${side}`)).length)
      $(`train-${side}`).querySelectorAll("input").forEach((c) => (c.checked = m[side].includes(c.value)));
  if (m.exists && m.preset && $("preset").value !== m.preset) { $("preset").value = m.preset; $("preset").onchange(); }
  const running = m.job && m.job.state === "running";
  $("train-start").textContent = running ? "Training..." : m.exists ? "Resume" : "Start";
  $("train-start").disabled = running;
  $("train-stop").disabled = !running;
  $("train-stop").dataset.job = m.job ? m.job.id : "";
  if (m.job) jobBox("train-job", m.job);
  if (m.preview) { if ($("train-preview").dataset.src !== m.preview) { $("train-preview").src = m.preview; $("train-preview").dataset.src = m.preview; } }
  else { $("train-preview").removeAttribute("src"); delete $("train-preview").dataset.src; }
  lossChart(m.log);
  const last = m.log[m.log.length - 1];
  let rate = "";
  if (m.log.length > 1) {
    const a = m.log[Math.max(0, m.log.length - 6)];
    if (last.time_s > a.time_s) rate = ((last.step - a.step) / (last.time_s - a.time_s)).toFixed(2);
  }
  $("train-stats").textContent = !last ? (m.exists ? `model at step ${m.step}` : "no training yet") :
    `step ${last.step}   loss A ${last.loss_a.toFixed(4)}   loss B ${last.loss_b.toFixed(4)}   ` +
    `${rate} steps/s   ${last.images_per_s} images/s` +
    (m.eta_s != null ? `   time left ${Math.floor(m.eta_s / 60)}:${String(Math.round(m.eta_s % 60)).padStart(2, "0")}` : "");
  if (!running && m.job && m.job.state !== "running" && watched.trainDone !== m.job.id) {
    watched.trainDone = m.job.id;
    await refresh();
  }
}

// ---- 3. Swap ----------------------------------------------------------------------------------
function swapBody() {
  const people = [...$("people").querySelectorAll(".person")].map((row) =>
    ({ ref: row.querySelector(".ref").value, model: row.querySelector(".model").value }));
  return { model: $("swap-model").value, direction: $("swap-direction").value, mask: $("swap-mask").value,
           color: $("swap-color").value, blend: $("swap-blend").value,
           occlusion: $("swap-occlusion").value, people };
}
// several people: a row per person, a photo (or face set) and the model that swaps them
function personRefs() {
  return [...S.media.filter((m) => m.kind === "image").map((m) => m.path), ...S.facesets.map((f) => `faces/${f}`)];
}
function refreshPeople() {
  for (const row of $("people").querySelectorAll(".person")) {
    options(row.querySelector(".ref"), personRefs());
    options(row.querySelector(".model"), S.models);
  }
}
$("people-add").onclick = () => {
  const row = el("div", { class: "person" }, el("select", { class: "ref" }), " swapped by ",
                 el("select", { class: "model" }), " ", el("button", { class: "remove", textContent: "Remove" }));
  row.querySelector(".remove").onclick = () => row.remove();
  $("people").append(row);
  refreshPeople();
};
let previewRun = 0;     // the newest preview asked for is the one shown
// what is missing before a swap or a report, in words (a click said nothing, "no path given" or
// "bad name ''")
function missing(model, input) {
  if (!$(model).value) return "no model yet: train one on the Train screen first";
  if (input && !$(input).value) return "no video or photo yet: upload one on the Faces screen";
  return "";
}
async function preview(ev) {
  const lacking = missing("swap-model", "swap-input");
  if (lacking) { if (ev && ev.type === "click") fail("preview-status", new Error(lacking)); return; }
  const run = ++previewRun;     // (a change while one rendered was dropped, or an older answer landed last)
  $("preview-status").textContent = "rendering the preview ...";
  $("preview-status").classList.remove("no");
  try {
    const still = await post("/api/still", { input: $("swap-input").value, seconds: $("swap-time").value });
    if (run !== previewRun) return;
    $("before").src = still.url;
    const r = await post("/api/preview", { ...swapBody(), still: still.path });
    if (run !== previewRun) return;
    $("after").src = r.url;
    $("preview-status").textContent = `preview: ${r.faces_swapped} face(s) swapped`;
  } catch (e) { if (run === previewRun) fail("preview-status", e); }
}
$("preview-btn").onclick = preview;
for (const id of ["swap-direction", "swap-mask", "swap-color", "swap-blend", "swap-occlusion", "swap-time"])
  $(id).onchange = () => { if ($("after").getAttribute("src")) preview(); };
// the button says what it will do ("Swap the whole file" read so when 2 seconds were asked)
$("swap-seconds").oninput = () => {
  const s = Number($("swap-seconds").value);
  $("swap-start").textContent = s > 0 ? `Swap the first ${s} s` : "Swap the whole file";
};
$("swap-start").onclick = async () => {
  const lacking = missing("swap-model", "swap-input");
  if (lacking) { jobBox("swap-job", { kind: "swap", state: "failed", message: lacking, seconds: 0 }); return; }
  $("swap-result").hidden = true;
  starting("swap-job", "swap");
  try {
    const job = await post("/api/swap", { ...swapBody(), input: $("swap-input").value, seconds: $("swap-seconds").value });
    watch("swap-job", job, showSwap);
  } catch (e) { jobBox("swap-job", { kind: "swap", state: "failed", message: e.message, seconds: 0 }); }
};
async function showSwap(job) {
  if (job.state !== "done" && job.state !== "stopped") return;
  let v;                            // a stopped swap kept its first frames, finished and labelled
  try { v = await post("/api/verify", { path: job.output }); }
  catch (e) { if (job.state === "stopped") return; throw e; }      // stopped before its first frame
  const url = `${job.url}?t=${Date.now()}`, video = /\.(mp4|mov|mkv|m4v)$/i.test(job.output);
  $("swap-video").hidden = !video; $("swap-image").hidden = video;
  if (video) $("swap-video").src = url; else $("swap-image").src = url;
  $("swap-download").href = job.url;
  $("swap-download").textContent = `Download ${job.output}`;
  $("swap-result").hidden = false;
  $("swap-verify").textContent = v.text;
}

// ---- 4. Verify --------------------------------------------------------------------------------
async function verifyFile(file) {
  $("verify-result").hidden = true;
  for (const id of ["v-path", "v-verdict", "v-watermark", "v-installation", "v-tag", "v-c2pa"])
    $(id).replaceChildren();            // a file that fails showed the one before's results
  try {
    if (S && file.size > S.max_upload_mb * 2 ** 20)      // the server refuses it too, after reading it
      throw new Error(`${file.name}: file larger than the upload limit (${S.max_upload_mb} MB)`);
    // checked and deleted by the server: nothing kept among the uploads
    const v = await post(`/api/verify-upload?name=${encodeURIComponent(file.name)}`, file);
    const yes = (b, t) => el("span", { class: b ? "yes" : "no" }, t);
    $("v-path").textContent = v.path;
    $("v-verdict").replaceChildren(yes(v.synthetic, v.synthetic ? "SYNTHETIC (made by facepair)" : "no facepair marks"));
    const w = v.watermark;
    $("v-watermark").replaceChildren(yes(w.found, w.found ? "found" : "not found"),
      w.z == null ? " (picture too small)" : ` z ${w.z} (found at ${w.z_min}); bits agree ${w.bits_agree}/${w.bits}; ${w.frames} frame(s)`);
    const i = v.installation;
    $("v-installation").replaceChildren(...(i ? [yes(i.found, i.verdict === "cannot tell" ? `cannot tell whether by ${i.made_by} (its mark too weak to read here)` : `${i.verdict} ${i.made_by}`),
      i.key_id == null ? " (this installation has no watermark key yet)"
        : i.z == null ? ` (picture too small; key ${i.key_id})`
        : ` z ${i.z} (found at ${i.z_min} and at ${i.ratio_min}x the ${i.z_expected} the public mark predicts); key ${i.key_id}`]
      : [yes(false, "not read")]));
    $("v-tag").replaceChildren(yes(!!v.tag, v.tag ? "found" : "none"),
      v.tag ? ` ${v.tag}` : v.other_tag ? ` (another tag: ${v.other_tag})` : "");
    $("v-c2pa").replaceChildren(...(v.c2pa ? [yes(v.c2pa.ours, v.c2pa.state), ` ${v.c2pa.generator || ""} ${v.c2pa.source_type || ""}`]
                                           : [yes(false, "none")]));
    $("verify-result").hidden = false;
  } catch (e) { $("v-verdict").textContent = e.message; $("verify-result").hidden = false; }
  await refresh();
}
$("verify-file").onchange = (ev) => ev.target.files[0] && verifyFile(ev.target.files[0]);
const drop = $("verify-drop");
drop.ondragover = (ev) => { ev.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (ev) => { ev.preventDefault(); drop.classList.remove("over"); if (ev.dataTransfer.files[0]) verifyFile(ev.dataTransfer.files[0]); };

// ---- 5. Report --------------------------------------------------------------------------------
async function showReport() {
  const name = $("report-model").value;
  if (!name) return;
  let m;
  try { m = await get(`/api/models/${encodeURIComponent(name)}`); }
  catch (e) { $("report-frame").hidden = true; jobBox("report-job", { kind: "report", state: "failed", message: e.message, seconds: 0 }); return; }
  $("report-frame").hidden = !m.report;
  if (m.report) $("report-frame").src = m.report;
}
$("report-model").onchange = showReport;
$("tab-report").addEventListener("click", showReport);
$("report-run").onclick = async () => {
  const lacking = missing("report-model");
  if (lacking) { jobBox("report-job", { kind: "evaluate", state: "failed", message: lacking, seconds: 0 }); return; }
  starting("report-job", "evaluate");
  try {
    const job = await post("/api/evaluate", { model: $("report-model").value, faces: $("report-faces").value });
    watch("report-job", job, showReport);
  } catch (e) { jobBox("report-job", { kind: "evaluate", state: "failed", message: e.message, seconds: 0 }); }
};

// ---- start -------------------------------------------------------------------------------------
(async () => {
  await refresh();
  options($("fs-detector"), S.choices.detector); $("fs-detector").value = "hog";
  options($("preset"), S.presets.map((p) => p.name), S.presets.map((p) => p.name + (p.default ? " (default)" : "")));
  $("preset").onchange();
  for (const k of ["direction", "mask", "color", "blend", "occlusion"]) options($(`swap-${k}`), S.choices[k]);
  $("swap-color").value = S.defaults.color; $("swap-occlusion").value = S.defaults.occlusion;
  loadGallery();
  // a job still running (started before this page was loaded, or in another tab) is watched in
  // its screen's box again, with its Stop button and its result at the end (it showed only as a
  // row of the jobs table; training finds its own, pollModel)
  const boxes = { extract: ["extract-job", extracted], swap: ["swap-job", showSwap], evaluate: ["report-job", showReport] };
  const newest = {};
  for (const j of S.jobs) if (j.state === "running" && boxes[j.kind]) newest[j.kind] = j;
  for (const [kind, j] of Object.entries(newest)) watch(boxes[kind][0], j, boxes[kind][1]);
  setInterval(() => { if (!isStale) pollModel(); }, 1000);
  setInterval(() => { if (!document.hidden && !isStale) refresh().catch(() => {}); }, 5000);
})();
