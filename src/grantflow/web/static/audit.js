/* Audit log: recent events, filters, older pages, chain verification and export. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  let before = null;
  const names = new Map(); // id → "ada", "integration Acme", …
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const named = (id) => names.get(id) || id;
  async function loadNames() {
    const [u, g, i, c, f] = await Promise.all(["/api/v1/users?limit=500", "/api/v1/groups?limit=500", "/api/v1/integrations",
      "/api/v1/connectors", "/api/v1/access-flows"].map((path) => GF.api("GET", path)));
    if (u.ok) u.data.items.forEach((x) => names.set(x.id, x.username));
    if (g.ok) g.data.items.forEach((x) => names.set(x.id, "group " + x.name));
    if (i.ok) i.data.forEach((x) => names.set(x.id, "integration " + x.name));
    if (c.ok) c.data.forEach((x) => names.set(x.id, "connector " + x.name));
    if (f.ok) f.data.forEach((x) => names.set(x.id, "flow " + x.name));
  }
  // A value as people read it: ids named, lists joined, nested objects as "key: value".
  function readable(value) {
    if (value === null || value === undefined) return "—";
    if (Array.isArray(value)) return value.map(readable).join(", ") || "none";
    if (typeof value === "object") return Object.entries(value).map(([k, v]) => `${GF.label(k)}: ${readable(v)}`).join("; ");
    const text = String(value);
    if (UUID.test(text) || names.has(text)) return named(text);
    return text;
  }
  function details(data) {
    const entries = Object.entries(data || {});
    if (!entries.length) return "—";
    return GF.el("dl", { class: "kv details" }, entries.map(([k, v]) => [GF.el("dt", { text: GF.label(k) }), GF.el("dd", { text: readable(v) })]));
  }
  function target(e) {
    if (!e.target_id) return e.target_type || "—";
    const name = names.get(e.target_id);
    return GF.el("span", { title: e.target_id }, name ? name.replace(/^(integration|connector|flow|group) /, "") : e.target_id,
      GF.el("div", { class: "muted", text: GF.label(e.target_type || "") }));
  }

  function params() {
    const q = new URLSearchParams();
    for (const [key, id] of [["actor", "a-actor"], ["action", "a-action"], ["request", "a-request"]]) {
      const v = $(id).value.trim();
      if (v) q.set(key, v);
    }
    return q;
  }

  async function load(append) {
    const q = params();
    q.set("limit", "100");
    if (append && before) q.set("before", String(before));
    const result = await GF.api("GET", "/api/v1/audit-events?" + q);
    if (result.status === 404) {
      GF.replace($("a-state"), GF.el("p", { class: "notice warn", text: "The audit log API is not available on this server." }));
      return;
    }
    if (!result.ok) { GF.showErrors($("a-filters"), result); return; }
    const items = result.data.items || [];
    before = result.data.next_before;
    $("a-more").hidden = !before;
    const rows = items.map((e) => GF.el("tr", {},
      GF.el("td", { text: GF.when(e.occurred_at) }),
      GF.el("td", {}, GF.el("span", { title: e.actor_id || "" }, e.actor_id ? named(e.actor_id) : GF.label(e.actor_type)),
        GF.el("div", { class: "muted", text: `${GF.label(e.actor_type)} · ${e.source}` })),
      GF.el("td", { class: "mono", text: e.action }),
      GF.el("td", {}, target(e)),
      GF.el("td", { class: "details" }, details(e.data))));
    if (append) $("a-rows").append(...rows);
    else GF.replace($("a-rows"), rows.length ? rows : GF.el("tr", {}, GF.el("td", { colspan: 5, text: "No event matches." })));
    const q2 = params().toString();
    $("a-export").href = "/api/v1/audit-events/export?format=jsonl" + (q2 ? "&" + q2 : "");
    $("a-export-csv").href = "/api/v1/audit-events/export?format=csv" + (q2 ? "&" + q2 : "");
  }

  $("a-filters").addEventListener("submit", (e) => { e.preventDefault(); GF.clearErrors($("a-filters")); before = null; load(false); });
  $("a-more").addEventListener("click", () => load(true));
  $("a-verify").addEventListener("click", async () => {
    const r = await GF.api("GET", "/api/v1/audit/verify");
    const out = $("a-verified");
    if (!r.ok) { out.className = "notice bad"; out.textContent = GF.message(r); return; }
    const broken = r.data.break;
    const checkpoints = r.data.checkpoints || [];
    const problems = checkpoints.filter((c) => c.problem).map((c) => c.problem);
    const anchor = checkpoints.find((c) => c.seq !== null && !c.problem);
    out.className = "notice " + (r.data.ok ? "" : "bad");
    if (broken) out.textContent = `Chain broken at event #${broken.seq}: ${broken.reason}`;
    else if (!r.data.ok) out.textContent = `Checkpoint problem: ${problems.join("; ")}`;
    else out.textContent = `Chains intact (${r.data.events} events, ${r.data.session ? r.data.session.events : 0} session events)` +
      (anchor ? `; the tail matches the checkpoint of ${anchor.at} (event #${anchor.seq}).` : "; no checkpoint yet.");
  });
  loadNames().then(() => load(false));
});
