// Compare 2 to 8 saved scenarios: charts overlaid, the inputs that differ, the metric deltas (yes/no metrics read yes or no).
import { api, meta } from "./api.js";
import { csvCell, download, fill, formatNumber, formatSI, h, plotlyText } from "./dom.js";
import { DASHES, NARROW, PALETTE, plot } from "./result.js";

const MAX_ITEMS = 8;
//: One colour per scenario (the shared palette's first eight).
const SCENARIO_COLORS = PALETTE.slice(0, MAX_ITEMS);
const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "x", "cross", "star", "triangle-down"];

// A scenario's name cut to `n` characters for a chart (the chips above the charts show it in full).
function short(name, n = 40) {
  return name.length > n ? `${name.slice(0, n - 1)}…` : name;
}

function valueText(v) {
  return v !== null && typeof v === "object" ? JSON.stringify(v) : formatNumber(v);
}

function deltaCell(m, i) {
  if (m.value_type === "boolean") {
    // yes/no: no delta, only whether it changed against the first
    const v = m.values[i];
    const changed = i > 0 && v !== m.values[0];
    return h("td", { class: `num${changed ? " changed" : ""}`, title: String(v) }, v === null ? "—" : v ? "yes" : "no");
  }
  const { text, unit } = formatSI(m.values[i], m.unit);
  const rel = m.relative_delta ? m.relative_delta[i] : null;
  const badge =
    i > 0 && rel !== null && rel !== undefined
      ? h(
          "span",
          { class: `delta ${rel > 1e-9 ? "up" : rel < -1e-9 ? "down" : "same"}` },
          `${rel >= 0 ? "+" : ""}${(rel * 100).toFixed(1)}%`,
        )
      : null;
  return h(
    "td",
    { class: "num", title: String(m.values[i]) },
    text,
    h("span", { class: "muted" }, ` ${unit}`),
    badge ? " " : null,
    badge,
  );
}

// One figure of every scenario on shared axes: lines and markers overlaid, colour = scenario, dash and
// marker = series (the same series has the same dash in every scenario). Drawn across the whole row.
function overlay(key, items) {
  const first = items.find((it) => it.figure)?.figure;
  const series = new Map();
  const data = [];
  items.forEach((it, s) => {
    if (!it.figure) return;
    (it.figure.figure.data || []).forEach((trace, t) => {
      const id = trace.legendgroup || trace.name || String(t);
      if (!series.has(id)) series.set(id, series.size);
      const n = series.get(id);
      const colour = SCENARIO_COLORS[s % SCENARIO_COLORS.length];
      data.push({
        ...trace,
        // Grouped by scenario under its name (in its colour), each entry the series' own name.
        name: trace.name || String(t + 1),
        legendgroup: `s${s}`,
        legendgrouptitle: { text: plotlyText(short(it.name)), font: { color: colour, size: 12 } },
        showlegend: trace.showlegend !== false,
        line: { ...(trace.line || {}), color: colour, dash: DASHES[n % DASHES.length] },
        // The scenario's colour replaces a colour scale too (one colour bar per scenario would overlap).
        marker: {
          ...(trace.marker || {}),
          color: colour,
          showscale: false,
          colorbar: undefined,
          symbol: SYMBOLS[n % SYMBOLS.length],
        },
      });
    });
  });
  const layout = {
    ...(first.figure.layout || {}),
    title: { text: `${first.title} — overlaid`, x: 0.02, font: { size: 14 } },
    legend: { font: { size: 11 }, tracegroupgap: 12 },
  };
  // The legend hangs from the top of the plot: tall enough for every entry and each scenario's heading.
  const groups = items.filter((it) => it.figure).length;
  const entries = data.filter((t) => t.showlegend !== false).length;
  const div = h("div", { class: "figure wide", "data-figure": key });
  layout.height = Math.max(440, layout.height || 0, 90 + 22 * entries + 36 * groups);
  plot(div, data, layout, layout.height);
  return div;
}

// Charts that cannot be overlaid (bars, heatmaps): one per scenario, side by side where they fit.
function smallMultiples(key, items) {
  const grid = h("div", { class: "multiples", "data-figure": key });
  items.forEach((it, s) => {
    if (!it.figure) return;
    const div = h("div", { class: "figure small" });
    const base = it.figure.figure.layout || {};
    const name = plotlyText(it.name.length > 48 ? `${it.name.slice(0, 47)}…` : it.name);
    const layout = {
      ...base,
      // The scenario on the first line, the chart on the second.
      title: {
        text: `${name}<br><span style="font-size:12px;color:#66707c">${it.figure.title}</span>`,
        x: 0.02,
        font: { size: 13, color: SCENARIO_COLORS[s % SCENARIO_COLORS.length] },
      },
      margin: { ...(base.margin || {}), t: 72 },
    };
    grid.append(div);
    plot(div, it.figure.figure.data || [], layout, (base.height || 360) + 24);
    if (div.classList.contains("wide")) grid.classList.add("one-per-row");
  });
  return grid;
}

