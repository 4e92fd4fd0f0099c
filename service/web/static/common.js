"use strict";
// Shared by the page and the dashboard: API calls that surface errors, and a job's live view over SSE.

const TERMINAL = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

function showError(text) {
  const alert = document.getElementById("alert");
  alert.textContent = text;
  alert.classList.add("shown");
}

function clearError() {
  document.getElementById("alert").classList.remove("shown");
}

function authHeaders(token) {
  return token ? { Authorization: "Bearer " + token } : {};
}

// fetch() that turns any non-2xx answer (422, 429, 503, ...) into a message shown to the person.
async function api(method, path, { body, token } = {}) {
  const headers = authHeaders(token);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    showError("The server cannot be reached: " + e.message);
    throw e;
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const payload = await response.json();
      // A validation error names its field: "args.email: value is not a valid email address".
      const where = (d) => (d.loc || []).filter((part) => part !== "body").join(".");
      detail = Array.isArray(payload.detail)
        ? payload.detail.map((d) => (where(d) ? `${where(d)}: ${d.msg}` : d.msg)).join("; ")
        : payload.detail;
    } catch (_) { /* not JSON */ }
    const retry = response.headers.get("Retry-After");
    showError(`${response.status}: ${detail}${retry ? ` (try again in ${retry} s)` : ""}`);
    throw new Error(detail);
  }
  clearError();
  return response.status === 204 ? null : response.json();
}

// The `data:` payloads of a Server-Sent Events response, parsed as JSON, as they arrive (read with fetch():
// EventSource cannot send a bearer token).
async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

// Follow a job over its event stream, polling only if the stream breaks. Calls onView with each view until a
// terminal status, or until `signal` aborts.
async function followJob(id, token, onView, signal = undefined) {
  try {
    const response = await fetch(`/jobs/${id}/events`, { headers: authHeaders(token), signal });
    if (!response.ok || !response.body) throw new Error("no stream");
    for await (const view of readEvents(response)) {
      onView(view);
      if (TERMINAL.has(view.status)) return;
    }
  } catch (_) { /* fall back to polling below */ }
  while (!signal?.aborted) {
    const response = await fetch(`/jobs/${id}`, { headers: authHeaders(token) });
    if (response.ok) {
      const view = await response.json();
      onView(view);
      if (TERMINAL.has(view.status)) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The declared job kinds (GET /kinds), fetched once: names, titles and argument schemas for the lists.
let kindsPromise = null;
function loadKinds() {
  kindsPromise ??= api("GET", "/kinds").then((body) => body.items);
  return kindsPromise;
}
