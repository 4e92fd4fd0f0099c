"use strict";
// The newcomer's page: start jobs, and watch each in one table row that updates in place.

const LABELS = { run_sleep_task: "Task", send_notification: "Notification", generate_report: "Report" };
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
  }
}

async function start(label, request, token) {
  const created = await request;
  const row = addRow(created.task_id, label);
  followJob(created.task_id, token, (view) => render(row, view, token));
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

for (const button of document.querySelectorAll("button[data-type]")) {
  button.addEventListener("click", () =>
    start(`${LABELS.run_sleep_task} (${button.textContent})`, api("POST", "/tasks", { body: { type: Number(button.dataset.type) } })).catch(() => {}));
}

document.getElementById("notify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = document.getElementById("email").value.trim();
  const message = document.getElementById("message").value;
  start(`${LABELS.send_notification} to ${email}`, api("POST", `/send-notification/${encodeURIComponent(email)}`, { body: { message } })).catch(() => {});
});

document.getElementById("report-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  sessionStorage.setItem("token", token);
  const rows = Number(document.getElementById("rows").value);
  start(`${LABELS.generate_report} (${rows} rows)`, api("POST", "/reports", { body: { rows }, token }), token).catch(() => {});
});
