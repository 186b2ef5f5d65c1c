// The gallery: plain DOM code, no build step. Seeds stay strings (they go up to 2^63 - 1,
// beyond what a JavaScript number holds exactly). body[data-state] says what the page shows:
// loading | ready | training | error (the browser tests wait on it).
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const state = { versions: [], models: [], model: "", shown: null, objectUrls: {}, ticket: 0 };

// the category picker: "" is the first model (no category), "all" one row per category, else
// one of the ten; every category is the class-conditional model (the second of /api/versions'
// models), whose versions, labels and figures the picker and the quality panel then show
function category() { return $("category").value; }
function modelParam() { return category() && state.models[1] ? { model: state.models[1] } : {}; }

function setState(name) { document.body.dataset.state = name; }

function pinParams(choice) {
  // the picker's value: "" (newest), "v:N" (a version) or "l:NAME" (a label)
  if (choice.startsWith("v:")) return { version: choice.slice(2) };
  if (choice.startsWith("l:")) return { label: choice.slice(2) };
  return {};
}

function query(obj) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== "" && v !== null) q.set(k, v);
  return q.toString();
}

function layout() {
  return { rows: $("rows").value, cols: $("cols").value, scale: $("scale").value };
}

async function errorSentence(resp) {
  try { return (await resp.json()).error || `HTTP ${resp.status}`; } catch { return `HTTP ${resp.status}`; }
}

function showImage(img, key, blob) {
  if (state.objectUrls[key]) URL.revokeObjectURL(state.objectUrls[key]);
  state.objectUrls[key] = URL.createObjectURL(blob);
  img.src = state.objectUrls[key];
}

async function fetchVersions(model) {
  const resp = await fetch("/api/versions" + (model ? "?" + query({ model }) : ""));
  return resp.json().catch(() => ({ versions: [], labels: {} }));
}

async function loadVersions() {
  let body = null;
  if (!state.models.length) {  // which models this gateway serves (the second: by category)
    body = await fetchVersions("");
    state.models = body.models || [];
    // a gateway without the class-conditional model: the picker has only "any"
    $("category").disabled = state.models.length < 2;
  }
  const wanted = modelParam().model || "";
  if (wanted || !body) body = await fetchVersions(wanted);
  state.versions = body.versions || [];
  state.model = wanted;
  const select = $("model");
  const keep = select.value;
  select.replaceChildren(new Option("newest version", ""));
  for (const name of Object.keys(body.labels || {}).sort()) {
    select.add(new Option(`label ${name} (version ${body.labels[name]})`, `l:${name}`));
  }
  for (const v of state.versions) {
    if (v.state !== "AVAILABLE") continue;
    const extra = v.labels.length ? ` · ${v.labels.join(", ")}` : "";
    select.add(new Option(`version ${v.version}${extra}`, `v:${v.version}`));
  }
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  return state.versions.some((v) => v.state === "AVAILABLE");
}

function fmt(x) { return typeof x === "number" ? x.toFixed(x >= 100 ? 1 : 3) : String(x); }

