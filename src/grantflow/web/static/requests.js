/* My requests, with live state. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const tbody = document.getElementById("requests");
  function what(r) {
    const names = r.grants.map((g) => g.resource_name).filter(Boolean);
    return `${r.permission} on ${names.length ? names.join(", ") : r.resource_type}`;
  }
  // When access ended (a revoke ends it before the planned end), else when it is to end.
  function ends(r) {
    if (r.ended_at) return GF.el("span", { class: "ended", text: "ended " + GF.when(r.ended_at) });
    return r.expires_at ? GF.when(r.expires_at) : "—";
  }
  async function refresh() {
    const result = await GF.api("GET", "/api/v1/access-requests?scope=mine&limit=100");
    if (!result.ok) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 4, class: "error", text: GF.message(result) }))); return; }
    if (!result.data.length) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 4 }, "No request yet. ", GF.el("a", { href: "/", text: "Request access" })))); return; }
    GF.replace(tbody, result.data.map((r) => GF.el("tr", { dataset: { requestId: r.id, state: r.state } },
      GF.el("td", { text: GF.when(r.created_at) }),
      GF.el("td", {}, GF.el("a", { href: "/requests/" + encodeURIComponent(r.id), text: what(r) }),
        r.justification ? GF.el("div", { class: "muted", text: r.justification }) : null),
      GF.el("td", {}, GF.badge(r.state), r.failure_reason ? GF.el("div", { class: "error", text: r.failure_reason }) : null),
      GF.el("td", {}, ends(r)))));
  }
  GF.poll(refresh, 2000);
});
