/* Catalog → AWS → Amazon Organization: five steps, each expanding after "Next". The form is
 * never reset: an API error opens the step of its field and shows the message next to it. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("wizard");
  const editId = form.dataset.integrationId;
  const steps = [...form.querySelectorAll("li[data-step]")];
  const $ = (id) => document.getElementById(id);
  let connectors = [];
  let users = [], groups = [];
  let pendingOwners = null;

  // ---- steps ---------------------------------------------------------------------------
  function open(index) {
    steps.forEach((li, i) => {
      const body = li.querySelector(".step-body");
      const isOpen = i === index;
      li.classList.toggle("open", isOpen);
      body.hidden = !isOpen;
      const summary = li.querySelector(".step-summary");
      const edit = li.querySelector(".edit-step");
      const done = li.classList.contains("done");
      if (summary) { summary.hidden = isOpen || !done; summary.textContent = done ? summarize(li.dataset.step) : ""; }
      if (edit) edit.hidden = isOpen || !done;
    });
    if (steps[index].dataset.step === "confirm") renderConfirm();
    const first = steps[index].querySelector(".step-body input:not([type=hidden]), .step-body select, .step-body textarea, .step-body button");
    if (first) first.focus({ preventScroll: false });
  }

  // The API's own rules (pages.py passes its patterns), checked step by step on Next: every
  // problem of the step at once, in words, next to its field.
  const rule = (key) => new RegExp(form.dataset["pattern" + key]);
  const REGIONS = new Set([...document.querySelectorAll("#regions option")].map((o) => o.value));
  let existingNames = [];
  const input = (key) => form.querySelector(`[data-field="config.${key}"]`);
  const text = (key) => (input(key) ? input(key).value.trim() : "");

  function configProblems() {
    const problems = [];
    const name = $("f-name").value.trim();
    if (!name) problems.push(["name", "Required."]);
    else if (!rule("Name").test(name)) problems.push(["name", "Use 1 to 64 letters, digits, spaces, - and _ only."]);
    else if (existingNames.some((n) => n.toLowerCase() === name.toLowerCase())) problems.push(["name", `An integration named “${name}” already exists: choose another name.`]);
    form.querySelectorAll("[data-field][required]").forEach((node) => {
      if (!node.value.trim()) problems.push([node.dataset.field, "Required."]);
    });
    for (const key of ["region", "sso_region"]) {
      const v = text(key);
      if (v && !REGIONS.has(v)) problems.push(["config." + key, `“${v}” is not an AWS region code (e.g. us-east-1).`]);
    }
    const regions = GF.lines(text("sync_regions"));
    const badRegions = regions.filter((r) => !REGIONS.has(r));
    if (badRegions.length) problems.push(["config.sync_regions", `Not AWS region codes: ${badRegions.join(", ")}.`]);
    else if (new Set(regions).size !== regions.length) problems.push(["config.sync_regions", "A region is listed twice."]);
    const portal = text("sso_portal");
    if (portal) {
      let ok = false;
      try { const u = new URL(portal); ok = u.protocol === "https:" && Boolean(u.hostname) && !portal.includes(" "); } catch (_e) { ok = false; }
      if (!ok) problems.push(["config.sso_portal", "Must be an https:// URL, e.g. https://d-1234567890.awsapps.com/start."]);
    }
    const arn = text("management_role_arn");
    if (arn && !rule("RoleArn").test(arn)) problems.push(["config.management_role_arn", "Must be an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>."]);
    const ous = GF.lines(text("exclude_ou_ids"));
    const badOus = ous.filter((o) => !rule("Ou").test(o));
    if (badOus.length) problems.push(["config.exclude_ou_ids", `Not OU ids (ou-xxxx-xxxxxxxx): ${badOus.join(", ")}.`]);
    else if (new Set(ous).size !== ous.length) problems.push(["config.exclude_ou_ids", "An OU is listed twice."]);
    const audit = input("enable_audit");
    if (audit && audit.checked && !text("audit_bucket")) problems.push(["config.audit_bucket", "Required when Enable Audit is on: the organization trail's S3 bucket."]);
    return problems;
  }

  function moreProblems() {
    const problems = [];
    const tag = $("f-ro-tag").value.trim();
    if (tag && (!rule("TagKey").test(tag) || tag.toLowerCase().startsWith("aws:"))) problems.push(["config.resource_owner", "The tag key must be an AWS tag key (1 to 128 characters, not starting with aws:)."]);
    else if (tag && !owners().length) problems.push(["config.resource_owner", "Choose an Integration Owner above: it approves resources whose owner tag matches nobody."]);
    if (tag && $("f-ro-attr").value === "user_attribute" && !$("f-ro-attr-name").value.trim()) problems.push(["config.resource_owner", "Name the user attribute to match the tag against."]);
    const values = owners().map((o) => o.value);
    if (new Set(values).size !== values.length) problems.push(["config.integration_owners", "An owner is listed twice."]);
    return problems;
  }

  function checkStep(name) {
    GF.clearErrors(steps.find((li) => li.dataset.step === name));
    let problems = [];
    if (name === "discovery" && !selectedTypes().length) problems.push(["resource_types", "Select at least one resource type to sync."]);
    if (name === "connector" && !$("f-connector_id").value) problems.push(["connector_id", "Choose a connector."]);
    if (name === "config") problems = configProblems();
    if (name === "more") problems = moreProblems();
    if (!problems.length) return true;
    const first = GF.showErrors(form, { data: { error: { details: problems.map(([field, message]) => ({ field, message })) } } });
    if (first) first.focus();
    return false;
  }

  steps.forEach((li, i) => {
    const next = li.querySelector(".next");
    if (next) next.addEventListener("click", () => {
      if (!checkStep(li.dataset.step)) return;
      li.classList.add("done");
      open(i + 1);
    });
    const edit = li.querySelector(".edit-step");
    if (edit) edit.addEventListener("click", () => open(i));
  });

  // Enter in a field moves to the next step (as its Next button would); it never submits.
  // Only the Confirm step's button creates or saves the integration.
  form.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.isComposing) return;
    const target = event.target;
    if (!(target instanceof HTMLInputElement) || ["button", "submit", "reset"].includes(target.type)) return;
    event.preventDefault();
    const li = target.closest("li[data-step]");
    const next = li && li.querySelector(".next");
    if (next) next.click();
  });
  const confirmOpen = () => steps[steps.length - 1].classList.contains("open");

  // ---- values --------------------------------------------------------------------------
  const selectedTypes = () => [...form.querySelectorAll('input[name="resource_types"]:checked')].map((c) => c.value);

  function owners() {
    const kind = $("f-owner-kind").value;
    const listed = [...$("f-owner-values").selectedOptions].map((o) => o.value);
    const typed = $("f-owner-names").value.split(",").map((v) => v.trim()).filter((v) => v && !listed.includes(v));
    return [...listed, ...typed].map((value) => ({ kind, value }));
  }

  function resourceOwner() {
    const tag = $("f-ro-tag").value.trim();
    if (!tag) return null;
    const out = { tag_key: tag, attribute: $("f-ro-attr").value };
    if (out.attribute === "user_attribute") out.attribute_name = $("f-ro-attr-name").value.trim() || null;
    return out;
  }

  function body() {
    const config = {};
    form.querySelectorAll("[data-field]").forEach((input) => {
      const key = input.dataset.field.replace(/^config\./, "");
      if (input.dataset.kind === "bool") config[key] = input.checked;
      else if (input.dataset.kind === "list") config[key] = GF.lines(input.value);
      else if (input.value.trim() !== "" || key === "custom_access_details") config[key] = input.value.trim();
      else if (editId) config[key] = null; // PATCH merges (RFC 7396): null clears the setting
    });
    config.custom_access_details = $("f-custom_access_details").value;
    config.integration_owners = owners();
    config.resource_owner = resourceOwner();
    return { name: $("f-name").value.trim(), connector_id: $("f-connector_id").value,
             resource_types: selectedTypes(), config };
  }

  function summarize(step) {
    const b = body();
    if (step === "discovery") return b.resource_types.length + " resource types: " + b.resource_types.join(", ");
    if (step === "connector") { const c = connectors.find((x) => x.id === b.connector_id); return c ? `${c.name} (${c.id}, ${c.status})` : "—"; }
    if (step === "config") return `${b.name} · ${b.config.region || "?"} · SSO ${b.config.sso_region || "?"}`;
    if (step === "more") {
      const parts = [b.config.custom_access_details ? `${b.config.custom_access_details.length} characters of access details` : "no access details"];
      parts.push(b.config.integration_owners.length ? `owners: ${b.config.integration_owners.map((o) => o.value).join(", ")}` : "no integration owner");
      if (b.config.resource_owner) parts.push(`resource owner tag “${b.config.resource_owner.tag_key}”`);
      return parts.join(" · ");
    }
    return "";
  }

  function renderConfirm() {
    const b = body();
    const c = connectors.find((x) => x.id === b.connector_id);
    const rows = [
      ["Resource types", b.resource_types.join(", ")],
      ["Connector", c ? `${c.name} · ${c.id} · ${c.connector_role_arn || "role unknown"}` : b.connector_id],
      ["Integration Name", b.name],
    ];
    form.querySelectorAll("[data-field]").forEach((input) => {
      if (input.id === "f-custom_access_details") return;
      const label = form.querySelector(`label[for="${input.id}"]`).textContent.replace("(optional)", "").trim();
      rows.push([label, input.dataset.kind === "bool" ? (input.checked ? "Yes" : "No") : (input.value.trim() || "—")]);
    });
    rows.push(["Integration Owner", b.config.integration_owners.map((o) => `${o.kind}: ${o.value}`).join(", ") || "—"]);
    rows.push(["Resource Owner", b.config.resource_owner ? `tag ${b.config.resource_owner.tag_key} → ${b.config.resource_owner.attribute}` : "—"]);
    const dl = GF.el("dl", { class: "kv" }, rows.map(([k, v]) => [GF.el("dt", { text: k }), GF.el("dd", { text: v })]));
    GF.replace($("confirm-summary"), dl,
      GF.el("h3", { text: "Custom access details, as users will see them" }),
      GF.accessDetails(b.config.custom_access_details));
  }

  // ---- connector step ------------------------------------------------------------------
  async function loadConnectors(keep) {
    const select = $("f-connector_id");
    const result = await GF.api("GET", "/api/v1/connectors");
    if (!result.ok) { GF.replace(select, GF.el("option", { value: "", text: GF.message(result) })); return; }
    connectors = result.data;
    const chosen = keep || select.value;
    GF.replace(select, GF.el("option", { value: "", text: connectors.length ? "Choose a connector" : "No connector yet: create one first" }),
      connectors.map((c) => GF.el("option", { value: c.id, text: `${c.name} · ${c.id} · ${GF.label(c.status)} · ${c.connector_role_arn || "role not known yet"}` })));
    if (chosen) select.value = chosen;
    else if (connectors.length === 1) select.value = connectors[0].id;
    showConnector();
  }

  function showConnector() {
    const box = $("connector-detail");
    const c = connectors.find((x) => x.id === $("f-connector_id").value);
    if (!c) { box.hidden = true; return; }
    box.hidden = false;
    const verify = c.last_verification;
    GF.replace(box, GF.el("dl", { class: "kv" },
      GF.el("dt", { text: "Connector ID" }), GF.el("dd", { class: "mono", text: c.id }),
      GF.el("dt", { text: "Status" }), GF.el("dd", {}, GF.badge(c.status), " last seen ", GF.ago(c.last_heartbeat_at)),
      GF.el("dt", { text: "Runs as (connector role ARN)" }), GF.el("dd", { class: "mono", text: c.connector_role_arn || "not known until the connector has connected" }),
      GF.el("dt", { text: "Kind" }), GF.el("dd", { text: c.kind === "managed" ? "Managed (runs inside the Grantflow server)" : "Self-hosted" }),
      verify ? [GF.el("dt", { text: "Last verification" }), GF.el("dd", {}, GF.badge(verify.state), " ", verify.role_arn || "", verify.error ? " — " + verify.error : "")] : null));
  }

  async function getTemplate() {
    const out = $("template-out");
    const id = $("f-connector_id").value;
    GF.clearErrors($("template-box"));
    if (!id) { GF.replace(out, GF.el("p", { class: "error", id: "template-needs-connector", role: "alert", text: "Choose a connector first." })); return; }
    const ou = $("f-template-ou").value.trim();
    if (ou && !/^r-[0-9a-z]{4,32}$/.test(ou) && !rule("Ou").test(ou)) {
      GF.showErrors($("template-box"), { data: { error: { field: "template_ou", message: "Must be a root id (r-xxxx) or an OU id (ou-xxxx-xxxxxxxx)." } } });
      $("f-template-ou").focus();
      return;
    }
    const query = new URLSearchParams();
    if (ou) query.set("organizational_unit_id", ou);
    const region = (form.querySelector('[data-field="config.region"]') || {}).value;
    if (region) query.set("region", region);
    const result = await GF.api("GET", `/api/v1/connectors/${encodeURIComponent(id)}/cloudformation?${query}`);
    if (!result.ok) { GF.replace(out, GF.el("p", { class: "error", role: "alert", text: GF.message(result) })); return; }
    out.replaceChildren(templateView(result.data));
  }

  function templateView(t) {
    const href = "data:application/yaml;charset=utf-8," + encodeURIComponent(t.template);
    return GF.el("div", {},
      GF.el("ol", {}, t.instructions.map((s) => GF.el("li", { text: s }))),
      t.deploy_command ? [GF.el("div", { class: "label", text: "Deploy command" }), GF.el("pre", { text: t.deploy_command })] : null,
      t.quick_create_url ? GF.el("p", {}, GF.el("a", { href: t.quick_create_url, target: "_blank", rel: "noopener", text: "Open the quick-create link in the AWS console" })) : null,
      GF.el("p", {}, GF.el("a", { href, download: t.template_file, class: "button", text: "Download " + t.template_file })),
      t.prerequisites.map((p) => GF.el("p", { class: "notice", text: p })),
      GF.el("details", {}, GF.el("summary", { text: "Show the template" }), GF.el("pre", { text: t.template })));
  }

  $("f-connector_id").addEventListener("change", () => {
    showConnector();
    const stale = $("template-needs-connector");
    if (stale && $("f-connector_id").value) stale.remove();
    GF.clearErrors(steps.find((li) => li.dataset.step === "connector"));
  });
  // An error clears as soon as its field is changed.
  form.addEventListener("input", (event) => {
    const ids = (event.target.getAttribute("aria-describedby") || "").split(/\s+/);
    ids.forEach((id) => { const slot = document.getElementById(id); if (slot && slot.hasAttribute("data-error-for")) slot.textContent = ""; });
    event.target.removeAttribute("aria-invalid");
  });
  $("reload-connectors").addEventListener("click", () => loadConnectors());
  $("get-template").addEventListener("click", getTemplate);

  // ---- get more ------------------------------------------------------------------------
  const details = $("f-custom_access_details");
  const max = Number(details.getAttribute("maxlength"));
  function updateDetails() {
    const n = details.value.length;
    const counter = $("details-count");
    counter.textContent = `${n} / ${max}`;
    counter.classList.toggle("over", n > max);
    $("details-preview").replaceChildren(GF.accessDetails(details.value));
  }
  details.addEventListener("input", updateDetails);

  function fillOwners() {
    const kind = $("f-owner-kind").value;
    const select = $("f-owner-values");
    const pending = pendingOwners;
    const keep = new Set(pending || [...select.selectedOptions].map((o) => o.value));
    pendingOwners = null;
    const items = kind === "user"
      ? users.map((u) => [u.username, `${u.display_name || u.username} (${u.username})`])
      : groups.map((g) => [g.name, `${g.name} (${g.member_count} members)`]);
    GF.replace(select, items.map(([value, text]) => GF.el("option", { value, text, selected: keep.has(value) })));
    if (pending) $("f-owner-names").value = pending.filter((v) => !items.some(([value]) => value === v)).join(", ");
  }
  $("f-owner-kind").addEventListener("change", fillOwners);
  $("f-ro-attr").addEventListener("change", () => { $("ro-attr-name-field").hidden = $("f-ro-attr").value !== "user_attribute"; });

  async function loadDirectory() {
    const [u, g] = await Promise.all([GF.api("GET", "/api/v1/users?limit=500"), GF.api("GET", "/api/v1/groups?limit=500")]);
    users = u.ok ? u.data.items.filter((x) => x.active) : [];
    groups = g.ok ? g.data.items : [];
    fillOwners();
  }

  async function loadNames() {
    const result = await GF.api("GET", "/api/v1/integrations");
    existingNames = result.ok ? result.data.filter((x) => x.id !== editId).map((x) => x.name) : [];
  }

  // ---- submit --------------------------------------------------------------------------
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!confirmOpen() || event.submitter !== $("submit")) return;
    GF.clearErrors(form);
    const button = $("submit");
    GF.busy(button, true);
    const b = body();
    const result = editId
      ? await GF.api("PATCH", `/api/v1/integrations/${encodeURIComponent(editId)}`, b)
      : await GF.api("POST", "/api/v1/integrations", b);
    GF.busy(button, false);
    if (result.ok) {
      location.href = "/admin/integrations?highlight=" + encodeURIComponent(result.data.id);
      return;
    }
    const first = GF.showErrors(form, result);
    const li = first && first.closest("li[data-step]");
    if (li && li.dataset.step !== "confirm") {
      open(steps.indexOf(li));
      GF.clearErrors(form);
      const again = GF.showErrors(form, result);
      if (again) again.focus();
    }
  });

  // ---- edit mode -----------------------------------------------------------------------
  async function loadExisting() {
    const result = await GF.api("GET", `/api/v1/integrations/${encodeURIComponent(editId)}`);
    if (!result.ok) { GF.toast(GF.message(result), true); return null; }
    const x = result.data;
    form.querySelectorAll('input[name="resource_types"]').forEach((c) => { c.checked = x.resource_types.includes(c.value); });
    $("f-name").value = x.name;
    form.querySelectorAll("[data-field]").forEach((input) => {
      const value = x.config[input.dataset.field.replace(/^config\./, "")];
      if (input.dataset.kind === "bool") input.checked = Boolean(value);
      else if (Array.isArray(value)) input.value = value.join(", ");
      else input.value = value == null ? "" : value;
    });
    const ownersNow = x.config.integration_owners || [];
    if (ownersNow.length) { $("f-owner-kind").value = ownersNow[0].kind; pendingOwners = ownersNow.map((o) => o.value); }
    const ro = x.config.resource_owner;
    if (ro) {
      $("f-ro-tag").value = ro.tag_key; $("f-ro-attr").value = ro.attribute;
      $("f-ro-attr-name").value = ro.attribute_name || "";
      $("ro-attr-name-field").hidden = ro.attribute !== "user_attribute";
    }
    return x;
  }

  (async () => {
    const existing = editId ? await loadExisting() : null;
    await Promise.all([loadConnectors(existing && existing.connector_id), loadDirectory(), loadNames()]);
    updateDetails();
    if (existing) { steps.forEach((li) => li.classList.add("done")); open(steps.length - 1); }
  })();
});
