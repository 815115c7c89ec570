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

  // ---- the log mark: each listed event checked here, in the browser, against the
  // tenant's signed log (RFC 9162 hashing): the leaf names this very event (its id,
  // acceptance time to the microsecond and payload hash), its inclusion proof leads to
  // the root of the signed checkpoint given with it. A server that changed a row, or
  // serves a proof that does not hold, shows as "does not verify".
  const marks = new Map(); // event id -> {state, text, detail}

  function b64bytes(s) { return Uint8Array.from(atob(s), (c) => c.charCodeAt(0)); }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  function same(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }

  // RFC 9162 §2.1.3.2, with BigInt indices (bitwise operators are 32-bit in JS)
  async function inclusionHolds(index, size, leafHash, path, root) {
    let fn = BigInt(index), sn = BigInt(size) - 1n, r = leafHash;
    if (fn > sn) return false;
    for (const p of path) {
      if (sn === 0n) return false;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await sha256(concat([1], p, r));
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n && same(r, root);
  }

  // "2026-11-20T00:00:12.000123Z" -> microseconds since the epoch, as a string
  function micros(rfc3339) {
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(rfc3339);
    if (!m) return null;
    const seconds = BigInt(Date.parse(m[1] + "Z")) / 1000n;
    return (seconds * 1000000n + BigInt((m[2] || "").padEnd(6, "0"))).toString();
  }

  async function verifyEvent(e) {
    let proof;
    try {
      proof = await call("/v1/log/events/" + encodeURIComponent(e.event_id) + "/proof");
    } catch (err) {
      // 404: not integrated or not yet under a signed checkpoint (or no log here)
      return /not yet|no event|no signed|no tamper/.test(err.message)
        ? { state: "pending", text: "not in the log yet", detail: err.message }
        : { state: "unknown", text: "could not check", detail: err.message };
    }
    const bad = (why) => ({ state: "failed", text: "does not verify", detail: why });
    const leaf = proof.leaf.split(" ");
    if (leaf.length !== 6 || leaf[0] !== "v1" || leaf[1] !== "event") return bad("not an event leaf: " + proof.leaf);
    if (leaf[2] !== session.tenant) return bad("the leaf is of tenant " + leaf[2]);
    if (leaf[3] !== e.event_id) return bad("the leaf is of event " + leaf[3]);
    if (leaf[4] !== micros(e.ingested_at)) return bad("accepted at another time than the log says");
    if (leaf[5] !== e.payload_sha256) return bad("the payload is not the one the log holds");
    const leafHash = await sha256(concat([0], new TextEncoder().encode(proof.leaf)));
    if (!same(leafHash, b64bytes(proof.leaf_hash))) return bad("the leaf hash is wrong");
    // the checkpoint's body: origin, size, root (its signature is the verifier's to check
    // with the key the customer pinned: auditlog verify)
    const body = proof.checkpoint.split("\n");
    if (body[1] !== String(proof.tree_size) || body[2] !== proof.root_hash) {
      return bad("the proof is not into the checkpoint given with it");
    }
    const ok = await inclusionHolds(proof.leaf_index, proof.tree_size, leafHash,
      proof.inclusion_proof.map(b64bytes), b64bytes(proof.root_hash));
    return ok
      ? { state: "verified", text: "verified", index: proof.leaf_index,
          detail: `index ${proof.leaf_index} of the log's ${proof.tree_size}, checkpoint ${body[0]}` }
      : bad("the inclusion proof does not lead to the signed root");
  }

  function showMark(tr, mark) {
    const td = tr.querySelector("td.log");
    if (!td) return;
    td.className = "log log-" + mark.state;
    td.textContent = mark.text;
    td.title = mark.detail || "";
  }

  // a few at a time: a page is 50 events
  async function markAll(rows) {
    const queue = rows.slice();
    const worker = async () => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [tr, e] = item;
        let mark = marks.get(e.event_id);
        if (!mark) {
          try { mark = await verifyEvent(e); } catch (err) { mark = { state: "unknown", text: "could not check", detail: String(err) }; }
          if (mark.state !== "pending") marks.set(e.event_id, mark);
        }
        if (tr.isConnected) showMark(tr, mark);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
  }

  function render(events) {
    const body = $("rows");
    body.replaceChildren();
    const rows = [];
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
      cell(tr, "Log", "checking…", null, "log log-checking");
      tr.addEventListener("click", () => detail(tr));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); detail(tr); }
        if (ev.key === "ArrowDown") { ev.preventDefault(); tr.nextElementSibling?.focus(); }
        if (ev.key === "ArrowUp") { ev.preventDefault(); tr.previousElementSibling?.focus(); }
      });
      body.appendChild(tr);
      rows.push([tr, e]);
    }
    $("empty").hidden = events.length > 0;
    markAll(rows);
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
        ["Log", (() => { const m = marks.get(e.event_id); return m ? `${m.text}: ${m.detail}` : "not in the log yet"; })()],
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
