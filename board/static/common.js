// Shared by the board and crate pages: the live stream, the alarm list, acknowledging, formatting.
// Everything is drawn with textContent, never innerHTML: crate names and notes come from outside.
"use strict";

const Board = (function () {
  const me = { user: "", csrf: "", stale_after_s: 120 };
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

  function ackForm(alarm) {
    const form = el("form", "ack-form");
    const name = el("input");
    name.name = "by"; name.required = true; name.maxLength = 100; name.value = me.user;
    name.setAttribute("aria-label", "Your name");
    const note = el("input");
    note.name = "note"; note.required = true; note.maxLength = 1000;
    note.placeholder = "What was done (e.g. shipper re-iced, courier called)";
    note.setAttribute("aria-label", "Note");
    const send = el("button", "primary", "Send acknowledgement");
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
      result.textContent = "sending…";
      result.className = "ack-result";
      const answer = await post("/api/ack", {
        crate: alarm.crate, rule: alarm.rule, sensor: alarm.sensor, by: name.value, note: note.value,
      });
      if (answer.ok) {
        result.textContent = "Sent. Waiting for the gateway to record it…";
        result.className = "ack-result ok";
        // the list may have been redrawn since: mark the row the form is in now
        const current = form.closest(".alarm");
        if (current) current.classList.add("ack-sent");
      } else {
        result.textContent = answer.data.error || `failed (HTTP ${answer.status})`;
        result.className = "ack-result failed";
        send.disabled = false;
      }
    });
    return form;
  }

  function alarmRow(alarm) {
    const row = el("article", `alarm sev-${alarm.severity} state-${alarm.state}`);
    row.dataset.alarm = `${alarm.crate}/${alarm.rule}/${alarm.sensor}`;
    const badge = el("span", `badge sev-${alarm.severity}`, SEVERITY_LABEL[alarm.severity] || alarm.severity);
    const main = el("div", "alarm-main");
    const head = el("div", "alarm-head");
    const link = el("a", "crate-link", alarm.crate);
    link.href = `/crates/${encodeURIComponent(alarm.crate)}`;
    head.append(link, el("span", "rule", `${alarm.rule.replaceAll("_", " ")} · ${alarm.sensor}`));
    if (alarm.late) head.append(el("span", "tag", "late: happened while offline"));
    if (alarm.escalated) head.append(el("span", "tag escalated", "escalated"));
    const facts = el("div", "alarm-facts");
    facts.append(
      el("span", "value", alarm.value_c === null ? "" : celsius(alarm.value_c)),
      el("span", "limit", alarm.threshold_c === null ? "" : `limit ${celsius(alarm.threshold_c)}`),
      el("span", "since", `since ${clockTime(alarm.started_ts)}`),
      el("span", "age", `(${age(alarm.started_ts)})`),
    );
    facts.lastChild.dataset.since = alarm.started_ts;
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
    row.append(badge, main, side);
    return row;
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
      if (form && alarm.state === "active") row.append(form);
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

  return { me, el, post, celsius, clockTime, age, updated, drawAlarms, connect, broker, start, setLive };
})();
