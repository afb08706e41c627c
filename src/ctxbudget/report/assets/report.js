/* ctxbudget offline report: draws the charts from the JSON embedded in the page.
 *
 * No libraries and no network: every chart is plain SVG built here, and only the selected
 * session's charts are drawn (reports can hold hundreds of sessions). The tables are
 * rendered by Python; this script makes them sortable and links session names to the
 * picker.
 *
 * Contract with the tests (tests/test_report_html.py):
 *   - each <figure data-chart> gets data-rendered = the number of marks drawn
 *     (composition: one path.series per component; context: one path.line per policy plus
 *     one g.marker per compaction; cost: one path.line per policy; retention: one rect.bar
 *     per policy with a known retention);
 *   - every chart <svg> carries data-plot="left,top,width,height" and data-y-max (the top
 *     of the y axis) so a test can turn a pixel back into a value;
 *   - body[data-rendered="1"] once every chart has been drawn; errors are never silent:
 *     they are written into #report-errors and counted in body[data-errors].
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  // Okabe-Ito (colour-blind safe), then Paul Tol's "muted" and "light" sets for long
  // component lists (a session of many tools); past 26 names the colours repeat.
  var PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#332288", "#882255", "#44AA99", "#999933", "#88CCEE", "#CC6677", "#DDCC77", "#117733",
    "#AA4499", "#77AADD", "#EE8866", "#EEDD88", "#FFAABB", "#99DDFF", "#44BB99", "#BBCC33",
    "#AAAA00", "#DDDDDD",
  ];
  // Line dash per policy, so lines differ by more than colour.
  var DASHES = ["", "7 3", "2 3", "9 3 2 3", "4 4", "1 2", "12 4"];
  var MARGIN = { top: 14, right: 20, bottom: 46, left: 72 };

  var data = null;
  var errorCount = 0;
  var lastWidth = 0;

  // ---- errors -------------------------------------------------------------------------

  function reportError(where, err) {
    errorCount += 1;
    var box = document.getElementById("report-errors");
    var message = where + ": " + (err && err.stack ? err.stack : String(err));
    if (box) {
      box.hidden = false;
      box.textContent += (box.textContent ? "\n" : "") + message;
    }
    document.body.dataset.errors = String(errorCount);
    if (window.console) console.error("ctxbudget report: " + message);
  }

  window.addEventListener("error", function (event) {
    reportError("uncaught error", event.error || event.message);
  });

  // ---- formatting ---------------------------------------------------------------------

  function trim(text) {
    return text.indexOf(".") >= 0 ? text.replace(/\.?0+$/, "") : text;
  }

  /** 0, 950, 12K, 1.25M, 3B: compact numbers for axis ticks. */
  function compact(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return trim((v / 1e9).toFixed(2)) + "B";
    if (a >= 1e6) return trim((v / 1e6).toFixed(2)) + "M";
    if (a >= 1e3) return trim((v / 1e3).toFixed(2)) + "K";
    return trim(v.toFixed(2));
  }

  /** $0.42, $0.005, $12, $1.5K: dollar ticks with as many decimals as the step needs. */
  function usdTick(v, step) {
    if (Math.abs(v) >= 1000) return "$" + compact(v);
    var decimals = step >= 1 ? 0 : Math.min(6, Math.max(2, Math.ceil(-Math.log10(step))));
    return "$" + v.toFixed(decimals);
  }

  function usd(v) {
    if (v === null || v === undefined) return "unknown";
    var a = Math.abs(v);
    var text = a >= 1 ? a.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) : a.toFixed(4);
    return (v < 0 ? "-$" : "$") + text;
  }

  function pct(v, decimals) {
    return (v * 100).toFixed(decimals === undefined ? 1 : decimals) + "%";
  }

  function int(v) {
    return Math.round(v).toLocaleString("en-US");
  }

  /** "12,345 tokens" or "12,345 tokens (estimate)": every token figure says if it is one. */
  function tokens(v) {
    return int(v) + " " + tokenWord();
  }

  function tokenWord() {
    return data.exact ? "tokens" : "tokens (estimate)";
  }

  function r2(v) {
    return Math.round(v * 100) / 100;
  }

  // ---- SVG helpers ----------------------------------------------------------------------

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        node.setAttribute(key, String(attrs[key]));
      });
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function tooltip(node, text) {
    el("title", null, node).textContent = text;
    return node;
  }

  /** Nice ticks 0..top for a maximum: steps of 1, 2 or 5 times a power of ten. */
  function niceTicks(max, count) {
    if (!(max > 0)) max = 1;
    var raw = max / count;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var norm = raw / mag;
    var step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    var top = Math.ceil(max / step - 1e-9) * step;
    var ticks = [];
    for (var i = 0; i * step <= top + step * 1e-9; i++) ticks.push(i * step);
    return { step: step, top: top, ticks: ticks };
  }

  /** Call-number ticks (1-based) at integer steps that keep labels apart. */
  function callTicks(n, plotWidth) {
    var count = Math.max(2, Math.floor(plotWidth / 70));
    var step = Math.max(1, niceTicks(n, count).step);
    step = Math.max(1, Math.round(step));
    var ticks = [1];
    for (var c = step; c <= n; c += step) if (c - 1 >= step / 2) ticks.push(c);
    return ticks;
  }

  /**
   * The drawing area of one chart: an SVG sized to the figure's width, a y axis from 0 to a
   * nice top and, for per-call charts, an x axis with one band per call (x(i) is the centre
   * of call i, 0-based, so the three per-session charts line up).
   */
  function frame(fig, opts) {
    var holder = fig.querySelector(".chart");
    holder.textContent = "";
    var width = Math.max(360, Math.floor(holder.clientWidth || 800));
    var height = opts.height || 300;
    var m = { top: MARGIN.top, right: opts.right || MARGIN.right, bottom: MARGIN.bottom, left: opts.left || MARGIN.left };
    var pw = width - m.left - m.right;
    var ph = height - m.top - m.bottom;
    var svg = el("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img" }, holder);
    svg.setAttribute("aria-label", fig.querySelector("figcaption").textContent);
    var f = { svg: svg, left: m.left, top: m.top, width: pw, height: ph, bottom: m.top + ph };
    if (opts.n !== undefined) {
      f.band = pw / Math.max(1, opts.n);
      f.x = function (i) { return m.left + (i + 0.5) * f.band; };
    }
    if (opts.yMax !== undefined) {
      var nice = niceTicks(opts.yMax, Math.max(3, Math.floor(ph / 50)));
      f.yTop = nice.top;
      f.y = function (v) { return m.top + ph - (v / nice.top) * ph; };
      svg.dataset.yMax = String(nice.top);
      var grid = el("g", { class: "grid" }, svg);
      var yAxis = el("g", { class: "axis axis-y" }, svg);
      nice.ticks.forEach(function (t) {
        var y = r2(f.y(t));
        el("line", { x1: m.left, x2: m.left + pw, y1: y, y2: y }, grid);
        el("line", { x1: m.left - 4, x2: m.left, y1: y, y2: y }, yAxis);
        var label = el("text", { x: m.left - 7, y: y, "text-anchor": "end", "dominant-baseline": "middle" }, yAxis);
        label.textContent = opts.yFormat(t, nice.step);
      });
      el("line", { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph }, yAxis);
      var yLabel = el("text", { class: "axis-label", "text-anchor": "middle", transform: "translate(14," + (m.top + ph / 2) + ") rotate(-90)" }, svg);
      yLabel.textContent = opts.yLabel;
    }
    if (opts.n !== undefined) {
      var xAxis = el("g", { class: "axis axis-x" }, svg);
      el("line", { x1: m.left, x2: m.left + pw, y1: f.bottom, y2: f.bottom }, xAxis);
      callTicks(opts.n, pw).forEach(function (c) {
        var x = r2(f.x(c - 1));
        el("line", { x1: x, x2: x, y1: f.bottom, y2: f.bottom + 4 }, xAxis);
        var label = el("text", { x: x, y: f.bottom + 16, "text-anchor": "middle" }, xAxis);
        label.textContent = String(c);
      });
      var xLabel = el("text", { class: "axis-label", x: m.left + pw / 2, y: height - 6, "text-anchor": "middle" }, svg);
      xLabel.textContent = "call number";
    }
    svg.dataset.plot = [m.left, m.top, r2(pw), r2(ph)].join(",");
    return f;
  }

  /** Transparent per-call bands carrying the tooltip of everything at that call. */
  function hoverBands(f, n, text) {
    var g = el("g", { class: "hover-bands" }, f.svg);
    for (var i = 0; i < n; i++) {
      var rect = el("rect", { class: "hover", x: r2(f.left + i * f.band), y: f.top, width: r2(f.band), height: f.height }, g);
      tooltip(rect, text(i));
    }
  }

  /** An HTML legend under the chart: a swatch (fill or dashed line) and a name per series. */
  function legend(fig, items) {
    var list = fig.querySelector(".legend");
    list.textContent = "";
    items.forEach(function (item) {
      var li = document.createElement("li");
      var sw = el("svg", { width: 22, height: 12, "aria-hidden": "true" }, li);
      if (item.line) {
        el("line", { x1: 1, x2: 21, y1: 6, y2: 6, stroke: item.colour, "stroke-width": 2.5, "stroke-dasharray": item.dash || "" }, sw);
      } else {
        el("rect", { x: 3, y: 1, width: 16, height: 10, rx: 2, fill: item.colour }, sw);
      }
      li.appendChild(document.createTextNode(item.name));
      if (item.title) li.title = item.title;
      list.appendChild(li);
    });
  }

  function empty(fig, text) {
    var holder = fig.querySelector(".chart");
    holder.textContent = "";
    var p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    holder.appendChild(p);
    fig.querySelector(".legend").textContent = "";
    return 0;
  }

  function colourOf(list, name) {
    return PALETTE[Math.max(0, list.indexOf(name)) % PALETTE.length];
  }

  function dashOf(name) {
    return DASHES[Math.max(0, data.policies.indexOf(name)) % DASHES.length];
  }

  function linePath(f, values) {
    var d = "";
    var pen = "M";
    values.forEach(function (v, i) {
      if (v === null || v === undefined) { pen = "M"; return; }
      d += pen + r2(f.x(i)) + " " + r2(f.y(v));
      pen = "L";
    });
    // A one-call session still shows a dot (round caps on a zero-length segment).
    if (values.length === 1 && d) d += "L" + d.slice(1);
    return d;
  }

  function maxOf(values) {
    var m = 0;
    values.forEach(function (v) { if (v !== null && v > m) m = v; });
    return m;
  }

  // ---- charts ---------------------------------------------------------------------------

  /** Stacked bars by component (one SVG path per component), prompt tokens per call. */
  function drawComposition(fig, s) {
    var comps = data.components.filter(function (c) {
      return s.composition[c] && s.composition[c].some(function (v) { return v > 0; });
    });
    if (!s.calls) return empty(fig, "No calls in this session.");
    if (!comps.length) return empty(fig, "No composition recorded for this session.");
    var totals = [];
    for (var i = 0; i < s.calls; i++) {
      totals.push(comps.reduce(function (sum, c) { return sum + s.composition[c][i]; }, 0));
    }
    var f = frame(fig, { n: s.calls, yMax: maxOf(totals), yLabel: "prompt " + tokenWord(), yFormat: compact });
    var w = f.band >= 4 ? f.band * 0.8 : f.band;
    var base = totals.map(function () { return 0; });
    var g = el("g", { class: "stack" }, f.svg);
    comps.forEach(function (c) {
      var values = s.composition[c];
      var d = "";
      values.forEach(function (v, j) {
        if (!(v > 0)) return;
        var x0 = r2(f.x(j) - w / 2);
        var y0 = r2(f.y(base[j]));
        var y1 = r2(f.y(base[j] + v));
        d += "M" + x0 + " " + y1 + "h" + r2(w) + "V" + y0 + "h" + r2(-w) + "Z";
        base[j] += v;
      });
      var path = el("path", { class: "series", d: d, fill: colourOf(data.components, c) }, g);
      path.dataset.component = c;
      tooltip(path, c + ": peak " + tokens(maxOf(values)));
    });
    hoverBands(f, s.calls, function (j) {
      var lines = ["call " + (j + 1) + ": " + tokens(totals[j])];
      comps.slice().reverse().forEach(function (c) {
        if (s.composition[c][j] > 0) lines.push("  " + c + ": " + tokens(s.composition[c][j]));
      });
      return lines.join("\n");
    });
    legend(fig, comps.map(function (c) { return { name: c, colour: colourOf(data.components, c) }; }));
    return comps.length;
  }

  function sessionPolicies(s) {
    return data.policies.filter(function (p) { return s.policies[p]; });
  }

  /** One line per policy (prompt tokens per call) and a marker per compaction event. */
  function drawContext(fig, s) {
    var pols = sessionPolicies(s);
    if (!s.calls || !pols.length) return empty(fig, "No calls in this session.");
    var yMax = 0;
    pols.forEach(function (p) {
      yMax = Math.max(yMax, maxOf(s.policies[p].context));
      s.policies[p].compactions.forEach(function (c) { yMax = Math.max(yMax, c.tokens_before); });
    });
    var f = frame(fig, { n: s.calls, yMax: yMax, yLabel: "prompt " + tokenWord(), yFormat: compact });
    hoverBands(f, s.calls, function (j) {
      return ["call " + (j + 1)].concat(pols.map(function (p) {
        return "  " + p + ": " + tokens(s.policies[p].context[j]);
      })).join("\n");
    });
    var lines = el("g", { class: "lines" }, f.svg);
    pols.forEach(function (p) {
      var sp = s.policies[p];
      var path = el("path", { class: "line", d: linePath(f, sp.context), stroke: colourOf(data.policies, p), "stroke-dasharray": dashOf(p) }, lines);
      path.dataset.policy = p;
      tooltip(path, p + ": peak " + tokens(sp.peak) + ", " + sp.compactions.length + " compaction(s)");
    });
    var markers = el("g", { class: "markers" }, f.svg);
    var count = 0;
    pols.forEach(function (p) {
      s.policies[p].compactions.forEach(function (c) {
        var x = r2(f.x(c.call));
        var yb = r2(f.y(c.tokens_before));
        var g = el("g", { class: "marker" }, markers);
        g.dataset.policy = p;
        g.dataset.call = String(c.call);
        el("line", { x1: x, x2: x, y1: yb, y2: r2(f.y(c.tokens_after)) }, g);
        el("path", { d: "M" + x + " " + (yb + 6) + "l-5 -9h10Z", fill: colourOf(data.policies, p) }, g);
        tooltip(g, p + ": compaction before call " + (c.call + 1) + " (" + c.strategy + "), " +
          int(c.tokens_before) + " \u2192 " + tokens(c.tokens_after));
        count += 1;
      });
    });
    legend(fig, pols.map(function (p) {
      return { name: p, colour: colourOf(data.policies, p), dash: dashOf(p), line: true };
    }).concat(count ? [{ name: "compaction (\u25BC before \u2192 after)", colour: "#1b1f24", line: true, dash: "2 2" }] : []));
    return pols.length + count;
  }

  /** One line per policy: cumulative input cost in USD after each call. */
  function drawCost(fig, s) {
    var pols = sessionPolicies(s).filter(function (p) {
      return s.policies[p].cumulative_cost.some(function (v) { return v !== null; });
    });
    if (!s.calls) return empty(fig, "No calls in this session.");
    if (!pols.length) return empty(fig, "No prices known for " + data.model + ": costs cannot be shown.");
    var yMax = 0;
    pols.forEach(function (p) { yMax = Math.max(yMax, maxOf(s.policies[p].cumulative_cost)); });
    var f = frame(fig, { n: s.calls, yMax: yMax, yLabel: "cumulative input cost (USD)", yFormat: usdTick });
    hoverBands(f, s.calls, function (j) {
      return ["after call " + (j + 1)].concat(pols.map(function (p) {
        return "  " + p + ": " + usd(s.policies[p].cumulative_cost[j]);
      })).join("\n");
    });
    var lines = el("g", { class: "lines" }, f.svg);
    pols.forEach(function (p) {
      var values = s.policies[p].cumulative_cost;
      var last = null;
      values.forEach(function (v) { if (v !== null) last = v; });
      var path = el("path", { class: "line", d: linePath(f, values), stroke: colourOf(data.policies, p), "stroke-dasharray": dashOf(p) }, lines);
      path.dataset.policy = p;
      path.dataset.last = String(last);
      tooltip(path, p + ": " + usd(last) + " input cost for the session");
    });
    legend(fig, pols.map(function (p) {
      return { name: p + " (" + usd(s.policies[p].input_cost) + ")", colour: colourOf(data.policies, p), dash: dashOf(p), line: true };
    }));
    return pols.length;
  }

  /** Horizontal bars: retention per policy over all sessions, with the 97% line. */
  function drawRetention(fig) {
    var pols = data.policies.filter(function (p) {
      var t = data.totals.policies[p];
      return t && t.retention !== null && t.retention !== undefined;
    });
    if (!pols.length) return empty(fig, "No retention figures in this report.");
    var rowH = 30;
    var longest = pols.reduce(function (m, p) { return Math.max(m, p.length); }, 0);
    var f = frame(fig, { height: MARGIN.top + MARGIN.bottom + rowH * pols.length, left: Math.min(220, 16 + longest * 7), right: 60 });
    var x = function (v) { return f.left + v * f.width; };
    var axis = el("g", { class: "axis axis-x" }, f.svg);
    var grid = el("g", { class: "grid" }, f.svg);
    for (var t = 0; t <= 10; t += 2) {
      var tx = r2(x(t / 10));
      el("line", { x1: tx, x2: tx, y1: f.top, y2: f.bottom }, grid);
      var label = el("text", { x: tx, y: f.bottom + 16, "text-anchor": "middle" }, axis);
      label.textContent = t * 10 + "%";
    }
    el("line", { x1: f.left, x2: f.left + f.width, y1: f.bottom, y2: f.bottom }, axis);
    var xLabel = el("text", { class: "axis-label", x: f.left + f.width / 2, y: f.bottom + 38, "text-anchor": "middle" }, f.svg);
    xLabel.textContent = "retention (share of the information an answer needs that is still in context)";
    // The 97% line goes under the bars' value labels (which have a white halo).
    var ty = r2(x(0.97));
    el("line", { class: "threshold", x1: ty, x2: ty, y1: f.top - 4, y2: f.bottom }, f.svg);
    var tl = el("text", { class: "threshold-label", x: ty, y: f.top - 6, "text-anchor": "middle" }, f.svg);
    tl.textContent = "97%";
    var bars = el("g", { class: "bars" }, f.svg);
    pols.forEach(function (p, i) {
      var v = Math.max(0, Math.min(1, data.totals.policies[p].retention));
      var y = f.top + i * rowH + 5;
      var name = el("text", { class: "tick-label", x: f.left - 8, y: y + (rowH - 10) / 2, "text-anchor": "end", "dominant-baseline": "middle" }, f.svg);
      name.textContent = p;
      var bar = el("rect", { class: "bar", x: f.left, y: y, width: r2(v * f.width), height: rowH - 10, fill: colourOf(data.policies, p) }, bars);
      bar.dataset.policy = p;
      bar.dataset.value = String(data.totals.policies[p].retention);
      tooltip(bar, p + ": retention " + pct(data.totals.policies[p].retention));
      var value = el("text", { class: "bar-label", x: r2(x(v) + 6), y: y + (rowH - 10) / 2, "dominant-baseline": "middle" }, bars);
      value.textContent = pct(data.totals.policies[p].retention);
    });
    legend(fig, [{ name: "97% target", colour: "#b42318", line: true, dash: "5 3" }]);
    return pols.length;
  }

  // ---- wiring -------------------------------------------------------------------------

  var SESSION_CHARTS = { composition: drawComposition, context: drawContext, cost: drawCost };

  function draw(fig, fn, session) {
    try {
      fig.dataset.rendered = String(fn(fig, session));
      delete fig.dataset.error;
    } catch (err) {
      fig.dataset.rendered = "0";
      fig.dataset.error = String(err);
      reportError("chart " + fig.id, err);
    }
  }

  function selectedIndex() {
    var picker = document.getElementById("session-picker");
    return picker ? Number(picker.value) : -1;
  }

  function drawSession() {
    var index = selectedIndex();
    var session = data.sessions[index];
    var facts = document.getElementById("session-facts");
    if (!session) return;
    if (facts) facts.textContent = sessionFacts(session);
    document.querySelectorAll("#session-charts figure[data-chart]").forEach(function (fig) {
      var fn = SESSION_CHARTS[fig.dataset.chart];
      if (fn) draw(fig, fn, session);
      fig.dataset.session = String(index);
    });
    document.querySelectorAll("#sessions-table tbody tr").forEach(function (row) {
      row.classList.toggle("selected", row.dataset.index === String(index));
    });
    document.body.dataset.session = String(index);
  }

  function sessionFacts(s) {
    var parts = [s.format, s.calls + " calls"];
    if (s.model) parts.push("model " + s.model);
    if (s.recorded_cost !== null) parts.push("recorded cost " + usd(s.recorded_cost));
    if (s.computed_cost !== null) parts.push("computed cost " + usd(s.computed_cost));
    if (s.cache_hit_rate !== null) parts.push("cache hit rate " + pct(s.cache_hit_rate));
    return parts.join(" \u00b7 ");
  }

  function drawAll() {
    drawSession();
    var retention = document.getElementById("chart-retention");
    if (retention) draw(retention, drawRetention, null);
    document.body.dataset.rendered = "1";
  }

  /** Click a header to sort by its column; click again to reverse. Unknown values last. */
  function makeSortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      var button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", function () {
        var descending = th.getAttribute("aria-sort") === "ascending";
        heads.forEach(function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var numeric = th.dataset.type === "num";
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return !r.classList.contains("total"); });
        var keyed = rows.map(function (row, i) {
          var cell = row.cells[col];
          var raw = cell && cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : null;
          return { row: row, i: i, v: raw === null ? null : numeric ? Number(raw) : raw };
        });
        keyed.sort(function (a, b) {
          if (a.v === null || b.v === null) return a.v === b.v ? a.i - b.i : a.v === null ? 1 : -1;
          var c = a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
          return (descending ? -c : c) || a.i - b.i;
        });
        var totalRows = Array.prototype.slice.call(body.querySelectorAll("tr.total"));
        keyed.forEach(function (k) { body.appendChild(k.row); });
        totalRows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  function init() {
    var node = document.getElementById("ctxbudget-data");
    data = JSON.parse(node.textContent);
    document.querySelectorAll("table.sortable").forEach(function (table) {
      try { makeSortable(table); } catch (err) { reportError("table " + table.id, err); }
    });
    var picker = document.getElementById("session-picker");
    if (picker) {
      picker.addEventListener("change", function () {
        try { drawSession(); } catch (err) { reportError("session picker", err); }
      });
    }
    document.querySelectorAll("button.pick").forEach(function (button) {
      button.addEventListener("click", function () {
        picker.value = button.dataset.index;
        try { drawSession(); } catch (err) { reportError("session link", err); }
        document.getElementById("session-charts").scrollIntoView();
      });
    });
    drawAll();
    lastWidth = document.documentElement.clientWidth;
    var pending = false;
    window.addEventListener("resize", function () {
      if (pending || document.documentElement.clientWidth === lastWidth) return;
      pending = true;
      window.requestAnimationFrame(function () {
        pending = false;
        lastWidth = document.documentElement.clientWidth;
        try { drawAll(); } catch (err) { reportError("resize", err); }
      });
    });
  }

  try {
    init();
  } catch (err) {
    reportError("report", err);
    document.body.dataset.rendered = "1";
  }
})();
