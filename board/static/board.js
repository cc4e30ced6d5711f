// The board page: open alarms on top, then every crate, problems first.
"use strict";
(function () {
  const { el, celsius, clockTime, plural } = Board;
  const SHOWN_EXCURSIONS = 3;
  const crates = new Map();
  const RANK = { critical: 0, warning: 1, info: 2 };

  function rank(crate) {
    if (crate.worst) return RANK[crate.worst];
    if (crate.review_count) return 2.5; // an excursion nobody has looked at yet: never a calm card
    if (crate.state === "offline") return 3;
    if (crate.state === "unknown") return 4;
    return 5;
  }

  function card(crate) {
    const node = el("a", `crate state-${crate.state}${crate.worst ? ` worst-${crate.worst}` : crate.review_count ? " needs-review" : ""}`);
    node.href = `/crates/${encodeURIComponent(crate.crate)}`;
    node.dataset.crate = crate.crate;
    const head = el("div", "crate-head");
    head.append(el("span", "crate-id", crate.crate), el("span", `state-badge ${crate.state}`, crate.state.toUpperCase()));
    node.append(head);
    const readings = el("div", "readings");
    if (crate.readings.length === 0) readings.append(el("span", "no-reading", "no reading yet"));
    for (const r of crate.readings) {
      const reading = el("div", "reading");
      reading.append(
        el("span", "sensor", r.sensor),
        r.fault ? el("span", "fault", `probe fault: ${r.fault}`) : el("span", "temp", celsius(r.value_c)),
      );
      readings.append(reading);
    }
    node.append(readings);
    const meta = el("div", "crate-meta");
    meta.append(el("span", "profile", crate.profile));
    if (crate.shipment) meta.append(el("span", "shipment", `shipment ${crate.shipment}`));
    if (crate.alarm_count) meta.append(el("span", `alarm-count sev-${crate.worst}`, plural(crate.alarm_count, "alarm")));
    if (crate.review_count) meta.append(el("span", "review-count", `${crate.review_count} to review`));
    node.append(meta);
    node.append(history(crate));
    const foot = el("div", "crate-foot");
    if (crate.last_ts) {
      const updated = el("span", "updated");
      updated.dataset.updated = crate.last_ts;
      updated.title = clockTime(crate.last_ts);
      Board.updated(updated);
      foot.append(updated);
    }
    if (crate.state === "offline" && crate.state_ts) foot.append(el("span", "offline-since", `offline since ${clockTime(crate.state_ts)}`));
    node.append(foot);
    return node;
  }

  // The alarms of the crate's shipment (InfluxDB and the broker's retained alarms), newest first.
  function history(crate) {
    const box = el("div", "history");
    const list = crate.excursions || [];
    // every alarm point is tagged with the crate's shipment: all of the shipment's excursions, even a backlog's
    const since = crate.shipment ? "on this shipment" : `in the last ${crate.history_days} days`;
    box.append(el("div", "history-head", list.length ? `${plural(list.length, "alarm")} ${since}` : `No alarm ${since}`));
    for (const x of list.slice(0, SHOWN_EXCURSIONS)) {
      const line = el("div", `excursion sev-${x.severity}`);
      const who = x.needs_review ? "needs review" : x.acknowledged_by ? `seen by ${x.acknowledged_by}` : x.state;
      line.append(
        el("span", "x-rule", `${x.rule.replaceAll("_", " ")} · ${x.sensor}`),
        el("span", "x-when", Board.span(x.started_ts, x.ended_ts)),
        el("span", `x-who${x.needs_review ? " needs" : ""}`, (x.late ? "late, " : "") + who),
      );
      box.append(line);
    }
    if (list.length > SHOWN_EXCURSIONS) box.append(el("div", "x-more", `+ ${list.length - SHOWN_EXCURSIONS} more on the crate's page`));
    if (crate.history_error) box.append(el("div", "x-error", `Stored history not current: ${crate.history_error}`));
    return box;
  }

  function drawCrates() {
    const list = [...crates.values()].sort((a, b) => rank(a) - rank(b) || a.crate.localeCompare(b.crate));
    document.getElementById("crates").replaceChildren(...list.map(card));
    document.getElementById("crate-count").textContent = String(list.length);
  }

  // A new reading redraws only its own card; a change of rank (alarm, offline) re-sorts the grid.
  const changed = new Set();
  let pending = false;
  let resort = false;
  function update(crate) {
    Board.readings(crate);
    const before = crates.get(crate.crate);
    crates.set(crate.crate, crate);
    if (!before || rank(before) !== rank(crate)) resort = true;
    changed.add(crate.crate);
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      if (resort) {
        drawCrates();
      } else {
        for (const id of changed) {
          const node = document.querySelector(`.crate[data-crate="${CSS.escape(id)}"]`);
          if (node) node.replaceWith(card(crates.get(id)));
        }
      }
      resort = false;
      changed.clear();
    });
  }

  Board.start().then((ok) => {
    if (!ok) return;
    document.getElementById("title").textContent = Board.me.title;
    document.title = Board.me.title;
    const alarms = document.getElementById("alarms");
    const review = document.getElementById("review");
    Board.connect({
      snapshot(data) {
        crates.clear();
        for (const c of data.crates) { crates.set(c.crate, c); Board.readings(c); }
        Board.drawAlarms(alarms, data.alarms);
        Board.drawReview(review, data.review);
        Board.broker(data.broker);
        drawCrates();
      },
      alarms(list) { Board.drawAlarms(alarms, list); },
      review(list) { Board.drawReview(review, list); },
      crate(c) { update(c); },
    });
  });
})();
