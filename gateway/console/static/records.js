// Search and export of events (a purpose is required: it goes into the access
// register), the access register for the auditor, and the supervisor's reports.
"use strict";
(function () {
  const C = window.JF, h = C.h;
  const CLASSES = ["alarm", "trouble", "open_close", "access", "bypass", "test", "other", "telemetry"];

  const ms = input => input.value ? String(new Date(input.value).getTime()) : "";
  const field = (label, el) => h("label", {}, label, el);

  C.views.search = async function (container) {
    const from = h("input", {id: "s-from", type: "datetime-local"}), to = h("input", {id: "s-to", type: "datetime-local"});
    const account = h("input", {id: "s-account", size: 8});
    const cls = h("select", {id: "s-class"}, h("option", {value: ""}, "any"), CLASSES.map(c => h("option", {value: c}, c)));
    const purpose = h("input", {id: "s-purpose", size: 36, required: true, placeholder: "e.g. police request 2026-118"});
    const results = h("div", {id: "results"});
    const error = h("p", {class: "error", role: "alert"});
    const params = () => C.query({from: ms(from), to: ms(to), account: account.value, class: cls.value, purpose: purpose.value});
    const form = h("form", {class: "toolbar", onsubmit: async ev => {
      ev.preventDefault();
      error.textContent = "";
      try {
        const data = await C.api("GET", "api/events?" + params());
        results.replaceChildren(
          h("p", {class: "muted"}, data.events.length + " events" + (data.truncated ? " (the newest " + data.limit + "; narrow the search)" : "")),
          data.events.length ? C.table([
            ["Received", e => C.time(e.received_at_ms)], ["Account", e => e.account], ["Site", C.siteName],
            ["Class", e => C.badge(e.event_class)], ["Event", e => e.name], ["Qualifier", e => C.qualifier(e.qualifier)],
            ["Zone", e => C.pad3(e.zone)], ["Source", e => e.source]], data.events) : null);
      } catch (err) { error.textContent = err.message; }
    }},
      field("From", from), field("To", to), field("Account", account), field("Class", cls),
      field("Purpose (registered)", purpose), h("button", {id: "search"}, "Search"),
      h("button", {id: "export", type: "button", class: "secondary", onclick: () => {
        if (!form.reportValidity()) return;
        location.href = "api/events.csv?" + params();     // a download; the cookie goes with it
      }}, "Export CSV"));
    container.replaceChildren(h("h2", {}, "Search and export"),
      h("p", {class: "muted small"}, "Each search and export is registered with your name and its purpose."),
      form, error, results);
  };

  C.views.register = async function (container) {
    const user = h("input", {id: "r-user", size: 12});
    const body = h("div", {id: "register"});
    async function load() {
      const data = await C.api("GET", "api/register?" + C.query({user: user.value}));
      body.replaceChildren(C.table([
        ["When", r => C.time(r.at_ms)], ["Who", r => r.username], ["Role", r => r.role], ["Action", r => r.action],
        ["What", r => r.what], ["Purpose", r => r.purpose], ["Records", r => r.records], ["Client", r => r.client],
      ], data.entries, r => ({class: r.action === "login-failed" ? "p1" : "", "data-action": r.action})));
    }
    container.replaceChildren(h("h2", {}, "Access register ", h("span", {class: "muted small"}, "last 30 days, newest first")),
      h("form", {class: "toolbar", onsubmit: ev => { ev.preventDefault(); load(); }}, field("User", user), h("button", {}, "Show")),
      body);
    await load();
  };

  function bar(share, kind) {
    return h("div", {class: "bar-track"}, h("div", {class: "bar " + kind, style: {width: Math.round(100 * share) + "%"}}));
  }

  function seconds(s) { return s === null ? "—" : s < 90 ? s + " s" : (s / 60).toFixed(1) + " min"; }

  C.views.reports = async function (container) {
    const d = await C.api("GET", "api/reports");
    const total = Object.values(d.outcomes).reduce((a, b) => a + b, 0) || 1;
    const labels = {real: "real alarm", false: "false alarm", test: "test", cancelled: "cancelled by user"};
    container.replaceChildren(
      h("h2", {}, "Reports ", h("span", {class: "muted small"}, C.time(d.from_ms) + " – " + C.time(d.to_ms))),
      h("div", {class: "grid2"},
        h("section", {class: "panel"}, h("h3", {}, "Alarms by outcome"),
          C.table([["Outcome", o => labels[o[0]]], ["Count", o => o[1]],
                   ["", o => bar(o[1] / total, "outcome-" + o[0])]],
                  Object.entries(d.outcomes))),
        h("section", {class: "panel"}, h("h3", {}, "Response times"),
          C.table([["From arrival to", r => r[0]], ["Alarms", r => r[1].count], ["Median", r => seconds(r[1].median_s)],
                   ["90th percentile", r => seconds(r[1].p90_s)], ["Longest", r => seconds(r[1].max_s)]],
                  [["taken", d.response.take], ["disposed of", d.response.dispose]]))),
      h("section", {class: "panel"}, h("h3", {}, "Device availability"),
        C.table([["Account", a => a.account], ["Site", a => a.site], ["Type", a => a.type],
                 ["Available", a => (100 * a.availability).toFixed(2) + " %"],
                 ["", a => bar(a.availability, "")],
                 ["Offline", a => seconds(a.offline_s)]], d.availability)));
  };
})();
