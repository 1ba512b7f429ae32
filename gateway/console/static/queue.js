// The live alarm queue: life safety first, then the oldest; a timer since arrival
// on every row, redrawn as alarms arrive, are taken and are disposed of.
"use strict";
(function () {
  const C = window.JF, h = C.h;

  function timerCell(item) {
    const late = C.serverNow() - item.received_at_ms >= (C.queueMeta ? C.queueMeta.escalate_after_seconds : 180) * 1000;
    return h("span", {class: "timer" + (late ? " late" : ""), "data-since": item.received_at_ms}, C.elapsed(item.received_at_ms));
  }

  async function take(item) {
    await C.api("POST", "api/alarms/" + item.id + "/take");
    location.hash = "#/alarm/" + item.id;
  }

  function actions(item) {
    const mine = item.assignee === C.session.username;
    const free = !item.assignee || C.can("alarm.reassign");
    return h("span", {},
      !mine && free && C.can("alarm.handle") ?
        h("button", {class: "take", onclick: ev => { ev.stopPropagation(); take(item).catch(e => alert(e.message)); }}, "Take") : null,
      " ", h("a", {href: "#/alarm/" + item.id, onclick: ev => ev.stopPropagation()}, "Open"));
  }

  function draw(container) {
    const items = C.sortedQueue();
    const body = items.length ? C.table([
      ["Waiting", timerCell],
      ["Priority", i => C.badge(C.priorityLabel(i.priority), i.event_class)],
      ["Event", i => [h("strong", {}, i.name), i.restored ? [" ", C.badge("restored", "ok")] : null,
                      i.on_test ? [" ", C.badge("on test", "trouble")] : null]],
      ["Account", i => i.account],
      ["Site", i => [C.siteName(i), i.site && i.site.address ? h("div", {class: "muted small"}, i.site.address) : null]],
      ["Zone", i => C.pad3(i.zone)],
      ["Received", i => C.time(i.received_at_ms)],
      ["Taken by", i => [i.assignee || h("span", {class: "muted"}, "nobody"),
                         i.escalated_at_ms ? [" ", C.badge("escalated")] : null,
                         i.dispatches.some(d => d.ok) ? [" ", C.badge("dispatched to 110", "ok")] : null]],
      ["", actions],
    ], items, i => ({class: "clickable p" + i.priority + (i.escalated_at_ms ? " escalated" : ""),
                     "data-id": i.id, onclick: () => { location.hash = "#/alarm/" + i.id; }}))
      : h("div", {class: "empty"}, "No alarms waiting.");
    container.replaceChildren(
      h("h2", {}, "Alarm queue ", h("span", {class: "muted small"}, items.length + " waiting")),
      body);
  }

  C.views.queue = async function (container) {
    await C.loadQueue();
    draw(container);
    C.onLive.add(() => draw(container));
    const ticker = setInterval(() => {
      for (const el of container.querySelectorAll(".timer")) el.textContent = C.elapsed(Number(el.dataset.since));
    }, 1000);
    return () => clearInterval(ticker);
  };
})();
