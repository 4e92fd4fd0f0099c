"use strict";
// The operator's dashboard. Everything comes from the API: one pushed stream (GET /dashboard/events) for queues,
// workers, charts and failures; GET /jobs with the filters for the list (server-side, paged by cursor); and a job's
// own event stream for its detail.

const tokenInput = document.getElementById("admin-token");
tokenInput.value = sessionStorage.getItem("adminToken") || "";
const byId = (id) => document.getElementById(id);
const paging = { cursors: [null], next: null };  // the cursor of each page seen, to go back to the newest
let live = null;  // the dashboard stream's AbortController
let detail = null;  // the open job's: { id, controller }

const token = () => tokenInput.value.trim();
const time = (value) => (value ? new Date(value).toLocaleString() : "-");
const short = (id) => id.slice(0, 8);

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

function group(nodes) {
  const span = document.createElement("span");
  span.append(...nodes);
  return span;
}

function fillTable(id, rows) {
  byId(id).replaceChildren(...rows.map((cells) => {
    const row = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      row.append(td);
    }
    return row;
  }));
}

const MAX_TRIES = {};  // each kind's max_tries, from GET /kinds
loadKinds().then((kinds) => kinds.forEach((k) => { MAX_TRIES[k.name] = k.max_tries; })).catch(() => {});

function statusOf(status) {
  const span = text("span", status);
  span.className = "status " + status;
  return span;
}

function showNotice(message) {
  byId("notice").textContent = message;
}

async function act(path, method = "POST", body = undefined) {
  const answer = await api(method, path, { token: token(), body }).catch(() => null);
  loadJobs();
  if (detail) showDetail(detail.id);
  return answer;
}

// A job's short id as a link to its detail (#job=<id>: the address can be copied, and the hash change opens it).
function jobLink(job) {
  const link = document.createElement("a");
  link.href = `#job=${job.id}`;
  link.append(text("code", short(job.id)));
  link.title = `${job.name} ${job.id}`;
  return link;
}

function jobActions(job) {
  const open = actionButton("Open", () => openJob(job.id));
  if (!TERMINAL.has(job.status)) return group([open, actionButton("Abort", () => act(`/jobs/${job.id}/abort`))]);
  const remove = actionButton("Delete", () => {
    if (confirm(`Delete ${job.name} ${short(job.id)}: its result, record and files?`)) act(`/jobs/${job.id}`, "DELETE");
  });
  if (job.status === "SUCCESS") return group([open, remove]);
  return group([open, actionButton("Retry", () => act(`/jobs/${job.id}/retry`)), remove]);
}

// --- the pushed part: queues, workers, charts, failures --------------------------------------------------------

function fillSelect(id, entries) {
  const select = byId(id);
  if (select.options.length > 1) return;
  for (const [value, label] of entries) {
    const option = text("option", label);
    option.value = value;
    select.append(option);
  }
}

function render(data) {
  fillSelect("name-filter", data.kinds.map((k) => [k.name, `${k.title} (${k.name})`]));
  fillSelect("queue-filter", data.queues.map((q) => [q.name, q.name]));
  fillTable("queues", data.queues.map((q) => [q.name, String(q.waiting), String(q.running), String(q.scheduled)]));
  fillTable("schedules", data.kinds.filter((k) => k.schedule).map((k) => [k.title, text("code", k.schedule), time(k.next_run)]));
  fillTable("workers", data.workers.map((w) => [text("code", w.id), w.host, (w.queues || []).join(", "), String(w.running),
    String(w.jobs_done), new Date(w.last_seen).toLocaleTimeString(), statusOf(w.check ? "passing" : "failing")]));
  const minutes = data.throughput.map((m) => m.minute);
  drawChart(byId("chart-throughput"), minutes, [
    { name: "finished", values: data.throughput.map((m) => m.finished), kind: "bar", cls: "s-ok" },
    { name: "failed", values: data.throughput.map((m) => m.failed), kind: "bar", cls: "s-bad" },
  ]);
  drawChart(byId("chart-wait"), minutes, [
    { name: "p50", values: data.throughput.map((m) => m.wait_p50_s), kind: "line", cls: "s-ok" },
    { name: "p95", values: data.throughput.map((m) => m.wait_p95_s), kind: "line", cls: "s-warn" },
  ], { decimals: 3 });
  drawChart(byId("chart-depth"), minutes, data.queues.map((q, i) => (
    { name: q.name, values: q.history, kind: "line", cls: `s-${i % 4}` })));
  fillTable("failed", data.failed.map((j) => [j.name, jobLink(j), `${j.error.type}: ${j.error.message}`,
    group([actionButton("Open", () => openJob(j.id)), actionButton("Retry", () => act(`/jobs/${j.id}/retry`))])]));
}

