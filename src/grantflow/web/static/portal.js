/* The user portal's home: search what I can request, then ask for it. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const DURATIONS = [900, 1800, 3600, 7200, 14400, 28800, 86400, 259200, 604800];
  let current = null;
  const types = new Set();

  async function search(event) {
    if (event) event.preventDefault();
    const q = new URLSearchParams({ limit: "200" });
    if ($("s-q").value.trim()) q.set("q", $("s-q").value.trim());
    if ($("s-type").value) q.set("type", $("s-type").value);
    if ($("s-account").value.trim()) q.set("account", $("s-account").value.trim());
    const result = await GF.api("GET", "/api/v1/requestable?" + q);
    if (!result.ok) { $("result-count").textContent = GF.message(result); GF.replace($("results")); return; }
    const page = result.data;
    $("result-count").textContent = page.total === 0 ? "Nothing to request matches. Ask an admin for an access flow." : `${page.total} resources you can request`;
    for (const item of page.items) {
      if (!types.has(item.type)) { types.add(item.type); $("s-type").append(GF.el("option", { value: item.type, text: item.type })); }
    }
    GF.replace($("results"), page.items.map((item) => GF.el("tr", { dataset: { resourceId: item.resource_id } },
      GF.el("td", {}, GF.el("strong", { text: item.name }), GF.el("br"), GF.el("span", { class: "muted mono", text: item.aws_id })),
      GF.el("td", { text: item.type }),
      GF.el("td", { class: "mono", text: item.account_id || "—" }),
      GF.el("td", { class: "integration" }, item.integration_name || item.integration_id,
        GF.el("div", { class: "muted", text: "via " + item.flows.map((f) => f.flow_name).join(", ") })),
      GF.el("td", {}, Object.entries(item.tags || {}).map(([k, v]) => GF.el("span", { class: "tag", text: `${k}=${v}` }))),
      GF.el("td", {}, GF.el("button", { type: "button", "aria-label": `Request ${item.name} in ${item.integration_name || item.integration_id}`, text: "Request", on: { click: () => openRequest(item) } })))));
  }

  function flowsFor(permission) {
    return current.flows.filter((f) => f.permissions.includes(permission));
  }

  function updateOptions() {
    const flows = flowsFor($("r-permission").value);
    const max = Math.max(...flows.map((f) => f.max_duration_seconds), 60);
    const choices = DURATIONS.filter((d) => d <= max);
    if (!choices.includes(max)) choices.push(max);
    const keep = Number($("r-duration").value) || Math.min(3600, max);
    GF.replace($("r-duration"), choices.map((d) => GF.el("option", { value: d, text: GF.duration(d), selected: d === keep })));
    $("help-duration").textContent = "At most " + GF.duration(max) + ".";
    const required = flows.length > 0 && flows.every((f) => f.justification_required);
    $("r-justification").required = required;
    $("r-just-req").textContent = required ? "(required)" : "(optional)";
    const auto = flows.some((f) => f.approval === "auto");
    const approvers = [...new Set(flows.flatMap((f) => f.approvers || []))];
    $("r-approval").textContent = auto ? "Granted without approval."
      : (approvers.length ? "Needs approval from " + approvers.join(", ") + "." : "Needs approval.")
        + " You will see the request’s state under My requests.";
  }

  function openRequest(item) {
    current = item;
    const panel = $("request-panel");
    GF.clearErrors(panel);
    $("r-name").textContent = `${item.name} (${item.type}) in ${item.integration_name || item.integration_id}`;
    const perms = [...new Set(item.flows.flatMap((f) => f.permissions))];
    GF.replace($("r-permission"), perms.map((p) => GF.el("option", { value: p, text: p })));
    updateOptions();
    panel.hidden = false;
    $("request-title").focus();
    panel.scrollIntoView({ block: "start" });
  }

  $("r-permission").addEventListener("change", updateOptions);
  $("r-cancel").addEventListener("click", () => { $("request-panel").hidden = true; });
  $("request-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    GF.clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    GF.busy(button, true);
    const result = await GF.api("POST", "/api/v1/access-requests", {
      resource_ids: [current.resource_id], permission: $("r-permission").value,
      duration_seconds: Number($("r-duration").value), justification: $("r-justification").value.trim(),
    });
    GF.busy(button, false);
    if (result.ok) { location.href = "/requests/" + encodeURIComponent(result.data.id); return; }
    const first = GF.showErrors(form, result);
    if (first) first.focus();
  });
  $("search").addEventListener("submit", search);
  search();
});
