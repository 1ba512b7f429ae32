// Devices with their state (filterable, kept live), and one device with its history.
"use strict";
(function () {
  const C = window.JF, h = C.h;

  function select(id, label, options, value) {
    return h("label", {}, label, h("select", {id}, h("option", {value: ""}, "any"),
      options.map(o => h("option", {value: o, selected: o === value}, o))));
  }

  function troubles(d) {
    return d.troubles.map(t => h("div", {class: "small"}, t.name, " (zone " + C.pad3(t.zone) + ")"));
  }

  C.views.devices = async function (container) {
    const filters = {state: "", armed: "", type: "", q: ""};
    let rows = [];
    async function load() {
      const data = await C.api("GET", "api/devices?" + C.query(filters));
      rows = data.devices;
      draw(data.types);
    }
    function draw(types) {
      const bar = h("form", {class: "toolbar", onsubmit: ev => {
        ev.preventDefault();
        for (const k of ["state", "armed", "type"]) filters[k] = bar.querySelector("#f-" + k).value;
        filters.q = bar.querySelector("#f-q").value;
        load().catch(err => C.message(container, err.message));
      }},
        select("f-state", "State", ["online", "offline", "trouble", "unknown"], filters.state),
        select("f-armed", "Armed", ["armed", "disarmed"], filters.armed),
        select("f-type", "Type", types, filters.type),
        h("label", {}, "Account, site or address", h("input", {id: "f-q", value: filters.q})),
        h("button", {}, "Filter"));
      container.replaceChildren(h("h2", {}, "Devices ", h("span", {class: "muted small"}, rows.length + " shown")), bar,
        rows.length ? C.table([
          ["Account", d => h("a", {href: "#/device/" + d.account}, d.account)],
          ["Site", d => [d.site, d.address ? h("div", {class: "muted small"}, d.address) : null]],
          ["Type", d => d.type],
          ["State", d => C.badge(d.state)],
          ["Armed", d => d.armed ? C.badge(d.armed) : h("span", {class: "muted"}, "—")],
          ["Last report", d => d.last_report_ms ? [C.time(d.last_report_ms), h("div", {class: "muted small"}, C.ago(d.last_report_ms))] : "never"],
          ["Troubles", troubles],
        ], rows, d => ({"data-account": d.account})) : h("div", {class: "empty"}, "No device matches."));
    }
    await load();
    // Live: a device that changes is redrawn in place; filters are applied again on the next load.
    C.onLive.add(m => {
      if (m.type !== "device") return;
      const i = rows.findIndex(r => r.account === m.item.account);
      if (i >= 0) { rows[i] = m.item; draw([...new Set(rows.map(r => r.type))]); }
    });
  };

  // The walk test checklist: each named zone, ticked once it reported since the test began.
  function walkTestPanel(d, reload) {
    const dev = d.device, test = dev.walk_test;
    const panel = h("section", {class: "panel", id: "walk-test"}, h("h3", {}, "Walk test"));
    const error = h("p", {class: "error", role: "alert"});
    const toggle = action => async () => {
      try { await C.api("POST", "api/devices/" + dev.account + "/walk-test", {action}); await reload(); }
      catch (err) { error.textContent = err.message; }
    };
    if (!test) {
      panel.append(h("p", {class: "muted"}, "Not on test. During a walk test the device's alarms still reach the queue, marked \"on test\"."));
      if (C.can("devices.walktest")) panel.append(h("button", {id: "walk-start", onclick: toggle("start")}, "Start walk test"));
      panel.append(error);
      return panel;
    }
    const reported = new Map();
    for (const e of d.history) {
      if (e.received_at_ms >= test.since_ms && !reported.has(e.zone)) reported.set(e.zone, e);
    }
    const zones = new Set([...Object.keys(d.zones).map(Number), ...reported.keys()]);
    const rows = [...zones].sort((a, b) => a - b);
    panel.append(h("p", {}, "On test since ", C.time(test.since_ms), " (", test.by, "): trip each zone and watch it tick."),
      C.table([["Zone", z => C.pad3(z)], ["Name", z => d.zones[z] || h("span", {class: "muted"}, "unnamed")],
               ["Reported", z => reported.has(z) ? [C.badge("✓ " + reported.get(z).name, "ok"), " ", C.time(reported.get(z).received_at_ms)]
                                                 : h("span", {class: "muted"}, "not yet")]],
              rows, z => ({"data-zone": z, class: reported.has(z) ? "reported" : ""})));
    if (C.can("devices.walktest")) panel.append(h("p", {}, h("button", {id: "walk-end", class: "secondary", onclick: toggle("end")}, "End walk test")));
    panel.append(error);
    return panel;
  }

  // The device's own status over the bus (protocols/bus.py): one fact per key.
  function busStatus(st) {
    const shown = (v) => v === true ? "yes" : v === false ? "no" : typeof v === "object" && v !== null
      ? Object.entries(v).map(([k, x]) => k + ": " + x).join(", ") : String(v);
    return h("dl", {class: "facts"}, Object.entries(st).filter(([k]) => k !== "at_ms")
      .map(([k, v]) => [h("dt", {}, k.replace(/_/g, " ")), h("dd", {}, shown(v))]));
  }

  C.views.device = async function (container, account) {
    async function reload() {
      const d = await C.api("GET", "api/devices/" + encodeURIComponent(account));
      const dev = d.device;
      container.replaceChildren(
        h("p", {}, h("a", {href: "#/devices"}, "← devices")),
        h("h2", {}, dev.site || dev.account, " ", C.badge(dev.state), dev.armed ? [" ", C.badge(dev.armed)] : null,
          dev.walk_test ? [" ", C.badge("on test", "trouble")] : null),
        h("div", {class: "grid2"},
          h("section", {class: "panel"}, h("dl", {class: "facts"},
            [["Account", dev.account], ["Type", dev.type], ["Address", dev.address || "—"], ["Contact", dev.contact || "—"],
             ["Last report", C.time(dev.last_report_ms)],
             ["Position", dev.position ? dev.position.lat.toFixed(5) + ", " + dev.position.lon.toFixed(5) : "—"],
             ["In registry", dev.registered ? "yes" : "no (reported without being provisioned)"]]
              .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
            dev.troubles.length ? [h("h3", {}, "Open troubles"), troubles(dev)] : null,
            dev.status ? [h("h3", {}, "As the device reports it ", h("span", {class: "muted small"}, C.time(dev.status.at_ms))),
                          busStatus(dev.status)] : null),
          h("section", {class: "panel"}, h("h3", {}, "Contacts"),
            d.contacts.length ? C.table([["Name", c => c.name], ["Phone", c => c.phone || ""]], d.contacts)
                              : h("p", {class: "muted"}, "none recorded"),
            h("h3", {}, "Zones"),
            Object.keys(d.zones).length ? C.table([["Zone", z => C.pad3(z[0])], ["Name", z => z[1]]], Object.entries(d.zones))
                                        : h("p", {class: "muted"}, "none named"))),
        dev.type !== "vehicle" ? walkTestPanel(d, reload) : null,
        h("h3", {}, "Event history ", h("span", {class: "muted small"}, d.history.length + " newest")),
        C.table([["Received", e => C.time(e.received_at_ms)], ["Class", e => C.badge(e.event_class)],
                 ["Event", e => (e.event_class === "alarm" || e.event_class === "trouble") && C.can("queue.read") ? h("a", {href: "#/alarm/" + e.id}, e.name) : e.name],
                 ["Qualifier", e => C.qualifier(e.qualifier)],
                 ["Zone", e => C.pad3(e.zone) + (d.zones[e.zone] ? " " + d.zones[e.zone] : "")],
                 ["Source", e => e.source]], d.history));
    }
    await reload();
    // A change to this device (a report, a walk test) redraws the page, so the checklist ticks live.
    C.onLive.add(m => { if (m.type === "device" && m.item.account === account) reload(); });
  };
})();
