/* Connectors: create (the token is shown once), list with live status, the confirmed role
   (a reported identity that differs is flagged, never used), template, rotate. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("create-connector");
  const tbody = document.getElementById("connectors");
  let templateFor = null;
  let identityFor = null;

  const IDENTITY = {
    confirmed: ["good", "Confirmed"],
    unconfirmed: ["warn", "Not confirmed"],
    changed: ["bad", "Reported role changed"],
    unknown: ["muted", "Not known"],
  };
  function identityBadge(identity) {
    const [tone, text] = IDENTITY[identity.state] || ["muted", identity.state];
    return GF.el("span", { class: "state " + tone, dataset: { identity: identity.state } }, text);
  }

  function roleCell(c) {
    const i = c.identity;
    const reported = i.reported_role_arn || i.reported_identity_arn;
    return [
      identityBadge(i), GF.el("br"),
      GF.el("span", { class: "mono", text: c.connector_role_arn || "no role confirmed" }),
      i.state !== "confirmed" && reported ? [GF.el("br"), GF.el("span", { class: "muted" }, "reports ", GF.el("span", { class: "mono", text: reported }))] : null,
    ];
  }

  async function setRole(method, roleArn) {
    const form = document.getElementById("identity-form");
    GF.clearErrors(form);
    const path = `/api/v1/connectors/${encodeURIComponent(identityFor.id)}/confirmed-role`;
    const result = await GF.api(method, path, method === "PUT" ? { role_arn: roleArn } : undefined);
    if (!result.ok) { const f = GF.showErrors(form, result); if (f) f.focus(); return; }
    GF.toast(method === "PUT" ? `Confirmed ${roleArn}` : "Confirmation withdrawn");
    showIdentity(result.data);
    refresh();
    if (templateFor && templateFor.id === result.data.id) showTemplate();
  }

  function showIdentity(c) {
    identityFor = c;
    const i = c.identity;
    document.getElementById("identity").hidden = false;
    document.getElementById("identity-for").textContent = c.name;
    const tone = i.state === "changed" ? "notice bad" : i.state === "confirmed" ? "notice" : "notice warn";
    const reported = i.reported_role_arn;
    GF.replace(document.getElementById("identity-out"),
      GF.el("p", { class: tone, role: i.state === "changed" ? "alert" : "status" }, identityBadge(i), " ", i.message),
      GF.el("dl", { class: "kv" },
        GF.el("dt", { text: "Confirmed role (the template's ConnectorRoleArn)" }), GF.el("dd", { class: "mono", text: i.confirmed_role_arn || "—" }),
        GF.el("dt", { text: "Confirmed by" }), GF.el("dd", { text: i.confirmed_by ? `${i.confirmed_by}, ${GF.when(i.confirmed_at)}` : "—" }),
        GF.el("dt", { text: "Reported identity (the connector's own statement)" }), GF.el("dd", { class: "mono", text: i.reported_identity_arn || "—" })),
      GF.el("div", { class: "actions" },
        reported && reported !== i.confirmed_role_arn ? GF.el("button", { type: "button", text: `Confirm the reported role ${reported}`, on: { click: () => {
          if (confirm(`Trust ${reported} as the role of “${c.name}”? Confirm only a role in your own AWS account.`)) setRole("PUT", reported);
        } } }) : null,
        i.confirmed_role_arn ? GF.el("button", { type: "button", text: "Withdraw the confirmation", on: { click: () => setRole("DELETE") } }) : null));
  }

  document.getElementById("identity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setRole("PUT", document.getElementById("i-role").value.trim());
  });

  function secretBox(c, title) {
    return GF.el("div", { class: "secret", role: "status" },
      GF.el("h3", { text: title }),
      GF.el("p", {}, "Copy this token now: it is shown once and only its hash is kept."),
      GF.el("label", { for: "token-value", class: "label", text: "Connector token" }),
      GF.el("input", { id: "token-value", type: "text", readonly: true, value: c.token, class: "mono" }),
      GF.el("p", { class: "muted" }, "Connector ID: ", GF.el("code", { text: c.id })),
      GF.el("pre", { text: `GRANTFLOW_URL=${location.origin} GRANTFLOW_CONNECTOR_ID=${c.id} \\\nGRANTFLOW_CONNECTOR_TOKEN=<token> grantflow connector run` }));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    GF.clearErrors(form);
    const result = await GF.api("POST", "/api/v1/connectors", { name: form.querySelector("#c-name").value.trim(), kind: form.querySelector("#c-kind").value });
    if (!result.ok) { const f = GF.showErrors(form, result); if (f) f.focus(); return; }
    const box = document.getElementById("created");
    box.hidden = false;
    box.replaceChildren(secretBox(result.data, `Connector “${result.data.name}” created`));
    document.getElementById("token-value").select();
    form.reset();
    refresh();
  });

  async function rotate(c) {
    if (!confirm(`Rotate the token of “${c.name}”? The running connector must be restarted with the new token.`)) return;
    const result = await GF.api("POST", `/api/v1/connectors/${encodeURIComponent(c.id)}/rotate-token`);
    if (!result.ok) { GF.toast(GF.message(result), true); return; }
    const box = document.getElementById("created");
    box.hidden = false;
    box.replaceChildren(secretBox(result.data, `New token for “${c.name}”`));
    box.scrollIntoView();
  }

  async function showTemplate() {
    const out = document.getElementById("template-out");
    const ou = document.getElementById("t-ou").value.trim();
    const q = ou ? "?organizational_unit_id=" + encodeURIComponent(ou) : "";
    const result = await GF.api("GET", `/api/v1/connectors/${encodeURIComponent(templateFor.id)}/cloudformation${q}`);
    if (!result.ok) { GF.replace(out, GF.el("p", { class: "error", role: "alert", text: GF.message(result) })); return; }
    const t = result.data;
    const href = "data:application/yaml;charset=utf-8," + encodeURIComponent(t.template);
    GF.replace(out,
      t.connector_role_confirmed ? null : GF.el("p", { class: "notice warn", role: "status" }, "No connector role is confirmed: ConnectorRoleArn is a placeholder. Use “Role…” on the connector’s row to confirm the role it runs as."),
      GF.el("dl", { class: "kv" }, Object.entries(t.parameters).map(([k, v]) => [GF.el("dt", { text: k }), GF.el("dd", { class: "mono", text: v || "—" })])),
      GF.el("ol", {}, t.instructions.map((s) => GF.el("li", { text: s }))),
      t.deploy_command ? GF.el("pre", { text: t.deploy_command }) : null,
      t.quick_create_url ? GF.el("p", {}, GF.el("a", { href: t.quick_create_url, target: "_blank", rel: "noopener", text: "Quick-create link (AWS console)" })) : null,
      GF.el("p", {}, GF.el("a", { class: "button", href, download: t.template_file, text: "Download " + t.template_file })),
      t.prerequisites.map((p) => GF.el("p", { class: "notice", text: p })));
  }
  document.getElementById("t-get").addEventListener("click", showTemplate);

  async function refresh() {
    const result = await GF.api("GET", "/api/v1/connectors");
    if (!result.ok) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 6, class: "error", text: GF.message(result) }))); return; }
    if (!result.data.length) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 6, text: "No connector yet." }))); return; }
    const shown = identityFor && result.data.find((c) => c.id === identityFor.id);
    if (shown) showIdentity(shown);  // the panel follows what the connector reports
    GF.replace(tbody, result.data.map((c) => {
      const v = c.last_verification;
      return GF.el("tr", { dataset: { connectorId: c.id } },
        GF.el("td", {}, c.name, GF.el("br"), GF.el("span", { class: "muted", text: c.kind === "managed" ? `managed · ${c.replicas.length} replica(s)` : "self-hosted" })),
        GF.el("td", { class: "mono", text: c.id }),
        GF.el("td", {}, GF.badge(c.status), GF.el("br"), GF.el("span", { class: "muted", text: "seen " + GF.ago(c.last_heartbeat_at) + (c.version ? " · v" + c.version : "") })),
        GF.el("td", {}, roleCell(c)),
        GF.el("td", {}, v ? [GF.badge(v.state), " ", v.error || (v.result && v.result.organization_id) || ""] : "—"),
        GF.el("td", {}, GF.el("div", { class: "actions" },
          GF.el("button", { type: "button", text: "Role…", on: { click: () => { showIdentity(c); document.getElementById("identity").scrollIntoView(); } } }),
          GF.el("button", { type: "button", text: "Template", on: { click: () => { templateFor = c; document.getElementById("template").hidden = false; document.getElementById("template-for").textContent = c.name; showTemplate(); } } }),
          GF.el("button", { type: "button", text: "Rotate token", on: { click: () => rotate(c) } }))));
    }));
  }
  GF.poll(refresh, 5000);
});
