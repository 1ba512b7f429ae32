// The login page: posts the credentials as JSON, then opens the console on the
// first page the role may see. The session cookie is HttpOnly: this script never sees it.
"use strict";
document.getElementById("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch("api/login", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    credentials: "same-origin",
    body: JSON.stringify({
      username: document.getElementById("username").value,
      password: document.getElementById("password").value,
    }),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    error.textContent = data.error || ("login failed (" + response.status + ")");
    return;
  }
  location.href = "./#/" + data.pages[0];
});
