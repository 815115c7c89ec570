// The embeddable audit log viewer: plain JS, no build step, no third-party code.
// It gets a viewer token from its URL fragment (#token=...) or from the embedding page
// (postMessage), exchanges it once for a session, and then reads /v1 with it.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  const PRESETS = { "24h": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365 };
  let session = null;
  let cursors = [null]; // the cursor of each page shown so far; the last is the current
  let next = null;
  let lastRow = null;
  // the filters as applied: paging keeps them (a preset's "from" is fixed when applied,
  // since a cursor continues only the query it came from)
  let applied = null;

  const theme = new URLSearchParams(location.search).get("theme");
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;

  function status(text) { $("status").textContent = text; }
  function fail(text) { const e = $("error"); e.textContent = text; e.hidden = !text; }

  function utc(local) { return local ? local + (local.length === 16 ? ":00Z" : "Z") : null; }

  // The filters as query parameters of GET /v1/events (and the export body).
  function filters() {
    const p = {};
    const range = $("range").value;
    if (range === "custom") {
      const f = utc($("from").value), t = utc($("to").value);
      if (f) p.from = f;
      if (t) p.to = t;
    } else if (PRESETS[range]) {
      p.from = new Date(Date.now() - PRESETS[range] * 86400e3).toISOString();
    }
    const actor = $("actor").value.trim();
    if (actor) p.actor = actor;
    const action = $("action").value.trim();
    if (action) p[action.includes(".") ? "event_type" : "action"] = action;
    const target = $("target").value.trim();
    if (target) p.target = target;
    if ($("outcome").value) p.outcome = $("outcome").value;
    const q = $("q").value.trim();
    if (q) p.q = q;
    return p;
  }

  async function call(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    if (session) headers.Authorization = "Bearer " + session.session_token;
    const res = await fetch(path, Object.assign({}, options, { headers }));
    if (res.status === 401 && session && window.parent !== window) {
      // the session ran out: ask the embedding page for a new viewer token
      session = null;
      await renew();
      return call(path, options);
    }
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
    if (!res.ok) throw new Error(body?.error?.message || ("HTTP " + res.status));
    return body;
  }

  function waitForToken() {
    return new Promise((resolve) => {
      window.addEventListener("message", function on(ev) {
        if (ev.data && ev.data.type === "auditlog:viewer-token" && typeof ev.data.token === "string") {
          window.removeEventListener("message", on);
          resolve(ev.data.token);
        }
      });
      window.parent.postMessage({ type: "auditlog:viewer-token-needed" }, "*");
    });
  }

  async function exchange(token) {
    session = await call("/v1/viewer/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ viewer_token: token }),
    });
    $("who").textContent = "Signed in as " + session.user + " · " + session.tenant;
    $("export").hidden = !session.scopes.includes("audit:export");
  }

  async function renew() { await exchange(await waitForToken()); }

  function cell(tr, label, text, sub, cls) {
    const td = document.createElement("td");
    td.dataset.label = label;
    td.textContent = text || "—";
    if (cls) td.className = cls;
    if (sub) {
      const s = document.createElement("span");
      s.className = "sub";
      s.textContent = sub;
      td.appendChild(s);
    }
    tr.appendChild(td);
  }

  function render(events) {
    const body = $("rows");
    body.replaceChildren();
    for (const e of events) {
      const tr = document.createElement("tr");
      tr.className = "event";
      tr.tabIndex = 0;
      tr.dataset.id = e.event_id;
      tr.setAttribute("aria-label", `${e.event_type} by ${e.actor.name || e.actor.id} at ${e.occurred_at}`);
      cell(tr, "Time (UTC)", e.occurred_at.replace("T", " ").replace(/\.\d+Z$/, "Z"), null, "time");
      cell(tr, "Actor", e.actor.name || e.actor.id, e.actor.type + ":" + e.actor.id);
      cell(tr, "Action", e.action, e.event_type);
      const t = e.target || {};
      cell(tr, "Target", t.name || t.id, t.type && t.id ? t.type + ":" + t.id : null);
      cell(tr, "Outcome", e.outcome, null, "outcome-" + e.outcome);
      tr.addEventListener("click", () => detail(tr));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); detail(tr); }
        if (ev.key === "ArrowDown") { ev.preventDefault(); tr.nextElementSibling?.focus(); }
        if (ev.key === "ArrowUp") { ev.preventDefault(); tr.previousElementSibling?.focus(); }
      });
      body.appendChild(tr);
    }
    $("empty").hidden = events.length > 0;
  }

  async function load() {
    fail("");
    status("Loading…");
    if (!applied) applied = filters();
    const p = new URLSearchParams(applied);
    p.set("limit", String(PAGE));
    const cursor = cursors[cursors.length - 1];
    if (cursor) p.set("cursor", cursor);
    try {
      const page = await call("/v1/events?" + p.toString());
      render(page.events);
      next = page.next;
      $("older").disabled = !next;
      $("newer").disabled = cursors.length < 2;
      $("page").textContent = "Page " + cursors.length;
      status(page.events.length ? `${page.events.length} events` : "");
    } catch (err) {
      status("");
      fail(err.message);
    }
  }

  async function detail(tr) {
    lastRow = tr;
    try {
      const e = await call("/v1/events/" + encodeURIComponent(tr.dataset.id));
      $("detail-title").textContent = e.event_type;
      const dl = $("detail-fields");
      dl.replaceChildren();
      const t = e.target || {};
      for (const [k, v] of [
        ["Event id", e.event_id], ["Occurred", e.occurred_at], ["Accepted", e.ingested_at],
        ["Actor", `${e.actor.type}:${e.actor.id}${e.actor.name ? " (" + e.actor.name + ")" : ""}`],
        ["Action", e.action], ["Target", t.type ? `${t.type}:${t.id}${t.name ? " (" + t.name + ")" : ""}` : "—"],
        ["Outcome", e.outcome], ["Source", e.source], ["Source IP", e.source_ip || "—"],
        ["Payload SHA-256", e.payload_sha256],
      ]) {
        const dt = document.createElement("dt"); dt.textContent = k;
        const dd = document.createElement("dd"); dd.textContent = v;
        dl.append(dt, dd);
      }
      $("detail-payload").textContent = JSON.stringify(e.payload, null, 2);
      $("detail").showModal();
      $("close").focus();
    } catch (err) { fail(err.message); }
  }

  async function exportCsv() {
    fail("");
    status("Exporting…");
    try {
      let job = await call("/v1/exports", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(Object.assign({ format: "csv" }, applied || filters())),
      });
      while (job.status === "queued" || job.status === "running") {
        status(`Exporting… (${job.status})`);
        await new Promise((r) => setTimeout(r, 1000));
        job = await call("/v1/exports/" + job.id);
      }
      if (job.status !== "succeeded") throw new Error("the export failed: " + (job.error || job.status));
      let href = job.download_url;
      if (href.startsWith("/")) {
        // our own route needs the session: fetch it and hand the browser a blob
        const res = await fetch(href, { headers: { Authorization: "Bearer " + session.session_token } });
        if (!res.ok) throw new Error("download failed: HTTP " + res.status);
        href = URL.createObjectURL(await res.blob());
      }
      const a = document.createElement("a");
      a.id = "download";
      a.href = href;
      a.download = `audit-${session.tenant}-${job.id}.csv`;
      a.textContent = `Download (${job.rows} rows)`;
      status("Export ready: " + job.rows + " rows. ");
      $("status").appendChild(a);
      a.click();
    } catch (err) {
      status("");
      fail(err.message);
    }
  }

  function customShown() {
    const custom = $("range").value === "custom";
    for (const el of document.querySelectorAll(".custom")) el.hidden = !custom;
  }

  $("range").addEventListener("change", customShown);
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); applied = null; cursors = [null]; load(); });
  $("reset").addEventListener("click", () => { $("filters").reset(); customShown(); applied = null; cursors = [null]; load(); });
  $("older").addEventListener("click", () => { if (next) { cursors.push(next); load().then(() => $("events").focus()); } });
  $("newer").addEventListener("click", () => { if (cursors.length > 1) { cursors.pop(); load().then(() => $("events").focus()); } });
  $("export").addEventListener("click", exportCsv);
  $("close").addEventListener("click", () => $("detail").close());
  $("detail").addEventListener("close", () => lastRow?.focus());

  async function start() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const token = hash.get("token");
    // the token is single-use, but keep it out of the history and of screenshots anyway
    if (token) history.replaceState(null, "", location.pathname + location.search);
    try {
      if (token) await exchange(token);
      else if (window.parent !== window) await renew();
      else throw new Error("open the viewer with a viewer token: /viewer#token=<viewer token>");
      await load();
    } catch (err) { fail(err.message); }
  }
  start();
})();
