// Starts the console: loads the session, draws the menu for the role, routes by
// the URL fragment (#/queue, #/alarm/12 ...) and opens the live feed.
"use strict";
(function () {
  const C = window.JF, h = C.h;
  const TITLES = {queue: "Queue", devices: "Devices", vehicles: "Vehicles", search: "Search",
                  reports: "Reports", register: "Access register", users: "Users"};
  let cleanup = null;

  async function route() {
    const [name, arg] = location.hash.replace(/^#\/?/, "").split("/");
    const page = name || C.session.pages[0];
    const view = C.views[page];
    if (cleanup) cleanup();
    cleanup = null;
    C.onLive.clear();
    for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
    const container = document.getElementById("view");
    container.replaceChildren();
    if (!view) {
      C.message(container, "No such page.");
      return;
    }
    try {
      cleanup = await view(container, arg ? decodeURIComponent(arg) : undefined) || null;
    } catch (err) {
      C.message(container, err.message);
    }
  }

  async function start() {
    C.session = await C.api("GET", "api/session");
    document.getElementById("who").textContent = C.session.username + " (" + C.session.role + ")";
    document.getElementById("nav").replaceChildren(
      ...C.session.pages.map(p => h("a", {href: "#/" + p, "data-page": p}, TITLES[p])));
    const sound = document.getElementById("sound");
    sound.hidden = !C.can("queue.read");
    sound.addEventListener("click", () => {
      if (C.sound.enabled) C.sound.enabled = false; else C.sound.enable();
      sound.textContent = "Sound: " + (C.sound.enabled ? "on" : "off");
    });
    document.getElementById("logout").addEventListener("click", async () => {
      await C.api("POST", "api/logout");
      location.href = "login";
    });
    window.addEventListener("hashchange", route);
    // Only roles that watch alarms or devices get the live feed (not the auditor or the admin).
    if (C.can("queue.read") || C.can("devices.read")) C.live.connect();
    else document.getElementById("live-status").hidden = true;
    if (C.can("queue.read")) await C.loadQueue();
    await route();
  }

  start().catch(err => C.message(document.getElementById("view"), err.message));
})();
