// The sweep panel: one axis (line), two axes (heatmap), or a trade-off scatter with its Pareto front.
// Every grid is one POST /sweep (one engine call on the server).
import { api } from "./api.js";
import { codeWords, fill, formatNumber, h, unitOf, wordsOf } from "./dom.js";
import { jobControls } from "./jobs.js";
import { BAND_FILL, INFEASIBLE, PALETTE, plot } from "./result.js";

//: Most values one range (a:b:step) may give one axis.
const MAX_AXIS_POINTS = 2000;

export function parseValues(text) {
  const m = text.match(/^\s*([\d.e+-]+)\s*:\s*([\d.e+-]+)\s*:\s*(x?)([\d.e+-]+)\s*$/);
  if (m) {
    const [a, b, mul, step] = [parseFloat(m[1]), parseFloat(m[2]), m[3] === "x", parseFloat(m[4])];
    if (!(step > (mul ? 1 : 0))) return [];
    const out = [];
    for (let v = a; v <= b * (1 + 1e-12); v = mul ? v * step : v + step) {
      // Refused, never silently cut: a range past the cap is an error the panel shows.
      if (out.length >= MAX_AXIS_POINTS)
        throw new Error(
          `the range ${text.trim()} has more than ${MAX_AXIS_POINTS.toLocaleString()} points: use a larger step`,
        );
      out.push(Number(v.toPrecision(12)));
    }
    return out;
  }
  return text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map(Number)
    .filter((v) => Number.isFinite(v));
}

function defaultRange(value) {
  if (!(value > 0)) return "0:1:0.1";
  if (Number.isInteger(value) && value >= 1) {
    const low = Math.max(1, 2 ** Math.floor(Math.log2(value) - 3));
    return `${low}:${low * 64}:x2`;
  }
  const p = (x) => Number(x.toPrecision(3));
  return `${p(value / 4)}:${p(value * 4)}:x1.4142`;
}

// The Pareto front of the points; a point whose `feasible[i]` is false never joins it.
export function paretoFront(xs, ys, maximizeX, maximizeY, feasible = null) {
  const points = xs
    .map((x, i) => ({ x, y: ys[i], i }))
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!feasible || feasible[p.i] !== false));
  const sx = maximizeX ? -1 : 1;
  const sy = maximizeY ? -1 : 1;
  points.sort((a, b) => sx * (a.x - b.x) || sy * (a.y - b.y));
  const front = [];
  let best = Infinity;
  for (const p of points)
    if (sy * p.y < best) {
      front.push(p);
      best = sy * p.y;
    }
  return front;
}

// A swept input in words for a chart's axis or title, with its unit: "sequence length (tokens)", not
// "sequence_length_tokens" (the hover keeps the input's path).
function inputWords(path) {
  const segments = String(path).split(".");
  const last = segments[segments.length - 1];
  const { unit, label } = unitOf(last);
  const words = [...segments.slice(0, -1).map(wordsOf), label || wordsOf(last)].join(" ");
  // A count's unit is its name's last word ("sequence length tokens"): it moves into the brackets.
  const name = unit && words.endsWith(` ${unit}`) ? words.slice(0, -unit.length - 1) : words;
  return unit ? `${name} (${unit})` : name;
}

