"use strict";
// The operator's dashboard: everything read from Redis through the API, refreshed every few seconds.

const REFRESH_MS = 3000;
const tokenInput = document.getElementById("admin-token");
tokenInput.value = sessionStorage.getItem("adminToken") || "";
let timer = null;

function text(tag, value) {
  const element = document.createElement(tag);
  element.textContent = value;
  return element;
}

function actionButton(label, handler) {
  const button = text("button", label);
  button.type = "button";
  button.className = "secondary";
  button.addEventListener("click", handler);
  return button;
}

function fillTable(id, rows) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows.map((cells) => {
    const row = document.createElement("tr");
    row.append(...cells.map((c) => (c instanceof Node ? wrap(c) : text("td", c))));
    return row;
  }));
}

function group(nodes) {
  const span = document.createElement("span");
  span.append(...nodes);
  return span;
}

function wrap(node) {
  const td = document.createElement("td");
  td.append(node);
  return td;
}

async function act(path, method = "POST", body = undefined) {
  const token = tokenInput.value.trim();
  const answer = await api(method, path, { token, body }).catch(() => null);
  refresh();
  return answer;
}

// Bulk and destructive actions ask first.
document.getElementById("retry-all").addEventListener("click", async () => {
  if (!confirm("Run every failed job again (each once)?")) return;
  const answer = await act("/jobs/retry", "POST", { status: "FAILURE" });
  if (answer) showNotice(`${answer.retried} failed jobs queued again`);
});

function deleteButton(job) {
  return actionButton("Delete", () => {
    if (confirm(`Delete ${job.name} ${job.id.slice(0, 8)}: its result, record and files?`)) act(`/jobs/${job.id}`, "DELETE");
  });
}

function showNotice(text) {
  document.getElementById("notice").textContent = text;
}

function drawChart(points) {
  const svg = document.getElementById("chart");
  const top = Math.max(1, ...points.map((p) => p.finished));
  const width = 600 / points.length;
  svg.replaceChildren(...points.map((p, i) => {
    const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    const height = (p.finished / top) * 110;
    bar.setAttribute("x", i * width + 1);
    bar.setAttribute("y", 120 - height);
    bar.setAttribute("width", width - 2);
    bar.setAttribute("height", height);
    bar.append(document.createElementNS("http://www.w3.org/2000/svg", "title"));
    bar.firstChild.textContent = `${new Date(p.minute * 1000).toLocaleTimeString()}: ${p.finished}`;
    return bar;
  }));
}

// The kind filter lists every declared kind (the dashboard's data names them), filled once.
function fillKinds(kinds) {
  const select = document.getElementById("name-filter");
  if (select.options.length > 1) return;
  for (const kind of kinds) {
    const option = document.createElement("option");
    option.value = kind.name;
    option.textContent = `${kind.title} (${kind.name})`;
    select.append(option);
  }
}

async function refresh() {
  const token = tokenInput.value.trim();
  if (!token) return;
  try {
    const data = await api("GET", "/dashboard/data", { token });
    fillKinds(data.kinds);
    fillTable("queues", data.queues.map((q) => [q.name, String(q.depth), String(q.scheduled)]));
    fillTable("schedules", data.kinds.filter((k) => k.schedule).map((k) => [k.title, text("code", k.schedule),
      new Date(k.next_run).toLocaleString()]));
    fillTable("workers", data.workers.map((w) => [w.id, new Date(w.last_seen).toLocaleTimeString(), String(w.jobs_done), String(w.running)]));
    drawChart(data.throughput);
    fillTable("failed", data.failed.map((j) => [j.name, text("code", j.id.slice(0, 8)), `${j.error.type}: ${j.error.message}`,
      actionButton("Retry", () => act(`/jobs/${j.id}/retry`))]));
    const status = document.getElementById("status-filter").value;
    const name = document.getElementById("name-filter").value;
    const page = await api("GET", `/jobs?limit=100${status ? "&status=" + status : ""}`, { token });
    const jobs = page.items.filter((j) => !name || j.name === name);
    fillTable("jobs", jobs.map((j) => [j.name, text("code", j.id.slice(0, 8)), text("span", j.status), j.queue,
      j.scheduled_for ? new Date(j.scheduled_for).toLocaleTimeString() : "-", j.owner || "-",
      TERMINAL.has(j.status)
        ? group(j.status === "SUCCESS" ? [deleteButton(j)] : [actionButton("Retry", () => act(`/jobs/${j.id}/retry`)), deleteButton(j)])
        : actionButton("Abort", () => act(`/jobs/${j.id}/abort`))]));
    for (const span of document.querySelectorAll("#jobs span")) span.className = "status " + span.textContent;
  } catch (_) { /* shown in the alert */ }
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("adminToken", tokenInput.value.trim());
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
});
for (const id of ["status-filter", "name-filter"]) document.getElementById(id).addEventListener("change", refresh);
if (tokenInput.value) {
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}
