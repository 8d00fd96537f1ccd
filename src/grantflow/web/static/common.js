/* Grantflow pages: a few helpers shared by every page. No dependencies. */
"use strict";

const GF = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  /** Call the JSON API. Resolves to {ok, status, data}; data is the parsed body or null. */
  async function api(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      return { ok: false, status: 0, data: { error: { code: "network", message: "The server did not answer: " + err.message } } };
    }
    if (response.status === 401 && location.pathname !== "/login") {
      location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    }
    let data = null;
    const text = await response.text();
    if (text) {
      try { data = JSON.parse(text); } catch (_e) { data = { error: { message: text.slice(0, 300) } }; }
    }
    return { ok: response.ok, status: response.status, data };
  }

  /** Build an element: el("td", {class: "x", text: "y"}, child, ...). Text is never parsed as HTML. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function message(result) {
    const err = result.data && result.data.error;
    if (err && err.message) return err.message;
    return "Request failed (HTTP " + result.status + ")";
  }

  /** Clear the error messages of a form. */
  function clearErrors(root) {
    root.querySelectorAll("[data-error-for]").forEach((node) => { node.textContent = ""; });
    root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    const general = root.querySelector("[data-error-general]");
    if (general) general.textContent = "";
  }

  /** Put each API error next to its field ("config.region" → [data-error-for="config.region"]),
   *  walking up the dotted path to the nearest field shown; the rest goes to the general slot.
   *  Returns the first field element that got an error. */
  function showErrors(root, result) {
    const err = (result.data && result.data.error) || { message: message(result) };
    const details = err.details && err.details.length ? err.details : [{ field: err.field, message: err.message }];
    let first = null;
    for (const d of details) {
      d.message = String(d.message || "").replace(/^Value error, /, "")
        .replace(/^String should match pattern .*$/, "is not in the expected format")
        .replace(/^String should have at most (\d+) characters?$/, "is too long (at most $1 characters)")
        .replace(/^Field required$/, "Required.");
      let path = d.field || "";
      let slot = null;
      while (path) {
        slot = root.querySelector(`[data-error-for="${CSS.escape(path)}"]`);
        if (slot) break;
        path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "";
      }
      if (!slot) slot = root.querySelector("[data-error-general]");
      if (!slot) { toast(d.message, true); continue; }
      const text = slot.textContent ? slot.textContent + " " : "";
      slot.textContent = text + (slot.hasAttribute("data-error-general") && d.field ? d.field + ": " : "") + d.message;
      const input = slot.id ? root.querySelector(`[aria-describedby~="${CSS.escape(slot.id)}"]`) : null;
      if (input) input.setAttribute("aria-invalid", "true");
      if (!first) first = input || slot;
    }
    return first;
  }

  let toastTimer = null;
  function toast(text, isError) {
    const node = document.getElementById("toast");
    node.textContent = text;
    node.className = "toast show" + (isError ? " bad" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.className = "toast"; }, 5000);
  }

  function when(value) {
    if (!value) return "—";
    const d = new Date(value);
    return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function ago(value) {
    if (!value) return "never";
    const s = Math.round((Date.now() - new Date(value).getTime()) / 1000);
    if (s < 60) return s <= 1 ? "just now" : s + " s ago";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) return d + "d " + h + "h";
    if (h) return m ? h + "h " + String(m).padStart(2, "0") + "m" : h + "h";
    if (m) return s ? m + "m " + String(s).padStart(2, "0") + "s" : m + "m";
    return s + "s";
  }

  const STATE_TONE = {
    active: "good", granted: "good", succeeded: "good", connected: "good", approved: "info",
    initializing: "info", refreshing: "info", running: "info", pending: "warn", granting: "info",
    revoking: "info", warning: "warn", error: "bad", failed: "bad", rejected: "bad",
    disabled: "muted", disconnected: "bad", never_connected: "muted", expired: "muted",
    revoked: "muted", cancelled: "muted", queued: "info", leased: "info",
  };
  function label(value) {
    return String(value || "").replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  }
  function badge(state) {
    return el("span", { class: "state " + (STATE_TONE[state] || "muted"), dataset: { state } }, label(state));
  }

  /** What end users see as "custom access details": plain text, line breaks kept, links
   *  not made clickable. The wizard's preview uses this same function. */
  function accessDetails(text) {
    return el("div", { class: "access-details" }, text || "");
  }

  /** Call fn now and every `ms` while the page is visible; returns a stop function. */
  function poll(fn, ms) {
    let stopped = false, timer = null;
    const tick = async () => {
      if (stopped) return;
      if (!document.hidden) { try { await fn(); } catch (e) { console.error(e); } }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  function replace(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  function lines(value) {
    return String(value || "").split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  return { api, el, message, clearErrors, showErrors, toast, when, ago, duration, badge, label,
           accessDetails, poll, replace, lines, busy };
})();
