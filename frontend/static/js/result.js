// Renders an EvaluationResult: metric cards with "show the math", tables, Plotly figures.
import { formatNumber, h } from "./dom.js";

export function renderMetrics(result) {
  return h("div", { class: "metrics", id: "metrics" }, result.metrics.map((m) =>
    h("div", { class: "metric", "data-metric": m.key },
      h("div", { class: "muted" }, m.label),
      h("div", {}, h("span", { class: "value" }, formatNumber(m.value)), h("span", { class: "unit" }, m.unit)),
      m.formula ? h("details", {},
        h("summary", {}, "show the math"),
        h("div", { class: "math" }, h("code", {}, m.formula)),
        Object.keys(m.terms || {}).length ? h("table", {}, Object.entries(m.terms).map(([k, v]) =>
          h("tr", {}, h("td", {}, k), h("td", { class: "num" }, formatNumber(v))))) : null,
      ) : null,
    )));
}

export function renderTable(table) {
  return h("div", { class: "table", "data-table": table.key },
    h("h3", {}, table.title),
    h("div", { style: "overflow-x:auto" }, h("table", {},
      h("thead", {}, h("tr", {}, table.columns.map((c) =>
        h("th", { class: "num" }, c.label, c.unit ? ` [${c.unit}]` : "")))),
      h("tbody", {}, table.rows.map((row) => h("tr", {}, row.map((cell) =>
        h("td", { class: typeof cell === "number" ? "num" : "" }, formatNumber(cell)))))))));
}

export function renderFigure(figure, target) {
  const div = target || h("div", { class: "figure", "data-figure": figure.key });
  const draw = () => window.Plotly.react(div, figure.figure.data || [], {
    title: { text: figure.title }, margin: { t: 50, l: 60, r: 20, b: 50 }, ...(figure.figure.layout || {}),
  }, { responsive: true, displaylogo: false });
  if (window.Plotly) draw(); else window.addEventListener("load", draw, { once: true });
  return div;
}

export function renderResult(result) {
  const notes = (result.notes || []).map((n) => h("p", { class: result.feasible ? "notice" : "error" }, n));
  const refs = (result.references || []).length ? h("div", {}, h("h2", {}, "Published figures beside the engine"),
    h("table", {}, h("thead", {}, h("tr", {}, ["quantity", "published", "engine", "error", "source"].map((c) => h("th", {}, c)))),
      h("tbody", {}, result.references.map((r) => h("tr", {},
        h("td", {}, r.quantity || r.label || ""), h("td", { class: "num" }, formatNumber(r.published)),
        h("td", { class: "num" }, formatNumber(r.engine)),
        h("td", { class: "num" }, r.relative_error === undefined || r.relative_error === null ? "—" : `${(r.relative_error * 100).toFixed(1)}%`),
        h("td", {}, r.source || "")))))) : null;
  return h("div", { class: "result" },
    h("p", { class: result.feasible ? "good" : "bad", id: "feasible" }, result.feasible ? "✓ feasible" : "✗ does not fit or is invalid — see notes"),
    ...notes,
    renderMetrics(result),
    h("div", { id: "figures" }, result.figures.map((f) => renderFigure(f))),
    refs,
    h("div", { id: "tables" }, result.tables.map(renderTable)),
  );
}

export function resultToCsv(result) {
  const esc = (v) => { const s = v === null || v === undefined ? "" : String(v); return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s; };
  const lines = [["metric", "label", "value", "unit", "formula"].join(",")];
  for (const m of result.metrics) lines.push([m.key, m.label, m.value, m.unit, m.formula].map(esc).join(","));
  for (const t of result.tables) {
    lines.push("", esc(t.title));
    lines.push(t.columns.map((c) => esc(c.unit ? `${c.label} [${c.unit}]` : c.label)).join(","));
    for (const row of t.rows) lines.push(row.map(esc).join(","));
  }
  return lines.join("\n") + "\n";
}
