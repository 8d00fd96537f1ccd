/* Notification delivery log: filters, paging, live refresh while deliveries are pending, retry. */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  let shown = 0;
  let timer = null;

  function params(offset) {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    for (const [key, id] of [["state", "n-state"], ["channel", "n-channel"], ["request_id", "n-request"]]) {
      const v = $(id).value.trim();
      if (v) q.set(key, v);
    }
    return q;
  }

  function stateCell(d) {
    const tone = { failed: "bad", pending: "warn", delivered: "good" }[d.state] || "muted";
    const cell = GF.el("td", {}, GF.el("span", { class: "state " + tone, dataset: { state: d.state }, text: d.state }));
    if (d.state === "pending" && d.next_attempt_at) cell.append(GF.el("div", { class: "muted", text: "next try " + GF.when(d.next_attempt_at) }));
    if (d.delivered_at) cell.append(GF.el("div", { class: "muted", text: GF.when(d.delivered_at) }));
    if (d.last_error) cell.append(GF.el("div", { class: "error", text: d.last_error }));
    return cell;
  }

  function row(d) {
    const what = GF.el("td", {}, GF.el("div", { text: d.summary || d.kind }), GF.el("div", { class: "muted mono", text: d.kind }));
    if (d.request_id) what.append(GF.el("a", { href: "/requests/" + encodeURIComponent(d.request_id), text: "request" }));
    const actions = GF.el("td", {});
    if (d.state === "failed") {
      const button = GF.el("button", { type: "button", text: "Retry now" });
      button.addEventListener("click", async () => {
        button.disabled = true;
        const r = await GF.api("POST", `/api/v1/notifications/${encodeURIComponent(d.id)}/retry`);
        if (!r.ok) { button.disabled = false; GF.replace($("n-state-msg"), GF.el("p", { class: "notice bad", text: GF.message(r) })); return; }
        load(false);
      });
      actions.append(button);
    }
    return GF.el("tr", { "data-delivery": d.id },
      GF.el("td", { text: GF.when(d.created_at) }),
      GF.el("td", {}, GF.el("strong", { text: d.channel }), " → ", GF.el("span", { class: "mono", text: d.target })),
      what, stateCell(d), GF.el("td", { text: String(d.attempts) }), actions);
  }

  async function load(append) {
    const r = await GF.api("GET", "/api/v1/notifications?" + params(append ? shown : 0));
    if (!r.ok) { GF.showErrors($("n-filters"), r); return; }
    const items = r.data.items || [];
    const rows = items.map(row);
    if (append) { $("n-rows").append(...rows); shown += items.length; }
    else {
      shown = items.length;
      GF.replace($("n-rows"), rows.length ? rows : GF.el("tr", {}, GF.el("td", { colspan: 6, text: "Nothing has been sent yet." })));
    }
    $("n-more").hidden = shown >= r.data.total;
    clearTimeout(timer);
    if (items.some((d) => d.state === "pending")) timer = setTimeout(() => load(false), 3000);
  }

  async function channels() {
    const r = await GF.api("GET", "/api/v1/notifications/channels");
    if (!r.ok) return;
    const names = r.data.channels || [];
    for (const name of names) $("n-channel").append(GF.el("option", { text: name }));
    $("n-channels").className = names.length ? "" : "notice warn";
    $("n-channels").textContent = names.length
      ? `Channels configured: ${names.join(", ")}${r.data.webhooks.length ? " (webhooks: " + r.data.webhooks.join(", ") + ")" : ""}; up to ${r.data.max_attempts} attempts each.`
      : "No notification channel is configured (see GRANTFLOW_SMTP_*, GRANTFLOW_SLACK_*, GRANTFLOW_WEBHOOKS).";
  }

  $("n-filters").addEventListener("submit", (e) => { e.preventDefault(); GF.clearErrors($("n-filters")); load(false); });
  $("n-more").addEventListener("click", () => load(true));
  channels();
  load(false);
});
