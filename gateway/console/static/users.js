// Accounts, for the admin: create, change role, reset password, disable.
"use strict";
(function () {
  const C = window.JF, h = C.h;

  C.views.users = async function (container) {
    const error = h("p", {class: "error", role: "alert"});
    async function act(fn) {
      error.textContent = "";
      try { await fn(); await load(); } catch (err) { error.textContent = err.message; }
    }
    async function load() {
      const data = await C.api("GET", "api/users");
      const username = h("input", {id: "u-name", required: true, size: 12});
      const display = h("input", {id: "u-display", size: 16});
      const role = h("select", {id: "u-role"}, data.roles.map(r => h("option", {value: r}, r)));
      const password = h("input", {id: "u-password", type: "password", required: true, minlength: 10, autocomplete: "new-password"});
      container.replaceChildren(h("h2", {}, "Users"),
        C.table([
          ["Username", u => u.username], ["Name", u => u.display_name],
          ["Role", u => h("select", {onchange: ev => act(() => C.api("PATCH", "api/users/" + u.username, {role: ev.target.value}))},
                          data.roles.map(r => h("option", {value: r, selected: r === u.role}, r)))],
          ["Status", u => u.disabled ? C.badge("disabled", "offline") : C.badge("active", "ok")],
          ["Created", u => C.time(u.created_at_ms)],
          ["", u => [
            h("button", {class: "secondary", onclick: () => act(() => C.api("PATCH", "api/users/" + u.username, {disabled: !u.disabled}))},
              u.disabled ? "Enable" : "Disable"), " ",
            h("button", {class: "secondary", onclick: () => {
              const pw = prompt("New password for " + u.username + " (at least 10 characters)");
              if (pw) act(() => C.api("PATCH", "api/users/" + u.username, {password: pw}));
            }}, "Reset password")]],
        ], data.users, u => ({"data-username": u.username})),
        h("h3", {}, "New account"),
        h("form", {class: "toolbar", id: "new-user", onsubmit: ev => {
          ev.preventDefault();
          act(() => C.api("POST", "api/users", {username: username.value, display_name: display.value,
                                                role: role.value, password: password.value}));
        }}, h("label", {}, "Username", username), h("label", {}, "Name", display), h("label", {}, "Role", role),
            h("label", {}, "Password", password), h("button", {}, "Create")),
        error);
    }
    await load();
  };
})();
