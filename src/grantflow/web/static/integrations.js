/* Connected tab: every integration with its live status (polled every 2 s, no reload). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("integrations");
  const highlight = new URLSearchParams(location.search).get("highlight");
  const cards = new Map();
  let historyFor = null;

  function act(method, path, okText) {
    return async (event) => {
      const button = event.currentTarget;
      GF.busy(button, true);
      const result = await GF.api(method, path);
      GF.busy(button, false);
      if (result.ok) { GF.toast(okText); refresh(); }
      else GF.toast(GF.message(result), true);
      return result;
    };
  }

  async function remove(x, event) {
    if (!confirm(`Delete the integration “${x.name}”? Its discovered resources and flows go with it.`)) return;
    const path = `/api/v1/integrations/${encodeURIComponent(x.id)}`;
    let result = await act("DELETE", path, "Deleted")(event);
    if (result.status === 409 && confirm(GF.message(result) + "\n\nRevoke the live grants first and delete?")) {
      await act("DELETE", path + "?force=true", "Deleted")(event);
    }
  }

  function counts(x) {
    const entries = Object.entries(x.counts || {});
    if (!entries.length) return GF.el("span", { class: "muted", text: "no resources yet" });
    return entries.map(([type, n]) => GF.el("span", { class: "tag", dataset: { type } }, `${type}: ${n}`));
  }

  function plural(n, word) { return `${n} ${word}${n === 1 ? "" : "s"}`; }

  // A running sync in words (the bar only repeats them): accounts done of total, records so far.
  function progressText(sync) {
    const done = sync.accounts_done, total = sync.accounts_total, seen = sync.resources_seen || 0;
    if (total == null && !done) return "Syncing: reading the organization…";
    const soFar = `${plural(seen, "resource")} so far`;
    if (total == null) return `Syncing: ${plural(done, "account")} read, ${soFar}`;
    if (done >= total) return `Syncing: all ${plural(total, "account")} read, ${plural(seen, "resource")}; finishing…`;
    return `Syncing: ${done} of ${plural(total, "account")}, ${soFar}`;
  }

  function progressBlock(sync) {
    if (!sync) return null;
    const text = progressText(sync);
    const bar = sync.accounts_total
      ? GF.el("progress", { max: String(sync.accounts_total), value: String(Math.min(sync.accounts_done, sync.accounts_total)), "aria-hidden": "true" })
      : GF.el("progress", { "aria-hidden": "true" });
    return GF.el("div", { class: "sync-progress" }, bar,
      GF.el("p", { role: "status", dataset: { testid: "sync-progress" }, text }));
  }

  function render(x) {
    const sync = x.current_sync;
    const progress = progressBlock(sync);
    const message = x.status_message
      ? GF.el("p", { class: "notice " + (x.status === "error" ? "bad" : "warn"), dataset: { testid: "status-message" }, text: x.status_message })
      : null;
    const id = encodeURIComponent(x.id);
    return [
      GF.el("div", {},
        GF.el("h2", {}, x.name, " ", GF.badge(x.enabled ? x.status : "disabled")),
        GF.el("p", { class: "muted" },
          `Last sync ${GF.ago(x.last_sync_at)}`, x.last_sync_at ? ` (${GF.when(x.last_sync_at)})` : "",
          x.last_sync ? ` · ${GF.label(x.last_sync.state)}, ${x.last_sync.aws_calls} AWS calls` : ""),
        progress,
        GF.el("div", { class: "counts", "aria-label": "Resources per type" }, counts(x)),
        GF.el("p", { class: "muted", dataset: { testid: "scanned-regions" } },
          `EC2 and RDS scanned in: ${(x.scanned_regions || []).join(", ") || "no region"}`,
          (x.config && (x.config.sync_regions || []).length) ? "" : " (the Region only: add more under Regions to discover)"),
        message),
      GF.el("div", { class: "actions" },
        GF.el("button", { type: "button", on: { click: act("POST", `/api/v1/integrations/${id}/sync`, "Sync requested") }, text: "Sync now", disabled: !x.enabled || Boolean(sync) }),
        GF.el("a", { class: "button", href: `/admin/integrations/${id}/edit`, text: "Edit" }),
        x.enabled
          ? GF.el("button", { type: "button", on: { click: act("POST", `/api/v1/integrations/${id}/disable`, "Disabled") }, text: "Disable" })
          : GF.el("button", { type: "button", on: { click: act("POST", `/api/v1/integrations/${id}/enable`, "Enabled") }, text: "Enable" }),
        GF.el("button", { type: "button", on: { click: () => showHistory(x) }, text: "Sync history" }),
        GF.el("button", { type: "button", class: "danger", on: { click: (e) => remove(x, e) }, text: "Delete" })),
    ];
  }

  async function refresh() {
    const result = await GF.api("GET", "/api/v1/integrations");
    list.setAttribute("aria-busy", "false");
    if (!result.ok) { GF.replace(list, GF.el("p", { class: "error", text: GF.message(result) })); return; }
    if (!result.data.length) {
      GF.replace(list, GF.el("p", {}, "No integration yet. ", GF.el("a", { href: "/admin/catalog/aws-organization", text: "Connect an Amazon Organization" })));
      cards.clear();
      return;
    }
    const seen = new Set();
    if (!cards.size) list.replaceChildren();
    for (const x of result.data) {
      seen.add(x.id);
      let card = cards.get(x.id);
      const fingerprint = JSON.stringify([x.status, x.enabled, x.status_message, x.last_sync_at, x.counts, x.current_sync, x.last_sync && x.last_sync.id, x.name, x.scanned_regions]);
      if (!card) {
        card = GF.el("article", { class: "card integration", dataset: { integrationId: x.id, name: x.name } });
        cards.set(x.id, card);
        list.append(card);
      }
      if (card.dataset.fingerprint !== fingerprint) {
        card.dataset.fingerprint = fingerprint;
        card.dataset.status = x.enabled ? x.status : "disabled";
        card.replaceChildren(...render(x));
      }
      if (x.id === highlight) card.classList.add("highlight");
    }
    for (const [id, card] of cards) if (!seen.has(id)) { card.remove(); cards.delete(id); }
    if (historyFor) loadHistory(historyFor);
  }

  // {"aws-account": {"created": 3, "unchanged": 2}} → "aws-account: 3 created, 2 unchanged", one type a line.
  function countsText(all) {
    const entries = Object.entries(all || {});
    if (!entries.length) return "—";
    return entries.map(([type, v]) => GF.el("div", { text: `${type}: ` + (v && typeof v === "object"
      ? (Object.entries(v).filter(([, n]) => n).map(([what, n]) => `${n} ${what}`).join(", ") || "no change")
      : String(v)) }));
  }

  async function loadHistory(x) {
    const result = await GF.api("GET", `/api/v1/integrations/${encodeURIComponent(x.id)}/syncs?limit=20`);
    const body = document.getElementById("history-body");
    if (!result.ok) { GF.replace(body, GF.el("p", { class: "error", text: GF.message(result) })); return; }
    const rows = result.data.map((r) => GF.el("tr", {},
      GF.el("td", { text: "#" + r.generation }), GF.el("td", { text: GF.label(r.trigger) }), GF.el("td", {}, GF.badge(r.state)),
      GF.el("td", { text: GF.when(r.started_at) }),
      GF.el("td", { text: r.finished_at ? GF.duration((new Date(r.finished_at) - new Date(r.started_at)) / 1000) : "running" }),
      GF.el("td", { text: `${r.accounts_done}/${r.accounts_total ?? "?"}` }),
      GF.el("td", {}, countsText(r.counts)),
      GF.el("td", { text: r.error || "" })));
    GF.replace(body, GF.el("p", { class: "muted", text: x.name }), GF.el("div", { class: "table-wrap" }, GF.el("table", {},
      GF.el("thead", {}, GF.el("tr", {}, ["Run", "Trigger", "State", "Started", "Took", "Accounts", "Counts", "Error"].map((h) => GF.el("th", { scope: "col", text: h })))),
      GF.el("tbody", {}, rows.length ? rows : GF.el("tr", {}, GF.el("td", { colspan: 8, text: "No sync yet." }))))));
  }

  function showHistory(x) {
    historyFor = x;
    const box = document.getElementById("history");
    box.hidden = false;
    loadHistory(x).then(() => box.scrollIntoView({ block: "start" }));
    document.getElementById("history-title").focus?.();
  }
  document.getElementById("history-close").addEventListener("click", () => { historyFor = null; document.getElementById("history").hidden = true; });

  GF.poll(refresh, 2000);
});
