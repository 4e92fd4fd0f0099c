"use strict";
// The newcomer's page: start jobs, and watch each in one table row that updates in place.

// Each kind's title, from its declaration (GET /kinds); the name until they have arrived.
const LABELS = {};
const label = (name) => LABELS[name] || name;
const tokenInput = document.getElementById("token");
tokenInput.value = sessionStorage.getItem("token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("token", tokenInput.value.trim()));

function cell(row, name) {
  return row.querySelector(`[data-cell="${name}"]`);
}

function addRow(id, label) {
  const row = document.createElement("tr");
  row.id = "job-" + id;
  row.innerHTML = `<td data-cell="name"></td><td><code data-cell="id"></code></td>
    <td><span class="status" data-cell="status">PENDING</span></td>
    <td><progress data-cell="progress" max="1" value="0" aria-label="progress"></progress></td><td data-cell="result"></td>`;
  cell(row, "name").textContent = label;
  cell(row, "id").textContent = id.slice(0, 8);
  document.getElementById("jobs").prepend(row);
  return row;
}

function render(row, view, token) {
  const status = cell(row, "status");
  status.textContent = view.status;
  status.className = "status " + view.status;
  const progress = cell(row, "progress");
  if (view.progress) {
    progress.max = view.progress.total;
    progress.value = view.progress.current;
  } else if (view.status === "SUCCESS") {
    progress.value = progress.max;
  }
  const result = cell(row, "result");
  // A running job without progress of its own (a sleep task) shows the time it has run, ticking (see below).
  if (view.status === "STARTED" && view.started_at && !view.progress) result.dataset.startedAt = view.started_at;
  else delete result.dataset.startedAt;
  if (view.status === "SUCCESS" && view.name === "generate_report" && !result.querySelector("button")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = "Download CSV";
    button.addEventListener("click", () => download(view.id, token));
    result.append(button);
  } else if (view.status === "SUCCESS" && view.name !== "generate_report") {
    result.textContent = JSON.stringify(view.result);
  } else if (view.error) {
    result.textContent = `${view.error.type}: ${view.error.message}`;
  } else if (view.status === "PENDING" && view.scheduled_for) {
    result.textContent = `scheduled for ${new Date(view.scheduled_for).toLocaleTimeString()}`;
  }
}

setInterval(() => {
  for (const result of document.querySelectorAll("#jobs [data-started-at]")) {
    const seconds = Math.max(0, (Date.now() - new Date(result.dataset.startedAt)) / 1000);
    result.textContent = `running for ${seconds.toFixed(1)} s`;
  }
}, 100);

async function start(label, request, token) {
  const created = await request;
  if (!token) rememberAnonymous(created.task_id, label);
  show(created.task_id, label, token);
}

function show(id, label, token) {
  if (document.getElementById("job-" + id)) return;
  const row = addRow(id, label);
  followJob(id, token, (view) => render(row, view, token));
}

// A reload loses nothing: the signed-in user's own jobs come from GET /jobs, this browser's anonymous ones from
// local storage (their ids are unguessable and nothing else lists them).
const ANONYMOUS = "anonymousJobs";
const KEEP_ANONYMOUS = 50;

function rememberAnonymous(id, label) {
  const jobs = JSON.parse(localStorage.getItem(ANONYMOUS) || "[]").filter((job) => job.id !== id);
  jobs.push({ id, label });
  localStorage.setItem(ANONYMOUS, JSON.stringify(jobs.slice(-KEEP_ANONYMOUS)));
}

async function restoreJobs() {
  const token = tokenInput.value.trim();
  const anonymous = JSON.parse(localStorage.getItem(ANONYMOUS) || "[]");
  const kept = [];
  for (const job of anonymous) {  // oldest first: each new row goes on top
    const response = await fetch(`/jobs/${job.id}`);
    if (response.ok) {
      kept.push(job);
      show(job.id, job.label, "");
    }
  }
  localStorage.setItem(ANONYMOUS, JSON.stringify(kept));  // expired ones are forgotten
  if (token) {
    const page = await api("GET", "/jobs?limit=20", { token }).catch(() => null);
    for (const view of (page ? page.items : []).reverse()) show(view.id, label(view.name), token);
  }
}

async function download(id, token) {
  const response = await fetch(`/reports/${id}/download`, { headers: authHeaders(token) });
  if (!response.ok) {
    showError(`${response.status}: the report cannot be downloaded`);
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `report-${id}.csv`;
  link.click();
  URL.revokeObjectURL(link.href);
}

// A task now (POST /tasks, the tutorial's route), or in 10 s (POST /jobs with delay_s).
for (const button of document.querySelectorAll("button[data-type]")) {
  button.addEventListener("click", () => {
    const type = Number(button.dataset.type);
    const request = document.getElementById("later").checked
      ? api("POST", "/jobs", { body: { name: "run_sleep_task", args: { type }, delay_s: 10 } })
      : api("POST", "/tasks", { body: { type } });
    start(`${label("run_sleep_task")} (${button.textContent})`, request).catch(() => {});
  });
}

// 100 Short tasks in one request (POST /jobs/batch), as one row: the jobs are followed one after the other on one
// stream at a time (a browser keeps only six connections to a server), which costs little since they run at once.
document.getElementById("batch").addEventListener("click", () => {
  const jobs = Array.from({ length: 100 }, () => ({ name: "run_sleep_task", args: { type: 1 } }));
  api("POST", "/jobs/batch", { body: { jobs } })
    .then((created) => showBatch(created.task_ids, `100 × ${label("run_sleep_task")} (Short)`))
    .catch(() => {});
});

async function showBatch(ids, text) {
  const row = addRow(ids[0], text);
  cell(row, "id").textContent = `${ids[0].slice(0, 8)} +${ids.length - 1}`;
  const progress = cell(row, "progress");
  progress.max = ids.length;
  const ended = { SUCCESS: 0, FAILURE: 0, REVOKED: 0 };
  const status = cell(row, "status");
  for (const id of ids) {
    await followJob(id, "", (view) => {
      if (!TERMINAL.has(view.status)) {
        status.className = "status STARTED";
        status.textContent = "STARTED";
        return;
      }
      ended[view.status] += 1;
      const done = ended.SUCCESS + ended.FAILURE + ended.REVOKED;
      progress.value = done;
      const failed = ended.FAILURE + ended.REVOKED;
      cell(row, "result").textContent = `${ended.SUCCESS} of ${ids.length} succeeded` + (failed ? `, ${failed} did not` : "");
      if (done === ids.length) {
        const final = failed ? "FAILURE" : "SUCCESS";
        status.textContent = final;
        status.className = "status " + final;
      }
    });
  }
}

document.getElementById("notify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = document.getElementById("email").value.trim();
  const message = document.getElementById("message").value;
  start(`${label("send_notification")} to ${email}`, api("POST", `/send-notification/${encodeURIComponent(email)}`, { body: { message } })).catch(() => {});
});

document.getElementById("report-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  sessionStorage.setItem("token", token);
  const rows = Number(document.getElementById("rows").value);
  start(`${label("generate_report")} (${rows} rows)`, api("POST", "/reports", { body: { rows }, token }), token).catch(() => {});
});

