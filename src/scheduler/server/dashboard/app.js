// The dashboard's page: polls /dashboard/data and redraws in place. Plain browser JavaScript so
// the scheduler serves it as is (no build step); uPlot draws the charts.

const POLL_MS = 1500;
const HISTORY_POINTS = 120;
const COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

/** Store ids get a stable colour by their order among the stores seen so far. */
const storeColor = (() => {
  const seen = new Map();
  return (id) => {
    if (!seen.has(id)) seen.set(id, COLORS[seen.size % COLORS.length]);
    return seen.get(id);
  };
})();

function bytes(n) {
  const v = Number(n);
  if (!Number.isFinite(v) || v <= 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/** A key as the page shows it: printable ASCII as text, anything else as 0x<hex>; "" is an open end. */
function showKey(hex, openEnd) {
  if (hex === "") return openEnd;
  const raw = hex.match(/../g).map((b) => parseInt(b, 16));
  return raw.every((c) => c >= 0x20 && c < 0x7f) ? JSON.stringify(String.fromCharCode(...raw)) : `0x${hex}`;
}

/** Estimates a quantile from cumulative buckets [{le, count}], as Prometheus' histogram_quantile. */
function quantile(q, buckets) {
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0,
    prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === null || b.le === Infinity) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket <= 0 ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

// Per store: the last scrape (to turn cumulative counters into rates) and the charted history.
const previous = new Map();
const history = { t: [], ops: new Map(), p99: new Map() };

function rates(scrapes) {
  const out = new Map();
  for (const s of scrapes) {
    if (!s.metrics) {
      out.set(s.store_id, { ops: null, p99: null });
      continue;
    }
    const m = s.metrics;
    // JSON has no Infinity: the last bucket's bound arrives as null.
    const buckets = m.latencyBuckets.map((b) => ({ le: b.le === null ? Infinity : b.le, count: b.count }));
    const prev = previous.get(s.store_id);
    previous.set(s.store_id, { at: s.scraped_at_ms, total: m.requestsTotal, buckets });
    if (!prev || s.scraped_at_ms <= prev.at || m.requestsTotal < prev.total) {
      out.set(s.store_id, { ops: null, p99: null });
      continue;
    }
    const seconds = (s.scraped_at_ms - prev.at) / 1000;
    const delta = buckets.map((b, i) => ({ le: b.le, count: b.count - (prev.buckets[i] ? prev.buckets[i].count : 0) }));
    const p99 = quantile(0.99, delta);
    out.set(s.store_id, { ops: (m.requestsTotal - prev.total) / seconds, p99: p99 === null ? null : p99 * 1000 });
  }
  return out;
}

function drawStores(data, storeRates) {
  const scrapes = new Map(data.store_metrics.map((s) => [s.store_id, s]));
  const body = $("#stores tbody");
  body.replaceChildren(
    ...data.stores.map((s) => {
      const r = storeRates.get(s.id);
      const scrape = scrapes.get(s.id);
      const state = s.down ? `${s.state}, down` : s.state;
      const metricsTitle = scrape?.error ? `metrics at ${scrape.status_addr}: ${scrape.error}` : "";
      return el(
        "tr",
        { "data-store-id": s.id, class: s.down ? "down" : "" },
        el("td", {}, el("span", { class: "swatch", style: `background:${storeColor(s.id)}` }), s.id),
        el("td", {}, s.address),
        el("td", {}, state),
        el("td", {}, bytes(s.capacity)),
        el("td", {}, bytes(s.available)),
        el("td", { class: "region-count" }, s.region_count),
        el("td", { class: "leader-count" }, s.leader_count),
        el("td", { title: metricsTitle }, r && r.ops !== null ? r.ops.toFixed(1) : scrape?.error ? "n/a" : "–"),
        el("td", { title: metricsTitle }, r && r.p99 !== null ? `${r.p99.toFixed(2)} ms` : "–"),
      );
    }),
  );
}

function drawKeyspace(data) {
  const regions = [...data.regions].sort((a, b) =>
    a.start_key < b.start_key ? -1 : a.start_key > b.start_key ? 1 : 0,
  );
  $("#keyspace").replaceChildren(
    ...regions.map((r) => {
      const leader = r.leader_store_id;
      const title =
        `region ${r.id}: [${showKey(r.start_key, "-∞")}, ${showKey(r.end_key, "+∞")})\n` +
        `peers on stores ${r.peers.join(", ")}; leader ${leader === null ? "none yet" : `on store ${leader}`}; ~${r.approximate_size_mib} MiB`;
      return el(
        "div",
        {
          class: leader === null ? "region no-leader" : "region",
          "data-region-id": r.id,
          "data-leader-store": leader === null ? "" : leader,
          style: leader === null ? "" : `background:${storeColor(leader)}`,
          title,
        },
        regions.length <= 40 ? r.id : "",
      );
    }),
  );
  const leaders = new Map();
  for (const r of data.regions)
    if (r.leader_store_id !== null) leaders.set(r.leader_store_id, (leaders.get(r.leader_store_id) || 0) + 1);
  $("#legend").replaceChildren(
    el("span", {}, `${data.regions.length} region${data.regions.length === 1 ? "" : "s"}`),
    ...data.stores.map((s) =>
      el(
        "span",
        {},
        el("span", { class: "swatch", style: `background:${storeColor(s.id)}` }),
        `store ${s.id}: ${leaders.get(s.id) || 0} leaders`,
      ),
    ),
  );
}

function operatorItem(op) {
  const step =
    op.status === "RUNNING" ? ` step ${Math.min(op.current_step + 1, op.steps.length)}/${op.steps.length}` : "";
  const when = op.finished_at_ms ? ` · ${new Date(op.finished_at_ms).toLocaleTimeString()}` : "";
  const why = op.decision ? `${op.decision.scheduler}: ${op.decision.why}` : "";
  return el(
    "li",
    { "data-region-id": op.region_id },
    el("span", { class: "status" }, `${op.status}${step}`),
    `region ${op.region_id} · ${op.desc}${when}`,
    el("div", {}, op.steps.join(" → ")),
    why ? el("div", { class: "why" }, `why: ${why}`) : "",
  );
}

function drawOperators(data) {
  const empty = (text) => el("li", { class: "empty" }, text);
  const running = data.operators.running;
  $("#running").replaceChildren(...(running.length ? running.map(operatorItem) : [empty("none")]));
  const recent = [...data.operators.recent].reverse().slice(0, 15);
  $("#recent").replaceChildren(...(recent.length ? recent.map(operatorItem) : [empty("none yet")]));
}

// Charts: one uPlot each, rebuilt when the set of stores changes (uPlot's series are fixed).
const charts = { ops: null, p99: null, storeKey: "" };

function chartFor(target, storeIds, label) {
  const width = Math.max(320, $(target).clientWidth || 560);
  return new uPlot(
    {
      width,
      height: 200,
      scales: { x: { time: true } },
      series: [
        {},
        ...storeIds.map((id) => ({ label: `store ${id}`, stroke: storeColor(id), width: 2, spanGaps: true })),
      ],
      axes: [{}, { label, size: 60 }],
    },
    [[], ...storeIds.map(() => [])],
    $(target),
  );
}

function drawCharts(data, storeRates) {
  if (typeof uPlot === "undefined") {
    for (const t of ["#chart-ops", "#chart-latency"])
      $(t).replaceChildren(
        el("div", { class: "missing" }, "charts unavailable: the scheduler found no uPlot (npm install)"),
      );
    return;
  }
  const storeIds = data.stores.map((s) => s.id);
  history.t.push(Date.now() / 1000);
  for (const id of storeIds) {
    const r = storeRates.get(id) || { ops: null, p99: null };
    for (const [series, v] of [
      [history.ops, r.ops],
      [history.p99, r.p99],
    ]) {
      if (!series.has(id)) series.set(id, new Array(history.t.length - 1).fill(null));
      series.get(id).push(v);
    }
  }
  if (history.t.length > HISTORY_POINTS) {
    history.t.shift();
    for (const series of [history.ops, history.p99]) for (const arr of series.values()) arr.shift();
  }
  const key = storeIds.join(",");
  if (key !== charts.storeKey) {
    for (const c of [charts.ops, charts.p99]) if (c) c.destroy();
    $("#chart-ops").replaceChildren();
    $("#chart-latency").replaceChildren();
    charts.ops = chartFor("#chart-ops", storeIds, "req/s");
    charts.p99 = chartFor("#chart-latency", storeIds, "ms");
    charts.storeKey = key;
  }
  const pad = (arr) => arr.slice(-history.t.length);
  charts.ops.setData([history.t, ...storeIds.map((id) => pad(history.ops.get(id)))]);
  charts.p99.setData([history.t, ...storeIds.map((id) => pad(history.p99.get(id)))]);
}

async function poll() {
  try {
    const res = await fetch("/dashboard/data", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    const storeRates = rates(data.store_metrics);
    $("#summary").textContent =
      `cluster ${data.cluster_id} · ${data.stores.length} stores · ${data.regions.length} regions · ` +
      `${data.operators.running.length} operators running` +
      (data.bootstrapped ? "" : " · not bootstrapped");
    drawStores(data, storeRates);
    drawKeyspace(data);
    drawOperators(data);
    drawCharts(data, storeRates);
    $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("#updated").className = "";
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (err) {
    $("#updated").textContent = `cannot reach the scheduler: ${err.message}`;
    $("#updated").className = "stale";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

void poll();
