/* My approvals: what waits for me, why I am asked, approve / reject with a reason. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("approvals");
  const me = document.body.dataset.userId;
  const shown = new Map();

  function why(r) {
    const sets = (r.approval && r.approval.sets) || [];
    const mine = sets.filter((s) => (s.principals || []).includes("user:" + me));
    return (mine.length ? mine : sets).map((s) =>
      GF.el("li", {}, GF.el("strong", { text: s.label }), " — ", s.why, s.required > 1 ? ` (${s.required} approvals needed)` : ""));
  }

  function card(r) {
    const reasonId = "reason-" + r.id;
    const decide = (verb) => async (event) => {
      const button = event.currentTarget;
      GF.busy(button, true);
      const result = await GF.api("POST", `/api/v1/access-requests/${encodeURIComponent(r.id)}/${verb}`, { reason: document.getElementById(reasonId).value });
      GF.busy(button, false);
      const slot = document.getElementById("err-" + reasonId);
      if (!result.ok) { slot.textContent = GF.message(result); return; }
      GF.toast(verb === "approve" ? "Approved" : "Rejected");
      refresh();
    };
    const names = r.grants.map((g) => g.resource_name).filter(Boolean);
    return GF.el("article", { class: "card", dataset: { requestId: r.id } },
      GF.el("h2", {}, `${r.requester} asks for ${r.permission}`, " ", GF.badge(r.state)),
      GF.el("dl", { class: "kv" },
        GF.el("dt", { text: "Resource" }), GF.el("dd", { text: names.length ? names.join(", ") : r.resource_type }),
        GF.el("dt", { text: "Duration" }), GF.el("dd", { text: GF.duration(r.duration_seconds) }),
        GF.el("dt", { text: "Justification" }), GF.el("dd", { text: r.justification || "—" }),
        GF.el("dt", { text: "Requested" }), GF.el("dd", { text: GF.when(r.created_at) }),
        GF.el("dt", { text: "Why you" }), GF.el("dd", {}, GF.el("ul", { class: "why" }, why(r))),
        r.approvals.length ? [GF.el("dt", { text: "Decisions so far" }), GF.el("dd", { text: r.approvals.map((a) => `${a.approver}: ${a.decision}`).join(", ") })] : null),
      GF.el("div", { class: "field" },
        GF.el("label", { for: reasonId, text: "Reason" }),
        GF.el("textarea", { id: reasonId, maxlength: 2000, "aria-describedby": "err-" + reasonId }),
        GF.el("p", { class: "error", id: "err-" + reasonId, role: "alert" })),
      GF.el("div", { class: "actions" },
        GF.el("button", { type: "button", class: "primary", text: "Approve", on: { click: decide("approve") } }),
        GF.el("button", { type: "button", class: "danger", text: "Reject", on: { click: decide("reject") } }),
        GF.el("a", { href: "/requests/" + encodeURIComponent(r.id), text: "Details" })));
  }

  async function refresh() {
    const result = await GF.api("GET", "/api/v1/access-requests?scope=to_approve");
    if (!result.ok) { GF.replace(root, GF.el("p", { class: "error", text: GF.message(result) })); return; }
    const ids = new Set(result.data.map((r) => r.id));
    if (!result.data.length) { shown.clear(); GF.replace(root, GF.el("p", { class: "muted", text: "Nothing waits for your approval." })); return; }
    if (!shown.size) root.replaceChildren();
    for (const [rid, node] of shown) if (!ids.has(rid)) { node.remove(); shown.delete(rid); }
    for (const r of result.data) {           // keep cards (and typed reasons) that are still there
      if (!shown.has(r.id)) { const node = card(r); shown.set(r.id, node); root.append(node); }
    }
  }
  GF.poll(refresh, 3000);
});
