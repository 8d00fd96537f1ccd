"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { username: form.username.value.trim(), password: form.password.value, next: form.next.value };
    if (!body.username || !body.password) { error.textContent = "Enter your username and password."; return; }
    const button = form.querySelector("button[type=submit]");
    GF.busy(button, true);
    const result = await GF.api("POST", "/auth/login", body);
    GF.busy(button, false);
    if (result.ok) { location.href = form.next.value || "/"; return; }
    error.textContent = GF.message(result);
    form.password.value = "";
    form.password.focus();
  });
});
