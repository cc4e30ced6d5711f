// The crate's route as a plain track plot and how the crate stands: drawn here as inline SVG, no map tiles,
// nothing fetched but the board's own /api/crates/{crate}/track.
"use strict";
const CrateTrack = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 360, PAD = 28;

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function degrees(value, positive, negative) {
    return `${Math.abs(value).toFixed(4)}° ${value >= 0 ? positive : negative}`;
  }

  // Equirectangular: east-west shrinks by cos(latitude) at the track's middle, so shapes keep their look;
  // then one scale for both axes so the box of the track fits the plot.
  function projector(segments) {
    const all = segments.flat();
    const lats = all.map((p) => p[1]), lons = all.map((p) => p[2]);
    const mid = ((Math.min(...lats) + Math.max(...lats)) / 2) * Math.PI / 180;
    const k = Math.max(Math.cos(mid), 0.05);
    const xs = lons.map((lon) => lon * k), ys = lats;
    // a crate standing still still gets a box: about a kilometre
    const x0 = Math.min(...xs), x1 = Math.max(Math.max(...xs), x0 + 0.01);
    const y0 = Math.min(...ys), y1 = Math.max(Math.max(...ys), y0 + 0.01);
    const scale = Math.min((W - 2 * PAD) / (x1 - x0), (H - 2 * PAD) / (y1 - y0));
    const ox = (W - (x1 - x0) * scale) / 2, oy = (H - (y1 - y0) * scale) / 2;
    return (p) => [ox + (p[2] * k - x0) * scale, H - (oy + (p[1] - y0) * scale)];
  }

  function marker(at, cls, label) {
    const g = svg("g", { class: cls });
    g.append(svg("circle", { cx: at[0].toFixed(1), cy: at[1].toFixed(1), r: 6 }),
      svg("text", { x: (at[0] + 10).toFixed(1), y: (at[1] - 8).toFixed(1) }, label));
    return g;
  }

  function plot(data) {
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "track-plot", role: "img",
      "aria-label": `route of crate ${data.crate}` });
    root.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "track-bg" }));
    const at = projector(data.segments);
    const pts = (seg) => seg.map((p) => at(p).map((v) => v.toFixed(1)).join(",")).join(" ");
    data.segments.forEach((seg, i) => {
      if (i > 0) {
        // no fix between these two: a faint dashed gap, never a drawn route
        const [a, b] = [at(data.segments[i - 1].at(-1)), at(seg[0])];
        root.append(svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], class: "track-gap" }));
      }
      root.append(svg("polyline", { points: pts(seg), class: "track-seg", "data-points": seg.length }));
    });
    const first = data.segments[0][0];
    root.append(marker(at(first), "track-start", `start ${Board.clockTime(first[0])}`));
    const last = data.last;
    root.append(marker(at([last.ts, last.lat, last.lon]), "track-last", `last fix ${Board.clockTime(last.ts)}`));
    return root;
  }

  function trackStatus(data) {
    const fixes = data.segments.reduce((n, s) => n + s.length, 0);
    const last = data.last;
    const where = `${degrees(last.lat, "N", "S")}, ${degrees(last.lon, "E", "W")}`;
    const extras = [last.speed_kmh !== null ? `${last.speed_kmh.toFixed(0)} km/h` : null,
      last.satellites !== null ? `${last.satellites} satellites` : null].filter(Boolean).join(", ");
    const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    return `${count(fixes, "fix", "fixes")} in ${count(data.segments.length, "stretch", "stretches")}` +
      (data.segments.length > 1 ? " (dashed: no fix between)" : "") +
      (data.truncated ? "; only the newest shown" : "") +
      `. Last fix ${Board.clockTime(last.ts)} at ${where}${extras ? ` (${extras})` : ""}` +
      (data.fix === false ? ". The GPS has no fix now: the crate may have moved since." : ".");
  }

  // A shipper outline leaning by its tilt from the dashed vertical.
  function glyph(tilt, tipped) {
    const root = svg("svg", { viewBox: "0 0 80 80", class: `tilt-glyph ${tipped ? "tipped" : "upright"}`, "aria-hidden": "true" });
    root.append(svg("line", { x1: 40, y1: 72, x2: 40, y2: 6, class: "tilt-ref" }),
      svg("line", { x1: 8, y1: 72, x2: 72, y2: 72, class: "tilt-floor" }));
    const body = svg("g", { transform: `rotate(${Math.min(180, Math.max(0, tilt)).toFixed(1)} 40 72)` });
    body.append(svg("rect", { x: 30, y: 22, width: 20, height: 50, rx: 5, class: "tilt-body" }),
      svg("rect", { x: 34, y: 16, width: 12, height: 7, rx: 2, class: "tilt-body" }));
    root.append(body);
    return root;
  }

  function drawStance(data) {
    const box = document.getElementById("orientation");
    const o = data.orientation;
    const rows = [];
    if (o) {
      const tipped = o.stance === "tipped";
      // the limit is the crate's profile's (its tilt rule's limit_deg); a profile without one judges nothing
      const judged = data.tipped_deg === null
        ? `: its profile sets no tilt limit`
        : `: ${tipped ? "TIPPED" : "upright"} (${tipped ? "beyond" : "within"} ${data.tipped_deg}°)`;
      const line = Board.el("p", `stance ${o.stance}`,
        `Tilt ${o.tilt_deg.toFixed(1)}° from vertical${judged}, reported ${Board.clockTime(o.ts)}`);
      line.id = "stance-text";
      rows.push(glyph(o.tilt_deg, tipped), line);
    } else {
      rows.push(Board.el("p", "stance none", "No orientation reported."));
    }
    const s = data.shock;
    const shock = Board.el("p", "shock", s
      ? `Last shock ${s.shock_g.toFixed(2)} g at ${Board.clockTime(s.ts)}` +
        (s.tilt_deg !== null ? `, left at ${s.tilt_deg.toFixed(1)}°` : "")
      : "No shock reported.");
    shock.id = "shock-text";
    rows.push(shock);
    box.replaceChildren(...rows);
  }

  async function load(crateId, hours, windowName) {
    const status = document.getElementById("track-status");
    const map = document.getElementById("track");
    const response = await fetch(`/api/crates/${encodeURIComponent(crateId)}/track?hours=${hours}`, { credentials: "same-origin" });
    const data = await response.json();
    if (!response.ok) {
      status.textContent = `Cannot draw the route: ${data.error || response.status}`;
      status.classList.add("failed");
      return;
    }
    status.classList.remove("failed");
    drawStance(data);
    if (data.segments.length === 0) {
      status.textContent = data.fix === false
        ? `No position reported in the last ${windowName}: the GPS had no fix.`
        : `No position reported in the last ${windowName}.`;
      map.replaceChildren();
      return;
    }
    status.textContent = trackStatus(data);
    map.replaceChildren(plot(data));
  }

  return { load };
})();
