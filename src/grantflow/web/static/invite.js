"use strict";
// The invitation secret is in the URL fragment (never sent to a server); it is posted in a
// JSON body and then removed from the address bar and history.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("invite-form");
  const error = document.getElementById("invite-error");
  const token = decodeURIComponent(location.hash.replace(/^#/, ""));
  history.replaceState(null, "", location.pathname);
  const min = Number(form.password.getAttribute("minlength")) || 12;
  if (!token) { error.textContent = "This page needs the link from your invitation."; }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const password = form.password.value;
    if (!token) { error.textContent = "This page needs the link from your invitation."; return; }
    if (password.length < min) { error.textContent = `The password needs at least ${min} characters.`; return; }
    if (password !== form.confirm.value) { error.textContent = "The two passwords differ."; return; }
    const button = form.querySelector("button[type=submit]");
    GF.busy(button, true);
    const result = await GF.api("POST", "/auth/invitation", { token, password });
    GF.busy(button, false);
    if (result.ok) { location.href = "/"; return; }
    error.textContent = GF.message(result);
  });
});
