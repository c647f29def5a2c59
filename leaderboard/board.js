// The static leaderboard's page script: the ranked table and every trial's detail, drawn from the
// one JSON block (#board-data, see leaderboard/_payload.py). The table is virtualised: only the
// rows in view are in the DOM; sorting and filtering run over all rows here. Stored text reaches
// the DOM through textContent only, and Plotly's texts through esc(), never as markup.
(function () {
  "use strict";
  var source = document.getElementById("board-data");
  if (!source) { return; }
  var D = JSON.parse(source.textContent);
  function expand(column) {  // a column of few distinct texts comes as {values, codes} (_payload.texts)
    return Array.isArray(column) ? column : column.codes.map(function (c) { return column.values[c]; });
  }
  Object.keys(D.table.cells).forEach(function (k) { D.table.cells[k] = expand(D.table.cells[k]); });
  function compact(v) {  // table.py's compact: 3 significant digits and an SI suffix
    var value = Math.abs(v), suffix = "", units = ["k", "M", "G", "T"];
    for (var u = 0; u < units.length && value >= 999.5; u++) { value /= 1000; suffix = units[u]; }
    return (v < 0 ? "-" : "") + String(Number(value.toPrecision(3))) + suffix;
  }
  function cell(v, kind) {  // table.py's format_cell for the numeric kinds
    if (v === null || v === undefined) { return "\u2013"; }
    if (kind === "int") { return String(Math.trunc(v)); }
    if (kind === "ratio") { return v.toFixed(3); }
    if (kind === "ms") { return v.toFixed(2); }
    if (kind === "count") { return compact(v); }
    if (kind === "score") { return score(v); }
    return String(Number(v.toPrecision(3)));
  }
  function score(v) {  // _proxies.py's format_score: 4 significant digits, powers of ten beyond
    var a = Math.abs(v);
    if (v !== 0 && !(a >= 1e-3 && a < 1e4)) {
      var parts = v.toExponential(2).split("e");
      return parts[0] + "e" + String(Number(parts[1]));
    }
    return String(Number(v.toPrecision(4)));
  }
  D.table.columns.forEach(function (c) {
    if (c.kind !== "text") { D.table.cells[c.key] = D.table.sort[c.key].map(function (v) { return cell(v, c.kind); }); }
  });
  D.detail.facts = D.detail.facts.map(function (f) { return f.column ? D.table.cells[f.column] : expand(f); });
  D.table.sort.status = expand(D.table.sort.status);
  D.table.status = expand(D.table.status);
  D.detail.titles = expand(D.detail.titles);
  D.detail.proxies.forEach(function (p) { p.errors = expand(p.errors); });
  var T = D.table, n = T.ids.length, OVERSCAN = 20;
  var table = document.getElementById("trials");
  var body = table.tBodies[0], scroller = document.getElementById("table-scroll");
  var pad = document.getElementById("table-pad");
  var text = document.getElementById("filter-text"), status = document.getElementById("filter-status");
  var count = document.getElementById("row-count");
  var byId = new Map(T.ids.map(function (id, i) { return [id, i]; }));
  var order = T.ids.map(function (_, i) { return i; });
  var view = order, nodes = new Map(), haystack = [], rowH = 0;
  var collator = new Intl.Collator(undefined, {numeric: false});

  function esc(value) {  // Plotly renders a subset of HTML in its texts
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function el(tag, attrs, content) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (content !== undefined) { node.textContent = content; }
    return node;
  }
  function row(i) {  // the <tr> of row i, built once
    var tr = nodes.get(i);
    if (tr) { return tr; }
    tr = el("tr", {"data-trial": T.ids[i], "data-status": T.status[i], "data-row": i, tabindex: "0"});
    if (T.reference[i]) { tr.className = "reference"; }
    T.columns.forEach(function (c) {
      var td = el("td", {}, T.cells[c.key][i]);
      td.className = c.key === "status" ? "status" : (c.kind !== "text" ? "num" : c.key);
      if (c.key === "status") { td.style.color = (D.status_style[T.status[i]] || ["", "#444"])[1]; }
      tr.appendChild(td);
    });
    nodes.set(i, tr);
    return tr;
  }
  function render() {
    var viewH = Math.max(scroller.clientHeight, window.innerHeight);
    var headH = table.tHead.offsetHeight;
    var shown = Math.ceil(viewH / (rowH || 20)) + 2 * OVERSCAN;
    var first = rowH ? Math.max(0, Math.floor((scroller.scrollTop - headH) / rowH) - OVERSCAN) : 0;
    first = Math.max(0, Math.min(first, view.length - shown));  // never past the end of fewer rows
    var last = Math.min(view.length, first + shown);
    var fragment = document.createDocumentFragment();
    for (var k = first; k < last; k += 1) { fragment.appendChild(row(view[k])); }
    body.replaceChildren(fragment);
    if (!rowH && body.rows.length) { rowH = body.rows[0].offsetHeight || 20; }
    pad.style.paddingTop = (first * rowH) + "px";
    pad.style.paddingBottom = ((view.length - last) * rowH) + "px";
  }
  function words(i) {
    if (haystack[i] === undefined) {
      haystack[i] = T.columns.map(function (c) { return T.cells[c.key][i]; }).join("\n").toLowerCase();
    }
    return haystack[i];
  }
  function filter() {
    var needle = text.value.toLowerCase(), wanted = status.value;
    view = order.filter(function (i) {
      return (!wanted || T.status[i] === wanted) && (!needle || words(i).indexOf(needle) >= 0);
    });
    count.textContent = view.length + " of " + n + " trials";
    scroller.scrollTop = 0;  // a new filter or order is read from its top
    render();
  }
  function sortBy(th, col) {
    var c = T.columns[col], key = T.sort[c.key], cells = T.cells[c.key];
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (o) { o.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var value = key ? function (i) { return key[i]; }
                    : function (i) { return cells[i] === "–" ? null : cells[i]; };
    order.sort(function (a, b) {
      var x = value(a), y = value(b);
      if (x === null || y === null) { return (x === null) - (y === null); }
      if (typeof x === "number" && typeof y === "number") { return dir * (x - y); }
      return dir * collator.compare(String(x), String(y));
    });
    filter();
  }

  function message(title, words) {
    return {data: [], layout: {title: {text: title}, template: D.template, height: 260,
      xaxis: {visible: false}, yaxis: {visible: false},
      annotations: [{text: esc(words), showarrow: false, x: 0.5, y: 0.5, xref: "paper", yref: "paper"}]}};
  }
  function label(i) { return "#" + D.detail.numbers[i] + " " + esc(T.cells.arch_id[i]); }
  function curveOf(i) {  // trial i's [first epoch or epochs, val mIoU]: its own, or a prefix of a shared one
    var C = D.curve_of;
    if (!C) { return D.curves[i]; }
    if (C.curve[i] < 0) { return [1, []]; }
    var shared = D.curves[C.curve[i]], n = C.points[i];
    return [Array.isArray(shared[0]) ? shared[0].slice(0, n) : shared[0], shared[1].slice(0, n)];
  }
  function curveFigure(i) {
    var title = "Learning curves: val mIoU per epoch", curve = curveOf(i), ys = curve[1];
    if (!ys.length) { return message(title, "No epoch has been evaluated yet."); }
    var xs = Array.isArray(curve[0]) ? curve[0] : ys.map(function (_, k) { return curve[0] + k; });
    var stopped = T.status[i] === "stopped_early", name = label(i);
    if (stopped) { name += " (stopped at epoch " + xs[xs.length - 1] + ")"; }
    var symbols = ys.map(function () { return "circle"; }), sizes = ys.map(function () { return 6; });
    if (stopped) { symbols[ys.length - 1] = "x"; sizes[ys.length - 1] = 12; }
    var trace = {type: ys.length > 1000 ? "scattergl" : "scatter", x: xs, y: ys, mode: "lines+markers",
      name: name, text: ys.map(function () { return name; }),
      line: {color: (D.status_style[T.status[i]] || ["", "#444444"])[1], dash: stopped ? "dot" : "solid",
        width: 1.5},
      marker: {symbol: symbols, size: sizes},
      hovertemplate: "%{text}<br>epoch %{x}: val mIoU %{y:.3f}<extra></extra>"};
    var xaxis = {title: {text: "epoch"}};
    if (xs.length <= 30) { xaxis.dtick = 1; }
    return {data: [trace], layout: {title: {text: title}, template: D.template, height: 440, showlegend: true,
      xaxis: xaxis, yaxis: {title: {text: "val mIoU"}}}};
  }
  function classFigure(i) {
    var title = "Per-class IoU (best epoch)", ious = D.classes[i];
    if (!ious) { return message(title, "No per-class results for these trials."); }
    var names = ious.map(function (_, k) {
      return k < D.class_names.length ? esc(D.class_names[k]) : "class " + k;
    });
    return {data: [{type: "bar", x: names, y: ious, name: label(i), marker: {color: D.palette[0]}}],
      layout: {title: {text: title}, template: D.template, barmode: "group", height: 380, showlegend: true,
        yaxis: {title: {text: "IoU"}, range: [0, 1]}, xaxis: {type: "category"}}};
  }
  function genotype(i) {  // pretty_genotype's text: sorted keys, lists of numbers on one line
    var G = D.genotypes, root = {};
    G.paths.forEach(function (path, p) {
      var code = G.codes[p][i];
      if (code < 0) { return; }
      var keys = path.split("."), at = root;
      keys.slice(0, -1).forEach(function (k) { at = at[k] = at[k] || {}; });
      at[keys[keys.length - 1]] = G.values[p][code];
    });
    function sorted(v) {
      if (!v || typeof v !== "object" || Array.isArray(v)) { return v; }
      var out = {};
      Object.keys(v).sort().forEach(function (k) { out[k] = sorted(v[k]); });
      return out;
    }
    return JSON.stringify(sorted(root), null, 2).replace(
      /\[\s+((?:-?[\d.eE+-]+,\s+)*-?[\d.eE+-]+)\s+\]/g,
      function (_, list) { return "[" + list.split(",").map(function (s) { return s.trim(); }).join(", ") + "]"; });
  }
  function proxies(i) {  // the zero-cost proxies' scores of the trial's network: value, seconds, error
    var part = el("div", {"class": "proxies"});
    part.appendChild(el("h3", {}, "Zero-cost proxies"));
    var list = el("table", {"class": "proxies"}), head = el("tr");
    ["proxy", "value", "seconds", "error"].forEach(function (t) { head.appendChild(el("th", {}, t)); });
    list.appendChild(head);
    D.detail.proxies.forEach(function (p) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, p.name));
      tr.appendChild(el("td", {"class": "num"}, T.cells[p.column][i]));
      tr.appendChild(el("td", {"class": "num"}, p.seconds[i] === null ? "\u2013" : p.seconds[i].toFixed(3)));
      tr.appendChild(el("td", {}, p.errors[i]));
      list.appendChild(tr);
    });
    part.appendChild(list);
    return part;
  }
  function detail(i) {  // the section a row opens, built on first use
    var id = "trial-" + T.ids[i], section = document.getElementById(id);
    if (section) { return section; }
    var E = D.detail;
    section = el("section", {"class": "detail", id: id});
    section.appendChild(el("a", {href: "#table"}, "← back to the table"));
    section.appendChild(el("h2", {}, "Trial #" + E.numbers[i] + " · " + T.cells.arch_id[i] + " · " + E.titles[i]));
    if (E.errors[i]) {
      section.appendChild(el("h3", {}, "Error"));
      section.appendChild(el("pre", {"class": "error"}, E.errors[i]));
    }
    section.appendChild(el("h3", {}, "Cost and results"));
    var facts = el("dl", {"class": "cost"});
    var labels = E.labels.concat(T.cells.note[i] ? ["note"] : []);
    labels.forEach(function (name, k) {
      facts.appendChild(el("dt", {}, name));
      facts.appendChild(el("dd", {}, k < E.labels.length ? E.facts[k][i] : T.cells.note[i]));
    });
    section.appendChild(facts);
    if (E.proxies.length) { section.appendChild(proxies(i)); }
    section.appendChild(el("h3", {}, "Curves and per-class IoU"));
    section.appendChild(el("div", {"data-figure": "curve", "class": "detail-figure"}));
    section.appendChild(el("div", {"data-figure": "classes", "class": "detail-figure"}));
    section.appendChild(el("h3", {}, "Genotype"));
    section.appendChild(el("pre", {"class": "genotype"}, genotype(i)));
    section.appendChild(el("h3", {}, "Export it"));
    var pre = el("pre");
    pre.appendChild(el("code", {}, E.export[0] + " " + E.numbers[i] + (E.export[1] ? " " + E.export[1] : "")));
    section.appendChild(pre);
    document.getElementById("details").appendChild(section);
    return section;
  }
  function show() {  // the trial the address names, drawn when first shown
    var match = /^#trial-(\d+)$/.exec(window.location.hash), i = match ? byId.get(Number(match[1])) : undefined;
    document.querySelectorAll(".detail.open").forEach(function (s) { s.classList.remove("open"); });
    if (i === undefined) { return; }
    var section = detail(i);
    section.classList.add("open");
    section.querySelectorAll("div[data-figure]").forEach(function (div) {
      if (div.dataset.drawn) { return; }
      var spec = div.dataset.figure === "curve" ? curveFigure(i) : classFigure(i);
      Plotly.newPlot(div, spec.data, spec.layout, {responsive: true, displaylogo: false});
      div.dataset.drawn = "1";
    });
    section.scrollIntoView();
  }
  function open(i) {
    detail(i);  // before the address changes, so that :target finds it
    if (window.location.hash === "#trial-" + T.ids[i]) { show(); } else { window.location.hash = "trial-" + T.ids[i]; }
  }

  body.addEventListener("click", function (e) {
    var tr = e.target.closest("tr[data-row]");
    if (tr) { open(Number(tr.dataset.row)); }
  });
  body.addEventListener("keydown", function (e) {
    var tr = e.target.closest("tr[data-row]");
    if (tr && e.key === "Enter") { open(Number(tr.dataset.row)); }
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.addEventListener("click", function () { sortBy(th, col); });
  });
  text.addEventListener("input", filter);
  status.addEventListener("change", filter);
  var pending = false;
  scroller.addEventListener("scroll", function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; render(); });
  });
  function overview(k) {  // the overview figures, one per turn of the event loop after the table works
    var div = document.querySelector('div[data-overview="' + k + '"]');
    if (!div) { window.__plotsDrawnAt = performance.now(); return; }
    var spec = D.figures[k];
    Promise.resolve(Plotly.newPlot(div, spec.data, spec.layout, {responsive: true, displaylogo: false}))
      .then(function () {
        div.on("plotly_click", function (event) {  // a trial's point opens its detail
          var id = event && event.points && event.points[0] ? event.points[0].customdata : undefined;
          if (typeof id === "number" && byId.has(id)) { open(byId.get(id)); }
        });
      }, function (err) { console.error("figure " + k + ": " + err); })
      .then(function () { window.setTimeout(function () { overview(k + 1); }, 0); });
  }
  window.addEventListener("hashchange", show);
  filter();
  show();
  window.__boardReadyAt = performance.now();
  window.setTimeout(function () { overview(0); }, 0);
})();