function showQuality(version) {
  const dl = $("quality");
  dl.replaceChildren();
  const row = state.versions.find((v) => v.version === version);
  const q = (row && row.quality) || {};
  const items = [];
  // figures without an evaluator's name are the previous evaluator's: kept as history only,
  // on another scale than today's (it could not see blur)
  if ("fid" in q && q.evaluator) items.push(["FID", `${fmt(q.fid)} (real data: ${fmt(q.fid_real_floor)}; lower is better)`]);
  if ("fid" in q && !q.evaluator) items.push(["FID, previous evaluator (history)", `${fmt(q.fid)} (not comparable with today's figures)`]);
  if ("precision" in q) items.push(["Precision (designs that look real)", `${fmt(q.precision)} (real data: ${fmt(q.precision_real_floor)})`]);
  if ("recall" in q) items.push(["Recall (real variety covered)", `${fmt(q.recall)} (real data: ${fmt(q.recall_real_floor)})`]);
  if ("class_kl_to_uniform" in q) items.push(["Class balance (KL to uniform)", `${fmt(q.class_kl_to_uniform)} (real data: ${fmt(q.class_kl_real_floor)})`]);
  if ("nn_distance_mean" in q) items.push(["Distance to nearest training image", `${fmt(q.nn_distance_mean)} (real data: ${fmt(q.nn_distance_real_floor_mean)})`]);
  if ("samples" in q) items.push(["Measured on", `${q.samples} designs`]);
  if ("agreement" in q) items.push(["Agreement (designs the classifier sees as the category asked)", `${fmt(q.agreement)} (the classifier on real images: ${fmt(q.classifier_accuracy)})`]);
  if ("samples" in q) items.push(["Measured on", `${q.samples} designs`]);
  if (row && row.profile) items.push(["Training profile", `${row.profile}, ${row.epochs} epochs`]);
  if (!items.length) items.push(["Figures", "this version's model card has none"]);
  for (const [k, v] of items) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  showPerClass(row);
}

function showPerClass(row) {
  // a class-conditional version's card: FID and agreement per category, beside real data's
  const table = $("per-class");
  const body = table.tBodies[0];
  body.replaceChildren();
  const per = (row && row.per_class) || {};
  const names = (row && row.categories) || [];
  table.hidden = !(row && row.conditional && names.length);
  for (const [i, c] of names.entries()) {
    const tr = document.createElement("tr");
    const at = (key) => (Array.isArray(per[key]) && i < per[key].length ? fmt(per[key][i]) : "—");
    for (const text of [`${c.en} (${c.es})`, `${at("fid_per_class")} (${at("fid_real_floor_per_class")})`,
                        `${at("agreement_per_class")} (${at("classifier_accuracy_per_class")})`]) {
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }
    body.append(tr);
  }
}

async function draw(seed) {
  // one sheet; without a seed the server draws fresh noise and says which seed in X-Seed
  $("error").textContent = "";
  const ticket = ++state.ticket;  // a later draw wins, whichever answer comes back first
  const stale = () => ticket !== state.ticket;
  const l = layout();
  const cat = category();
  if (cat === "all") delete l.rows;  // one row per category: the gateway sets the rows
  const url = "/api/generar-diseno?" + query({ seed, ...l, category: cat, ...pinParams($("model").value) });
  setState("loading");
  let resp;
  try { resp = await fetch(url); } catch (e) { return stale() || fail("The gateway is unreachable; try again."); }
  if (stale()) return;
  if (resp.status === 503) {
    const body = await resp.json().catch(() => ({}));
    if (body.training) return watchTraining(body.status_url || "/api/training");
    return fail(body.error || "The model server is busy; try again shortly.");
  }
  if (!resp.ok) return fail(await errorSentence(resp));
  const blob = await resp.blob();
  if (stale()) return;
  if (cat === "all") l.rows = "10";
  const shown = { seed: resp.headers.get("X-Seed"), version: Number(resp.headers.get("X-Model-Version")), ...l };
  state.shown = shown;
  const img = $("sheet");
  const what = cat === "all" ? ", one row per category" : cat ? `, category ${cat}` : "";
  img.alt = `${l.rows} by ${l.cols} sheet of generated clothing designs${what}, seed ${shown.seed}, model version ${shown.version}`;
  img.dataset.seed = shown.seed;
  img.dataset.version = String(shown.version);
  img.dataset.category = resp.headers.get("X-Category") || "";
  img.onload = () => { if (!stale()) setState("ready"); };
  showImage(img, "sheet", blob);
  $("seed").value = shown.seed;
  const named = cat ? ` · ${cat === "all" ? "every category" : cat}` : "";
  $("caption").textContent = `Seed ${shown.seed} · version ${shown.version} · ${l.rows}×${l.cols}${named}`;
  // the link pins the version that drew the sheet: it reproduces it byte for byte after a rollout
  const sized = cat === "all" ? { cols: l.cols, scale: l.scale } : l;
  const pinned = { seed: shown.seed, ...sized, category: cat, version: shown.version };
  $("share").href = "/?" + query(pinned);
  $("download").href = "/api/generar-diseno?" + query(pinned);
  $("download").download = `designs-v${shown.version}-seed${shown.seed}.png`;
  history.replaceState(null, "", "/?" + query({ seed: shown.seed, ...sized, category: cat, ...pinParams($("model").value) }));
  if (!$("walk-from").value) $("walk-from").value = shown.seed;
  // a version the picker has not seen (a rollout since the page loaded): list them again
  if (!state.versions.some((v) => v.version === shown.version)) await loadVersions().catch(() => false);
  if (!stale()) showQuality(shown.version);
}

