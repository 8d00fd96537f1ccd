/* Admin: every access request and the access live now (GET /api/v1/access-requests?scope=all). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const LIVE = ["granting", "granted", "revoking"];
  const integrations = new Map();

  function what(r) {
    const names = r.grants.map((g) => g.resource_name || g.account_id).filter(Boolean);
    return GF.el("a", { href: "/requests/" + encodeURIComponent(r.id), text: `${r.permission} on ${names.length ? names.join(", ") : r.resource_type}` });
  }
  const integration = (r) => integrations.get(r.integration_id) || r.integration_id;
  function ends(r) {
    if (r.ended_at) return "ended " + GF.when(r.ended_at);
    return r.expires_at ? GF.when(r.expires_at) : "—";
  }
  function message(tbody, cols, text, cls) {
    GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: cols, class: cls || "muted", text })));
  }

  async function all(state) {
    const q = new URLSearchParams({ scope: "all", limit: "500" });
    if (state) q.set("state", state);
    return GF.api("GET", "/api/v1/access-requests?" + q);
  }

  async function refreshLive() {
    const results = await Promise.all(LIVE.map(all));
    const bad = results.find((x) => !x.ok);
    if (bad) { message($("live-rows"), 5, GF.message(bad), "error"); return; }
    const rows = results.flatMap((x) => x.data).sort((a, b) => String(a.expires_at).localeCompare(String(b.expires_at)));
    if (!rows.length) { message($("live-rows"), 5, "Nobody has access through Grantflow right now."); return; }
    GF.replace($("live-rows"), rows.map((r) => GF.el("tr", { dataset: { requestId: r.id, state: r.state } },
      GF.el("td", { text: r.requester }), GF.el("td", {}, what(r)), GF.el("td", { text: integration(r) }),
      GF.el("td", {}, GF.badge(r.state)),
      GF.el("td", { text: r.expires_at ? `${GF.duration((new Date(r.expires_at) - Date.now()) / 1000)} (until ${GF.when(r.expires_at)})` : "—" }))));
  }

  async function refreshAll() {
    const result = await all($("ar-state").value);
    if (!result.ok) { GF.showErrors($("ar-filters"), result); return; }
    const who = $("ar-who").value.trim().toLowerCase();
    const rows = result.data.filter((r) => !who || r.requester.toLowerCase().includes(who));
    $("ar-count").textContent = rows.length ? `${rows.length} requests${rows.length === 500 ? " (the newest 500)" : ""}` : "";
    if (!rows.length) { message($("ar-rows"), 6, "No request matches."); return; }
    GF.replace($("ar-rows"), rows.map((r) => GF.el("tr", { dataset: { requestId: r.id, state: r.state } },
      GF.el("td", { text: GF.when(r.created_at) }), GF.el("td", { text: r.requester }),
      GF.el("td", {}, what(r), r.justification ? GF.el("div", { class: "muted", text: r.justification }) : null),
      GF.el("td", { text: integration(r) }),
      GF.el("td", {}, GF.badge(r.state), r.failure_reason ? GF.el("div", { class: "error", text: r.failure_reason }) : null),
      GF.el("td", { text: ends(r) }))));
  }

  $("ar-filters").addEventListener("submit", (e) => { e.preventDefault(); GF.clearErrors(e.currentTarget); refreshAll(); });
  (async () => {
    const i = await GF.api("GET", "/api/v1/integrations");
    if (i.ok) i.data.forEach((x) => integrations.set(x.id, x.name));
    GF.poll(refreshLive, 5000);
    GF.poll(refreshAll, 5000);
  })();
});