function metricsOverview(c) {
  const rows = c.metrics.filter(
    (m) => m.relative_delta && m.relative_delta.some((r, i) => i > 0 && r !== null && Math.abs(r) > 1e-9),
  );
  if (!rows.length) return h("p", { class: "muted" }, "All metrics are equal.");
  const div = h("div", { class: "figure", "data-figure": "metric-deltas" });
  const data = c.names.slice(1).map((name, j) => ({
    type: "bar",
    orientation: "h",
    // On a phone the metric names are cut short (the whole name stays in the hover and the table below).
    y: rows.map((m) => (NARROW.matches ? short(m.label, 24) : m.label)),
    customdata: rows.map((m) => plotlyText(m.label)),
    x: rows.map((m) => (m.relative_delta[j + 1] ?? 0) * 100),
    name: plotlyText(short(name)),
    marker: { color: SCENARIO_COLORS[(j + 1) % SCENARIO_COLORS.length] },
    hovertemplate: "%{customdata}: %{x:.1f}%<extra>" + "%{fullData.name}" + "</extra>",
  }));
  // One other scenario: Plotly shows no legend for a single series, so no rows are kept for it.
  const legendPx = data.length > 1 ? 24 * Math.ceil(data.length / 2) : 0;
  plot(
    div,
    data,
    {
      title: {
        text: `Metric change against "${plotlyText(short(c.names[0], NARROW.matches ? 26 : 60))}"`,
        x: 0.02,
        y: 1,
        yref: "container",
        yanchor: "top",
        pad: { t: 12 },
        font: { size: 14 },
      },
      barmode: "group",
      xaxis: { title: { text: "change (%)" }, zeroline: true, zerolinecolor: "#888" },
      yaxis: { autorange: "reversed" },
      // The scenarios above the plot (two per row at most), so long names never narrow it.
      legend: { orientation: "h", x: 0, xanchor: "left", y: 1, yanchor: "bottom", entrywidth: 300, font: { size: 11 } },
      margin: { l: NARROW.matches ? 120 : 220, t: 60 + legendPx, r: 16 },
    },
    Math.max(300, 60 + legendPx + rows.length * (18 + 8 * c.names.length)),
  );
  return div;
}

function comparisonCsv(c) {
  const lines = [["metric", "unit", ...c.names].map(csvCell).join(",")];
  for (const m of c.metrics) lines.push([m.label, m.unit, ...m.values].map(csvCell).join(","));
  lines.push("", ["input", ...c.names].map(csvCell).join(","));
  for (const d of c.inputs_differ)
    lines.push(
      [d.path, ...d.values.map((v) => (typeof v === "object" ? JSON.stringify(v) : v))].map(csvCell).join(","),
    );
  return lines.join("\n") + "\n";
}

