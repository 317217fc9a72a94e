// The risk officer's cockpit (docs/cockpit.md). Vanilla JS, no framework: render a snapshot (embedded in the
// page, pushed over the websocket, or reloaded from /cockpit/snapshot), keep every panel's age ticking, and say
// plainly when the live feed or a backend is away. Every message from the socket carries `seq`: a gap, a `gap`
// message (the server saw one in the ingest's numbering) or a reconnect reloads the whole snapshot.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("cockpit-config").textContent);
  const $ = (id) => document.getElementById(id);
  let current = JSON.parse($("cockpit-snapshot").textContent);
  let receivedAt = Date.now();
  let lastSeq = null;
  let socketOpen = false;
  let closedAt = null;
  let loads = 0;
  let reloading = null;
  let reloadAgain = null;

  // -- small DOM helpers: text only, never markup from data --------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function table(headers, rows) {
    return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...rows));
  }
  const usd = (v) => (v === null || v === undefined ? "—" : "$" + Math.round(v).toLocaleString("en-US"));
  const when = (ts) => (ts ? ts.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—");  // to the second, UTC
  const pct = (v) => (v === null || v === undefined ? "—" : (v * 100).toFixed(2) + "%");
  function secondsSince(ts) {
    if (!ts || !current.now) return null;
    return (Date.parse(current.now) - Date.parse(ts)) / 1000 + (Date.now() - receivedAt) / 1000;
  }
  function ageText(s) {
    if (s === null) return "age unknown";
    if (s < 90) return Math.max(0, Math.round(s)) + " s old";
    if (s < 5400) return Math.round(s / 60) + " min old";
    return Math.round(s / 3600) + " h old";
  }
  function bar(fraction, label) {
    const width = fraction === null || fraction === undefined ? 0 : Math.min(1, Math.max(0, fraction)) * 100;
    const level = fraction >= 1 ? "over" : fraction >= 0.8 ? "near" : "ok";
    return el("div", { class: "bar " + (fraction === null || fraction === undefined ? "nolimit" : level) },
      el("div", { class: "fill", style: "width:" + width.toFixed(1) + "%" }), el("span", {}, label));
  }

  // -- panels --------------------------------------------------------------------------------------------------------
  const renderers = {
    trading(data, body) {
      body.appendChild(el("p", {}, data.version ? "Active policy v" + data.version : "No policy is active."));
      const rows = data.rows.map((r) => {
        const tr = el("tr", { "data-scope": r.scope, "data-key": r.key, class: "state-" + r.state },
          el("td", {}, r.scope), el("td", {}, r.key || "—"), el("td", { class: "state" }, r.state));
        const acts = el("td", {});
        if (cfg.can_act) {
          if (r.state !== "halted") acts.appendChild(el("button", { type: "button", class: "halt", onclick: () => act(r, "halt") }, "Halt"));
          if (r.state !== "active") acts.appendChild(el("button", { type: "button", class: "release", onclick: () => act(r, "release") }, "Release"));
        }
        tr.appendChild(acts);
        return tr;
      });
      body.appendChild(table(["scope", "key", "state", ""], rows));
      if (data.pending.length) body.appendChild(el("p", { class: "warn" }, "Sent by signed NATS notice only (Redis was away), to be written when it returns: " +
        data.pending.map((p) => "v" + p.version + " " + p.scope + " " + (p.key || "") + " → " + p.state).join("; ")));
      if (data.release_requests.length) body.appendChild(el("p", { class: "warn" }, "Global release waiting for a second officer (press Release on the global row to confirm): " +
        data.release_requests.map((r) => "v" + r.version + " by " + r.by).join("; ")));
      else if (data.second_officer) body.appendChild(el("p", { class: "hint" }, "Releasing the global state takes two risk officers: the first Release is a request, a second officer's Release confirms it."));
    },
    gates(data, body) {
      if (!data.gates.length) body.appendChild(el("p", { class: "warn" }, "No live gate: no verified heartbeat in Redis."));
      else body.appendChild(table(["gate", "heartbeat age", "policy", "state", "latches", "shed"], data.gates.map((g) =>
        el("tr", { "data-gate": g.gate_id }, el("td", {}, g.gate_id), el("td", { class: "gate-age", "data-age": g.age_s }, g.age_s + " s"),
          el("td", {}, g.policy_version === null ? "none" : "v" + g.policy_version), el("td", { class: "state" }, g.trading_state || "—"),
          el("td", {}, g.latches.length ? g.latches.join(", ") : "none"), el("td", {}, g.shed)))));
      if (data.unverified.length) body.appendChild(el("p", { class: "warn" }, data.unverified.length + " heartbeat(s) not verified (never counted live): " +
        data.unverified.slice(0, 5).map((u) => u.gate_id + ": " + u.problem).join("; ")));
    },
    book(data, body) {
      if (data.missing) { body.appendChild(el("p", { class: "warn" }, data.missing)); return; }
      const t = data.total;
      body.appendChild(el("p", {}, "Equity " + usd(data.equity_usd)));
      body.appendChild(el("div", { class: "bar-row", "data-symbol": "total" }, el("b", {}, "total"),
        bar(t.fraction, usd(t.usd) + (t.limit ? " of " + usd(t.limit) : " (no limit)"))));
      for (const s of data.symbols) body.appendChild(el("div", { class: "bar-row", "data-symbol": s.symbol }, el("span", {}, s.symbol),
        bar(s.fraction, usd(s.usd) + (s.limit ? " of " + usd(s.limit) : " (no limit)"))));
      const d = data.daily_loss, w = data.drawdown;
      body.appendChild(el("div", { class: "bar-row" }, el("b", {}, "daily loss"),
        bar(d.fraction, d.usd === null ? "PnL unknown" : usd(d.usd) + (d.limit_usd ? " of " + usd(d.limit_usd) : " (no USD limit)") + (d.limit_pct ? ", limit " + pct(d.limit_pct) + " of the day's equity" : ""))));
      body.appendChild(el("div", { class: "bar-row" }, el("b", {}, "drawdown"),
        bar(w.fraction, pct(w.pct) + (w.limit_pct ? " of " + pct(w.limit_pct) : " (no limit)"))));
      body.appendChild(el("p", { class: data.latches.length ? "warn" : "" }, data.latches.length
        ? "Latches holding: " + data.latches.map((l) => l.id + " (" + l.observed + " ≥ " + l.limit + ")").join("; ")
        : "No latch holding."));
    },
    decisions(data, body) {
      drawChart(data.per_second);
      const l = data.latency_us;
      body.appendChild(el("p", {}, "Decision latency (gate-measured, audit records of the last minute, n=" + l.n + "): p50 " +
        (l.p50 ?? "—") + " µs, p95 " + (l.p95 ?? "—") + " µs, p99 " + (l.p99 ?? "—") + " µs" + (data.truncated ? " (newest 500 only)" : "")));
      const strategies = Object.entries(data.by_strategy);
      body.appendChild(el("h3", {}, "Per strategy, last 5 min"));
      body.appendChild(strategies.length ? table(["strategy", "approved", "rejected", "retry-safe"], strategies.map(([k, v]) =>
        el("tr", {}, el("td", {}, k), el("td", {}, v.APPROVED || 0), el("td", {}, v.REJECTED || 0), el("td", {}, v.RETRY_SAFE || 0))))
        : el("p", {}, "No decisions."));
      const reasons = Object.entries(data.by_reason);
      body.appendChild(el("h3", {}, "Top reason codes, last 5 min"));
      body.appendChild(reasons.length ? el("ol", { class: "reasons" }, ...reasons.map(([k, v]) => el("li", {}, k + ": " + v))) : el("p", {}, "None."));
      const live = $("live-decisions");
      for (const d of data.recent.slice().reverse()) addDecision(d, "snapshot");
      while (live.children.length > 50) live.removeChild(live.lastChild);
    },
    alerts(data, body) {
      body.appendChild(el("h3", {}, "Alerts not acknowledged"));
      body.appendChild(data.alerts.length ? table(["time", "severity", "source", "title", ""], data.alerts.map((a) =>
        el("tr", { "data-alert": a.alert_id, class: "sev-" + a.severity }, el("td", {}, when(a.ts)), el("td", {}, a.severity), el("td", {}, a.source), el("td", {}, a.title),
          el("td", {}, cfg.can_acknowledge ? el("button", { type: "button", onclick: () => acknowledge(cfg.ack_url.replace("ALERT_ID", encodeURIComponent(a.alert_id))) }, "Acknowledge") : ""))))
        : el("p", {}, "None."));
      body.appendChild(el("h3", {}, "Open incidents"));
      body.appendChild(data.incidents.length ? table(["detected", "gate", "title", "status", ""], data.incidents.map((i) =>
        el("tr", { "data-incident": i.incident_id, class: "sev-" + i.severity }, el("td", {}, when(i.ts)), el("td", {}, i.gate_id), el("td", {}, i.title),
          el("td", { class: "status" }, i.status + (i.owner ? " (" + i.owner + ")" : "")),
          el("td", {}, cfg.can_acknowledge && i.status === "open" ? el("button", { type: "button", onclick: () => acknowledge(cfg.incident_ack_url.replace("INCIDENT_ID", encodeURIComponent(i.incident_id))) }, "Acknowledge") : ""))))
        : el("p", {}, "None."));
    },
    strategist(data, body) {
      const c = data.latest;
      body.appendChild(c ? el("div", {}, el("p", {}, "Latest thought " + when(c.started_at) + " (" + c.trigger + ", " + c.brain + "): " + c.outcome +
        (c.proposal ? ", proposed v" + c.proposal : "")), el("blockquote", {}, c.rationale || "(no rationale)")) : el("p", {}, "No cycle yet."));
      body.appendChild(el("h3", {}, "Waiting for review"));
      body.appendChild(data.proposals.length ? table(["version", "by", "at", "rationale"], data.proposals.map((p) =>
        el("tr", {}, el("td", {}, el("a", { href: cfg.admin_url + "policies/policyversion/?version=" + p.version }, "v" + p.version)),
          el("td", {}, p.by || p.proposer_kind), el("td", {}, when(p.at)), el("td", {}, p.rationale)))) : el("p", {}, "Nothing waiting."));
    },
  };

  function render(snap) {
    current = snap;
    receivedAt = Date.now();
    for (const [name, panel] of Object.entries(snap.panels)) {
      const section = document.querySelector('[data-panel="' + name + '"]');
      if (!section) continue;
      const body = section.querySelector(".panel-body"), error = section.querySelector(".panel-error");
      section.dataset.ts = panel.data_ts || "";
      section.querySelector(".source").textContent = "from " + panel.source;
      section.classList.toggle("degraded", !panel.ok);
      error.hidden = panel.ok;
      error.textContent = panel.ok ? "" : panel.error + " — showing nothing from it rather than stale figures.";
      body.textContent = "";
      if (panel.ok) {
        try { renderers[name](panel.data, body); } catch (e) { error.hidden = false; error.textContent = "could not show this panel: " + e; }
      }
    }
    const away = Object.values(snap.panels).filter((p) => !p.ok).map((p) => p.source);
    $("backend-banner").hidden = !away.length;
    $("backend-banner").textContent = away.length ? "Degraded: " + away.join(", ") + " unavailable; the other panels are live." : "";
    tick();
  }

  function tick() {
    for (const section of document.querySelectorAll("[data-panel]")) {
      const ts = section.dataset.ts;
      section.querySelector(".age").textContent = ts ? "· " + ageText(secondsSince(ts)) : "";
    }
    const banner = $("banner");
    if (socketOpen) { banner.hidden = true; return; }
    banner.hidden = false;
    banner.textContent = "Live updates are down (the websocket is " + (closedAt ? "closed" : "connecting") +
      "): the figures below are from " + when(current.now) + " and age as shown; reconnecting…";
  }

  // -- the chart: stacked bars, one per second -----------------------------------------------------------------
  function drawChart(buckets) {
    const svg = $("rate-chart"), ns = "http://www.w3.org/2000/svg";
    svg.textContent = "";
    const max = Math.max(1, ...buckets.map((b) => b.APPROVED + b.REJECTED + b.RETRY_SAFE));
    const w = 600 / buckets.length, h = 110;
    buckets.forEach((b, i) => {
      let y = h;
      for (const [k, cls] of [["APPROVED", "approved"], ["REJECTED", "rejected"], ["RETRY_SAFE", "retry"]]) {
        if (!b[k]) continue;
        const bh = (b[k] / max) * (h - 10);
        y -= bh;
        const r = document.createElementNS(ns, "rect");
        r.setAttribute("x", (i * w + 1).toFixed(1)); r.setAttribute("y", y.toFixed(1));
        r.setAttribute("width", Math.max(1, w - 2).toFixed(1)); r.setAttribute("height", bh.toFixed(1));
        r.setAttribute("class", cls);
        svg.appendChild(r);
      }
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", "4"); label.setAttribute("y", "118"); label.setAttribute("class", "axis");
    label.textContent = "last 60 s · peak " + max + "/s";
    svg.appendChild(label);
  }

  function addDecision(d, via) {
    const live = $("live-decisions");
    const shown = live.querySelector('[data-decision-id="' + CSS.escape(d.decision_id) + '"]');
    if (shown) { if (via === "live") shown.dataset.via = via; return; }  // the feed announced it: say so
    live.insertBefore(el("tr", { "data-decision-id": d.decision_id, "data-via": via, class: "d-" + d.decision },
      el("td", {}, when(d.ts)), el("td", {}, d.decision), el("td", {}, d.strategy_id || "—"), el("td", {}, d.symbol || "—"),
      el("td", {}, (d.reason_codes || []).join(", ") || "—"), el("td", {}, d.latency_us + " µs")), live.firstChild);
    while (live.children.length > 50) live.removeChild(live.lastChild);
  }

  // -- reloads and the socket --------------------------------------------------------------------------------------
  function reload(why) {
    if (reloading) { reloadAgain = why; return reloading; }  // once more when this one is done, for the latest reason
    reloading = fetch(cfg.snapshot_url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then((snap) => { render(snap); loads += 1; $("snapshot-loads").textContent = loads; $("snapshot-note").textContent = "(last: " + why + ")"; })
      .catch((e) => { $("snapshot-note").textContent = "(snapshot reload failed: " + e.message + ")"; })
      .finally(() => { reloading = null; if (reloadAgain) { const next = reloadAgain; reloadAgain = null; reload(next); } });
    return reloading;
  }

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + cfg.ws_path);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (lastSeq !== null && m.seq !== lastSeq + 1) reload("missed message " + (lastSeq + 1));
      lastSeq = m.seq;
      if (m.type === "hello") {
        socketOpen = true; $("live-state").textContent = "connected"; tick();
        reload(closedAt ? "reconnected" : "connected");
      } else if (m.type === "panels") { render(m); }
      else if (m.type === "decisions") { m.decisions.forEach((d) => addDecision(d, "live")); }
      else if (m.type === "gap") { reload("the feed dropped a message"); }
    };
    ws.onclose = () => {
      socketOpen = false; lastSeq = null; closedAt = Date.now();
      $("live-state").textContent = "disconnected"; tick();
      setTimeout(connect, 1000);
    };
  }
  // While the socket is down (the web process restarting, or Redis away: Channels cannot run a socket without its
  // layer) the panels are still read, from the snapshot endpoint, so each says what is away and how old it is.
  function pollWhileDown() {
    if (!socketOpen && closedAt) reload("polled: the live feed is down");
  }

  // -- acts ------------------------------------------------------------------------------------------------------
  function post(url, fields) {
    const body = new URLSearchParams(fields);
    const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
    return fetch(url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token }, body })
      .then((r) => r.json().catch(() => ({ ok: false, message: "HTTP " + r.status })));
  }
  function act(row, action) {
    const reason = $("trading-reason").value.trim(), out = $("trading-result");
    if (!reason) { out.className = "result error"; out.textContent = "Give a reason first: it is recorded with the change."; return; }
    out.className = "result"; out.textContent = action + " " + row.scope + " " + (row.key || "") + "…";
    post(cfg.trading_url, { scope: row.scope, key: row.key, action, reason }).then((a) => {
      out.className = "result " + (a.ok ? "ok" : "error");
      out.textContent = a.ok ? a.message : (a.code || "ERROR") + ": " + a.message;
      reload(action);
    });
  }
  function acknowledge(url) {
    const out = $("alerts-result");
    post(url, {}).then((a) => {
      out.className = "result " + (a.ok ? "ok" : "error");
      out.textContent = a.ok ? a.message : (a.code || "ERROR") + ": " + a.message;
      reload("acknowledged");
    });
  }

  if ($("other-halt")) $("other-halt").addEventListener("click", () => act({ scope: $("other-scope").value, key: $("other-key").value.trim() }, "halt"));
  render(current);
  setInterval(tick, 1000);
  setInterval(pollWhileDown, Math.max(2, cfg.push_s * 2) * 1000);
  connect();
})();
