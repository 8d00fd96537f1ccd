/* One access request: state, approvals and — once granted — how to use the access. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("request");
  const id = root.dataset.requestId;
  const LIVE = new Set(["pending", "approved", "granting", "revoking"]);
  const EXTEND = [900, 1800, 3600, 7200, 14400, 28800];
  let data = null;
  let fingerprint = "";

  async function post(path, body, okText) {
    const result = await GF.api("POST", `/api/v1/access-requests/${encodeURIComponent(id)}/${path}`, body);
    if (result.ok) { GF.toast(okText); data = result.data; fingerprint = ""; draw(); }
    else GF.toast(GF.message(result), true);
    return result;
  }

  function timeLeft(r) {
    return GF.el("span", { class: "time-left", dataset: { expires: r.expires_at }, text: GF.duration((new Date(r.expires_at) - Date.now()) / 1000) });
  }

  function grantView(g) {
    const a = g.access || {};
    return GF.el("article", { class: "card grant", dataset: { grantId: g.id, state: g.state } },
      GF.el("h3", {}, g.resource_name || g.resource_id || "resource", " ", GF.badge(g.state)),
      GF.el("p", { class: "muted" }, [g.resource_type, g.account_id ? "account " + g.account_id : null].filter(Boolean).join(" · ")),
      g.error ? GF.el("p", { class: "notice bad", text: g.error }) : null,
      a.sign_in_url ? GF.el("p", {}, GF.el("a", { class: "button primary", href: a.sign_in_url, target: "_blank", rel: "noopener", dataset: { testid: "sign-in" }, text: "Sign in to AWS" }),
        GF.el("span", { class: "muted mono" }, " ", a.sign_in_url)) : null,
      a.cli_profile ? [GF.el("div", { class: "label", text: "AWS CLI profile (~/.aws/config), then aws sso login" }), GF.el("pre", { dataset: { testid: "cli" }, text: a.cli_profile }),
        GF.el("button", { type: "button", text: "Copy CLI profile", on: { click: () => navigator.clipboard?.writeText(a.cli_profile).then(() => GF.toast("Copied")) } })] : null,
      a.custom_access_details ? [GF.el("div", { class: "label", text: "Details from your administrators" }), GF.accessDetails(a.custom_access_details)] : null,
      sessionCut(g.session_cut));
  }

  // Revocation also ends the AWS sessions already issued (a deny on sessions issued before the
  // cut, lifted once they have expired): when that happened, as the API reports it.
  function sessionCut(c) {
    if (!c) return null;
    const lines = {
      pending: ["Ending the AWS sessions already issued…"],
      active: ["AWS sessions issued before ", GF.when(c.not_before), " were ended ", GF.when(c.cut_at),
        c.release_after ? [" (the block is lifted after ", GF.when(c.release_after), ", when they have expired)."] : "."],
      released: ["AWS sessions issued before ", GF.when(c.not_before), " were ended ", GF.when(c.cut_at),
        "; the block was lifted ", GF.when(c.released_at), "."],
      unneeded: ["Existing AWS sessions ended with the permission set, deleted with its last assignment."],
    }[c.state] || [c.state];
    return GF.el("div", { class: "session-cut", dataset: { testid: "session-cut", state: c.state } },
      GF.el("div", { class: "label", text: "Existing sessions" }), GF.el("p", {}, ...lines),
      c.error && c.state === "pending" ? GF.el("p", { class: "notice bad", text: "Not done yet, retrying: " + c.error }) : null);
  }

  // Who approves, by name: "Ada Lovelace (ada) or group platform (owner tag of the resource)".
  function approverSet(s) {
    const names = s.names && s.names.length ? s.names : [s.label];
    const needed = s.required > 1 ? `${s.required} approvals from ` : "";
    return GF.el("div", {}, needed, GF.el("strong", { text: names.join(" or ") }), ` (${s.why})`);
  }

  // The breadcrumb leads back where this request is listed for this viewer.
  function crumb(r) {
    const link = document.getElementById("crumb");
    const mine = r.requester_id === myId();
    const [href, text] = mine ? ["/requests", "My requests"]
      : document.body.dataset.role === "admin" && !r.can_approve ? ["/admin/requests", "All requests"] : ["/approvals", "My approvals"];
    link.href = href;
    link.textContent = text;
  }

  function draw() {
    const r = data;
    const print = JSON.stringify(r);
    if (print === fingerprint) return;
    fingerprint = print;
    crumb(r);
    const sets = (r.approval && r.approval.sets) || [];
    const granted = r.state === "granted";
    GF.replace(root,
      GF.el("h1", {}, `${r.permission} · ${r.resource_type} `, GF.badge(r.state)),
      GF.el("dl", { class: "kv card" },
        GF.el("dt", { text: "Requested by" }), GF.el("dd", { text: r.requester }),
        GF.el("dt", { text: "Requested" }), GF.el("dd", { text: GF.when(r.created_at) }),
        GF.el("dt", { text: "Duration" }), GF.el("dd", { text: GF.duration(r.duration_seconds) }),
        GF.el("dt", { text: "Justification" }), GF.el("dd", { text: r.justification || "—" }),
        r.expires_at && !r.ended_at ? [GF.el("dt", { text: "Time left" }), GF.el("dd", {}, granted ? timeLeft(r) : "—", " (until ", GF.when(r.expires_at), ")")] : null,
        r.failure_reason ? [GF.el("dt", { text: "Failure" }), GF.el("dd", { class: "error", text: r.failure_reason })] : null,
        r.ended_at ? [GF.el("dt", { text: "Ended" }), GF.el("dd", { dataset: { testid: "ended-at" } }, GF.when(r.ended_at),
          r.end_reason ? ` (${GF.label(r.end_reason)})` : "",
          r.expires_at && new Date(r.expires_at) > new Date(r.ended_at) ? GF.el("div", { class: "muted", text: "It was to end " + GF.when(r.expires_at) + "." }) : null)]
          : r.end_reason ? [GF.el("dt", { text: "Ended" }), GF.el("dd", { text: GF.label(r.end_reason) })] : null,
        sets.length ? [GF.el("dt", { text: "Approvers" }), GF.el("dd", { dataset: { testid: "approvers" } }, sets.map(approverSet))] : null,
        r.approvals.length ? [GF.el("dt", { text: "Decisions" }), GF.el("dd", {}, r.approvals.map((a) => GF.el("div", { text: `${a.approver}: ${a.decision}${a.reason ? " — " + a.reason : ""}` })))] : null),
      r.grants.length ? GF.el("h2", { text: "Access" }) : null,
      r.grants.map(grantView),
      actions(r));
  }

  function actions(r) {
    const box = GF.el("div", { class: "card" });
    if (r.can_approve) {
      box.append(GF.el("h2", { text: "Your decision" }), GF.el("label", { for: "d-reason", class: "label", text: "Reason" }),
        GF.el("textarea", { id: "d-reason", maxlength: 2000 }),
        GF.el("div", { class: "actions" },
          GF.el("button", { type: "button", class: "primary", id: "d-approve", text: "Approve", on: { click: () => post("approve", { reason: document.getElementById("d-reason").value }, "Approved") } }),
          GF.el("button", { type: "button", class: "danger", id: "d-reject", text: "Reject", on: { click: () => post("reject", { reason: document.getElementById("d-reason").value }, "Rejected") } })));
      // An email's Approve / Reject link lands here: it only points at the button (a link
      // never decides by itself), so the approver reads the request and confirms.
      const asked = new URLSearchParams(location.search).get("decision");
      if (asked === "approve" || asked === "reject") {
        box.insertBefore(GF.el("p", { class: "notice", id: "d-asked", text: `You followed the "${asked}" link: read the request, add a reason if needed, then confirm.` }), box.children[1]);
        setTimeout(() => document.getElementById(asked === "approve" ? "d-approve" : "d-reject")?.focus(), 0);
      }
    }
    if (r.state === "granted") {
      // Extend only where the flow allows another extension, and only for the requester.
      const canExtend = r.requester_id === myId() && r.extensions < (r.max_extensions || 0);
      box.append(...[GF.el("h2", { text: "Manage" }),
        canExtend ? GF.el("p", { class: "muted", text: `Extensions used: ${r.extensions} of ${r.max_extensions}.` }) : null,
        !canExtend ? null : GF.el("div", { class: "row" },
          GF.el("div", { class: "field" }, GF.el("label", { for: "x-seconds", text: "Extend by" }),
            GF.el("select", { id: "x-seconds" }, EXTEND.map((s) => GF.el("option", { value: s, text: GF.duration(s) })))),
          GF.el("div", { class: "field" }, GF.el("button", { type: "button", text: "Extend", on: { click: () => post("extend", { seconds: Number(document.getElementById("x-seconds").value) }, "Extended") } }))),
        GF.el("div", { class: "actions" },
          GF.el("button", { type: "button", class: "danger", text: "Revoke access now", on: { click: () => { if (confirm("Revoke this access now?")) post("revoke", {}, "Revoking…"); } } }))].filter(Boolean));
    }
    if (r.state === "pending" && r.requester_id === myId()) {
      box.append(GF.el("div", { class: "actions" }, GF.el("button", { type: "button", text: "Cancel request", on: { click: () => post("cancel", undefined, "Cancelled") } })));
    }
    return box.childNodes.length ? box : null;
  }

  function myId() { return document.body.dataset.userId; }

  async function refresh() {
    const result = await GF.api("GET", `/api/v1/access-requests/${encodeURIComponent(id)}`);
    if (!result.ok) { GF.replace(root, GF.el("p", { class: "error", text: GF.message(result) })); return; }
    data = result.data;
    draw();
  }
  // Refresh while the request is moving; tick the countdown every second.
  GF.poll(async () => { if (!data || LIVE.has(data.state) || data.state === "granted") await refresh(); }, 2000);
  setInterval(() => {
    document.querySelectorAll(".time-left").forEach((node) => {
      node.textContent = GF.duration((new Date(node.dataset.expires) - Date.now()) / 1000);
    });
  }, 1000);
});