async function connect() {
  live?.abort();
  live = new AbortController();
  const { signal } = live;
  const indicator = byId("live");
  while (!signal.aborted) {
    try {
      const response = await fetch("/dashboard/events", { headers: authHeaders(token()), signal });
      if (!response.ok) {
        await api("GET", "/dashboard/data", { token: token() }).catch(() => {});  // shows why (401, 403, 503)
        const why = { 401: "no valid token", 403: "this token is not an admin's" }[response.status] || "try again shortly";
        indicator.textContent = `not connected: ${response.status}, ${why}`;
        if (response.status === 401 || response.status === 403) return;
      } else {
        indicator.textContent = "live";
        for await (const data of readEvents(response)) {
          render(data);
          loadJobs();
        }
      }
    } catch (_) {
      if (signal.aborted) return;
    }
    indicator.textContent = "reconnecting";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// --- the list: filtered and paged on the server ----------------------------------------------------------------

function listQuery(cursor) {
  const query = new URLSearchParams({ limit: "20" });
  const filters = { status: "status-filter", name: "name-filter", queue: "queue-filter", owner: "owner-filter" };
  for (const [name, id] of Object.entries(filters)) if (byId(id).value.trim()) query.set(name, byId(id).value.trim());
  if (byId("since-filter").value) query.set("since", new Date(byId("since-filter").value).toISOString());
  if (cursor) query.set("cursor", cursor);
  return query;
}

// A RETRY says which try ended and when the next one runs: "RETRY, try 2 of 5, next at 12:03:04".
function statusCell(job) {
  const cell = statusOf(job.status);
  if (job.status !== "RETRY") return cell;
  const max = MAX_TRIES[job.name];
  const next = job.next_try_at ? `, next at ${new Date(job.next_try_at).toLocaleTimeString()}` : "";
  cell.textContent = `RETRY, try ${job.attempt}${max ? ` of ${max}` : ""}${next}`;
  return cell;
}

function fillJobs(jobs) {
  fillTable("jobs", jobs.map((j) => [j.name, jobLink(j), statusCell(j), j.queue, time(j.enqueued_at),
    j.scheduled_for ? time(j.scheduled_for) : "-", j.owner || "-", jobActions(j)]));
}

let loading = null;
async function loadJobs() {
  if (!token()) return;
  const cursor = paging.cursors[paging.cursors.length - 1];
  const request = (loading = api("GET", `/jobs?${listQuery(cursor)}`, { token: token() }));
  const page = await request.catch(() => null);
  if (!page || request !== loading) return;  // a newer load started meanwhile
  paging.next = page.next;
  fillJobs(page.items);
  byId("next-page").disabled = !page.next;
  byId("first-page").disabled = paging.cursors.length === 1;
  byId("page-info").textContent = `page ${paging.cursors.length}`;
}

function restartPaging() {
  paging.cursors = [null];
  loadJobs();
}

byId("next-page").addEventListener("click", () => {
  if (!paging.next) return;
  paging.cursors.push(paging.next);
  loadJobs();
});
byId("first-page").addEventListener("click", restartPaging);
for (const id of ["status-filter", "name-filter", "queue-filter", "since-filter"]) byId(id).addEventListener("change", restartPaging);
byId("owner-filter").addEventListener("change", restartPaging);

byId("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = byId("search").value.trim();
  const found = await api("GET", `/jobs/search?q=${encodeURIComponent(q)}`, { token: token() }).catch(() => null);
  if (!found) return;
  showNotice(found.items.length === 1 ? `Found ${short(found.items[0].id)}` : `${found.items.length} jobs found for ${q}`);
  if (found.items.length === 1) openJob(found.items[0].id);
});

// --- a job's detail, live --------------------------------------------------------------------------------------

function fact(list, name, value) {
  list.append(text("dt", name), text("dd", value));
}

function seconds(from, to) {
  return from && to ? `${((new Date(to) - new Date(from)) / 1000).toFixed(3)} s` : "-";
}

function showProgress(view) {
  const bar = byId("detail-progress");
  if (view.progress) {
    bar.max = Math.max(1, view.progress.total);
    bar.value = view.progress.current;
    byId("detail-progress-text").textContent = `${view.progress.current} / ${view.progress.total}`;
  } else {
    bar.max = 1;
    bar.value = view.status === "SUCCESS" ? 1 : 0;
    byId("detail-progress-text").textContent = view.status === "SUCCESS" ? "done" : "-";
  }
}

async function showDetail(id) {
  const job = await api("GET", `/jobs/${id}`, { token: token() }).catch(() => null);
  if (!job || detail?.id !== id) return;
  byId("detail-id").textContent = job.id;
  byId("detail-kind").textContent = job.name;
  const status = byId("detail-status");
  status.textContent = job.status;
  status.className = "status " + job.status;
  const facts = byId("detail-facts");
  facts.replaceChildren();
  const tries = job.tries || [];
  fact(facts, "Queue", job.queue);
  fact(facts, "Owner", job.owner || "anonymous");
  fact(facts, "Worker", job.worker || "-");
  fact(facts, "Tries", String(job.attempt));
  fact(facts, "Waited in the queue", seconds(job.scheduled_for || job.enqueued_at, tries[0]?.started_at || job.started_at));
  fact(facts, "Ran for", seconds(job.started_at, job.finished_at));
  const steps = [["Enqueued", job.enqueued_at]];
  if (job.scheduled_for) steps.push(["Scheduled for", job.scheduled_for]);
  for (const t of tries) steps.push([`Try ${t.attempt} started on ${t.worker || "?"}`, t.started_at]);
  if (job.finished_at) steps.push([`Finished: ${job.status}`, job.finished_at]);
  byId("detail-timeline").replaceChildren(...steps.map(([what, at]) => text("li", `${time(at)} - ${what}`)));
  fillTable("detail-tries", tries.map((t) => [String(t.attempt), time(t.started_at), t.worker || "-", t.error || "-"]));
  byId("detail-args").textContent = job.args === undefined ? "(not shown)" : JSON.stringify(job.args, null, 2);
  byId("detail-result").textContent = job.result === null ? "-" : JSON.stringify(job.result, null, 2);
  byId("detail-error-box").hidden = !job.error;
  if (job.error) {
    byId("detail-error").textContent = `${job.error.type}: ${job.error.message}${job.error.traceback ? "\n\n" + job.error.traceback : ""}`;
  }
  byId("detail-abort").disabled = TERMINAL.has(job.status);
  byId("detail-retry").disabled = !["FAILURE", "REVOKED"].includes(job.status);
  showProgress(job);
}

function openJob(id) {
  detail?.controller.abort();
  detail = { id, controller: new AbortController() };
  byId("detail").hidden = false;
  history.replaceState(null, "", `#job=${id}`);
  showDetail(id);
  let last = null;
  followJob(id, token(), (view) => {
    if (detail?.id !== id) return;
    showProgress(view);
    if (view.status !== last) showDetail(id);  // the rest changes with the status
    last = view.status;
  }, detail.controller.signal);
  byId("detail").scrollIntoView();
}

byId("detail-close").addEventListener("click", () => {
  detail?.controller.abort();
  detail = null;
  byId("detail").hidden = true;
  history.replaceState(null, "", location.pathname);
});
byId("detail-abort").addEventListener("click", () => detail && act(`/jobs/${detail.id}/abort`));
byId("detail-retry").addEventListener("click", async () => {
  if (!detail) return;
  const again = await act(`/jobs/${detail.id}/retry`);
  if (again) openJob(again.task_id);
});

// --- signing in ------------------------------------------------------------------------------------------------

byId("retry-all").addEventListener("click", async () => {
  if (!confirm("Run every failed job again (each once)?")) return;
  const answer = await act("/jobs/retry", "POST", { status: "FAILURE" });
  if (answer) showNotice(`${answer.retried} failed jobs queued again`);
});

function openFromAddress() {
  const opened = location.hash.match(/^#job=([A-Za-z0-9_.:-]+)$/);
  if (opened && opened[1] !== detail?.id) openJob(opened[1]);
}

// Signed out, the page is its sign-in section alone (with how to get a link), not an empty skeleton.
function showSignedIn(signedIn) {
  document.body.classList.toggle("signed-out", !signedIn);
}

function start() {
  showSignedIn(true);
  sessionStorage.setItem("adminToken", token());
  connect();
  restartPaging();
  openFromAddress();
}

// A link to a job (#job=<id>), pasted or followed, opens its detail.
window.addEventListener("hashchange", () => { if (token()) openFromAddress(); });

// A one-time link (`make run` prints one): #signin=<code>, traded once for the token, then gone from the address.
async function signInFromLink() {
  const match = location.hash.match(/signin=([A-Za-z0-9_-]+)/);
  if (!match) return;
  history.replaceState(null, "", location.pathname);
  const answer = await api("POST", "/auth/exchange", { body: { code: match[1] } }).catch(() => null);
  if (answer) {
    tokenInput.value = answer.token;
    showNotice(`Signed in as ${answer.user}${answer.admin ? " (admin)" : ""}`);
  }
}

byId("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  start();
});
byId("sign-out").addEventListener("click", () => {
  live?.abort();
  sessionStorage.removeItem("adminToken");
  tokenInput.value = "";
  byId("live").textContent = "not connected";
  showSignedIn(false);
});

showSignedIn(Boolean(token()));
signInFromLink().then(() => { if (token()) start(); });
