/* Users & groups from the IdP (and local users). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const tabs = [$("tab-users"), $("tab-groups")];
  function select(tab) {
    tabs.forEach((t) => {
      const on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    });
    tab.focus();
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => select(t));
    t.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") select(tabs[(i + 1) % tabs.length]);
    });
  });

  async function detail(u) {
    const box = $("user-detail");
    const r = await GF.api("GET", `/api/v1/users/${encodeURIComponent(u.id)}`);
    box.hidden = false;
    if (!r.ok) { GF.replace(box, GF.el("p", { class: "error", text: GF.message(r) })); return; }
    const d = r.data;
    GF.replace(box, GF.el("h2", { text: d.display_name || d.username }),
      GF.el("dl", { class: "kv" },
        GF.el("dt", { text: "Username" }), GF.el("dd", { text: d.username }),
        GF.el("dt", { text: "Groups" }), GF.el("dd", { text: d.groups.map((g) => g.name).join(", ") || "—" }),
        GF.el("dt", { text: "Attributes" }), GF.el("dd", { text: Object.entries(d.attributes || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—" }),
        GF.el("dt", { text: "Can receive AWS grants" }), GF.el("dd", { text: d.aws.can_receive_aws_grants ? "yes" : `no — ${d.aws.detail || d.aws.reason || "not matched"}` }),
        GF.el("dt", { text: "Identity Center users" }), GF.el("dd", { class: "mono", text: d.aws.principals.map((p) => p.principal_id ? `${p.identity_store_id}: ${p.principal_id} (${p.matched_by}${p.active ? "" : ", inactive"})` : `${p.identity_store_id}: — ${p.reason}`).join("; ") || "—" })));
    box.scrollIntoView({ block: "nearest" });
  }

  (async () => {
    const [u, g] = await Promise.all([GF.api("GET", "/api/v1/users?limit=500"), GF.api("GET", "/api/v1/groups?limit=500")]);
    if (!u.ok) GF.replace($("users"), GF.el("tr", {}, GF.el("td", { colspan: 6, class: "error", text: GF.message(u) })));
    else GF.replace($("users"), u.data.items.map((x) => GF.el("tr", {},
      GF.el("td", {}, GF.el("button", { type: "button", class: "link", text: x.display_name || x.username, on: { click: () => detail(x) } }), GF.el("div", { class: "muted", text: x.username })),
      GF.el("td", { text: x.email || "—" }), GF.el("td", { text: x.role }), GF.el("td", { text: x.source }),
      GF.el("td", {}, GF.badge(x.active ? "active" : "disabled")),
      GF.el("td", { class: "mono", text: (x.principals || []).map((p) => `${p.identity_store_id}: ${p.principal_id}`).join(", ") || "—" }))));
    if (g.ok) GF.replace($("groups"), g.data.items.map((x) => GF.el("tr", {},
      GF.el("td", { text: x.name }), GF.el("td", { text: x.description || "—" }), GF.el("td", { text: x.member_count }), GF.el("td", { text: x.directory ? `${x.source} (${x.directory})` : x.source }))));
  })();
});
