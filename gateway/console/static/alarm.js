// One alarm: what happened and where (site, address, contacts, zone names), the
// device's recent history, and the actions: take, reassign, dispatch to 110, dispose.
"use strict";
(function () {
  const C = window.JF, h = C.h;

  function facts(pairs) {
    return h("dl", {class: "facts"}, pairs.filter(p => p[1] !== null && p[1] !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
  }

  function eventPanel(d) {
    const e = d.event;
    return h("section", {class: "panel"},
      h("h3", {}, e.name, " ", C.badge(e.event_class), e.qualifier === 3 ? [" ", C.badge("restore", "ok")] : null,
        d.queued && d.queued.on_test ? [" ", C.badge("on test (walk test)", "trouble")] : null),
      facts([
        ["Waiting", d.queued ? h("span", {class: "timer", "data-since": e.received_at_ms}, C.elapsed(e.received_at_ms)) : "no (disposed of)"],
        ["Category", e.category], ["Code", C.pad3(e.code) + " (" + C.qualifier(e.qualifier) + ")"],
        ["Zone", C.pad3(e.zone) + (d.zone_name ? " — " + d.zone_name : "")], ["Partition", e.partition],
        ["Received", C.time(e.received_at_ms)], ["Device time", C.time(e.device_time * 1000)],
        ["Source", e.source], ["Position", e.position ? e.position[0].toFixed(5) + ", " + e.position[1].toFixed(5) : null],
        ["Event id", e.id],
      ]));
  }

  function sitePanel(d) {
    const e = d.event, site = e.site || {}, dev = d.device || {};
    return h("section", {class: "panel"},
      h("h3", {}, "Site"),
      facts([
        ["Site", site.site || dev.site || "—"], ["Address", site.address || dev.address || "—"],
        ["Account", h("a", {href: "#/device/" + e.account}, e.account)], ["Type", site.type || dev.type],
        ["Contact", site.contact || dev.contact || null],
        ["Device state", dev.state ? [C.badge(dev.state), dev.armed ? [" ", C.badge(dev.armed)] : null] : null],
      ]),
      d.contacts.length ? [h("h3", {}, "Contacts"), C.table([["Name", c => c.name], ["Phone", c => c.phone || ""],
                                                           ["Role", c => c.role || ""]], d.contacts)] : null,
      Object.keys(d.zones).length ? [h("h3", {}, "Zones"), C.table([["Zone", z => C.pad3(z[0])], ["Name", z => z[1]]],
                                                                  Object.entries(d.zones))] : null);
  }

  function handlingPanel(d, reload) {
    const item = d.queued, disp = d.handling.disposition;
    const panel = h("section", {class: "panel", id: "handling"}, h("h3", {}, "Handling"));
    const history = [
      ...d.handling.assignments.map(a => [a.at_ms, "taken by " + a.assignee + (a.assigned_by !== a.assignee ? " (assigned by " + a.assigned_by + ")" : "")]),
      ...d.handling.dispatches.map(x => [x.at_ms, (x.ok ? "dispatched to 110 by " : "dispatch to 110 FAILED by ") + x.operator + ": " + x.result + (x.note ? " — " + x.note : "")]),
      d.handling.escalated_at_ms ? [d.handling.escalated_at_ms, "escalated: not disposed of in time"] : null,
      disp ? [disp.at_ms, "disposed of by " + disp.operator + ": " + d.outcomes[disp.outcome] + " — " + disp.note] : null,
    ].filter(Boolean).sort((a, b) => a[0] - b[0]);
    panel.append(history.length ? h("ul", {}, history.map(([at, text]) => h("li", {}, C.time(at), " ", text)))
                                : h("p", {class: "muted"}, "Nobody has taken this alarm yet."));
    if (!item) return panel;
    const error = h("p", {class: "error", role: "alert"});
    const act = fn => async ev => {
      ev.preventDefault();
      error.textContent = "";
      try { await fn(); await reload(); } catch (err) { error.textContent = err.message; }
    };
    const mine = item.assignee === C.session.username;
    if (!mine && (!item.assignee || C.can("alarm.reassign"))) {
      panel.append(h("p", {}, h("button", {id: "take", onclick: act(() => C.api("POST", "api/alarms/" + item.id + "/take"))},
                                 item.assignee ? "Take over" : "Take")));
    }
    if (C.can("alarm.reassign")) {
      const who = h("input", {id: "assignee", placeholder: "username"});
      panel.append(h("form", {class: "toolbar", onsubmit: act(() => C.api("POST", "api/alarms/" + item.id + "/assign", {assignee: who.value}))},
                     h("label", {}, "Assign to", who), h("button", {class: "secondary"}, "Assign")));
    }
    if (mine || C.can("alarm.reassign")) {
      if (d.dispatch_available) {
        const note = h("input", {id: "dispatch-note", placeholder: "note for 110 (optional)", size: 40});
        panel.append(h("form", {class: "toolbar", onsubmit: act(() => C.api("POST", "api/alarms/" + item.id + "/dispatch", {note: note.value}))},
                       note, h("button", {id: "dispatch", class: "danger"}, "Dispatch to 110")));
      }
      const note = h("textarea", {id: "dispose-note", placeholder: "What was found, who was called (required)", required: true});
      const outcomes = Object.entries(d.outcomes).map(([value, label]) =>
        h("label", {}, h("input", {type: "radio", name: "outcome", value, required: true}), " ", label));
      panel.append(h("form", {class: "dispose", id: "dispose-form", onsubmit: act(() => {
        const chosen = panel.querySelector("input[name=outcome]:checked");
        return C.api("POST", "api/alarms/" + item.id + "/dispose", {outcome: chosen && chosen.value, note: note.value});
      })}, h("strong", {}, "Dispose of this alarm"), h("div", {class: "outcomes"}, outcomes), note,
         h("div", {}, h("button", {id: "dispose"}, "Dispose"))));
    }
    panel.append(error);
    return panel;
  }

  function historyPanel(d) {
    return h("section", {class: "panel"}, h("h3", {}, "Recent device history"),
      C.table([["Received", e => C.time(e.received_at_ms)], ["Class", e => C.badge(e.event_class)],
               ["Event", e => e.name + (e.qualifier === 3 ? " (restore)" : "")],
               ["Zone", e => C.pad3(e.zone) + (d.zones[e.zone] ? " " + d.zones[e.zone] : "")]],
              d.history, e => ({class: e.id === d.event.id ? "p0" : ""})));
  }

  C.views.alarm = async function (container, id) {
    const ticker = setInterval(() => {
      for (const el of container.querySelectorAll(".timer")) el.textContent = C.elapsed(Number(el.dataset.since));
    }, 1000);
    async function reload() {
      const d = await C.api("GET", "api/alarms/" + id);
      container.replaceChildren(
        h("p", {}, h("a", {href: "#/queue"}, "← queue")),
        h("h2", {}, d.event.name, " — ", C.siteName(d.event) || d.event.account,
          d.queued ? null : [" ", C.badge("disposed of", "ok")]),
        h("div", {class: "grid2"}, h("div", {}, eventPanel(d), handlingPanel(d, reload)),
                                   h("div", {}, sitePanel(d), historyPanel(d))));
    }
    await reload();
    C.onLive.add(m => { if (m.item && m.item.id === Number(id) && m.type === "alarm-disposed") reload(); });
    return () => clearInterval(ticker);
  };
})();
