"""The collector's one HTML page: the local twin of Doow's integration detail page.

Self-contained (inline CSS and JS, no external assets). All server data is put into the
page with ``textContent``, never parsed as HTML.
"""

from __future__ import annotations

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Doow local collector</title>
<style nonce="__NONCE__">
  :root { color-scheme: light dark; --muted: #6b7280; --line: #d1d5db; --accent: #2563eb; }
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px;
         padding: 1.5rem; }
  h1 { font-size: 1.35rem; margin: 0; }
  h2 { font-size: 1.05rem; margin: 1.75rem 0 .5rem; }
  .sub, .empty, #status { color: var(--muted); }
  header { display: flex; justify-content: space-between; align-items: baseline; gap: 1rem;
           flex-wrap: wrap; }
  #status.error { color: #dc2626; }
  form { display: flex; gap: .75rem; margin-top: 1rem; flex-wrap: wrap; }
  label { display: flex; flex-direction: column; font-size: .8rem; color: var(--muted); }
  input { font: inherit; padding: .3rem .5rem; min-width: 14rem; }
  .totals { display: flex; gap: 1rem; flex-wrap: wrap; margin-top: 1rem; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .9rem;
          min-width: 7rem; }
  .card b { display: block; font-size: 1.3rem; }
  .card span { font-size: .8rem; color: var(--muted); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { font-size: .8rem; color: var(--muted); font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, td.mono { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-all; }
</style>
</head>
<body>
<header>
  <div>
    <h1>Doow local collector</h1>
    <div class="sub">Recent received events for the expected metric and license.</div>
  </div>
  <div id="status">loading&hellip;</div>
</header>
<form id="filters">
  <label>Expected metric <input id="metric" name="metric" autocomplete="off"></label>
  <label>Expected license <input id="license" name="license_id" autocomplete="off"></label>
</form>
<div class="totals">
  <div class="card"><b id="total-stored">&ndash;</b><span>events stored</span></div>
  <div class="card"><b id="total-requests">&ndash;</b><span>ingest requests</span></div>
  <div class="card"><b id="total-duplicates">&ndash;</b><span>duplicates</span></div>
  <div class="card"><b id="total-rejected">&ndash;</b><span>rejected</span></div>
  <div class="card"><b id="total-connections">&ndash;</b><span>connections</span></div>
</div>
<h2>By metric and license</h2>
<table>
  <thead><tr><th>Metric</th><th>License</th><th>Events</th><th>Total quantity</th>
    <th>Last received</th></tr></thead>
  <tbody id="summary"></tbody>
</table>
<h2>Recent events</h2>
<table>
  <thead><tr><th>Received</th><th>Metric</th><th>License</th><th>Quantity</th><th>Unit</th>
    <th>Kind</th><th>Occurred</th><th>Event id</th><th>Attribution</th></tr></thead>
  <tbody id="events"></tbody>
</table>
<script nonce="__NONCE__">
"use strict";
const byId = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);
byId("metric").value = query.get("metric") || "";
byId("license").value = query.get("license_id") || "";

function text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const [value, className] of cells) {
    const td = document.createElement("td");
    td.textContent = text(value);
    if (className) td.className = className;
    tr.appendChild(td);
  }
  return tr;
}

function fill(id, rows, columns, emptyText) {
  const body = byId(id);
  if (rows.length === 0) {
    const td = document.createElement("td");
    td.colSpan = columns;
    td.className = "empty";
    td.textContent = emptyText;
    const tr = document.createElement("tr");
    tr.appendChild(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows);
}

function filters() {
  return { metric: byId("metric").value.trim(), license: byId("license").value.trim() };
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

async function refresh() {
  const wanted = filters();
  const params = new URLSearchParams({ limit: "50" });
  if (wanted.metric) params.set("metric", wanted.metric);
  if (wanted.license) params.set("license_id", wanted.license);
  try {
    const [stats, listing] = await Promise.all([getJson("/stats"),
                                                getJson("/events?" + params)]);
    byId("total-stored").textContent = text(stats.events_stored);
    byId("total-requests").textContent = text(stats.requests);
    byId("total-duplicates").textContent = text(stats.duplicates);
    byId("total-rejected").textContent = text(stats.rejected);
    byId("total-connections").textContent = text(stats.connections);
    const groups = stats.metrics.filter((group) =>
      (!wanted.metric || group.metric === wanted.metric) &&
      (!wanted.license || group.license_id === wanted.license));
    fill("summary", groups.map((group) => row([
      [group.metric], [group.license_id], [group.events, "num"],
      [group.total_quantity, "num"], [group.last_received_at]])),
      5, "No events received yet for this metric and license.");
    fill("events", listing.events.map((event) => row([
      [event.received_at], [event.metric], [event.license_id], [event.quantity, "num"],
      [event.unit], [event.kind], [event.occurred_at], [event.event_id, "mono"],
      [event.attribution, "mono"]])),
      9, "No events received yet for this metric and license.");
    const status = byId("status");
    status.className = "";
    status.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (error) {
    const status = byId("status");
    status.className = "error";
    status.textContent = "collector unreachable: " + error.message;
  }
}

byId("filters").addEventListener("submit", (event) => event.preventDefault());
for (const id of ["metric", "license"]) {
  byId(id).addEventListener("input", () => {
    const wanted = filters();
    const next = new URLSearchParams();
    if (wanted.metric) next.set("metric", wanted.metric);
    if (wanted.license) next.set("license_id", wanted.license);
    const search = next.toString();
    history.replaceState(null, "", search ? "?" + search : location.pathname);
    refresh();
  });
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


def render_page(nonce: str) -> bytes:
    return _PAGE.replace("__NONCE__", nonce).encode()


def content_security_policy(nonce: str) -> str:
    return (
        "default-src 'none'; connect-src 'self'; "
        f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