export function sweepPanel({ getDoc, kind, initial = null, onConfig = () => {} }) {
  const out = h("div", { class: "sweep-out", id: "sweep-out" });
  const axisRows = [];
  const metricKeys = Object.keys(kind.metrics);
  const metricOptions = (selected) =>
    metricKeys.map((k) =>
      h(
        "option",
        { value: k, selected: k === selected },
        `${kind.metrics[k].label}${kind.metrics[k].unit ? ` [${kind.metrics[k].unit}]` : ""}`,
      ),
    );
  const metric = h(
    "select",
    { id: "sweep-metric", "aria-label": "metric" },
    metricOptions(initial?.metric || metricKeys[0]),
  );
  const metricY = h(
    "select",
    { id: "sweep-metric-y", "aria-label": "second metric" },
    metricOptions(initial?.metricY || metricKeys[1] || metricKeys[0]),
  );
  const mode = h(
    "select",
    { id: "sweep-mode", "aria-label": "chart" },
    [
      ["auto", "line (1 axis) / heatmap (2 axes)"],
      ["pareto", "trade-off: metric vs metric (Pareto)"],
    ].map(([v, t]) => h("option", { value: v, selected: initial?.mode === v }, t)),
  );
  const dirX = h(
    "select",
    { "aria-label": "direction of the first metric", id: "sweep-dir-x" },
    h("option", { value: "max" }, "higher is better"),
    h("option", { value: "min", selected: initial?.dirX === "min" }, "lower is better"),
  );
  const dirY = h(
    "select",
    { "aria-label": "direction of the second metric", id: "sweep-dir-y" },
    h("option", { value: "max", selected: initial?.dirY === "max" }, "higher is better"),
    h("option", { value: "min", selected: initial?.dirY !== "max" }, "lower is better"),
  );
  const paretoRow = h(
    "div",
    { class: "row", hidden: initial?.mode !== "pareto" },
    h("span", { class: "muted" }, "vs"),
    metricY,
    dirX,
    dirY,
  );
  mode.addEventListener("change", () => {
    paretoRow.hidden = mode.value !== "pareto";
  });
  const axesBox = h("div", { class: "axes" });
  const addAxisButton = h("button", { type: "button", class: "link", id: "sweep-add-axis" }, "+ second axis (heatmap)");
  let paths = {};

  function axisRow(index, config = {}) {
    const select = h(
      "select",
      { class: "sweep-path", id: `sweep-path-${index}`, "aria-label": `axis ${index + 1} input` },
      Object.keys(paths).map((p) => h("option", { value: p, selected: p === config.path }, p)),
    );
    const values = h("input", {
      type: "text",
      class: "sweep-values",
      id: `sweep-values-${index}`,
      "aria-label": `axis ${index + 1} values`,
      placeholder: "1,2,4 or 1:512:x2 or 0:1:0.1",
      value: config.values || "",
    });
    if (!config.values) values.value = defaultRange(paths[select.value]);
    select.addEventListener("change", () => {
      values.value = defaultRange(paths[select.value]);
    });
    const remove =
      index > 0
        ? h(
            "button",
            {
              type: "button",
              class: "icon",
              title: "remove axis",
              onclick: () => {
                axisRows.pop();
                renderAxes();
              },
            },
            "×",
          )
        : null;
    return {
      select,
      values,
      el: h(
        "div",
        { class: "axis" },
        h("span", { class: "axis-name" }, index === 0 ? "x" : "y"),
        select,
        values,
        remove,
      ),
    };
  }

  function renderAxes() {
    fill(axesBox, ...axisRows.map((r) => r.el));
    addAxisButton.hidden = axisRows.length >= 2;
  }
  addAxisButton.addEventListener("click", () => {
    const used = new Set(axisRows.map((r) => r.select.value));
    axisRows.push(axisRow(1, { path: Object.keys(paths).find((p) => !used.has(p)) }));
    renderAxes();
  });

  async function loadPaths() {
    paths = await api("/sweep/axes", { method: "POST", body: getDoc() });
    const main =
      Object.keys(paths).find((p) => /batch/.test(p) && !p.includes(".")) ||
      Object.keys(paths).find((p) => !p.includes(".")) ||
      Object.keys(paths)[0];
    const axes = initial?.axes?.length ? initial.axes : [{ path: main }];
    axisRows.length = 0;
    axes.forEach((a, i) => axisRows.push(axisRow(i, a)));
    renderAxes();
  }

  async function run() {
    let axes;
    try {
      axes = axisRows.map((r) => ({ path: r.select.value, values: parseValues(r.values.value) }));
    } catch (error) {
      fill(out, h("div", { class: "error", role: "alert", id: "sweep-range-error" }, error.message));
      return;
    }
    const config = {
      axes: axisRows.map((r) => ({ path: r.select.value, values: r.values.value })),
      metric: metric.value,
      mode: mode.value,
      metricY: metricY.value,
      dirX: dirX.value,
      dirY: dirY.value,
    };
    onConfig(config);
    try {
      const started = performance.now();
      const result = await api("/sweep", { method: "POST", body: { document: getDoc(), axes } });
      const points = result.shape.reduce((a, b) => a * b, 1);
      const div = out.querySelector(".figure") || h("div", { class: "figure", "data-figure": "sweep" });
      const caption = h(
        "p",
        { class: "muted small", id: "sweep-caption" },
        `${points.toLocaleString()} design points, one engine call, ${Math.round(performance.now() - started)} ms round trip`,
        infeasibleCount(result)
          ? ` · ${infeasibleCount(result).toLocaleString()} do not fit (hollow grey markers; × on a heatmap; hover for the reason), never on a Pareto front`
          : "",
      );
      fill(out, div, caption);
      drawSweep(div, result, config);
    } catch (error) {
      fill(out, h("div", { class: "error", role: "alert" }, error.message));
    }
  }

  function label(key, res) {
    return `${res.labels[key]}${res.units[key] ? ` [${res.units[key]}]` : ""}`;
  }

  function infeasibleCount(res) {
    return res.feasible ? [res.feasible].flat(2).filter((f) => f === false).length : 0;
  }

  // The kind's bit-mask metric that says why a point cannot run (its `codes`), if it has one.
  const whyKey = metricKeys.find((k) => Object.keys(kind.metrics[k].codes || {}).length);

  // A bit-mask metric's value in words (the reasons it sets), never the number; any other metric's number.
  const valueWords = (k, v) => (k === whyKey ? codeWords(kind.metrics[k].codes, v) : formatNumber(v));
  // Words cut to one short line, for a category axis (the hover has them whole).
  const shortWords = (text, chars = 40) => (text.length > chars ? `${text.slice(0, chars - 1).trimEnd()}…` : text);

  // Why a point is not feasible, for its hover text: the words of its reason bits when the kind has them
  // (i = the point's index in the flattened grid), else which yes/no metrics said no.
  function reason(res, i) {
    const why = whyKey && res.metrics[whyKey] ? [res.metrics[whyKey]].flat(2)[i] : null;
    if (why !== null && why !== undefined && why !== 0)
      return `cannot run: ${codeWords(kind.metrics[whyKey].codes, why)}`;
    const gates = res.infeasible_because || [];
    return `does not fit: ${gates.length ? gates.map((g) => `${g}: no`).join(", ") : "infeasible"}`;
  }

  // Infeasible points (their indices in the flattened grid): grey, hollow, the reason on hover; never in
  // a series' colour.
  function infeasibleTrace(xs, ys, names, res, indices, values = "<br>%{x:.4g}, %{y:.4g}") {
    return {
      x: xs,
      y: ys,
      text: names,
      customdata: indices.map((i) => reason(res, i)),
      type: "scatter",
      mode: "markers",
      name: "does not fit",
      marker: { size: 9, symbol: "circle-open", color: INFEASIBLE, line: { width: 1.5 } },
      hovertemplate: `%{text}${values}<br>%{customdata}<extra></extra>`,
    };
  }

  function drawSweep(div, res, config) {
    const [ax, ay] = res.axes;
    const key = config.metric;
    const logX =
      ax.values.every((v) => v > 0) && ax.values.length > 2 && ax.values[ax.values.length - 1] / ax.values[0] >= 16;
    const flatten = (m) => (ay ? m.flat() : m);
    const ok = res.feasible ? flatten(res.feasible) : null;
    const pick = (values, want) => values.map((v, i) => (!ok || ok[i] === want ? v : null));
    if (config.mode === "pareto") {
      const xs = flatten(res.metrics[key]);
      const ys = flatten(res.metrics[config.metricY]);
      const names = ay
        ? ax.values.flatMap((x) => ay.values.map((y) => `${ax.path}=${formatNumber(x)}, ${ay.path}=${formatNumber(y)}`))
        : ax.values.map((x) => `${ax.path}=${formatNumber(x)}`);
      const front = paretoFront(xs, ys, config.dirX === "max", config.dirY === "max", ok);
      const bad = ok ? ok.map((f, i) => (f ? -1 : i)).filter((i) => i >= 0) : [];
      // With a bit-mask metric (why a plan cannot run) on an axis, the hover names both values, the
      // mask in words, instead of the two raw numbers.
      const worded = key === whyKey || config.metricY === whyKey;
      const hover = worded
        ? names.map(
            (n, i) =>
              `${n}<br>${res.labels[key]}: ${valueWords(key, xs[i])}<br>${res.labels[config.metricY]}: ${valueWords(config.metricY, ys[i])}`,
          )
        : names;
      const values = worded ? "" : "<br>%{x:.4g}, %{y:.4g}";
      const traces = [
        {
          x: pick(xs, true),
          y: pick(ys, true),
          text: hover,
          type: "scatter",
          mode: "markers",
          name: "design points",
          marker: { size: 7, color: PALETTE[0], opacity: 0.55 },
          hovertemplate: `%{text}${values}<extra></extra>`,
        },
        {
          x: front.map((p) => p.x),
          y: front.map((p) => p.y),
          text: front.map((p) => hover[p.i]),
          type: "scatter",
          mode: "lines+markers",
          name: "Pareto front",
          line: { color: PALETTE[1], width: 2 },
          marker: { size: 9, color: PALETTE[1] },
          hovertemplate: `%{text}${values}<extra>front</extra>`,
        },
      ];
      if (bad.length)
        traces.push(
          infeasibleTrace(
            bad.map((i) => xs[i]),
            bad.map((i) => ys[i]),
            bad.map((i) => hover[i]),
            res,
            bad,
            values,
          ),
        );
      return plot(
        div,
        traces,
        {
          title: {
            text: `Trade-off: ${res.labels[key]} vs ${res.labels[config.metricY]}`,
            x: 0.02,
            font: { size: 14 },
          },
          xaxis: { title: { text: label(key, res) } },
          yaxis: { title: { text: label(config.metricY, res) } },
        },
        420,
      );
    }
    if (!ay && key === whyKey) {
      // A bit mask (why a plan cannot run) as words: one row per set of reasons (cut short on the axis),
      // the reasons whole on hover; points that cannot run in the infeasible grey.
      const words = res.metrics[key].map((v) => valueWords(key, v));
      return plot(
        div,
        [
          {
            x: ax.values,
            y: words.map((w) => shortWords(w)),
            customdata: words,
            type: "scatter",
            mode: "markers",
            name: res.labels[key],
            marker: { size: 10, color: res.metrics[key].map((v) => (v ? INFEASIBLE : PALETTE[0])) },
            hovertemplate: `${ax.path}=%{x}<br>%{customdata}<extra></extra>`,
          },
        ],
        {
          title: { text: `${res.labels[key]} vs ${inputWords(ax.path)}`, x: 0.02, font: { size: 14 } },
          showlegend: false,
          xaxis: { title: { text: inputWords(ax.path) }, type: logX ? "log" : "linear" },
          yaxis: { title: { text: res.labels[key] }, type: "category", automargin: true },
        },
        400,
      );
    }
    if (!ay) {
      const ys = res.metrics[key];
      // The metric's validation band (the same factors at every point: dse.services.bands), shaded.
      const band = (res.bands || {})[key];
      const bandTrace = (factor, extra) => ({
        x: ax.values,
        y: pick(ys, true).map((v) => (v === null || v === undefined ? null : v * factor)),
        type: "scatter",
        mode: "lines",
        line: { width: 0, color: BAND_FILL },
        hoverinfo: "skip",
        legendgroup: "validation-band",
        name: `P10–P90 (validation, ${band.group})`,
        showlegend: false,
        ...extra,
      });
      const traces = band
        ? [
            bandTrace(band.relative_p10, {}),
            bandTrace(band.relative_p90, { fill: "tonexty", fillcolor: BAND_FILL, showlegend: true }),
          ]
        : [];
      traces.push({
        x: ax.values,
        y: pick(ys, true),
        type: "scatter",
        mode: "lines+markers",
        name: res.labels[key],
        line: { width: 2.5, color: PALETTE[0] },
        marker: { color: PALETTE[0] },
      });
      const bad = ok ? ok.map((f, i) => (f ? -1 : i)).filter((i) => i >= 0) : [];
      if (bad.length)
        traces.push(
          infeasibleTrace(
            bad.map((i) => ax.values[i]),
            bad.map((i) => ys[i]),
            bad.map((i) => `${ax.path}=${formatNumber(ax.values[i])}`),
            res,
            bad,
          ),
        );
      return plot(
        div,
        traces,
        {
          title: { text: `${res.labels[key]} vs ${inputWords(ax.path)}`, x: 0.02, font: { size: 14 } },
          showlegend: bad.length > 0 || Boolean(band),
          xaxis: { title: { text: inputWords(ax.path) }, type: logX ? "log" : "linear" },
          yaxis: { title: { text: label(key, res) } },
        },
        400,
      );
    }
    const logY =
      ay.values.every((v) => v > 0) && ay.values.length > 2 && ay.values[ay.values.length - 1] / ay.values[0] >= 16;
    const z = ay.values.map((_, j) => ax.values.map((__, i) => res.metrics[key][i][j]));
    const traces =
      key === whyKey
        ? reasonCells(z, ax, ay, res.labels[key])
        : [
            {
              type: "heatmap",
              x: ax.values.map(String),
              y: ay.values.map(String),
              z,
              colorscale: "Viridis",
              colorbar: { title: { text: res.units[key] || "", side: "right" } },
              hovertemplate: `${ax.path}=%{x}<br>${ay.path}=%{y}<br>${res.labels[key]}=%{z:.4g}<extra></extra>`,
            },
          ];
    if (res.feasible) {
      const cells = [];
      ax.values.forEach((x, i) =>
        ay.values.forEach(
          (y, j) => res.feasible[i][j] || cells.push([String(x), String(y), reason(res, i * ay.values.length + j)]),
        ),
      );
      if (cells.length)
        traces.push({
          type: "scatter",
          mode: "markers",
          name: "does not fit",
          x: cells.map((c) => c[0]),
          y: cells.map((c) => c[1]),
          customdata: cells.map((c) => c[2]),
          marker: { symbol: "x", size: 11, color: "#ffffff", line: { width: 1, color: "#1d232b" } },
          hovertemplate: `${ax.path}=%{x}<br>${ay.path}=%{y}<br>%{customdata}<extra></extra>`,
        });
    }
    return plot(
      div,
      traces,
      {
        title: {
          text: `${res.labels[key]} over ${inputWords(ax.path)} × ${inputWords(ay.path)}`,
          x: 0.02,
          font: { size: 14 },
        },
        xaxis: { title: { text: inputWords(ax.path) + (logX ? ", log steps" : "") }, type: "category" },
        yaxis: { title: { text: inputWords(ay.path) + (logY ? ", log steps" : "") }, type: "category" },
        // A bit mask's cells are categories: a legend of their reasons in words below the chart, no colour bar.
        showlegend: key === whyKey,
        legend: { orientation: "h", y: -0.22, yanchor: "top" },
      },
      key === whyKey ? 520 : 440,
    );
  }

  // A bit-mask heatmap (why a plan cannot run): one colour per distinct set of reasons, named in a legend
  // (the codes are categories, not magnitudes: a numeric colour bar would mislead).
  function reasonCells(z, ax, ay, metricLabel) {
    const codes = kind.metrics[whyKey].codes;
    const distinct = [...new Set(z.flat().filter((v) => v !== null && Number.isFinite(v)))].sort((a, b) => a - b);
    const colour = (i) => (distinct[i] === 0 ? "#D9DEE3" : PALETTE[(i - (distinct[0] === 0 ? 1 : 0)) % PALETTE.length]);
    const n = Math.max(distinct.length, 1);
    const colorscale = distinct.flatMap((_, i) => [
      [i / n, colour(i)],
      [(i + 1) / n, colour(i)],
    ]);
    const index = z.map((row) => row.map((v) => (v === null ? null : distinct.indexOf(v))));
    const words = (v) => (v === 0 ? "runs (no reason)" : codeWords(codes, v));
    return [
      {
        type: "heatmap",
        x: ax.values.map(String),
        y: ay.values.map(String),
        z: index,
        zmin: -0.5,
        zmax: n - 0.5,
        colorscale: colorscale.length
          ? colorscale
          : [
              [0, "#D9DEE3"],
              [1, "#D9DEE3"],
            ],
        showscale: false,
        text: z.map((row) => row.map((v) => (v === null ? "—" : words(v)))),
        hovertemplate: `${ax.path}=%{x}<br>${ay.path}=%{y}<br>${metricLabel}: %{text}<extra></extra>`,
        showlegend: false,
      },
      // Legend entries only (no points drawn): each set of reasons in its cells' colour.
      ...distinct.map((v, i) => ({
        type: "scatter",
        mode: "markers",
        x: [null],
        y: [null],
        name: shortWords(words(v), 60),
        marker: { symbol: "square", size: 12, color: colour(i) },
        hoverinfo: "skip",
      })),
    ];
  }

  const runButton = h("button", { type: "button", id: "sweep-run", onclick: run }, "Run sweep");
  const job = jobControls({
    getDoc,
    kind,
    getAxes: () => axisRows.map((r) => ({ path: r.select.value, values: parseValues(r.values.value) })),
    getMetric: () => metric.value,
    getGoal: () => dirX.value,
    getPareto: () => ({ x: metric.value, y: metricY.value, goal_x: dirX.value, goal_y: dirY.value }),
  });
  const el = h(
    "section",
    { class: "sweep card-box", id: "sweep" },
    h(
      "div",
      { class: "sweep-head" },
      h("h2", {}, "Sweep"),
      h(
        "span",
        { class: "muted" },
        "Vary one input (a line) or two (a heatmap); every grid is one vectorised engine call.",
      ),
    ),
    axesBox,
    addAxisButton,
    h("div", { class: "row" }, h("span", { class: "muted" }, "show"), metric, mode, runButton, job.button),
    paretoRow,
    out,
    job.panel,
  );
  const ready = loadPaths()
    .then(() => (initial ? run() : null))
    .catch((error) => fill(out, h("div", { class: "error" }, error.message)));
  return { el, run, ready, reload: loadPaths, paths: () => paths };
}
