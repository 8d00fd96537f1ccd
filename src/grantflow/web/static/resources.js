/* Resources browser: filters, tags, owner, paging. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const LIMIT = 50;
  let offset = 0, total = 0;
  const names = new Map();
  const integrationNames = new Map();

  function owner(ref) {
    return names.get(ref) || ref;
  }

  async function load() {
    const form = $("filters");
    GF.clearErrors(form);
    const q = new URLSearchParams({ offset: String(offset), limit: String(LIMIT) });
    for (const [key, id] of [["integration_id", "r-integration"], ["type", "r-type"], ["account", "r-account"], ["ou", "r-ou"], ["tag", "r-tag"], ["q", "r-q"]]) {
      const v = $(id).value.trim();
      if (v) q.set(key, v);
    }
    const result = await GF.api("GET", "/api/v1/resources?" + q);
    if (!result.ok) { GF.showErrors(form, result); return; }
    total = result.data.total;
    $("r-count").textContent = total ? `${offset + 1}–${offset + result.data.items.length} of ${total} resources` : "No resource matches.";
    $("r-prev").disabled = offset === 0;
    $("r-next").disabled = offset + LIMIT >= total;
    GF.replace($("r-rows"), result.data.items.map((r) => GF.el("tr", {},
      GF.el("td", {}, GF.el("strong", { text: r.name }), GF.el("br"), GF.el("span", { class: "muted mono", text: r.arn || r.aws_id })),
      GF.el("td", { text: r.type }),
      GF.el("td", { class: "mono", text: [r.account_id, r.region].filter(Boolean).join(" / ") || "—" }),
      GF.el("td", { class: "integration", text: integrationNames.get(r.integration_id) || r.integration_id }),
      GF.el("td", {}, Object.entries(r.tags || {}).map(([k, v]) => GF.el("span", { class: "tag", text: `${k}=${v}` }))),
      GF.el("td", { text: r.owners.length ? r.owners.map(owner).join(", ") : "—" }))));
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  $("r-prev").addEventListener("click", () => { offset = Math.max(0, offset - LIMIT); load(); });
  $("r-next").addEventListener("click", () => { offset += LIMIT; load(); });

  (async () => {
    const [c, i, u, g] = await Promise.all([GF.api("GET", "/api/v1/catalog"), GF.api("GET", "/api/v1/integrations"),
      GF.api("GET", "/api/v1/users?limit=500"), GF.api("GET", "/api/v1/groups?limit=500")]);
    if (c.ok) c.data[0].resource_types.forEach((rt) => $("r-type").append(GF.el("option", { value: rt.key, text: rt.display_name })));
    if (i.ok) i.data.forEach((x) => { integrationNames.set(x.id, x.name); $("r-integration").append(GF.el("option", { value: x.id, text: x.name })); });
    if (u.ok) u.data.items.forEach((x) => names.set("user:" + x.id, x.username));
    if (g.ok) g.data.items.forEach((x) => names.set("group:" + x.id, "group " + x.name));
    load();
  })();
});
