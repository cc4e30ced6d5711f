// One crate: its live card, its open alarms and its temperature chart with limit bands and excursions.
"use strict";
(function () {
  const { el, post, celsius, clockTime } = Board;
  const crateId = decodeURIComponent(window.location.pathname.split("/").pop());
  const COLORS = { critical: [229, 72, 77], warning: [245, 165, 36], info: [59, 130, 246] };
  const LINE_COLORS = ["#7dd3fc", "#c4b5fd", "#86efac", "#fda4af", "#fde68a", "#a5b4fc"];
  let hours = 24; // until /api/me gives the board's chart_hours
  let plot = null;

  function rgba(severity, alpha) {
    const [r, g, b] = COLORS[severity] || COLORS.info;
    return `rgba(${r},${g},${b},${alpha})`;
  }

  function windowName(h) {
    return h % 24 === 0 && h >= 48 ? `${h / 24} days` : `${h} h`;
  }

  // Every alarm of the crate's shipment, newest first.
  function drawHistory(crate) {
    const box = document.getElementById("history");
    const list = crate.excursions || [];
    // every alarm point is tagged with the crate's shipment: all of the shipment's excursions, even a backlog's
    const since = crate.shipment ? "on this shipment" : `in the last ${crate.history_days} days`;
    const rows = [el("p", "history-head", list.length ? `${Board.plural(list.length, "alarm")} ${since}` : `No alarm ${since}.`)];
    for (const x of list) {
      const line = el("div", `excursion sev-${x.severity}`);
      const who = x.needs_review ? "needs review" : x.acknowledged_by ? `seen by ${x.acknowledged_by}` : x.state;
      line.append(
        el("span", "x-rule", `${x.severity} · ${x.rule.replaceAll("_", " ")} · ${x.sensor}`),
        el("span", "x-when", Board.span(x.started_ts, x.ended_ts)),
        el("span", `x-who${x.needs_review ? " needs" : ""}`, (x.late ? "late, " : "") + who),
      );
      rows.push(line);
    }
    if (crate.history_error) rows.push(el("p", "x-error", `Stored history not current: ${crate.history_error}`));
    box.replaceChildren(...rows);
  }

  function drawCard(crate) {
    Board.readings(crate);
    drawHistory(crate);
    const box = document.getElementById("crate-card");
    const facts = el("dl", "facts");
    const add = (label, value) => {
      if (value === null || value === undefined || value === "") return;
      facts.append(el("dt", null, label), el("dd", null, value));
    };
    add("State", crate.state.toUpperCase());
    add("Profile", crate.profile);
    add("Shipment", crate.shipment);
    add("Product", crate.product);
    add("Route", crate.origin || crate.destination ? `${crate.origin || "?"} → ${crate.destination || "?"}` : null);
    add("On shipment since", crate.departed_ts ? `${clockTime(crate.departed_ts)} (first seen by the gateway)` : null);
    add("Last reading", crate.last_ts ? clockTime(crate.last_ts) : "none yet");
    const readings = el("div", "readings big");
    if (crate.readings.length === 0) readings.append(el("span", "no-reading", "no reading yet"));
    for (const r of crate.readings) {
      const reading = el("div", "reading");
      reading.append(el("span", "sensor", r.sensor),
        r.fault ? el("span", "fault", `probe fault: ${r.fault}`) : el("span", "temp", celsius(r.value_c)));
      readings.append(reading);
    }
    box.className = `crate-detail state-${crate.state}${crate.worst ? ` worst-${crate.worst}` : ""}`;
    box.replaceChildren(readings, facts);
    document.getElementById("crate-title").textContent = `Crate ${crate.crate}`;
    document.title = `${crate.crate} · ${Board.me.title}`;
  }

  // Limit bands (everything beyond each rule's threshold) and excursion spans, under the lines.
  function bandsPlugin(data) {
    return {
      hooks: {
        drawClear: [(u) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          ctx.save();
          for (const band of data.bands) {
            const y = u.valToPos(band.threshold_c, "y", true);
            const y0 = band.kind === "high" ? top : y;
            const y1 = band.kind === "high" ? y : top + height;
            ctx.fillStyle = rgba(band.severity, 0.10);
            ctx.fillRect(left, Math.max(top, y0), width, Math.min(top + height, y1) - Math.max(top, y0));
          }
          for (const span of data.excursions) {
            const x0 = Math.max(left, u.valToPos(span.start / 1000, "x", true));
            const x1 = Math.min(left + width, u.valToPos(span.end / 1000, "x", true));
            if (x1 <= x0) continue;
            ctx.fillStyle = rgba(span.severity, 0.28);
            ctx.fillRect(x0, top, x1 - x0, height);
          }
          ctx.restore();
        }],
        // Limit lines and their labels go on top of the grid and the readings.
        draw: [(u) => {
          const ctx = u.ctx;
          const { left, top, width, height } = u.bbox;
          const px = devicePixelRatio;
          ctx.save();
          ctx.font = `600 ${13 * px}px sans-serif`;
          ctx.textAlign = "left";
          ctx.textBaseline = "alphabetic";
          for (const band of data.bands) {
            const y = u.valToPos(band.threshold_c, "y", true);
            if (y < top || y > top + height) continue;
            ctx.strokeStyle = rgba(band.severity, 0.95);
            ctx.setLineDash([8 * px, 5 * px]);
            ctx.lineWidth = 2 * px;
            ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
            const label = `${band.severity} ${band.kind === "high" ? "above" : "below"} ${band.threshold_c} °C`;
            const w = ctx.measureText(label).width + 12 * px;
            const ly = band.kind === "high" ? y - 22 * px : y + 4 * px;
            ctx.fillStyle = "rgba(17,21,26,0.85)";
            ctx.fillRect(left + 8 * px, ly, w, 18 * px);
            ctx.fillStyle = rgba(band.severity, 1);
            ctx.fillText(label, left + 14 * px, ly + 14 * px);
          }
          ctx.restore();
        }],
      },
    };
  }

  // 24-hour clock; the date as well once the window spans more than a day.
  function timeLabel(seconds, data) {
    const d = new Date(seconds * 1000);
    const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    if (data.to - data.from <= 86400000) return time;
    return `${d.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
  }

  function yRange(data) {
    return (u, min, max) => {
      const limits = data.bands.map((b) => b.threshold_c);
      const lo = Math.min(min ?? Infinity, ...limits);
      const hi = Math.max(max ?? -Infinity, ...limits);
      const pad = Math.max(2, (hi - lo) * 0.08);
      return [Math.floor(lo - pad), Math.ceil(hi + pad)];
    };
  }

  function drawChart(data) {
    const box = document.getElementById("chart");
    if (plot) { plot.destroy(); plot = null; }
    const status = document.getElementById("chart-status");
    const minutes = Math.round(data.bucket_ms / 60000);
    status.textContent = data.x.length === 0
      ? `No readings in the last ${windowName(hours)}.`
      : `${Board.plural(data.x.length, "point")}, profile ${data.profile}` +
        (data.bucket_ms > 1000 ? `; each point is the highest and lowest reading of ${minutes >= 1 ? `${minutes} min` : `${data.bucket_ms / 1000} s`}` : "") +
        (data.excursions.length ? `; ${data.excursions.length} excursion span(s) shaded` : "; no excursion");
    const series = [{ label: "time", value: (u, t) => (t === null ? "—" : clockTime(t * 1000)) }];
    data.series.forEach((s, i) => {
      const color = LINE_COLORS[Math.floor(i / 2) % LINE_COLORS.length];
      const isMin = s.label.endsWith(" min");
      series.push({ label: s.label, stroke: color, width: isMin ? 1 : 2, dash: isMin ? [4, 3] : undefined,
        show: true, spanGaps: false, value: (u, v) => (v === null ? "—" : `${v.toFixed(2)} °C`) });
    });
    const opts = {
      width: Math.max(320, box.clientWidth),
      height: 380,
      series,
      scales: { x: { time: true, range: () => [data.from / 1000, data.to / 1000] }, y: { range: yRange(data) } },
      axes: [
        { stroke: "#c9d1d9", grid: { stroke: "#2a323c" }, values: (u, ticks) => ticks.map((t) => timeLabel(t, data)), space: 70 },
        { stroke: "#c9d1d9", grid: { stroke: "#2a323c" }, values: (u, ticks) => ticks.map((t) => `${t} °C`), size: 70 },
      ],
      legend: { live: true },
      plugins: [bandsPlugin(data)],
    };
    plot = new uPlot(opts, [data.x, ...data.series.map((s) => s.values)], box);
  }

  async function loadChart() {
    const status = document.getElementById("chart-status");
    status.textContent = "loading…";
    document.querySelectorAll("#window-picker button").forEach((b) => b.classList.toggle("selected", Number(b.dataset.hours) === hours));
    const response = await fetch(`/api/crates/${encodeURIComponent(crateId)}/history?hours=${hours}`, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) {
      status.textContent = `Cannot draw the chart: ${data.error || response.status}`;
      status.classList.add("failed");
      return;
    }
    status.classList.remove("failed");
    drawChart(data);
  }

  // The route over the chart's window, and how the crate stands now.
  function loadTrack() {
    CrateTrack.load(crateId, hours, windowName(hours));
  }

  // The release decision rests on the data hash shown: the server refuses it if the record changed since.
  let shown = null;

  function verdictClass(line) {
    if (line === "within profile") return "within";
    return line.startsWith("incomplete") ? "incomplete" : "excursion";
  }

  async function loadRelease() {
    const status = document.getElementById("release-status");
    const response = await fetch(`/api/crates/${encodeURIComponent(crateId)}/release`, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) {
      status.textContent = `No release from this page: ${data.error || response.status}`;
      document.getElementById("release").hidden = true;
      return;
    }
    shown = data;
    status.textContent = `${data.kind} ${data.subject}, record ${data.start} to ${data.end}`;
    const verdict = document.getElementById("release-verdict");
    verdict.textContent = `Verdict: ${data.verdict}`;
    verdict.className = `release-verdict ${verdictClass(data.verdict)}`;
    document.getElementById("release-reasons").replaceChildren(...data.reasons.map((r) => el("li", null, r)));
    document.getElementById("release-sha").textContent = data.sha256;
    document.getElementById("release-decisions").replaceChildren(...data.releases.map((x) => el("li", null,
      `${x.time}: ${x.decision.toUpperCase()} by ${x.by}: ${x.note} (${x.on_this_data ? "on this data" : "on other data"})`)));
    document.getElementById("release").hidden = false;
  }

  function releaseForm() {
    const form = document.getElementById("release-form");
    const result = document.getElementById("release-result");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!shown) return;
      result.className = "ack-result";
      result.textContent = "recording…";
      const answer = await post("/api/release", {
        crate: crateId,
        decision: document.getElementById("release-decision").value,
        note: document.getElementById("release-note").value,
        sha256: shown.sha256,
      });
      if (answer.ok) {
        result.classList.add("ok");
        result.textContent = `Recorded: ${answer.data.decision} by ${answer.data.by}`;
        form.reset();
      } else {
        result.classList.add("failed");
        result.textContent = `Not recorded: ${answer.data.error || answer.status}`;
      }
      loadRelease();
    });
  }

  Board.start().then((ok) => {
    if (!ok) return;
    hours = Board.me.chart_hours;
    const alarms = document.getElementById("alarms");
    const review = document.getElementById("review");
    const mine = (list) => list.filter((a) => a.crate === crateId);
    Board.connect({
      snapshot(data) {
        const crate = data.crates.find((c) => c.crate === crateId);
        if (crate) drawCard(crate);
        Board.drawAlarms(alarms, mine(data.alarms));
        Board.drawReview(review, mine(data.review));
        Board.broker(data.broker);
      },
      alarms(list) { Board.drawAlarms(alarms, mine(list)); },
      review(list) { Board.drawReview(review, mine(list)); },
      crate(c) { if (c.crate === crateId) drawCard(c); },
    });
    document.querySelectorAll("#window-picker button").forEach((b) => b.addEventListener("click", () => {
      hours = Number(b.dataset.hours);
      loadChart();
      loadTrack();
    }));
    loadChart();
    loadTrack();
    setInterval(() => { loadChart(); loadTrack(); }, 60000);
    releaseForm();
    loadRelease();
  });
})();
