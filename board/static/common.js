// Shared by the board and crate pages: the live stream, the alarm list, acknowledging, formatting.
// Everything is drawn with textContent, never innerHTML: crate names and notes come from outside.
"use strict";

const Board = (function () {
  const me = { user: "", csrf: "", stale_after_s: 120, chart_hours: 24 };
  // The gateway's last answer to an acknowledgement sent from this page, by alarm id: shown on the row
  // (and on the redrawn row once the alarm's new state arrives).
  const outcomes = new Map();
  // The latest reading per crate and sensor, for "now" beside an alarm's value when raised.
  const current = new Map();
  const SEVERITY_LABEL = { critical: "CRITICAL", warning: "WARNING", info: "INFO" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function celsius(value) {
    return value === null || value === undefined ? "—" : `${value.toFixed(1)} °C`;
  }

  function clockTime(ms) {
    const d = new Date(ms);
    const today = new Date();
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
    if (d.toDateString() === today.toDateString()) return time;
    return `${d.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  function age(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} days`;
  }

  // "reading 12 s ago", amber once older than the board's stale_after_s.
  function updated(node) {
    const ms = Number(node.dataset.updated);
    node.textContent = `reading ${age(ms)} ago`;
    node.classList.toggle("stale", (Date.now() - ms) / 1000 > me.stale_after_s);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF": me.csrf },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    return { ok: response.ok, status: response.status, data };
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  function span(from, to) {
    return to ? `${clockTime(from)} – ${clockTime(to)} (${duration(to - from)})` : `since ${clockTime(from)}`;
  }

  function duration(ms) {
    const m = Math.max(0, Math.round(ms / 60000));
    if (m < 1) return "under 1 min";
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days`;
  }

  function notice(text, kind) {
    const box = document.getElementById("notice");
    if (!box) return;
    box.textContent = text;
    box.className = `notice ${kind}`;
    box.hidden = false;
  }

  // What the gateway said, in words a person can act on.
  function outcomeOf(alarm, answer) {
    if (answer.ok) {
      const what = answer.data.reviewed ? "Review" : "Acknowledgement";
      return { text: `${what} recorded by the gateway: ${answer.data.by}.`, kind: "ok" };
    }
    if (answer.data.refused) return { text: `Refused by the gateway — ${answer.data.error.replace(/^refused by the gateway: /, "")}`, kind: "failed" };
    return { text: answer.data.error || `failed (HTTP ${answer.status})`, kind: "failed" };
  }

  function ackForm(alarm) {
    const review = alarm.state === "cleared";
    const form = el("form", "ack-form");
    const name = el("input");
    name.name = "by"; name.required = true; name.maxLength = 100; name.value = me.user;
    name.setAttribute("aria-label", "Your name");
    const note = el("input");
    note.name = "note"; note.required = true; note.maxLength = 1000;
    note.placeholder = review ? "What you checked (e.g. cells inspected, QA informed)" : "What was done (e.g. shipper re-iced, courier called)";
    note.setAttribute("aria-label", "Note");
    const send = el("button", "primary", review ? "Record review" : "Send acknowledgement");
    send.type = "submit";
    const cancel = el("button", "quiet", "Cancel");
    cancel.type = "button";
    const result = el("span", "ack-result");
    const nameLabel = el("label", null, "Name ");
    nameLabel.append(name);
    const noteLabel = el("label", "grow", "Note ");
    noteLabel.append(note);
    form.append(nameLabel, noteLabel, send, cancel, result);
    cancel.addEventListener("click", () => form.remove());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      send.disabled = true;
      result.textContent = "Sent. Waiting for the gateway to record it…";
      result.className = "ack-result";
      const answer = await post("/api/ack", {
        crate: alarm.crate, rule: alarm.rule, sensor: alarm.sensor, by: name.value, note: note.value,
      });
      const outcome = outcomeOf(alarm, answer);
      outcomes.set(alarm.id, outcome);
      result.textContent = outcome.text;
      result.className = `ack-result ${outcome.kind}`;
      showOutcome(alarm);
      const where = `${alarm.crate} ${alarm.rule.replaceAll("_", " ")} · ${alarm.sensor}: `;
      notice(where + outcome.text, outcome.kind);
      if (answer.ok) {
        // the list may have been redrawn since: mark the row the form is in now
        const row = form.closest(".alarm");
        if (row) row.classList.add("ack-sent");
      } else {
        send.disabled = false;
      }
    });
    return form;
  }

  // The parts every alarm row shares: the row, its severity badge, its main column and its head line.
  function rowParts(alarm, className) {
    const row = el("article", className);
    row.dataset.alarm = `${alarm.crate}/${alarm.rule}/${alarm.sensor}`;
    const badge = el("span", `badge sev-${alarm.severity}`, SEVERITY_LABEL[alarm.severity] || alarm.severity);
    const main = el("div", "alarm-main");
    const head = el("div", "alarm-head");
    const link = el("a", "crate-link", alarm.crate);
    link.href = `/crates/${encodeURIComponent(alarm.crate)}`;
    head.append(link, el("span", "rule", `${alarm.rule.replaceAll("_", " ")} · ${alarm.sensor}`));
    return { row, badge, main, head };
  }

  function alarmRow(alarm) {
    const { row, badge, main, head } = rowParts(alarm, `alarm sev-${alarm.severity} state-${alarm.state}`);
    if (alarm.late) head.append(el("span", "tag", "late: happened while offline"));
    if (alarm.escalated) head.append(el("span", "tag escalated", "escalated"));
    const facts = el("div", "alarm-facts");
    const raised = el("span", "value", alarm.value_c === null ? "" : celsius(alarm.value_c));
    if (alarm.value_c !== null) raised.append(el("small", "when", " when raised"));
    const now = el("span", "now");
    now.dataset.crate = alarm.crate;
    now.dataset.sensor = alarm.sensor;
    facts.append(
      raised,
      now,
      el("span", "limit", alarm.threshold_c === null ? "" : `limit ${celsius(alarm.threshold_c)}`),
      el("span", "since", `since ${clockTime(alarm.started_ts)}`),
      el("span", "age", `(${age(alarm.started_ts)})`),
    );
    facts.lastChild.dataset.since = alarm.started_ts;
    showNow(now);
    main.append(head, facts);
    if (alarm.detail) main.append(el("div", "detail", alarm.detail));
    const side = el("div", "alarm-side");
    if (alarm.state === "active") {
      const button = el("button", "ack-button", "Acknowledge");
      button.addEventListener("click", () => {
        if (!row.querySelector(".ack-form")) row.append(ackForm(alarm));
        row.querySelector(".ack-form input[name=note]").focus();
      });
      side.append(button);
    } else {
      const who = alarm.acknowledged_by;
      const when = alarm.acknowledged_ts ? ` at ${clockTime(alarm.acknowledged_ts)}` : "";
      side.append(el("span", "acked", who ? `acknowledged by ${who}${when}` : "acknowledged"));
      if (alarm.note) side.append(el("span", "note", alarm.note));
    }
    const outcome = outcomes.get(alarm.id);
    if (outcome) side.append(el("span", `ack-result ${outcome.kind}`, outcome.text));
    row.append(badge, main, side);
    return row;
  }

  // The alarm's row may have been redrawn (its new state arrived first): put the outcome on the row shown now.
  function showOutcome(alarm) {
    const outcome = outcomes.get(alarm.id);
    document.querySelectorAll(`.alarm[data-alarm="${CSS.escape(`${alarm.crate}/${alarm.rule}/${alarm.sensor}`)}"]`).forEach((row) => {
      if (row.querySelector(".ack-form")) return; // the form says it
      let node = row.querySelector(".alarm-side .ack-result");
      if (!node) { node = el("span"); row.querySelector(".alarm-side").append(node); }
      node.className = `ack-result ${outcome.kind}`;
      node.textContent = outcome.text;
    });
  }

  // "now −152.0 °C" from the crate's latest reading of the alarm's sensor (none for whole-crate alarms).
  function showNow(node) {
    const reading = (current.get(node.dataset.crate) || {})[node.dataset.sensor];
    if (!reading) { node.textContent = ""; return; }
    node.textContent = reading.fault ? `now: probe fault ${reading.fault}` : `now ${celsius(reading.value_c)}`;
  }

  // A crate's readings changed: remember them and update every "now" of its alarms.
  function readings(crate) {
    const bySensor = {};
    for (const r of crate.readings) bySensor[r.sensor] = r;
    current.set(crate.crate, bySensor);
    document.querySelectorAll(`.alarm .now[data-crate="${CSS.escape(crate.crate)}"]`).forEach(showNow);
  }

  function reviewRow(alarm) {
    const { row, badge, main, head } = rowParts(alarm, `alarm review sev-${alarm.severity}`);
    head.append(el("span", "tag late", alarm.late ? "late: happened while the crate was offline" : "cleared before anyone acknowledged it"));
    const facts = el("div", "alarm-facts");
    facts.append(
      el("span", "when-span", span(alarm.started_ts, alarm.ended_ts || alarm.ts)),
      el("span", "limit", alarm.threshold_c === null ? "" : `limit ${celsius(alarm.threshold_c)}`),
    );
    main.append(head, facts);
    if (alarm.detail) main.append(el("div", "detail", alarm.detail));
    const side = el("div", "alarm-side");
    const button = el("button", "ack-button", "Review");
    button.addEventListener("click", () => {
      if (!row.querySelector(".ack-form")) row.append(ackForm(alarm));
      row.querySelector(".ack-form input[name=note]").focus();
    });
    side.append(button);
    const outcome = outcomes.get(alarm.id);
    if (outcome) side.append(el("span", `ack-result ${outcome.kind}`, outcome.text));
    row.append(badge, main, side);
    return row;
  }

  function shipmentTitle(alarm) {
    if (!alarm.shipment) return "No shipment";
    const route = alarm.origin || alarm.destination ? `${alarm.origin || "?"} → ${alarm.destination || "?"}` : "";
    return [`Shipment ${alarm.shipment}`, alarm.product, route].filter(Boolean).join(" · ");
  }

  // A form kept across a redraw says the outcome itself: the row does not say it twice.
  function attachForm(row, form) {
    const said = row.querySelector(".alarm-side .ack-result");
    if (said) said.remove();
    row.append(form);
  }

  // The needs-review list, one group per shipment, keeping any review someone is typing.
  function drawReview(container, alarms) {
    const open = {};
    container.querySelectorAll(".alarm").forEach((row) => {
      const form = row.querySelector(".ack-form");
      if (form) open[row.dataset.alarm] = form;
    });
    container.replaceChildren();
    const section = container.closest("section");
    if (section) section.hidden = alarms.length === 0;
    const groups = new Map();
    for (const alarm of alarms) {
      const title = shipmentTitle(alarm);
      if (!groups.has(title)) groups.set(title, []);
      groups.get(title).push(alarm);
    }
    const titles = [...groups.keys()].sort((a, b) => (a === "No shipment") - (b === "No shipment") || a.localeCompare(b));
    for (const title of titles) {
      const group = el("div", "review-group");
      group.append(el("h3", "shipment-title", title));
      for (const alarm of groups.get(title)) {
        const row = reviewRow(alarm);
        const form = open[row.dataset.alarm];
        if (form) attachForm(row, form);
        group.append(row);
      }
      container.append(group);
    }
    const count = document.getElementById("review-count");
    if (count) {
      count.textContent = String(alarms.length);
      count.className = alarms.length ? "count warning" : "count";
    }
  }

  // Redraws the alarm list, keeping any acknowledgement form someone is typing in.
  function drawAlarms(container, alarms) {
    const open = {};
    container.querySelectorAll(".alarm").forEach((row) => {
      const form = row.querySelector(".ack-form");
      if (form) open[row.dataset.alarm] = form;
    });
    container.replaceChildren();
    if (alarms.length === 0) {
      container.append(el("p", "all-clear", "No open alarms."));
    }
    for (const alarm of alarms) {
      const row = alarmRow(alarm);
      const form = open[row.dataset.alarm];
      if (form && alarm.state === "active") attachForm(row, form);
      container.append(row);
    }
    document.getElementById("alarm-count").textContent = String(alarms.length);
    document.getElementById("alarm-count").className = alarms.some((a) => a.severity === "critical")
      ? "count critical" : alarms.length ? "count warning" : "count";
  }

  function setLive(state, text) {
    const live = document.getElementById("live");
    live.className = `live ${state}`;
    live.textContent = text;
    const banner = document.getElementById("banner");
    if (state === "live") {
      banner.hidden = true;
    } else {
      banner.hidden = false;
      banner.textContent = text;
    }
  }

  // Opens the event stream; the browser reconnects by itself and each reconnect starts with a snapshot.
  function connect(handlers) {
    const source = new EventSource("/api/events");
    source.addEventListener("snapshot", (e) => handlers.snapshot(JSON.parse(e.data)));
    source.addEventListener("alarms", (e) => handlers.alarms(JSON.parse(e.data)));
    source.addEventListener("review", (e) => handlers.review(JSON.parse(e.data)));
    source.addEventListener("crate", (e) => handlers.crate(JSON.parse(e.data)));
    source.addEventListener("broker", (e) => broker(JSON.parse(e.data)));
    source.addEventListener("open", () => setLive("live", "live"));
    source.addEventListener("error", () => {
      setLive("down", "Lost the connection to the board server — reconnecting. What you see may be out of date.");
      if (source.readyState === EventSource.CLOSED) setTimeout(() => window.location.reload(), 5000);
    });
    return source;
  }

  function broker(status) {
    if (status.connected) setLive("live", "live");
    else setLive("down", "The board has lost the broker — alarms may be out of date. Check the gateway host.");
  }

  async function start() {
    const response = await fetch("/api/me", { credentials: "same-origin" });
    if (response.status === 401) {
      window.location.href = `/login?next=${encodeURIComponent(window.location.pathname)}`;
      return false;
    }
    Object.assign(me, await response.json());
    document.getElementById("who").textContent = me.user;
    const signout = document.getElementById("signout");
    if (me.can_sign_out) {
      signout.hidden = false;
      signout.addEventListener("click", async () => {
        await post("/api/logout", {});
        window.location.href = "/login";
      });
    }
    const tick = () => {
      document.getElementById("clock").textContent = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      document.querySelectorAll("[data-since]").forEach((node) => {
        node.textContent = `(${age(Number(node.dataset.since))})`;
      });
      document.querySelectorAll("[data-updated]").forEach(updated);
    };
    tick();
    setInterval(tick, 1000);
    return true;
  }

  return {
    me, el, post, celsius, clockTime, age, updated, drawAlarms, drawReview, readings, connect, broker, start, setLive,
    plural, span,
  };
})();
