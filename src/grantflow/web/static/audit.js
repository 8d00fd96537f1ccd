/* Audit log: recent events, filters, older pages, chain verification and export. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  let before = null;

  function params() {
    const q = new URLSearchParams();
    for (const [key, id] of [["actor", "a-actor"], ["action", "a-action"], ["request", "a-request"]]) {
      const v = $(id).value.trim();
      if (v) q.set(key, v);
    }
    return q;
  }

  async function load(append) {
    const q = params();
    q.set("limit", "100");
    if (append && before) q.set("before", String(before));
    const result = await GF.api("GET", "/api/v1/audit-events?" + q);
    if (result.status === 404) {
      GF.replace($("a-state"), GF.el("p", { class: "notice warn", text: "The audit log API is not available on this server." }));
      return;
    }
    if (!result.ok) { GF.showErrors($("a-filters"), result); return; }
    const items = result.data.items || [];
    before = result.data.next_before;
    $("a-more").hidden = !before;
    const rows = items.map((e) => GF.el("tr", {},
      GF.el("td", { text: GF.when(e.occurred_at) }),
      GF.el("td", {}, `${e.actor_type}${e.actor_id ? ": " + e.actor_id : ""}`, GF.el("div", { class: "muted", text: e.source })),
      GF.el("td", { class: "mono", text: e.action }),
      GF.el("td", { text: [e.target_type, e.target_id].filter(Boolean).join(" ") || "—" }),
      GF.el("td", {}, GF.el("code", { text: JSON.stringify(e.data) }))));
    if (append) $("a-rows").append(...rows);
    else GF.replace($("a-rows"), rows.length ? rows : GF.el("tr", {}, GF.el("td", { colspan: 5, text: "No event matches." })));
    const q2 = params().toString();
    $("a-export").href = "/api/v1/audit-events/export?format=jsonl" + (q2 ? "&" + q2 : "");
    $("a-export-csv").href = "/api/v1/audit-events/export?format=csv" + (q2 ? "&" + q2 : "");
  }

  $("a-filters").addEventListener("submit", (e) => { e.preventDefault(); GF.clearErrors($("a-filters")); before = null; load(false); });
  $("a-more").addEventListener("click", () => load(true));
  $("a-verify").addEventListener("click", async () => {
    const r = await GF.api("GET", "/api/v1/audit/verify");
    const out = $("a-verified");
    if (!r.ok) { out.className = "notice bad"; out.textContent = GF.message(r); return; }
    const broken = r.data.break;
    const checkpoints = r.data.checkpoints || [];
    const problems = checkpoints.filter((c) => c.problem).map((c) => c.problem);
    const anchor = checkpoints.find((c) => c.seq !== null && !c.problem);
    out.className = "notice " + (r.data.ok ? "" : "bad");
    if (broken) out.textContent = `Chain broken at event #${broken.seq}: ${broken.reason}`;
    else if (!r.data.ok) out.textContent = `Checkpoint problem: ${problems.join("; ")}`;
    else out.textContent = `Chains intact (${r.data.events} events, ${r.data.session ? r.data.session.events : 0} session events)` +
      (anchor ? `; the tail matches the checkpoint of ${anchor.at} (event #${anchor.seq}).` : "; no checkpoint yet.");
  });
  load(false);
});