export async function comparePage(app, { navigate, showError }) {
  const params = new URLSearchParams(location.search);
  const ids = (params.get("ids") || "").split(",").filter(Boolean).slice(0, MAX_ITEMS);
  const kindFilter = params.get("kind") || "";
  const [page, { kinds, byKind }] = await Promise.all([
    api(`/scenarios?limit=100${kindFilter ? `&kind=${encodeURIComponent(kindFilter)}` : ""}`),
    meta(),
  ]);
  const chosen = new Set(ids);
  const counter = h("span", { class: "muted", id: "compare-count" });
  const go = h("button", { id: "compare-run" }, "Compare");
  const refresh = () => {
    counter.textContent = `${chosen.size} chosen (2 to ${MAX_ITEMS})`;
    go.disabled = chosen.size < 2 || chosen.size > MAX_ITEMS;
  };
  const rows = page.items.map((s) => {
    const box = h("input", {
      type: "checkbox",
      value: s.id,
      checked: chosen.has(s.id),
      class: "toggle",
      "aria-label": `choose ${s.name}`,
    });
    box.addEventListener("change", () => {
      if (box.checked) chosen.add(s.id);
      else chosen.delete(s.id);
      refresh();
    });
    return h(
      "tr",
      {},
      h("td", {}, box),
      h("td", {}, h("a", { href: `/s/${s.id}`, "data-link": true }, s.name)),
      h("td", {}, byKind[s.kind]?.title || s.kind),
      h("td", { class: "share muted" }, s.id),
      h("td", { class: "muted" }, new Date(s.created_at).toLocaleString()),
    );
  });
  const extra = h("input", {
    type: "text",
    placeholder: "or paste a share link or id",
    id: "compare-add",
    "aria-label": "add a scenario by link or id",
  });
  extra.addEventListener("change", () => {
    const id = extra.value.trim().split("/").pop();
    if (id) {
      chosen.add(id);
      extra.value = "";
      refresh();
    }
  });
  go.addEventListener("click", () => navigate(`/compare?ids=${[...chosen].map(encodeURIComponent).join(",")}`));
  const filter = h(
    "select",
    { id: "compare-kind", "aria-label": "kind" },
    h("option", { value: "" }, "all kinds"),
    kinds.map((k) => h("option", { value: k.kind, selected: k.kind === kindFilter }, k.title)),
  );
  filter.addEventListener("change", () =>
    navigate(
      `/compare?${new URLSearchParams({ ...(ids.length ? { ids: ids.join(",") } : {}), ...(filter.value ? { kind: filter.value } : {}) })}`,
    ),
  );
  refresh();
  const picker = h(
    "details",
    { class: "panel picker", open: ids.length < 2 },
    h("summary", {}, `Choose scenarios (${page.total} saved)`),
    h("div", { class: "toolbar" }, filter, extra, go, counter),
    rows.length
      ? h(
          "div",
          { class: "scroll-x tall" },
          h(
            "table",
            { id: "compare-choices" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["", "name", "kind", "id", "saved"].map((c) => h("th", {}, c)),
              ),
            ),
            h("tbody", {}, rows),
          ),
        )
      : h("p", { class: "muted" }, "Nothing saved yet: open a scenario and press “Save & share”."),
  );
  const out = h("div", { id: "comparison" });
  fill(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Compare scenarios"),
        h(
          "p",
          { class: "muted lede" },
          "Overlay up to eight saved scenarios: their charts on shared axes, the inputs that differ and every metric's change against the first.",
        ),
      ),
    ),
    picker,
    out,
  );
  if (ids.length < 2) return;
  out.append(h("p", { class: "muted" }, "Comparing…"));
  try {
    const [c, results] = await Promise.all([
      api("/compare", { method: "POST", body: { items: ids } }),
      Promise.all(ids.map((id) => api(`/scenarios/${encodeURIComponent(id)}/result`))),
    ]);
    const legend = h(
      "div",
      { class: "legend-row" },
      c.names.map((name, i) =>
        h(
          "a",
          {
            class: "chip",
            href: `/s/${ids[i]}`,
            "data-link": true,
            style: `border-color:${SCENARIO_COLORS[i % SCENARIO_COLORS.length]}`,
          },
          h("span", { class: "dot", style: `background:${SCENARIO_COLORS[i % SCENARIO_COLORS.length]}` }),
          name,
          h("span", { class: "muted" }, ` · ${byKind[c.kinds[i]]?.title || c.kinds[i]}`),
        ),
      ),
    );
    const figureKeys = [...new Set(results.flatMap((r) => r.charts.map((f) => f.key)))];
    const charts = figureKeys.map((key) => {
      const items = results.map((r, i) => ({ name: c.names[i], figure: r.charts.find((f) => f.key === key) }));
      const present = items.filter((it) => it.figure);
      const overlayable =
        present.length >= 2 &&
        present.every((it) => (it.figure.figure.data || []).every((t) => (t.type || "scatter") === "scatter"));
      return overlayable ? overlay(key, items) : smallMultiples(key, items);
    });
    fill(
      out,
      legend,
      h(
        "div",
        { class: "toolbar" },
        h(
          "button",
          {
            class: "secondary",
            id: "export-compare-csv",
            onclick: () => download("comparison.csv", comparisonCsv(c), "text/csv"),
          },
          "Export comparison CSV",
        ),
      ),
      h("h2", { class: "section" }, "Metric deltas"),
      metricsOverview(c),
      h(
        "div",
        { class: "scroll-x" },
        h(
          "table",
          { id: "metric-deltas" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", {}, "metric"),
              c.names.map((n, i) =>
                h("th", { class: "num", style: `color:${SCENARIO_COLORS[i % SCENARIO_COLORS.length]}` }, n),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            // A metric none of the scenarios defines (MoE metrics on dense models) is left out.
            c.metrics
              .filter((m) => m.values.some((v) => v !== null && v !== undefined))
              .map((m) =>
                h(
                  "tr",
                  {},
                  h("td", {}, m.label),
                  m.values.map((_, i) => deltaCell(m, i)),
                ),
              ),
          ),
        ),
      ),
      h("h2", { class: "section" }, `Inputs that differ (${c.inputs_differ.length})`),
      c.inputs_differ.length
        ? h(
            "div",
            { class: "scroll-x" },
            h(
              "table",
              { id: "inputs-differ" },
              h(
                "thead",
                {},
                h(
                  "tr",
                  {},
                  h("th", {}, "input"),
                  c.names.map((n, i) => h("th", { style: `color:${SCENARIO_COLORS[i % SCENARIO_COLORS.length]}` }, n)),
                ),
              ),
              h(
                "tbody",
                {},
                c.inputs_differ.map((d) =>
                  h(
                    "tr",
                    {},
                    h("td", {}, h("code", {}, d.path)),
                    d.values.map((v, i) =>
                      h(
                        "td",
                        { class: i > 0 && JSON.stringify(v) !== JSON.stringify(d.values[0]) ? "changed" : "" },
                        valueText(v),
                      ),
                    ),
                  ),
                ),
              ),
            ),
          )
        : h("p", { class: "muted" }, "The inputs are identical."),
      h("h2", { class: "section" }, "Charts"),
      h("div", { class: "figures" }, charts),
    );
  } catch (error) {
    showError(out, error);
  }
}
