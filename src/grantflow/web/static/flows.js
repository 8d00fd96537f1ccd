/* Access flows: list, create and edit with every field of the flow definition, and a preview
 * of who can request what (the requestors resolved to people, the scope to resources). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const form = $("flow-form");
  let catalog = null, integrations = [], users = [], groups = [], flows = [];
  let editing = null;

  const selected = (select) => [...select.selectedOptions].map((o) => o.value);
  const setSelected = (select, values) => [...select.options].forEach((o) => { o.selected = values.includes(o.value); });
  const userName = (uid) => (users.find((u) => u.id === uid) || {}).username || uid;
  const groupName = (gid) => (groups.find((g) => g.id === gid) || {}).name || gid;

  function options(select, items) {
    GF.replace(select, items.map(([value, text]) => GF.el("option", { value, text })));
  }

  function types() { return [...$("fl-types").querySelectorAll("input:checked")].map((c) => c.value); }

  // What a flow of the chosen integration may offer, per type: the synced permission sets
  // and pooled permission levels (GET /api/v1/access-flows/permissions); null = not known yet.
  let choices = {};
  async function loadChoices() {
    const id = $("fl-integration").value;
    choices = {};
    if (!id) return;
    const r = await GF.api("GET", "/api/v1/access-flows/permissions?integration_id=" + encodeURIComponent(id));
    if (r.ok) r.data.forEach((c) => { choices[c.resource_type] = c.names; });
  }

  function currentPerms() {
    const out = {};
    $("fl-perms").querySelectorAll("[data-type]").forEach((node) => {
      const t = node.dataset.type;
      out[t] = out[t] || [];
      if (node.type === "checkbox") { if (node.checked) out[t].push(node.value); }
      else out[t].push(...GF.lines(node.value));
    });
    return out;
  }

  function drawPerms(current) {
    const box = $("fl-perms");
    const keep = current || currentPerms();
    const chosen = types();
    if (!chosen.length) { GF.replace(box, GF.el("p", { class: "muted", text: "Select resource types above." })); return; }
    GF.replace(box, chosen.map((t) => {
      const rt = catalog.resource_types.find((x) => x.key === t);
      const synced = choices[t];
      const known = synced !== undefined && synced !== null ? synced : rt.permissions.map((p) => p.key);
      const picked = keep[t] !== undefined ? keep[t] : (synced ? [] : known);
      const slot = "definition.permissions." + t;
      const errId = "err-" + slot.replace(/\./g, "-");
      const error = GF.el("p", { class: "error", id: errId, dataset: { errorFor: slot }, role: "alert" });
      if (!known.length || synced === null) {
        const id = "perm-" + t;
        return GF.el("div", { class: "field" },
          GF.el("label", { for: id, text: rt.display_name }),
          GF.el("input", { id, type: "text", value: picked.join(", "), dataset: { type: t }, "aria-describedby": `help-${id} ${errId}` }),
          GF.el("span", { class: "help", id: "help-" + id, text: synced === null
            ? "Permission set names, separated by commas: the list is known after the integration's first sync."
            : (rt.permissions_note || "Permission keys, separated by commas.") }), error);
      }
      const gone = picked.filter((p) => !known.includes(p));
      return GF.el("fieldset", { class: "perm-choices", dataset: { permType: t } },
        GF.el("legend", { text: rt.display_name }),
        GF.el("div", { class: "checks" },
          [...known, ...gone].map((p) => GF.el("label", {}, GF.el("input", { type: "checkbox", value: p, dataset: { type: t }, checked: picked.includes(p), "aria-describedby": errId }),
            " " + p, gone.includes(p) ? GF.el("span", { class: "error", text: " (no longer exists)" }) : ""))),
        error);
    }));
  }

  function approverRow(group) {
    const g = group || { kind: "resource_owner", user_ids: [], group_ids: [], required: 1 };
    const n = $("fl-approvers").children.length + 1;
    const row = GF.el("div", { class: "row approver card" },
      GF.el("div", { class: "field" }, GF.el("label", { for: `ap-kind-${n}`, text: `Approver group ${n}` }),
        GF.el("select", { id: `ap-kind-${n}`, class: "ap-kind" },
          GF.el("option", { value: "resource_owner", text: "Resource owner (else integration owner)" }),
          GF.el("option", { value: "users", text: "Named users" }), GF.el("option", { value: "groups", text: "Named groups" }))),
      GF.el("div", { class: "field" }, GF.el("label", { for: `ap-users-${n}`, text: "Users" }), GF.el("select", { id: `ap-users-${n}`, class: "ap-users", multiple: true })),
      GF.el("div", { class: "field" }, GF.el("label", { for: `ap-groups-${n}`, text: "Groups" }), GF.el("select", { id: `ap-groups-${n}`, class: "ap-groups", multiple: true })),
      GF.el("div", { class: "field" }, GF.el("label", { for: `ap-req-${n}`, text: "Approvals needed" }), GF.el("input", { id: `ap-req-${n}`, class: "ap-required", type: "number", min: 1, max: 10, value: g.required })),
      GF.el("div", { class: "field" }, GF.el("button", { type: "button", text: "Remove", on: { click: () => row.remove() } })));
    options(row.querySelector(".ap-users"), users.map((u) => [u.id, u.username]));
    options(row.querySelector(".ap-groups"), groups.map((x) => [x.id, x.name]));
    row.querySelector(".ap-kind").value = g.kind;
    setSelected(row.querySelector(".ap-users"), g.user_ids || []);
    setSelected(row.querySelector(".ap-groups"), g.group_ids || []);
    $("fl-approvers").append(row);
  }

  function modeChanged() {
    const mode = $("fl-mode").value;
    $("fl-values-field").hidden = mode === "all" || mode === "tag";
    $("fl-tag-field").hidden = $("fl-tag-value-field").hidden = mode !== "tag";
  }

  function definition() {
    const mode = $("fl-mode").value;
    const values = GF.lines($("fl-values").value);
    const scope = { resource_types: types(), mode };
    if (mode === "ids") scope.resource_ids = values;
    if (mode === "accounts") scope.account_ids = values;
    if (mode === "ous") scope.ou_ids = values;
    if (mode === "tag") scope.tag = { key: $("fl-tag-key").value.trim(), value: $("fl-tag-value").value.trim() || null };
    const permissions = currentPerms();
    const approvalMode = $("fl-approval-mode").value;
    const groupsOut = approvalMode === "auto" ? [] : [...$("fl-approvers").children].map((row) => ({
      kind: row.querySelector(".ap-kind").value, user_ids: selected(row.querySelector(".ap-users")),
      group_ids: selected(row.querySelector(".ap-groups")), required: Number(row.querySelector(".ap-required").value) || 1 }));
    const minutes = (id) => Math.round(Number($(id).value) * 60);
    const pattern = $("fl-just-pattern").value.trim();
    return {
      requestors: { everyone: $("fl-everyone").checked, user_ids: selected($("fl-req-users")), group_ids: selected($("fl-req-groups")) },
      scope, permissions, approval: { mode: approvalMode, groups: groupsOut },
      max_duration_seconds: minutes("fl-max"), default_duration_seconds: minutes("fl-default"),
      justification_required: $("fl-just-required").checked, justification_pattern: pattern || null,
      approver_reason_required: $("fl-reason-required").checked, max_extensions: Number($("fl-extensions").value) || 0,
    };
  }

  function openEditor(flow) {
    editing = flow;
    GF.clearErrors(form);
    $("editor").hidden = false;
    $("editor-title").textContent = flow ? `Edit “${flow.name}”` : "New access flow";
    $("fl-delete").hidden = !flow;
    const d = flow ? flow.definition : null;
    $("fl-name").value = flow ? flow.name : "";
    $("fl-description").value = flow ? flow.description : "";
    $("fl-enabled").checked = flow ? flow.enabled : true;
    $("fl-integration").value = flow ? flow.integration_id : (integrations[0] || {}).id || "";
    $("fl-integration").disabled = Boolean(flow);
    $("fl-everyone").checked = d ? d.requestors.everyone : false;
    setSelected($("fl-req-users"), d ? d.requestors.user_ids : []);
    setSelected($("fl-req-groups"), d ? d.requestors.group_ids : []);
    const scopeTypes = d ? d.scope.resource_types : ["aws-account"];
    $("fl-types").querySelectorAll("input").forEach((c) => { c.checked = scopeTypes.includes(c.value); });
    $("fl-mode").value = d ? d.scope.mode : "all";
    const s = d ? d.scope : {};
    $("fl-values").value = (s.resource_ids && s.resource_ids.length ? s.resource_ids : s.account_ids && s.account_ids.length ? s.account_ids : s.ou_ids || []).join(", ");
    $("fl-tag-key").value = s.tag ? s.tag.key : ""; $("fl-tag-value").value = s.tag && s.tag.value ? s.tag.value : "";
    modeChanged();
    drawPerms(d ? d.permissions : {});
    loadChoices().then(() => drawPerms(d ? d.permissions : {}));
    $("fl-approval-mode").value = d ? d.approval.mode : "any";
    $("fl-approvers").replaceChildren();
    (d && d.approval.groups.length ? d.approval.groups : [null]).forEach(approverRow);
    $("fl-reason-required").checked = d ? d.approver_reason_required : false;
    $("fl-max").value = d ? d.max_duration_seconds / 60 : 60;
    $("fl-default").value = d ? d.default_duration_seconds / 60 : 60;
    $("fl-extensions").value = d ? d.max_extensions : 0;
    $("fl-just-required").checked = d ? d.justification_required : false;
    $("fl-just-pattern").value = d && d.justification_pattern ? d.justification_pattern : "";
    $("editor-title").focus();
    preview();
  }

  async function countResources(params) {
    const q = new URLSearchParams({ ...params, limit: "5", integration_id: $("fl-integration").value });
    const r = await GF.api("GET", "/api/v1/resources?" + q);
    return r.ok ? r.data : { total: 0, items: [] };
  }

  async function preview() {
    const out = $("fl-preview");
    const d = definition();
    const who = d.requestors.everyone ? "Everyone"
      : [...d.requestors.user_ids.map(userName), ...d.requestors.group_ids.map((g) => "members of " + groupName(g))].join(", ") || "nobody yet";
    const lines = [];
    for (const t of d.scope.resource_types) {
      const perms = (d.permissions[t] || []).join(", ") || "no permission";
      let pages = [];
      if (d.scope.mode === "all") pages = [await countResources({ type: t })];
      else if (d.scope.mode === "accounts") pages = await Promise.all((d.scope.account_ids || []).map((a) => countResources({ type: t, account: a })));
      else if (d.scope.mode === "ous") pages = await Promise.all((d.scope.ou_ids || []).map((o) => countResources({ type: t, ou: o })));
      else if (d.scope.mode === "tag" && d.scope.tag.key) pages = [await countResources({ type: t, tag: d.scope.tag.value ? `${d.scope.tag.key}=${d.scope.tag.value}` : d.scope.tag.key })];
      const total = d.scope.mode === "ids" ? (d.scope.resource_ids || []).length : pages.reduce((n, p) => n + p.total, 0);
      const sample = pages.flatMap((p) => p.items).slice(0, 5).map((x) => x.name);
      lines.push(GF.el("li", {}, GF.el("strong", { text: `${total} ${t}` }), ` — ${perms}`, sample.length ? GF.el("span", { class: "muted", text: ` (e.g. ${sample.join(", ")})` }) : ""));
    }
    const approval = d.approval.mode === "auto" ? "granted automatically" : `approved by ${d.approval.mode === "all" ? "every" : "any"} approver group: ` +
      d.approval.groups.map((g) => g.kind === "resource_owner" ? "the resource owner (else the integration owner)" : g.kind === "users" ? g.user_ids.map(userName).join(", ") : g.group_ids.map(groupName).join(", ")).join("; ");
    GF.replace(out, GF.el("p", {}, GF.el("strong", { text: who }), " may request, for up to " + GF.duration(d.max_duration_seconds) + ", " + approval + ":"),
      GF.el("ul", {}, lines), GF.el("p", { class: "muted", text: "Counts are before exclusions; the portal shows each person exactly what they can request." }));
  }

  async function refresh() {
    const result = await GF.api("GET", "/api/v1/access-flows");
    const tbody = $("flows");
    if (!result.ok) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 7, class: "error", text: GF.message(result) }))); return; }
    flows = result.data;
    if (!flows.length) { GF.replace(tbody, GF.el("tr", {}, GF.el("td", { colspan: 7, text: "No access flow yet." }))); return; }
    GF.replace(tbody, flows.map((f) => {
      const d = f.definition;
      const integ = integrations.find((i) => i.id === f.integration_id);
      const req = d.requestors.everyone ? "Everyone" : [...d.requestors.user_ids.map(userName), ...d.requestors.group_ids.map(groupName)].join(", ");
      return GF.el("tr", { dataset: { flowId: f.id } },
        GF.el("td", {}, GF.el("strong", { text: f.name }), f.enabled ? "" : [" ", GF.badge("disabled")], f.description ? GF.el("div", { class: "muted", text: f.description }) : null),
        GF.el("td", { text: integ ? integ.name : f.integration_id }),
        GF.el("td", { text: req }),
        GF.el("td", { text: `${d.scope.resource_types.join(", ")} (${d.scope.mode})` }),
        GF.el("td", { text: d.approval.mode }),
        GF.el("td", { text: GF.duration(d.max_duration_seconds) }),
        GF.el("td", {}, GF.el("button", { type: "button", text: "Edit", "aria-label": `Edit ${f.name}`, on: { click: () => openEditor(f) } })));
    }));
  }

  // Durations are typed in minutes: checked here, and reported, in minutes.
  const MAX_MINUTES = 30 * 24 * 60;
  function durationProblems() {
    const problems = [];
    const max = Number($("fl-max").value), def = Number($("fl-default").value);
    for (const [field, value, what] of [["definition.max_duration_seconds", max, "The maximum"], ["definition.default_duration_seconds", def, "The default"]]) {
      if (!$("fl-" + (field.includes("max") ? "max" : "default")).value.trim() || !Number.isFinite(value)) problems.push({ field, message: `${what} duration is required, in minutes.` });
      else if (value < 1) problems.push({ field, message: `${what} duration must be at least 1 minute.` });
      else if (value > MAX_MINUTES) problems.push({ field, message: `${what} duration must be at most ${MAX_MINUTES} minutes (30 days).` });
    }
    if (!problems.length && def > max) problems.push({ field: "definition.default_duration_seconds", message: `The default duration (${def} minutes) is longer than the maximum (${max} minutes).` });
    return problems;
  }

  // An error clears as soon as its field is changed.
  function clearNear(event) {
    const target = event.target;
    const box = target.closest(".field, fieldset");
    if (box) box.querySelectorAll("[data-error-for]").forEach((n) => { n.textContent = ""; });
    (target.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean).forEach((id) => {
      const slot = document.getElementById(id);
      if (slot && slot.hasAttribute("data-error-for")) slot.textContent = "";
    });
    target.removeAttribute("aria-invalid");
    const general = form.querySelector("[data-error-general]");
    if (general) general.textContent = "";
  }
  form.addEventListener("input", clearNear);
  form.addEventListener("change", clearNear);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    GF.clearErrors(form);
    const problems = durationProblems();
    if (problems.length) {
      const f = GF.showErrors(form, { data: { error: { details: problems } } });
      if (f) f.focus();
      return;
    }
    const body = { name: $("fl-name").value.trim(), description: $("fl-description").value.trim(), enabled: $("fl-enabled").checked, definition: definition() };
    let result;
    if (editing) result = await GF.api("PATCH", `/api/v1/access-flows/${encodeURIComponent(editing.id)}`, body);
    else result = await GF.api("POST", "/api/v1/access-flows", { ...body, integration_id: $("fl-integration").value });
    if (!result.ok) { const f = GF.showErrors(form, result); if (f) f.focus(); return; }
    GF.toast("Saved");
    editing = result.data;
    $("editor-title").textContent = `Edit “${editing.name}”`;
    $("fl-delete").hidden = false;
    $("fl-integration").disabled = true;
    refresh();
  });
  $("fl-delete").addEventListener("click", async () => {
    if (!editing || !confirm(`Delete the flow “${editing.name}”?`)) return;
    const result = await GF.api("DELETE", `/api/v1/access-flows/${encodeURIComponent(editing.id)}`);
    if (!result.ok) { GF.toast(GF.message(result), true); return; }
    $("editor").hidden = true; editing = null; refresh();
  });
  $("new-flow").addEventListener("click", () => openEditor(null));
  $("fl-close").addEventListener("click", () => { $("editor").hidden = true; });
  $("fl-add-approver").addEventListener("click", () => approverRow(null));
  $("fl-mode").addEventListener("change", modeChanged);
  $("fl-types").addEventListener("change", () => drawPerms());
  $("fl-integration").addEventListener("change", () => { const keep = currentPerms(); loadChoices().then(() => drawPerms(keep)); });
  $("fl-preview-btn").addEventListener("click", preview);

  $("new-flow").disabled = true; // until the catalog, integrations and directory are loaded
  (async () => {
    const [c, i, u, g] = await Promise.all([GF.api("GET", "/api/v1/catalog"), GF.api("GET", "/api/v1/integrations"),
      GF.api("GET", "/api/v1/users?limit=500"), GF.api("GET", "/api/v1/groups?limit=500")]);
    catalog = c.ok ? c.data[0] : { resource_types: [] };
    integrations = i.ok ? i.data : [];
    users = u.ok ? u.data.items.filter((x) => x.active) : [];
    groups = g.ok ? g.data.items : [];
    options($("fl-integration"), integrations.map((x) => [x.id, x.name]));
    options($("fl-req-users"), users.map((x) => [x.id, `${x.display_name || x.username} (${x.username})`]));
    options($("fl-req-groups"), groups.map((x) => [x.id, x.name]));
    GF.replace($("fl-types"), catalog.resource_types.map((rt) => GF.el("label", {}, GF.el("input", { type: "checkbox", value: rt.key }), " " + rt.display_name)));
    $("new-flow").disabled = false;
    refresh();
  })();
});
