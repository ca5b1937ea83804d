// Sweep jobs: the current sweep run as a background job (POST /sweep-jobs), sharded on the server's Dask
// cluster. Progress is polled; the merged summary (top points, per-axis best, the 2-D slice, the Pareto
// front) streams in as shards finish. The job id lives in the URL (?job=…), so a reload resumes it.
import { api } from "./api.js";
import { codeWords, displayScale, fill, formatNumber, h } from "./dom.js";
import { INFEASIBLE, plot } from "./result.js";

const POLL_MS = 700;
//: Chart titles as the kinds' charts have them: left, 14 px (centred ones ran under the mode bar).
const TITLE = { x: 0.02, font: { size: 14 } };

function setJobInUrl(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("job", id);
  else url.searchParams.delete("job");
  history.replaceState(history.state, "", url.pathname + url.search);
}

export function jobControls({ getDoc, getAxes, getMetric, getGoal, getPareto, kind }) {
  const panel = h("div", { class: "sweep-job", id: "sweep-job" });
  let timer = null;
  let currentId = null;

  const label = (key) => {
    const m = kind.metrics[key];
    return m ? `${m.label}${m.unit ? ` [${m.unit}]` : ""}` : key;
  };

  // A metric's values as a chart plots them: in the unit its cards read ("ms", not raw seconds), named in
  // the axis title.
  const scaled = (key, values) => {
    const m = kind.metrics[key];
    if (!m) return { values, title: key };
    const { unit, factor } = displayScale(values, m.unit, m.display);
    return { values: values.map((v) => (v === null ? v : v / factor)), title: `${m.label}${unit ? ` [${unit}]` : ""}` };
  };

  // The kind's bit-mask metric of why a point cannot run (its `codes`), if it has one.
  const whyKey = Object.keys(kind.metrics).find((k) => Object.keys(kind.metrics[k].codes || {}).length);

  // Why a cell (an axis value, a heatmap cell) has no best, from its [refused, infeasible, undefined,
  // reason bits] (dse.services.jobs.summary): how many of its points each and, when the kind says, why.
  function emptyCellText(why) {
    if (!why) return "no point with a value";
    const [refused, infeasible, valueless, bits] = why;
    const parts = [];
    if (infeasible) parts.push(`${infeasible.toLocaleString()} do not fit`);
    if (valueless) parts.push(`${valueless.toLocaleString()} without a value (e.g. no plan fits)`);
    if (refused) parts.push(`${refused.toLocaleString()} refused by the scenario's rules`);
    const reasons = whyKey && bits ? `<br>cannot run: ${codeWords(kind.metrics[whyKey].codes, bits)}` : "";
    return `no point to show: ${parts.join(", ")}${reasons}`;
  }

  // Markers (×) on the cells without a best, the reason on hover; none when every cell has one.
  function emptyCells(xs, ys, whys, extra = {}) {
    return {
      type: "scatter",
      mode: "markers",
      name: "no point to show",
      x: xs,
      y: ys,
      customdata: whys.map(emptyCellText),
      marker: { symbol: "x", size: 11, color: "#ffffff", line: { width: 1, color: "#1d232b" } },
      hovertemplate: "%{x}<br>%{customdata}<extra></extra>",
      showlegend: false,
      ...extra,
    };
  }

  function render(job) {
    const p = job.progress;
    const s = job.summary;
    const active = job.status === "queued" || job.status === "running";
    const cancel = h(
      "button",
      { type: "button", id: "sweep-job-cancel", hidden: !active, onclick: () => cancelJob(job.id) },
      "Cancel",
    );
    const bar = h("progress", { id: "sweep-job-progress", max: 1, value: p.fraction });
    const header = h(
      "div",
      { class: "row" },
      h("strong", {}, `Job ${job.id}: ${job.status}`),
      bar,
      h(
        "span",
        { class: "muted" },
        `${p.points_done.toLocaleString()} / ${p.points_total.toLocaleString()} points, ` +
          `${p.shards_done} / ${p.shards_total} shards; refused ${s.refused}, undefined ${s.undefined}, ` +
          `infeasible ${s.infeasible}`,
      ),
      cancel,
      h("a", { href: job.share_url }, "share link"),
    );
    const axes = job.axes;
    const metric = job.settings.objective;
    const top = h(
      "table",
      { class: "sweep-job-top" },
      h("thead", {}, h("tr", {}, h("th", {}, label(metric)), ...axes.map((a) => h("th", {}, a.path)))),
      h(
        "tbody",
        {},
        s.top.map((row) =>
          h("tr", {}, h("td", {}, formatNumber(row[0])), ...row[2].map((v) => h("td", {}, formatNumber(v)))),
        ),
      ),
    );
    const chart = h("div", { class: "sweep-job-chart", id: "sweep-job-chart" });
    const front = h("div", { class: "sweep-job-chart", id: "sweep-job-pareto" });
    const histogram = h("div", { class: "sweep-job-chart", id: "sweep-job-histogram" });
    fill(panel, header, job.error ? h("div", { class: "error" }, job.error) : null, top, chart, front, histogram);
    if (s.slices["0,1"]) {
      // As the sweep's heatmap draws it: the first axis across, the second up, the same colour scale.
      const [a, b] = axes;
      const z = b.values.map((_, j) => a.values.map((_, i) => s.slices["0,1"][i * b.values.length + j]));
      // A blank cell (no point of it has a best) is marked ×, and says why on hover.
      const whys = (s.slice_why || {})["0,1"] || {};
      const empty = [];
      a.values.forEach((x, i) =>
        b.values.forEach((y, j) => {
          const cell = i * b.values.length + j;
          if (s.slices["0,1"][cell] === null) empty.push([String(x), String(y), whys[cell]]);
        }),
      );
      plot(
        chart,
        [
          {
            type: "heatmap",
            x: a.values.map(String),
            y: b.values.map(String),
            z,
            colorscale: "Viridis",
            colorbar: { title: { text: kind.metrics[metric]?.unit || "", side: "right" } },
            hovertemplate: `${a.path}=%{x}<br>${b.path}=%{y}<br>best %{z:.4g}<extra></extra>`,
            hoverongaps: false, // a blank cell's hover is its × marker's: why it is blank
          },
          ...(empty.length
            ? [
                emptyCells(
                  empty.map((c) => c[0]),
                  empty.map((c) => c[1]),
                  empty.map((c) => c[2]),
                  { hovertemplate: `${a.path}=%{x}<br>${b.path}=%{y}<br>%{customdata}<extra></extra>` },
                ),
              ]
            : []),
        ],
        {
          title: { ...TITLE, text: `best ${label(metric)} over the other axes` },
          xaxis: { title: { text: a.path }, type: "category" },
          yaxis: { title: { text: b.path }, type: "category" },
          showlegend: false,
        },
      );
    } else {
      // Axis values without a best: grey × on the lowest best (or 0), the reason on hover.
      const best = s.axis_best[0];
      const whys = (s.axis_why || [])[0] || {};
      const defined = best.filter((v) => v !== null);
      const floor = defined.length ? Math.min(...defined) : 0;
      const empty = best.map((v, i) => (v === null ? i : -1)).filter((i) => i >= 0);
      const traces = [
        { type: "scatter", mode: "lines+markers", name: `best ${label(metric)}`, x: axes[0].values, y: best },
      ];
      if (empty.length)
        traces.push(
          emptyCells(
            empty.map((i) => axes[0].values[i]),
            empty.map(() => floor),
            empty.map((i) => whys[i]),
            { marker: { symbol: "x", size: 11, color: INFEASIBLE } },
          ),
        );
      plot(chart, traces, {
        title: { ...TITLE, text: `best ${label(metric)}` },
        xaxis: { title: { text: axes[0].path } },
        yaxis: { title: { text: label(metric) } },
        showlegend: false,
      });
    }
    const pareto = job.settings.pareto;
    if (pareto && s.pareto.length) {
      const x = scaled(
        pareto[0],
        s.pareto.map((pt) => pt[0]),
      );
      const y = scaled(
        pareto[1],
        s.pareto.map((pt) => pt[1]),
      );
      plot(
        front,
        [{ type: "scatter", mode: "lines+markers", x: x.values, y: y.values }],
        {
          title: { ...TITLE, text: "Pareto front" },
          xaxis: { title: { text: x.title } },
          yaxis: { title: { text: y.title } },
        },
        380, // a long metric name on the y axis needs the height (at 300 px it ran into the title)
      );
    }
    const bins = s.histograms[metric] || {};
    const keys = Object.keys(bins).filter((k) => k[0] === "p");
    if (keys.length) {
      // Bin "p<k>" counts 10^(k/10) <= value < 10^((k+1)/10) (dse.services.jobs.summary).
      // A step line over the bins' edges (bars cannot be given widths on a log axis): each bin is drawn
      // over exactly its span, and empty bins between two filled ones drop to zero.
      const ks = keys.map((k) => Number(k.slice(1))).sort((x, y) => x - y);
      const all = Array.from({ length: ks[ks.length - 1] - ks[0] + 1 }, (_, i) => ks[0] + i);
      const counts = all.map((k) => bins[`p${k}`] || 0);
      plot(
        histogram,
        [
          {
            type: "scatter",
            mode: "lines",
            line: { shape: "hv", width: 1 },
            fill: "tozeroy",
            x: [...all.map((k) => 10 ** (k / 10)), 10 ** ((all[all.length - 1] + 1) / 10)],
            y: [...counts, counts[counts.length - 1]],
            hovertemplate: "from %{x:.4g}: %{y} points<extra></extra>",
          },
        ],
        {
          title: { ...TITLE, text: `histogram of ${label(metric)} (feasible points)` },
          xaxis: { type: "log", title: { text: label(metric) } },
          // Counts are whole numbers: no 0.5 ticks.
          yaxis: { title: { text: "points" }, rangemode: "tozero", dtick: Math.max(...counts) <= 8 ? 1 : undefined },
          showlegend: false,
        },
        280,
      );
    }
  }

  async function poll(id) {
    clearTimeout(timer);
    if (id !== currentId) return;
    try {
      const job = await api(`/sweep-jobs/${id}`);
      if (id !== currentId) return;
      render(job);
      if (job.status === "queued" || job.status === "running") timer = setTimeout(() => poll(id), POLL_MS);
    } catch (error) {
      fill(panel, h("div", { class: "error" }, error.message));
    }
  }

  function follow(id) {
    currentId = id;
    setJobInUrl(id);
    poll(id);
  }

  async function cancelJob(id) {
    try {
      render(await api(`/sweep-jobs/${id}`, { method: "DELETE" }));
    } catch (error) {
      fill(panel, h("div", { class: "error" }, error.message));
    }
  }

  async function start() {
    const pareto = getPareto();
    const metric = getMetric();
    const feasible = Object.keys(kind.metrics).find((k) => kind.metrics[k].boolean) || null;
    try {
      const job = await api("/sweep-jobs", {
        method: "POST",
        body: {
          document: getDoc(),
          axes: getAxes(),
          objective: { metric, goal: getGoal(), top_k: 10 },
          pareto,
          feasible,
        },
      });
      follow(job.id);
    } catch (error) {
      fill(panel, h("div", { class: "error" }, error.message));
    }
  }

  const button = h(
    "button",
    {
      type: "button",
      id: "sweep-run-job",
      title: "Run this sweep as a background job (sharded, resumable)",
      onclick: start,
    },
    "Run as a job",
  );
  const resumeId = new URLSearchParams(location.search).get("job");
  if (resumeId) follow(resumeId);
  return { button, panel, follow };
}