// Any declared kind, with its arguments as JSON: a team's own kinds appear here without touching the page.
const kindSelect = document.getElementById("kind");
const argsInput = document.getElementById("args");

// Arguments that fit the kind's schema, to start from: defaults, then a value of the right type and range for each
// required field (an address for an e-mail field), so that the form's first click queues a job.
function exampleValue(field) {
  if (field.examples?.length) return field.examples[0];
  if (field.type === "integer" || field.type === "number") return field.minimum ?? (field.exclusiveMinimum ?? -1) + 1;
  if (field.type === "boolean") return false;
  if (field.format === "email") return "ada@example.com";
  if (field.type === "string") return "example".slice(0, field.maxLength ?? 7).padEnd(field.minLength ?? 0, "x");
  return null;
}

function exampleArgs(schema) {
  const example = {};
  for (const [name, field] of Object.entries(schema.properties || {})) {
    if (field.default !== undefined) example[name] = field.default;
    else if ((schema.required || []).includes(name)) example[name] = exampleValue(field);
  }
  return JSON.stringify(example);
}

loadKinds().then((kinds) => {
  restoreJobs().catch(() => {});
  for (const kind of kinds) {
    LABELS[kind.name] = kind.title;
    if (kind.internal) continue;  // queued by the service itself (a webhook's delivery), not from here
    const option = document.createElement("option");
    option.value = kind.name;
    option.textContent = `${kind.title} (${kind.name})`;
    option.dataset.args = exampleArgs(kind.input_schema);
    option.title = kind.description;
    kindSelect.append(option);
  }
  argsInput.value = kindSelect.selectedOptions[0]?.dataset.args || "{}";
}).catch(() => {});

kindSelect.addEventListener("change", () => { argsInput.value = kindSelect.selectedOptions[0].dataset.args; });

document.getElementById("kind-form").addEventListener("submit", (event) => {
  event.preventDefault();
  let args;
  try {
    args = JSON.parse(argsInput.value || "{}");
  } catch (e) {
    showError("The arguments are not JSON: " + e.message);
    return;
  }
  const token = tokenInput.value.trim();
  const name = kindSelect.value;
  start(label(name), api("POST", "/jobs", { body: { name, args }, token }), token).catch(() => {});
});
