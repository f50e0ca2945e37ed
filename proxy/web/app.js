// HashRelay dashboard: polls the status API every 5 s and renders it.
// All text from the API goes in through text nodes or setAttribute, never parsed
// as markup: worker names and user agents come from miners.
"use strict";
(function () {
  var REFRESH_MS = 5000, PER_PAGE = 100, LIVE_MAX = 720;
  var STATES = ["ok", "idle", "degraded", "not_rolling", "rejected", "offline", "curtailed"];
  var SVG = "http://www.w3.org/2000/svg";

  var view = { page: 1, sort: "name", name: "", state: "" };
  var hist = [], live = [], total = 0, timer = 0, refreshes = 0;
  // Fleet power: history points [t, kW, curtailing 0/1], and live points likewise.
  var phist = [], plive = [];

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    for (var k in attrs) if (attrs[k] != null) e.setAttribute(k, attrs[k]);
    [].concat(kids == null ? [] : kids).forEach(function (c) {
      e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    });
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text != null) e.textContent = text;
    return e;
  }
  function setText(id, v) { var e = $(id); if (e) e.textContent = v; }
  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }

  // Formatting.
  var UNITS = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"];
  function hashrate(h) {
    h = num(h);
    if (h <= 0) return "0 H/s";
    var i = 0;
    while (h >= 1000 && i < UNITS.length - 1) { h /= 1000; i++; }
    return (h >= 100 ? h.toFixed(0) : h >= 10 ? h.toFixed(1) : h.toFixed(2)) + " " + UNITS[i];
  }
  function count(n) { return num(n).toLocaleString("en-US"); }
  function fixed3(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }
  function power(kw) {
    kw = num(kw);
    if (kw <= 0) return "0 W";
    if (kw < 1) return fixed3(kw * 1000) + " W";
    return kw < 1000 ? fixed3(kw) + " kW" : fixed3(kw / 1000) + " MW";
  }
  function energy(kwh) {
    kwh = num(kwh);
    if (kwh < 1) return fixed3(kwh * 1000) + " Wh";
    return kwh < 1000 ? fixed3(kwh) + " kWh" : fixed3(kwh / 1000) + " MWh";
  }
  function jth(j) { j = num(j); return j > 0 ? (j < 1000 ? j.toFixed(1) : diff(j)) + " J/TH" : "—"; }
  function diff(d) {
    d = num(d);
    if (d === 0) return "0";
    if (d < 0.001) return d.toExponential(2);
    if (d < 1000) return String(+d.toPrecision(4));
    var s = ["", "k", "M", "G", "T", "P", "E"], i = 0;
    while (d >= 1000 && i < s.length - 1) { d /= 1000; i++; }
    return +d.toPrecision(3) + s[i];
  }
  function duration(sec) {
    sec = Math.max(0, Math.floor(num(sec)));
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  function ago(iso) {
    var t = Date.parse(iso);
    if (!iso || isNaN(t) || t <= 0 || iso.indexOf("0001-") === 0) return "never";
    var s = (Date.now() - t) / 1000;
    return s < 1 ? "just now" : duration(s) + " ago";
  }
  function sum(m) { var n = 0; for (var k in m || {}) n += num(m[k]); return n; }
  function breakdown(m) {
    var parts = [];
    for (var k in m || {}) if (m[k]) parts.push(k + ": " + m[k]);
    return parts.join(", ");
  }
  function clock(t) {
    var d = new Date(t * 1000);
    return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
  }
  function badge(state) {
    state = String(state || "unknown");
    var cls = /^[a-z_]+$/.test(state) ? state : "unknown";
    return el("span", { "class": "badge state-" + cls }, state.replace(/_/g, " "));
  }

  // Fetching.
  function get(url) {
    return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(function (r) {
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (b) {
        throw new Error(url.split("?")[0] + ": " + (b.error || "HTTP " + r.status));
      });
      return r.json();
    });
  }
  function workersURL() {
    var q = new URLSearchParams({ page: view.page, per_page: PER_PAGE, sort: view.sort });
    if (view.name) q.set("name", view.name);
    if (view.state) q.set("state", view.state);
    return "/api/v1/workers?" + q.toString();
  }

  function refresh() {
    clearTimeout(timer);
    var jobs = [
      get("/api/v1/summary").then(renderSummary),
      get("/api/v1/upstreams").then(renderUpstreams),
      refreshWorkers()
    ];
    Promise.allSettled(jobs).then(function (rs) {
      var bad = rs.filter(function (r) { return r.status === "rejected"; });
      var st = $("status");
      refreshes++;
      document.body.setAttribute("data-refreshes", refreshes);
      if (bad.length) {
        st.className = "status error";
        st.textContent = "API error: " + bad[0].reason.message + " (retrying)";
        st.title = bad.map(function (r) { return r.reason.message; }).join("\n");
      } else {
        st.className = "status live";
        st.textContent = "live · " + new Date().toLocaleTimeString("en-GB");
        st.title = "";
      }
      timer = setTimeout(refresh, REFRESH_MS);
    });
  }
  function refreshWorkers() {
    var want = workersURL();
    return get(want).then(function (b) { if (want === workersURL()) renderWorkers(b); });
  }

  // Summary and chart.
  function renderSummary(s) {
    setText("version", s.version || "dev");
    setText("uptime", duration(s.uptime_seconds));
    setText("fleet-hashrate", hashrate(s.hashrate_5m));
    setText("hashrate-1m", hashrate(s.hashrate_1m));
    setText("hashrate-1h", hashrate(s.hashrate_1h));
    setText("hashrate-24h", hashrate(s.hashrate_24h));
    setText("miners", count(s.miners_connected));
    var ups = s.upstreams || {};
    setText("upstreams-up", count(ups.up) + " of " + count(ups.total));
    setText("accepted", count(s.accepted));
    setText("rejected", count(s.rejected));
    $("rejected").className = num(s.rejected) ? "bad" : "";
    setText("upstream-accepted", count(s.upstream_accepted));
    setText("upstream-rejected", count(s.upstream_rejected));
    setText("shares-lost", count(s.shares_lost));
    setText("block-candidates", count(s.block_candidates));
    document.title = hashrate(s.hashrate_5m) + " · HashRelay";
    renderStates(s.workers || {});

    renderEnergy(s.energy || {}, s.curtailment || {});

    hist = (s.hashrate_history || []).filter(function (p) { return p && isFinite(p[0]) && isFinite(p[1]); });
    phist = (s.power_history || []).filter(function (p) { return p && isFinite(p[0]) && isFinite(p[1]); });
    var now = Date.now() / 1000;
    live.push([now, num(s.hashrate_1m)]);
    if (live.length > LIVE_MAX) live.shift();
    if (s.energy) {
      plive.push([now, num(s.energy.power_kw), s.curtailment && s.curtailment.active ? 1 : 0]);
      if (plive.length > LIVE_MAX) plive.shift();
    }
    renderChart();
  }

  function renderEnergy(e, c) {
    setText("fleet-power", power(e.power_kw));
    setText("fleet-jth", jth(e.joules_per_th));
    setText("fleet-energy", energy(e.energy_kwh));
    var st = $("curtail-status");
    st.textContent = c.active ? "active" : "none";
    st.className = "value" + (c.active ? " curtail-on" : "");
    setText("curtail-cause", c.active && c.cause ? c.cause : "—");
    setText("curtail-target", c.active ? power(c.target_kw) : "—");
    setText("curtail-shed", power(c.shed_kw));
    setText("curtail-workers", count(c.curtailed_workers));
    setText("curtailed-energy", energy(e.curtailed_kwh));
  }

  function renderStates(w) {
    setText("workers-total", count(w.total));
    var box = $("state-counts");
    box.textContent = "";
    STATES.forEach(function (st) {
      var b = badge(st);
      b.appendChild(el("span", { "class": "n" }, count(w[st])));
      var btn = el("button", { type: "button", "data-state": st, "aria-pressed": view.state === st ? "true" : "false",
        title: "Show only " + st.replace(/_/g, " ") + " workers" }, b);
      btn.addEventListener("click", function () {
        $("worker-state").value = view.state === st ? "" : st;
        applyFilters();
      });
      box.appendChild(btn);
    });
  }

  // merge joins a history and its live points, the live ones only past the last
  // history point (and trimmed to the last minute before it).
  function merge(h, l) {
    var last = h.length ? h[h.length - 1][0] : -Infinity;
    l = l.filter(function (p) { return p[0] > last - 60; });
    return { pts: h.concat(l.filter(function (p) { return p[0] > last; })), live: l };
  }
  function series() { var m = merge(hist, live); live = m.live; return m.pts; }
  function powerSeries() { var m = merge(phist, plive); plive = m.live; return m.pts; }

  // curtailBands returns the time spans [from, to] during which curtailment was
  // active: each power point marked active holds until the next point (or for a
  // minute, the history's step, if it is the last).
  function curtailBands(pts) {
    var bands = [];
    pts.forEach(function (p, i) {
      if (!p[2]) return;
      var to = i + 1 < pts.length ? pts[i + 1][0] : p[0] + 60;
      var b = bands[bands.length - 1];
      if (b && p[0] <= b[1]) b[1] = Math.max(b[1], to);
      else bands.push([p[0], to]);
    });
    return bands;
  }

  function niceStep(max, n) {
    var raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
  }

  function renderChart() {
    var ppts = powerSeries(), bands = curtailBands(ppts), pts = series();
    drawChart($("chart"), pts, { label: "Fleet hashrate over time", fmt: hashrate, empty: "No hashrate history yet",
      note: "chart-note", bands: bands, noteText: hist.length + " min of history" + (live.length ? " + live" : "") });
    drawChart($("power-chart"), ppts, { label: "Estimated fleet power over time, curtailment shaded", fmt: power,
      empty: "No power history yet", note: "power-chart-note", bands: bands,
      noteText: bands.length ? bands.length + " curtailment period" + (bands.length > 1 ? "s" : "") : phist.length + " min of history" });
  }

  // drawChart draws pts ([t, value, ...]) into box as an area chart with a time
  // axis, shading the time spans in opts.bands.
  function drawChart(box, pts, opts) {
    if (!box) return;
    var W = Math.max(300, box.clientWidth || 900), H = Math.max(120, box.clientHeight || 170);
    var L = 70, R = 12, T = 10, B = 22;
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label });
    box.textContent = "";
    box.appendChild(root);
    if (!pts.length) {
      root.appendChild(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "empty" }, opts.empty));
      setText(opts.note, "");
      return;
    }
    var fmt = opts.fmt;
    var t1 = pts[pts.length - 1][0], t0 = Math.min(pts[0][0], t1 - 300);
    var max = 0;
    pts.forEach(function (p) { if (p[1] > max) max = p[1]; });
    var step = max > 0 ? niceStep(max * 1.05, 5) : 1, top = max > 0 ? Math.ceil(max * 1.05 / step) * step : 4;
    function x(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function y(v) { return T + (1 - v / top) * (H - T - B); }

    (opts.bands || []).forEach(function (b) {
      var from = Math.max(x(b[0]), L), to = Math.min(x(b[1]), W - R);
      if (to < L || from > W - R) return;
      root.appendChild(svg("rect", { x: from.toFixed(1), y: T, width: Math.max(to - from, 3).toFixed(1), height: H - T - B,
        "class": "curtail-band", "data-from": b[0], "data-to": b[1] }));
    });
    for (var v = 0; v <= top + step / 2; v += step) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), "class": v ? "grid-line" : "axis-line" }));
      root.appendChild(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, max > 0 ? fmt(v) : v ? "" : "0"));
    }
    var spans = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];
    var tick = spans.filter(function (s) { return (t1 - t0) / s <= 8; })[0] || 86400;
    for (var t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
      root.appendChild(svg("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, "class": "axis-line" }));
      root.appendChild(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle" }, clock(t)));
    }

    var d = "";
    pts.forEach(function (p, i) { d += (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1); });
    if (pts.length === 1) d += "h1";
    root.appendChild(svg("path", { d: d + "L" + x(pts[pts.length - 1][0]).toFixed(1) + " " + y(0) + "L" + x(pts[0][0]).toFixed(1) + " " + y(0) + "Z", "class": "area" }));
    root.appendChild(svg("path", { d: d, "class": "line" }));
    var lastP = pts[pts.length - 1];
    root.appendChild(svg("circle", { cx: x(lastP[0]), cy: y(lastP[1]), r: 3, "class": "live" }));
    setText(opts.note, opts.noteText);

    var cursor = svg("line", { y1: T, y2: H - B, "class": "cursor", visibility: "hidden" });
    var tip = svg("text", { y: T + 12, "class": "tip", visibility: "hidden" });
    root.appendChild(cursor);
    root.appendChild(tip);
    root.addEventListener("mousemove", function (ev) {
      var r = root.getBoundingClientRect(), px = (ev.clientX - r.left) * W / r.width;
      var t = t0 + (px - L) / (W - L - R) * (t1 - t0), best = pts[0];
      pts.forEach(function (p) { if (Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p; });
      var bx = x(best[0]);
      cursor.setAttribute("x1", bx); cursor.setAttribute("x2", bx); cursor.setAttribute("visibility", "visible");
      tip.textContent = clock(best[0]) + "  " + fmt(best[1]) + (best[2] ? "  (curtailed)" : "");
      tip.setAttribute("x", bx > W / 2 ? bx - 8 : bx + 8);
      tip.setAttribute("text-anchor", bx > W / 2 ? "end" : "start");
      tip.setAttribute("visibility", "visible");
    });
    root.addEventListener("mouseleave", function () {
      cursor.setAttribute("visibility", "hidden"); tip.setAttribute("visibility", "hidden");
    });
  }

  // Upstreams.
  function renderUpstreams(b) {
    var body = $("upstreams").tBodies[0], rows = b.upstreams || [];
    body.textContent = "";
    if (!rows.length) body.appendChild(el("tr", null, el("td", { colspan: 9, "class": "empty" }, "No upstream pools configured")));
    rows.forEach(function (u) {
      var rej = el("td", { "class": "num", title: breakdown(u.rejects) || null }, count(u.shares_rejected));
      body.appendChild(el("tr", { "data-state": u.state, "data-index": u.index }, [
        el("td", { "class": "dim" }, String(num(u.index))),
        el("td", { "class": "pool", title: u.pool }, u.pool || ""),
        el("td", null, badge(u.state)),
        el("td", { "class": "num" }, count(u.slots)),
        el("td", { "class": "num" }, u.latency_ms ? num(u.latency_ms).toFixed(1) + " ms" : "—"),
        el("td", { "class": "num" }, diff(u.difficulty)),
        el("td", { "class": "num" }, count(u.shares_accepted)),
        rej,
        el("td", { "class": "num" }, count(u.switches))
      ]));
    });
  }

  // Workers.
  function renderWorkers(b) {
    var body = $("workers").tBodies[0], rows = b.workers || [];
    total = num(b.total) || rows.length;
    body.textContent = "";
    if (!rows.length) body.appendChild(el("tr", null, el("td", { colspan: 13, "class": "empty" },
      view.name || view.state ? "No workers match the filter" : "No workers yet")));
    rows.forEach(function (w) {
      var rolling = w.rolling ? (w.rolling_active ? "yes" : "idle") : "no", e = w.energy || null;
      body.appendChild(el("tr", { "data-worker": w.name, "data-state": w.state }, [
        el("td", { "class": "name", title: w.name + (w.remote_addr ? " @ " + w.remote_addr : "") }, w.name || ""),
        el("td", null, badge(w.state)),
        el("td", { "class": "num" }, hashrate(w.hashrate_5m != null ? w.hashrate_5m : w.hashrate)),
        el("td", { "class": "num dim" }, hashrate(w.hashrate_24h)),
        el("td", { "class": "num", title: e ? (e.model ? "model " + e.model + ", " : "") + energy(e.energy_kwh) +
          (num(e.curtailed_seconds) ? ", curtailed " + duration(e.curtailed_seconds) + " (" + energy(e.curtailed_kwh) + " saved)" : "") : null },
          e ? power(e.power_kw) : "—"),
        el("td", { "class": "num" }, e ? jth(e.joules_per_th) : "—"),
        el("td", { "class": "num" }, diff(w.difficulty)),
        el("td", { "class": "num" }, count(w.accepted)),
        el("td", { "class": "num" + (sum(w.rejected) ? " bad" : ""), title: breakdown(w.rejected) || null }, count(sum(w.rejected))),
        el("td", { title: w.last_share || null }, ago(w.last_share)),
        el("td", { "class": "num" }, count(w.connections)),
        el("td", { "class": "agent", title: w.user_agent || null }, w.user_agent || "—"),
        el("td", { title: w.version_mask ? "mask " + w.version_mask : null, "class": w.rolling ? "" : "dim" }, rolling)
      ]));
    });
    var page = num(b.page) || view.page, per = num(b.per_page) || PER_PAGE;
    var from = total ? (page - 1) * per + 1 : 0, to = Math.min(total, (page - 1) * per + rows.length);
    setText("workers-range", total ? from + "–" + to + " of " + count(total) : "0 workers");
    $("prev-page").disabled = page <= 1;
    $("next-page").disabled = page * per >= total;
  }

  // The view (sort, filters, page) lives in the URL fragment, so a link or a
  // reload shows the same table: #sort=-hashrate&state=idle&name=rig&page=2.
  function saveView() {
    var q = new URLSearchParams();
    if (view.sort !== "name") q.set("sort", view.sort);
    if (view.name) q.set("name", view.name);
    if (view.state) q.set("state", view.state);
    if (view.page > 1) q.set("page", view.page);
    var h = q.toString();
    window.history.replaceState(null, "", h ? "#" + h : location.pathname + location.search);
  }
  function loadView() {
    var q = new URLSearchParams(location.hash.slice(1));
    var sort = q.get("sort") || "name";
    view.sort = document.querySelector('#workers th[data-sort="' + sort.replace(/^-/, "").replace(/[^a-z_]/g, "") + '"]') ? sort : "name";
    view.name = q.get("name") || "";
    view.state = STATES.indexOf(q.get("state")) >= 0 ? q.get("state") : "";
    view.page = Math.max(1, parseInt(q.get("page"), 10) || 1);
    $("worker-search").value = view.name;
    $("worker-state").value = view.state;
    markSort();
  }
  function markSort() {
    document.querySelectorAll("#workers th[data-sort]").forEach(function (th) {
      var k = th.getAttribute("data-sort");
      th.setAttribute("aria-sort", k !== view.sort.replace(/^-/, "") ? "none" : view.sort[0] === "-" ? "descending" : "ascending");
    });
  }
  function showPage() { saveView(); refreshWorkers().catch(showError); }

  function setSort(key) {
    var cur = view.sort.replace(/^-/, ""), desc = view.sort[0] === "-";
    // Numbers read best largest first; names and states A to Z.
    var firstDesc = ["hashrate", "accepted", "rejected", "last_share", "connections", "power"].indexOf(key) >= 0;
    view.sort = key === cur ? (desc ? key : "-" + key) : (firstDesc ? "-" + key : key);
    view.page = 1;
    markSort();
    showPage();
  }

  function applyFilters() {
    view.name = $("worker-search").value.trim();
    view.state = $("worker-state").value;
    view.page = 1;
    document.querySelectorAll("#state-counts button").forEach(function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-state") === view.state ? "true" : "false");
    });
    showPage();
  }

  function showError(err) {
    var st = $("status");
    st.className = "status error";
    st.textContent = "API error: " + err.message;
  }

  function init() {
    document.querySelectorAll("#workers th[data-sort]").forEach(function (th) {
      th.querySelector("button").addEventListener("click", function () { setSort(th.getAttribute("data-sort")); });
    });
    var debounce = 0;
    $("worker-search").addEventListener("input", function () { clearTimeout(debounce); debounce = setTimeout(applyFilters, 250); });
    $("worker-state").addEventListener("change", applyFilters);
    $("worker-filters").addEventListener("submit", function (e) { e.preventDefault(); applyFilters(); });
    $("prev-page").addEventListener("click", function () { if (view.page > 1) { view.page--; showPage(); } });
    $("next-page").addEventListener("click", function () { if (view.page * PER_PAGE < total) { view.page++; showPage(); } });
    window.addEventListener("hashchange", function () { loadView(); refreshWorkers().catch(showError); });
    loadView();
    var rt = 0;
    window.addEventListener("resize", function () { clearTimeout(rt); rt = setTimeout(renderChart, 100); });
    renderChart();
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
