/* Connectors: create (the token is shown once), list with live status, template, rotate. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("create-connector");
  const tbody = document.getElementById("connectors");
  let templateFor = null;

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
    GF.replace(tbody, result.data.map((c) => {
      const v = c.last_verification;
      return GF.el("tr", { dataset: { connectorId: c.id } },
        GF.el("td", {}, c.name, GF.el("br"), GF.el("span", { class: "muted", text: c.kind === "managed" ? "managed" : "self-hosted" })),
        GF.el("td", { class: "mono", text: c.id }),
        GF.el("td", {}, GF.badge(c.status), GF.el("br"), GF.el("span", { class: "muted", text: "seen " + GF.ago(c.last_heartbeat_at) + (c.version ? " · v" + c.version : "") })),
        GF.el("td", { class: "mono", text: c.connector_role_arn || c.aws_identity_arn || "—" }),
        GF.el("td", {}, v ? [GF.badge(v.state), " ", v.error || (v.result && v.result.organization_id) || ""] : "—"),
        GF.el("td", {}, GF.el("div", { class: "actions" },
          GF.el("button", { type: "button", text: "Template", on: { click: () => { templateFor = c; document.getElementById("template").hidden = false; document.getElementById("template-for").textContent = c.name; showTemplate(); } } }),
          GF.el("button", { type: "button", text: "Rotate token", on: { click: () => rotate(c) } }))));
    }));
  }
  GF.poll(refresh, 5000);
});