function fail(sentence) {
  $("error").textContent = sentence;
  setState("error");
}

let polling = false;
async function watchTraining(statusUrl = "/api/training") {
  // no version yet (of the first model, or of the class-conditional one when a category was
  // asked): show the job's progress until a version is AVAILABLE, then draw
  if (polling) { setState("training"); return; }
  polling = true;
  setState("training");
  $("training").hidden = false;
  $("sheet-section").setAttribute("aria-busy", "true");
  while (true) {
    try {
      const job = (await (await fetch(statusUrl)).json()).training || {};
      // a progressive job runs to a time budget: its minutes say more than its epoch cap
      const epochs = job.budget_s
        ? ` ${Math.floor((job.clock_s || 0) / 60)} of ${Math.round(job.budget_s / 60)} minutes`
        : job.epochs ? ` epoch ${job.epoch} of ${job.epochs}` : "";
      let text = `Training job: ${job.state}${job.profile ? ` (${job.profile} profile)` : ""}${epochs}.`;
      if (job.state === "failed") text += ` It failed: ${job.error || "see the log"}; the next try starts at ${job.retry_at}.`;
      $("training-text").textContent = text;
      $("training-progress").value = job.progress || 0;
      $("training-log").textContent = (job.log_tail || []).join("\n");
      if (await loadVersions()) break;
      const waiting = state.versions.map((v) => `version ${v.version}: ${v.state}`).join(", ");
      if (waiting) $("training-text").textContent += ` Published, not yet served: ${waiting}.`;
    } catch (e) {
      $("training-text").textContent = "The gateway is unreachable; still trying.";
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  polling = false;
  $("training").hidden = true;
  watchImproving();
  $("sheet-section").removeAttribute("aria-busy");
  await draw(new URLSearchParams(location.search).get("seed") || undefined);
}

// a progressive training job publishes better versions for a while after the first: say so,
// and when the next one is due, from /api/training (it publishes only what the evaluator rates
// better than the version being served)
let improvingTimer = null;
async function watchImproving() {
  let job = {};
  try { job = (await (await fetch("/api/training")).json()).training || {}; } catch (e) { job = {}; }
  const box = $("improving");
  if (!job.improving) {
    box.hidden = true;
    return;
  }
  const due = job.next_candidate_at ? new Date(job.next_candidate_at) : null;
  const when = due ? ` The next candidate is due around ${due.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })};` : "";
  const served = job.version ? ` Version ${job.version} is the newest it published.` : "";
  $("improving-text").textContent =
    `The model is still improving.${served}${when} it is published only if the evaluator rates it better.`;
  $("improving-progress").value = job.progress || 0;
  box.hidden = false;
  if (job.version && state.shown && job.version > state.shown.version) {
    $("improving-text").textContent += ` A newer version (${job.version}) is out: "New designs" uses it.`;
  }
  clearTimeout(improvingTimer);
  improvingTimer = setTimeout(watchImproving, 10000);
}

async function walk(ev) {
  if (ev) ev.preventDefault();
  $("walk-error").textContent = "";
  const format = $("walk-format").value;
  // the walk is drawn as the sheet's category (none for "any" and "all"), and again as the
  // second category when one is picked (a second row)
  const cat = category() === "all" ? "" : category();
  const then = cat ? $("walk-to-category").value : "";
  const params = { from: $("walk-from").value.trim(), to: $("walk-to").value.trim(), steps: $("walk-steps").value,
                   format, scale: $("scale").value, category: cat, to_category: then, ...pinParams($("model").value) };
  const url = "/api/interpolate?" + query(params);
  const resp = await fetch(url).catch(() => null);
  if (!resp) { $("walk-error").textContent = "The gateway is unreachable; try again."; return; }
  if (!resp.ok) { $("walk-error").textContent = await errorSentence(resp); return; }
  const img = $("strip");
  img.alt = `${params.steps} designs morphing from seed ${params.from} to seed ${params.to}` +
            (cat ? ` as ${cat}` : "") + (then ? `, then as ${then}` : "") +
            (format === "gif" ? ", as an animation" : then ? ", in two rows" : ", in one row");
  img.dataset.version = resp.headers.get("X-Model-Version");
  showImage(img, "strip", await resp.blob());
  $("walk-download").href = url;
  $("walk-download").download = `walk-${params.from}-${params.to}.${format}`;
}

function randomSeed() {
  const a = new Uint32Array(2);
  crypto.getRandomValues(a);
  return ((BigInt(a[0] & 0x7fffffff) << 32n) | BigInt(a[1])).toString();
}

async function applyLimits() {
  // the ranges come from the gateway (GET /api/limits: its GATEWAY_MAX_* settings), so the
  // form never offers a size the gateway refuses; without them the gateway's 400 still says
  // what it allows
  const resp = await fetch("/api/limits", { signal: AbortSignal.timeout(5000) });
  if (!resp.ok) return;
  const limits = await resp.json();
  for (const [id, name] of [["rows", "rows"], ["cols", "cols"], ["scale", "scale"], ["walk-steps", "steps"]]) {
    const input = $(id), limit = limits[name];
    if (!limit) continue;
    input.min = limit.min;
    input.max = limit.max;
    input.value = Math.min(Math.max(Number(input.value), limit.min), limit.max);
  }
}

async function start() {
  const limited = applyLimits().catch(() => {});  // the listeners do not wait for it
  const q = new URLSearchParams(location.search);
  for (const key of ["rows", "cols", "scale", "seed"]) if (q.get(key)) $(key).value = q.get(key);
  if (q.get("category") && [...$("category").options].some((o) => o.value === q.get("category"))) {
    $("category").value = q.get("category");
  }
  $("walk-to").value = randomSeed();
  $("controls").addEventListener("submit", (ev) => { ev.preventDefault(); draw($("seed").value.trim() || undefined); });
  $("new").addEventListener("click", () => draw(undefined));
  $("model").addEventListener("change", () => draw($("seed").value.trim() || undefined));
  $("category").addEventListener("change", async () => {
    // another model's versions and labels: the pin starts again from its newest version
    const before = modelParam().model || "";
    if (before !== state.model) {
      $("model").value = "";
      await loadVersions().catch(() => false);
    }
    $("rows").disabled = category() === "all";
    draw($("seed").value.trim() || undefined);
  });
  $("walk").addEventListener("submit", walk);
  await limited;  // before the first sheet: its size is clamped to the gateway's limits
  $("rows").disabled = category() === "all";
  let ready = false;
  try { ready = await loadVersions(); } catch (e) { ready = false; }
  const choice = q.get("version") ? `v:${q.get("version")}` : q.get("label") ? `l:${q.get("label")}` : "";
  if (choice) {
    if (![...$("model").options].some((o) => o.value === choice)) $("model").add(new Option(choice.slice(2), choice));
    $("model").value = choice;
  }
  // with no version yet the sheet's 503 carries the job, and draw() turns to its progress
  if (!ready) setState("loading");
  await draw(q.get("seed") || undefined);
  watchImproving();
}

start();
