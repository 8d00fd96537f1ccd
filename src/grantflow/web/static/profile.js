/* The signed-in user's API tokens: list, make one (secret shown once), revoke. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);

  function row(t) {
    const revoke = GF.el("button", { type: "button", class: "danger", text: "Revoke" });
    revoke.addEventListener("click", async () => {
      if (!confirm(`Revoke the token "${t.name}"? Anything using it stops working at once.`)) return;
      revoke.disabled = true;
      const r = await GF.api("DELETE", `/api/v1/me/tokens/${encodeURIComponent(t.id)}`);
      if (!r.ok) { revoke.disabled = false; GF.toast(GF.message(r), true); return; }
      GF.toast("Token revoked");
      load();
    });
    return GF.el("tr", { "data-token": t.id },
      GF.el("td", { text: t.name }), GF.el("td", { class: "mono", text: t.prefix + "…" }),
      GF.el("td", { text: GF.when(t.created_at) }),
      GF.el("td", { text: t.last_used_at ? GF.when(t.last_used_at) : "never" }),
      GF.el("td", { text: t.expires_at ? GF.when(t.expires_at) : "never" }),
      GF.el("td", {}, revoke));
  }

  async function load() {
    const r = await GF.api("GET", "/api/v1/me/tokens");
    if (!r.ok) { GF.replace($("t-rows"), GF.el("tr", {}, GF.el("td", { colspan: 6, class: "error", text: GF.message(r) }))); return; }
    GF.replace($("t-rows"), r.data.length ? r.data.map(row) : GF.el("tr", {}, GF.el("td", { colspan: 6, text: "You have no API token." })));
  }

  $("t-new").addEventListener("submit", async (e) => {
    e.preventDefault();
    GF.clearErrors($("t-new"));
    const days = Number($("t-days").value);
    const expires = new Date(Date.now() + days * 86400 * 1000).toISOString();
    const r = await GF.api("POST", "/api/v1/me/tokens", { name: $("t-name").value.trim(), expires_at: expires });
    if (!r.ok) { GF.showErrors($("t-new"), r); return; }
    const login = `grantflow login --url ${location.origin} --token ${r.data.token}`;
    GF.replace($("t-secret"), GF.el("div", { class: "secret", role: "status" },
      GF.el("strong", { text: `Token "${r.data.name}" made. Copy it now: it is never shown again.` }),
      GF.el("pre", { dataset: { testid: "new-token" }, text: r.data.token }),
      GF.el("div", { class: "label", text: "Use it with the CLI:" }),
      GF.el("pre", { text: login }),
      GF.el("button", { type: "button", text: "Copy token", on: { click: () => navigator.clipboard?.writeText(r.data.token).then(() => GF.toast("Copied")) } })));
    $("t-new").reset();
    load();
  });
  load();
});
