// The job page: polls the coordinator's /api/status and /api/map every two seconds and redraws. Every string from the
// cluster is written with textContent (outputs and failure reasons are users' text, never markup).
"use strict";

const colours = { "d": "#2da44e", "i": "#2f81f7", "r": "#bf8700", "f": "#cf222e", ".": "#d0d7de" };
const names = { "d": "done", "i": "in flight", "r": "sent again", "f": "failed", ".": "waiting" };
let selectedJob = null, selectedPass = null, userPickedPass = false;

const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function fill(tbody, items, draw) {
  tbody.replaceChildren();
  for (const item of items) draw(tbody.insertRow(), item);
}

function time(iso) { return iso ? new Date(iso).toLocaleTimeString() : ""; }

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s} s` : `${s} s`;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function bar(row, done, total) {
  const td = row.insertCell();
  const outer = document.createElement("span"), inner = document.createElement("span");
  outer.className = "bar";
  const share = total > 0 ? done / total : 0;
  inner.style.width = `${(100 * share).toFixed(1)}%`;
  outer.appendChild(inner);
  td.appendChild(outer);
  td.appendChild(document.createTextNode(total > 0 ? `${(100 * share).toFixed(1)} %` : ""));
  td.dataset.done = done;
  td.dataset.total = total;
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${url}: HTTP ${response.status}`);
  return body;
}

function drawJobs(status) {
  $("coordinator").textContent = status.coordinator;
  const jobs = status.jobs;
  if (!selectedJob || !jobs.some((j) => j.id === selectedJob)) {
    const running = jobs.filter((j) => j.state === "running");
    selectedJob = running.length ? running[0].id : jobs.length ? jobs[jobs.length - 1].id : null;
    userPickedPass = false;
  }
  fill($("jobs").tBodies[0], jobs, (row, job) => {
    row.dataset.job = job.id;
    row.dataset.state = job.state;
    if (job.id === selectedJob) row.className = "selected";
    row.addEventListener("click", () => { selectedJob = job.id; selectedPass = null; userPickedPass = false; refresh(); });
    cell(row, job.id);
    cell(row, job.state, `state ${job.state}`);
    cell(row, job.stage);
    bar(row, job.chunksDone, job.chunksTotal);
    cell(row, time(job.submitted));
    cell(row, time(job.started));
    cell(row, time(job.finished));
    cell(row, job.output);
    cell(row, job.error, "reason");
  });
}

function drawJob(job) {
  $("job").hidden = false;
  $("job-id").textContent = job.id;
  $("job-state").textContent = job.state;
  $("job-state").className = `state ${job.state}`;
  const passes = job.passes || [];
  fill($("passes").tBodies[0], passes, (row, pass) => {
    row.dataset.stage = pass.stage;
    row.dataset.state = pass.state;
    cell(row, pass.index, "num");
    cell(row, pass.stage);
    cell(row, pass.state, `state ${pass.state}`);
    bar(row, pass.chunksDone, pass.chunksTotal);
    cell(row, `${pass.chunksDone} / ${pass.chunksTotal}`, "num");
    cell(row, `${(pass.voxelsPerSecond / 1e6).toFixed(2)} Mvoxels/s`, "num");
    cell(row, pass.state === "running" ? duration(pass.secondsLeft) : "", "num");
    cell(row, pass.chunksFailed, "num");
    cell(row, pass.chunksResent, "num");
  });
  const failures = passes.flatMap((p) => p.failures.map((f) => ({ pass: p, ...f })));
  fill($("failures").tBodies[0], failures, (row, f) => {
    row.dataset.chunk = f.chunk;
    cell(row, `${f.pass.index} ${f.pass.stage}`);
    cell(row, f.chunk, "num");
    cell(row, f.attempt, "num");
    cell(row, f.node);
    cell(row, time(f.time));
    cell(row, f.retried ? "sent again" : "failed");
    cell(row, f.reason, "reason");
  });
  const resends = passes.flatMap((p) => p.resends.map((r) => ({ pass: p, ...r })));
  fill($("resends").tBodies[0], resends, (row, r) => {
    row.dataset.chunk = r.chunk;
    cell(row, `${r.pass.index} ${r.pass.stage}`);
    cell(row, r.chunk, "num");
    cell(row, time(r.time));
    cell(row, r.why, "reason");
  });

  const select = $("map-pass");
  if (!userPickedPass || selectedPass === null || selectedPass >= passes.length) {
    const running = passes.filter((p) => p.state === "running");
    selectedPass = running.length ? running[running.length - 1].index : passes.length ? passes[passes.length - 1].index : null;
  }
  select.replaceChildren(...passes.map((p) => {
    const option = document.createElement("option");
    option.value = p.index;
    option.textContent = `${p.index} ${p.stage}`;
    option.selected = p.index === selectedPass;
    return option;
  }));
  const pass = passes.find((p) => p.index === selectedPass);
  if (pass) {
    const [times, depth] = pass.grid;
    $("map-z").max = depth - 1;
    $("map-t").max = times - 1;
    $("map-t-label").hidden = times <= 1;
  }
  return pass;
}

