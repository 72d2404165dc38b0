// The coordinator's read-only dashboard: polls api/state and draws the run with inline SVG. No libraries, nothing
// fetched from anywhere but this page's own origin. Everything shown is set with textContent (agent ids come from
// agents, which the coordinator does not trust).
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const TOKEN_KEY = "federated-dashboard-token";
  const $ = (id) => document.getElementById(id);

  // A token given as #token=... is kept for this tab only and taken out of the address bar.
  const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (hash.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }

  let refreshMs = 2000;

  function text(id, value) { const e = $(id); if (e.textContent !== value) { e.textContent = value; } }
  function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  function pct(v) { return v === null || v === undefined ? "–" : (100 * v).toFixed(2) + " %"; }
  function bytes(v) {
    if (v === null || v === undefined) { return "–"; }
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0, x = v;
    while (x >= 1000 && i < units.length - 1) { x /= 1000; i++; }
    return (i === 0 ? String(x) : x.toFixed(x < 10 ? 2 : 1)) + " " + units[i];
  }

  function el(name, attrs, content) {
    const e = name.startsWith("svg:") ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
    for (const [k, v] of Object.entries(attrs || {})) { e.setAttribute(k, String(v)); }
    if (content !== undefined) { e.textContent = content; }
    return e;
  }

  // Draws series of {cls, label, points: [{x, y}]} as lines with dots, or as bars side by side (kind "bar").
  function chart(svg, series, kind, format) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    const W = 480, H = 200, L = 56, R = 10, T = 10, B = 24;
    const pts = series.flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined);
    if (pts.length === 0) {
      svg.appendChild(el("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no data yet"));
      return;
    }
    let x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
    let y0 = Math.min(0, ...pts.map((p) => p.y)), y1 = Math.max(...pts.map((p) => p.y));
    if (y1 === y0) { y1 = y0 + (y0 === 0 ? 1 : Math.abs(y0)); }
    if (kind === "bar") { x0 -= 0.5; x1 += 0.5; } else if (x1 === x0) { x0 -= 1; x1 += 1; }
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
    svg.appendChild(el("svg:line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    svg.appendChild(el("svg:line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    for (const y of [y0, (y0 + y1) / 2, y1]) {
      svg.appendChild(el("svg:text", { x: L - 4, y: sy(y) + 3, "text-anchor": "end" }, format(y)));
    }
    const rounds = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
    const step = Math.max(1, Math.ceil(rounds.length / 8));
    rounds.filter((_, i) => i % step === 0 || i === rounds.length - 1).forEach((r) => {
      svg.appendChild(el("svg:text", { x: sx(r), y: H - 8, "text-anchor": "middle" }, String(r)));
    });
    series.forEach((s, i) => {
      const ps = s.points.filter((p) => p.y !== null && p.y !== undefined);
      if (kind === "bar") {
        const slot = (W - L - R) / (x1 - x0) * 0.8, w = slot / series.length;
        for (const p of ps) {
          const x = sx(p.x) - slot / 2 + i * w, y = sy(Math.max(p.y, 0));
          const bar = el("svg:rect", { class: s.cls, x: x, y: y, width: Math.max(1, w - 1), height: Math.max(0, sy(0) - y), "data-round": p.x, "data-value": p.y });
          bar.appendChild(el("svg:title", {}, s.label + " round " + p.x + ": " + format(p.y)));
          svg.appendChild(bar);
        }
        return;
      }
      if (ps.length > 1) {
        svg.appendChild(el("svg:polyline", { class: s.cls, points: ps.map((p) => sx(p.x) + "," + sy(p.y)).join(" ") }));
      }
      for (const p of ps) {
        const dot = el("svg:circle", { class: s.cls, cx: sx(p.x), cy: sy(p.y), r: 3, "data-round": p.x, "data-value": p.y });
        dot.appendChild(el("svg:title", {}, s.label + " round " + p.x + ": " + format(p.y)));
        svg.appendChild(dot);
      }
    });
  }

  function row(cells) {
    const tr = el("tr");
    for (const c of cells) {
      const td = el("td", c.attrs || {}, c.text);
      tr.appendChild(td);
    }
    return tr;
  }

  function replaceRows(table, rows) {
    const body = $(table).tBodies[0];
    while (body.firstChild) { body.removeChild(body.firstChild); }
    rows.forEach((r) => body.appendChild(r));
  }

  function render(s) {
    text("run-id", s.runId || "(starting)");
    text("model", s.model);
    text("strategy", s.strategy);
    const badge = $("run-state");
    text("run-state", s.state);
    badge.className = "badge " + s.state;
    text("stop-reason", s.stopReason || "");
    text("round", s.currentRound + " / " + s.totalRounds);
    text("round-progress", s.round ? s.round.results + " of " + s.round.selected + " results, " + s.round.failures + " failures" : "");
    text("completed", String(s.completedRounds));
    text("total", String(s.totalRounds));
    text("agents-online", String(s.agents.online));
    text("agents-known", String(s.agents.known));
    text("agents-revoked", String(s.agents.revoked));
    const last = s.rounds.length > 0 ? s.rounds[s.rounds.length - 1] : null;
    text("accuracy", last ? pct(last.testAccuracy) : "–");
    text("epsilon", s.privacy.enabled ? fmt(s.privacy.epsilon, 4) : "off");
    text("epsilon-budget", s.privacy.enabled ? "δ = " + s.privacy.delta + (s.privacy.budget ? ", budget " + s.privacy.budget : ", no budget") : "no differential privacy");
    text("rejected", String(s.rejectedTotal));

    const series = (key) => s.rounds.map((r) => ({ x: r.round, y: r[key] }));
    chart($("chart-accuracy"), [{ cls: "s0", label: "accuracy", points: series("testAccuracy") }], "line", (v) => (100 * v).toFixed(1) + "%");
    chart($("chart-loss"), [{ cls: "s0", label: "test loss", points: series("testLoss") }, { cls: "s1", label: "train loss", points: series("trainLoss") }], "line", (v) => v.toFixed(3));
    chart($("chart-bytes"), [{ cls: "s0", label: "up", points: series("bytesUp") }, { cls: "s1", label: "down", points: series("bytesDown") }], "bar", bytes);
    chart($("chart-epsilon"), [{ cls: "s0", label: "ε", points: series("epsilon") }], "line", (v) => v.toFixed(3));

    replaceRows("rounds-table", s.rounds.slice(-50).reverse().map((r) => row([
      { text: String(r.round) },
      { text: r.ok ? "yes" : "no", attrs: { class: r.ok ? "good" : "bad" } },
      { text: fmt(r.results, 0) }, { text: fmt(r.failures, 0) }, { text: fmt(r.rejected, 0), attrs: { class: r.rejected ? "bad" : "" } },
      { text: pct(r.testAccuracy) }, { text: fmt(r.testLoss, 4) },
      { text: bytes(r.bytesUp), attrs: { "data-value": r.bytesUp === null ? "" : r.bytesUp } },
      { text: bytes(r.bytesDown), attrs: { "data-value": r.bytesDown === null ? "" : r.bytesDown } },
      { text: fmt(r.epsilon, 4) }, { text: fmt(r.wallSeconds, 2) },
    ])));
    replaceRows("agents-table", s.agents.list.map((a) => row([
      { text: a.id },
      { text: a.revoked ? "revoked" : a.online ? "online" : "offline", attrs: { class: a.revoked ? "bad" : a.online ? "good" : "" } },
      { text: a.lastSeenSecondsAgo === null ? "–" : a.lastSeenSecondsAgo.toFixed(1) + " s ago" },
    ])));
    $("agents-truncated").hidden = !s.agents.truncated;
    text("updated", new Date(s.generatedAt).toLocaleTimeString());
    refreshMs = Math.max(200, s.refreshSeconds * 1000);
  }

  async function poll() {
    const error = $("error");
    try {
      const token = sessionStorage.getItem(TOKEN_KEY);
      const response = await fetch("api/state", { cache: "no-store", headers: token ? { Authorization: "Bearer " + token } : {} });
      if (response.status === 401) {
        throw new Error("this dashboard needs its access token: open it as " + location.pathname + "#token=...");
      }
      if (!response.ok) {
        throw new Error("api/state answered " + response.status);
      }
      render(await response.json());
      error.hidden = true;
    } catch (e) {
      error.textContent = "Cannot update: " + e.message;
      error.hidden = false;
    }
    setTimeout(poll, refreshMs);
  }

  poll();
})();