function drawNodes(status) {
  const load = Object.fromEntries(status.load.map((l) => [l.node, l]));
  // The coordinator's view of each node (up, draining, gone), as the metrics have it.
  const nodes = [...status.workers, ...(status.lost || [])].map((w) => ({ beat: w, state: load[w.node] ? load[w.node].state : "gone" }));
  fill($("nodes").tBodies[0], nodes, (row, { beat, state }) => {
    row.dataset.node = beat.node;
    row.dataset.state = state;
    cell(row, beat.node);
    cell(row, state, `state ${state}`);
    cell(row, beat.gpu ? `${beat.backend} (${beat.gpu})` : beat.backend);
    cell(row, `${beat.running} / ${beat.concurrency}`, "num");
    cell(row, beat.queued, "num");
    cell(row, load[beat.node] ? load[beat.node].inFlight : 0, "num");
    cell(row, beat.chunksDone, "num");
    cell(row, beat.chunksFailed, "num");
    cell(row, bytes(beat.memoryBytes), "num");
    cell(row, time(beat.time));
  });
}

async function drawMap(pass) {
  const canvas = $("map"), summary = $("map-summary");
  if (!pass) { summary.textContent = ""; return; }
  const t = Math.min(Number($("map-t").value) || 0, pass.grid[0] - 1);
  const z = Math.min(Number($("map-z").value) || 0, pass.grid[1] - 1);
  $("map-z-text").textContent = `z-plane ${z} of ${pass.grid[1]} (chunks)`;
  const map = await getJson(`api/map?job=${encodeURIComponent(selectedJob)}&pass=${pass.index}&t=${t}&z=${z}`);
  if (map.error) { summary.textContent = map.error; return; }
  const size = Math.max(2, Math.floor(320 / Math.max(map.width, map.height)));
  canvas.width = map.width * size;
  canvas.height = map.height * size;
  const context = canvas.getContext("2d");
  const counts = {};
  for (let y = 0; y < map.height; y++)
    for (let x = 0; x < map.width; x++) {
      const state = map.states[y * map.width + x];
      counts[state] = (counts[state] || 0) + 1;
      context.fillStyle = colours[state] || "#000";
      context.fillRect(x * size, y * size, size - (size > 3 ? 1 : 0), size - (size > 3 ? 1 : 0));
    }
  for (const state of Object.keys(names)) canvas.dataset[names[state].replace(" ", "")] = counts[state] || 0;
  summary.textContent = `pass ${pass.index} (${pass.stage}), t ${t}, z ${z}: ` +
    Object.keys(names).filter((s) => counts[s]).map((s) => `${counts[s]} ${names[s]}`).join(", ");
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    const status = await getJson("api/status");
    drawJobs(status);
    drawNodes(status);
    if (selectedJob) {
      const detail = await getJson(`api/status?job=${encodeURIComponent(selectedJob)}`);
      if (detail.jobs.length) await drawMap(drawJob(detail.jobs[0]));
    }
    $("updated").textContent = new Date().toLocaleTimeString();
    $("error").hidden = true;
  } catch (e) {
    $("error").textContent = `Cannot reach the job manager: ${e.message}`;
    $("error").hidden = false;
  } finally {
    busy = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("map-pass").addEventListener("change", (e) => { selectedPass = Number(e.target.value); userPickedPass = true; refresh(); });
  $("map-z").addEventListener("input", () => refresh());
  $("map-t").addEventListener("input", () => refresh());
  refresh();
  setInterval(refresh, 2000);
});
