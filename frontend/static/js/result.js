// Renders an EvaluationResult: metric cards with "show the math", Plotly charts, breakdown tables,
// the published figures it can be checked against (typed rows) and the scenarios it links to.
// A view is created once per page and updated in place, so open "show the math" panels stay open
// and charts are re-drawn with Plotly.react (no flicker, no re-layout of the page).
import { codeWords, csvCell, download, encodeDoc, fill, formatNumber, formatSI, h, unitText } from "./dom.js";
import { fitLogTicks, presetLogTicks } from "./logticks.js";

//: Metric cards shown before "show all": the kinds list their headline metrics first.
const PRIMARY_METRICS = 12;

export const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
//: The qualitative palette of every chart: the same list as backend/dse/scenarios/shared/palette.py
//: (tests/test_palette.py keeps them equal). The kinds' charts carry their colours; the dashboard's own
//: charts (compare, sweep) take them from here.
export const PALETTE = [
  "#4E79A7",
  "#F28E2B",
  "#59A14F",
  "#E15759",
  "#B07AA1",
  "#76B7B2",
  "#EDC948",
  "#FF9DA7",
  "#9C755F",
  "#BAB0AC",
  "#1F3A93",
  "#8CD17D",
  "#B6992D",
  "#D37295",
];
//: Points that do not fit: grey and hollow (palette.py INFEASIBLE).
export const INFEASIBLE = "#9AA0A6";
//: The P10–P90 validation band: translucent neutral grey, never a series' colour (palette.py BAND_FILL).
export const BAND_FILL = "rgba(120,120,120,0.18)";
export const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
const BASE_LAYOUT = {
  // b: an x-axis title (under 12 px tick labels) ends 55 px below the plot: with less, Plotly pins it to
  // the bottom edge, which cuts its descenders off.
  margin: { t: 48, l: 64, r: 16, b: 60 },
  font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1d232b" },
  paper_bgcolor: "#fff",
  plot_bgcolor: "#fff",
  colorway: PALETTE,
  hoverlabel: { namelength: -1 },
};

//: A half-row card's width on a desktop (px), the width of a character of 11-12 px text, and the plot width
//: below which horizontal bars take the whole row.
const HALF_CARD_PX = 460;
const CHAR_PX = 6.5;
const MIN_BAR_PLOT_PX = 180;

// A trace of horizontal bars with their labels on the y axis.
const isHorizontalBars = (t) => t.type === "bar" && t.orientation === "h" && Array.isArray(t.y);

// Characters of the longest line among texts ("<br>" starts a line).
const longestLine = (texts) => Math.max(0, ...texts.flatMap((text) => String(text).split("<br>")).map((l) => l.length));

// The plot width horizontal bars would keep in a half-row card beside their labels and their legend.
function barPlotWidth(data, names) {
  const bars = data.filter(isHorizontalBars);
  if (!bars.length) return Infinity;
  const labels = longestLine(bars.flatMap((t) => t.y)) * CHAR_PX + 40; // and the axis title
  const legend = names.length ? longestLine(names) * CHAR_PX + 50 : 0; // and the swatch
  return HALF_CARD_PX - labels - legend - 30;
}

// A chart that needs the whole row: several panels, a long legend or title, a tall drawing, or horizontal
// bars whose labels and legend would leave the plot a strip (107 px for the UNet's MACs per code).
function needsWidth(data, layout) {
  const names = data.filter((t) => t.showlegend !== false && t.name).map((t) => String(t.name));
  const panels = Object.keys(layout).filter((k) => /^xaxis\d+$/.test(k)).length;
  const title = String(layout.title?.text || "");
  const columns = Math.max(0, ...data.filter((t) => t.type === "heatmap").map((t) => (t.x || []).length));
  return (
    panels >= 2 ||
    columns > 8 ||
    title.length > 58 ||
    names.some((n) => n.length > 24) ||
    (layout.height || 0) > 560 ||
    barPlotWidth(data, names) < MIN_BAR_PLOT_PX
  );
}

//: A phone's width: a legend at the right of the plot would take half of it.
export const NARROW = window.matchMedia("(max-width: 700px)");
//: Height of one row of a horizontal legend (11 px text), and the names that fit in one row on a phone.
const LEGEND_ROW_PX = 19;
const LEGEND_ROW_CHARS = 44;

// On a phone the legend goes under the plot, in as many rows as its names need; the drawing grows by
// those rows so the plot keeps its height, and the bottom margin holds them under the x-axis title.
function legendBelow(data, merged) {
  const names = data.filter((t) => t.showlegend !== false && t.name).map((t) => String(t.name));
  if (!names.length) return 0;
  // Grouped entries (compare: one group per scenario, under its name) stay one a row: side by side the
  // groups ran off the screen.
  const groups = new Set(data.filter((t) => t.legendgrouptitle?.text).map((t) => t.legendgroup)).size;
  let rows = 1;
  let used = 0;
  for (const name of names) {
    const width = Math.min(name.length, LEGEND_ROW_CHARS) + 5; // the symbol and the gap
    if (groups || (used && used + width > LEGEND_ROW_CHARS)) {
      rows += used ? 1 : 0;
      used = 0;
    }
    used += width;
  }
  const extra = rows * LEGEND_ROW_PX + groups * (LEGEND_ROW_PX + (merged.legend?.tracegroupgap ?? 10)) + 8;
  merged.legend = {
    ...merged.legend,
    orientation: groups ? "v" : "h",
    // A row legend starts at the figure's left edge, not the plot's (long y labels pushed the plot, and
    // the legend, right). A column legend (grouped) keeps to the plot's: on the container's edge Plotly
    // widens the left margin by the legend's width on the next relayout, and the plot goes negative.
    x: 0,
    xref: groups ? "paper" : "container",
    xanchor: "left",
    y: 0,
    yanchor: "bottom",
    yref: "container",
  };
  merged.margin = { ...merged.margin, l: 52, r: 16, b: merged.margin.b + extra };
  merged.height += extra;
  return extra;
}

//: Characters of a chart title that fit one line on a phone (14 px text in a ~340 px card).
const TITLE_LINE_CHARS = 40;

// On a phone a long title wraps onto more lines (Plotly never wraps it: it ran off both edges), and the
// top margin grows by the added lines.
function wrapTitle(merged) {
  const title = merged.title;
  const text = typeof title === "string" ? title : title?.text;
  if (!text || text.length <= TITLE_LINE_CHARS || text.includes("<br>")) return;
  const wrapped = wrapWords(text, TITLE_LINE_CHARS);
  const extra = (wrapped.split("<br>").length - 1) * 17;
  merged.title = { ...(typeof title === "string" ? {} : title), text: wrapped, x: 0.02, xanchor: "left" };
  merged.margin = { ...merged.margin, t: merged.margin.t + extra };
  merged.height += extra;
}

//: Characters per line of a horizontal bar's label on a phone, and its lines at most (the rest ends in "…").
const PHONE_BAR_LABEL_CHARS = 18;
const PHONE_BAR_LABEL_LINES = 4;

// A horizontal bar's label on a phone: written on narrower lines (two lines of 40 characters beside the
// bars left a plot 64 px wide for the bars and their axis on a 390 px screen).
function phoneBarLabel(label) {
  if (typeof label !== "string" || !label.split("<br>").some((line) => line.length > PHONE_BAR_LABEL_CHARS))
    return label;
  const lines = wrapWords(label.replaceAll("<br>", " "), PHONE_BAR_LABEL_CHARS).split("<br>");
  if (lines.length <= PHONE_BAR_LABEL_LINES) return lines.join("<br>");
  const kept = lines.slice(0, PHONE_BAR_LABEL_LINES);
  kept[kept.length - 1] = `${kept[kept.length - 1].replace(/…$/, "").slice(0, PHONE_BAR_LABEL_CHARS - 1)}…`;
  return kept.join("<br>");
}

//: Height of one line of a bar's label (11-12 px text), and the gap between two bars' labels.
const BAR_LABEL_LINE_PX = 14;
const BAR_LABEL_GAP_PX = 6;

// Horizontal bars whose labels were written on more lines (phoneBarLabel) get the height those lines need:
// the server sized the chart for its own, fewer lines, and the labels ran into each other.
function growForBarLabels(data, merged) {
  const bars = data.filter(isHorizontalBars);
  if (!bars.length) return;
  const labels = new Set(bars.flatMap((t) => t.y.map(String)));
  const lines = Math.max(...[...labels].map((label) => label.split("<br>").length));
  const needed = labels.size * (lines * BAR_LABEL_LINE_PX + BAR_LABEL_GAP_PX);
  const plotHeight = merged.height - merged.margin.t - merged.margin.b;
  if (needed > plotHeight) merged.height += needed - plotHeight;
}

//: Room under the plot for a colour bar laid across it on a phone: bar, ticks and title.
const PHONE_COLORBAR_PX = 62;

// A colour bar across the bottom of the figure, under the x axis, on a phone: at the right of the plot it
// (with its ticks and title) left a heatmap or a scatter coloured by value a plot ~100-170 px wide.
function phoneColorbar(colorbar) {
  const title = colorbar?.title || {};
  return {
    ...(colorbar || {}),
    orientation: "h",
    thickness: 10,
    len: 1,
    lenmode: "fraction",
    x: 0.5,
    xref: "paper",
    xanchor: "center",
    yref: "container",
    yanchor: "bottom",
    tickfont: { size: 11 },
    title: { ...(typeof title === "string" ? { text: title } : title), side: "bottom", font: { size: 11 } },
  };
}

export function plot(div, dataIn, layout, height = 360) {
  // On a phone long labels of horizontal bars wrap onto narrower lines, and a colour bar lies under the plot.
  const colourBars = []; // the phone's, placed once the legend's room is known
  const lying = (colorbar) => {
    const bar = phoneColorbar(colorbar);
    colourBars.push(bar);
    return bar;
  };
  const data = NARROW.matches
    ? dataIn.map((t) => {
        if (t.type === "heatmap" && t.showscale !== false) return { ...t, colorbar: lying(t.colorbar) };
        if (t.marker?.showscale) return { ...t, marker: { ...t.marker, colorbar: lying(t.marker.colorbar) } };
        if (isHorizontalBars(t)) return { ...t, y: t.y.map(phoneBarLabel) };
        return t;
      })
    : dataIn;
  const merged = { ...BASE_LAYOUT, height, ...layout };
  // The legend stays at the right of the plot (Plotly makes room for it there, so it never covers a
  // title or an axis); a chart with a wide legend or several panels takes the whole row.
  if (!layout.legend || !layout.legend.orientation) merged.legend = { font: { size: 11 }, ...(layout.legend || {}) };
  merged.margin = { ...BASE_LAYOUT.margin, ...(layout.margin || {}) };
  if (colourBars.length) {
    merged.height += PHONE_COLORBAR_PX;
    merged.margin.b += PHONE_COLORBAR_PX;
  }
  // On a phone every legend goes under the plot in rows (a chart's own legend below its plot as well:
  // placed in plot fractions it ran into a colour bar laid under the x axis).
  const ownBelow = layout.legend?.orientation === "h" && (layout.legend.y ?? 1) < 0;
  const rowsBelow = NARROW.matches && merged.showlegend !== false && (!layout.legend?.orientation || ownBelow);
  // The room the chart kept under its plot for its own legend goes: the rows bring theirs.
  const ownRoom = rowsBelow && ownBelow ? Math.max(0, (layout.margin?.b ?? 0) - BASE_LAYOUT.margin.b) : 0;
  merged.margin.b -= ownRoom;
  merged.height -= ownRoom;
  const legendRoom = rowsBelow ? legendBelow(data, merged) : 0;
  if (NARROW.matches) growForBarLabels(data, merged);
  // A colour bar on a phone sits above the legend rows, under the x axis.
  for (const bar of colourBars) bar.y = (legendRoom + 6) / merged.height;
  if (NARROW.matches) wrapTitle(merged);
  // Panels side by side on a phone: smaller axis titles and ticks, or neighbouring titles run together.
  const xAxes = Object.keys(merged).filter((k) => /^xaxis\d*$/.test(k));
  if (NARROW.matches && xAxes.length >= 2)
    for (const key of Object.keys(merged))
      if (/^[xy]axis\d*$/.test(key)) {
        const axis = merged[key] || {};
        const title = typeof axis.title === "string" ? { text: axis.title } : axis.title || {};
        merged[key] = {
          ...axis,
          title: { ...title, font: { size: 10, ...(title.font || {}) } },
          tickfont: { size: 9, ...(axis.tickfont || {}) },
        };
      }
  // A legend entry wider than a phone's screen would run off the chart: Plotly sizes it to its name.
  if (NARROW.matches && merged.legend?.entrywidth > window.innerWidth / 2) delete merged.legend.entrywidth;
  div.__dsePlot = [dataIn, layout, height];
  div.classList.toggle("wide", needsWidth(data, layout));
  // The box holds the drawing's height itself: Plotly's responsive resize sizes the plot from its box,
  // and a box sized by its content collapses to the CSS min-height on the first window resize,
  // cutting off the lower panels, the x axis and the legend's last entries. (+2: the 1 px border.)
  div.style.height = `${merged.height + 2}px`;
  for (const key of Object.keys(merged))
    if (/^[xy]axis\d*$/.test(key))
      merged[key] = { gridcolor: "#eef1f4", zerolinecolor: "#d9dee4", automargin: true, ...merged[key] };
  for (const axis of ["xaxis", "yaxis"])
    merged[axis] = { gridcolor: "#eef1f4", zerolinecolor: "#d9dee4", automargin: true, ...(merged[axis] || {}) };
  // A log axis over a decade or more is labelled at 1, 2 and 5 × 10^k in full (logticks.js).
  const laidOut = presetLogTicks(data, merged);
  countDraws(+1);
  const narrow = NARROW.matches;
  const draw = () => {
    // Across the phone width a colour bar turns from upright to lying: Plotly.react cannot rescale it in
    // place ("Something went wrong with axis scaling"), so the chart is drawn afresh.
    if (div.__dseNarrow !== undefined && div.__dseNarrow !== narrow) window.Plotly.purge(div);
    div.__dseNarrow = narrow;
    return (
      window.Plotly.react(div, data, laidOut, PLOT_CONFIG)
        .then(() => fitLogTicks(div))
        .then(() => fitOnPhone(div))
        // Once more: a title wrapped on a phone narrows the plot, and its labels may collide again.
        .then(() => fitLogTicks(div))
        .finally(() => countDraws(-1))
    );
  };
  if (window.Plotly) return draw();
  window.addEventListener("load", draw, { once: true });
  return Promise.resolve();
}

// Charts whose drawing (with its relayouts) has not finished, on <html data-pending-draws>: the browser
// tests measure a page's charts once there are none, rather than after a fixed wait.
let pendingDraws = 0;
function countDraws(change) {
  pendingDraws += change;
  document.documentElement.dataset.pendingDraws = String(pendingDraws);
}

// Splits a text into lines of at most `chars` characters at its spaces (a longer word keeps its line).
function wrapWords(text, chars) {
  const lines = [""];
  for (const word of text.split(" ")) {
    const line = lines[lines.length - 1];
    if (line && line.length + word.length + 1 > chars) lines.push(word);
    else lines[lines.length - 1] = line ? `${line} ${word}` : word;
  }
  return lines.join("<br>");
}

// On a phone, once drawn: an axis title longer than the room it has (a plot a few hundred pixels wide
// or tall) wraps onto more lines, and the labels of a categorical x axis that run into each other turn
// upright. Measured on the drawing, as only the rendered text knows its width; one more layout pass.
function fitOnPhone(div, pass = 0) {
  if (!NARROW.matches || !div._fullLayout || !div.querySelector(".main-svg")) return undefined;
  const frame = div.querySelector(".main-svg").getBoundingClientRect();
  const update = {};
  for (const key of Object.keys(div._fullLayout)) {
    const m = /^([xy])axis(\d*)$/.exec(key);
    const axis = div._fullLayout[key];
    if (!m || !axis || axis.visible === false) continue;
    const text = axis.title?.text;
    const el = div.querySelector(`g.g-${m[1]}${m[2]}title text`);
    if (text && el && !text.includes("<br>")) {
      const r = el.getBoundingClientRect();
      const long = m[1] === "x" ? r.width : r.height;
      const middle = m[1] === "x" ? (r.left + r.right) / 2 : (r.top + r.bottom) / 2;
      const room =
        m[1] === "x"
          ? 2 * Math.min(middle - frame.left, frame.right - middle)
          : 2 * Math.min(middle - frame.top, frame.bottom - middle);
      if (long > room - 4) {
        const chars = Math.max(8, Math.floor((text.length * (room - 8)) / long));
        update[`${key}.title.text`] = wrapWords(text, chars);
      }
    }
    if (m[1] === "x" && axis.type === "category") {
      const ticks = [...div.querySelectorAll(`g.${m[1]}${m[2]}tick text`)].map((t) => t.getBoundingClientRect());
      const crowded = ticks.some(
        (a, i) => i > 0 && Math.min(a.right, ticks[i - 1].right) - Math.max(a.left, ticks[i - 1].left) > 1,
      );
      // Upright first; labels still too close for that get smaller, then only every other one is written.
      if (crowded && axis.tickangle !== -90) update[`${key}.tickangle`] = -90;
      else if (crowded && (axis.tickfont?.size ?? 12) > 9) update[`${key}.tickfont.size`] = 9;
      else if (crowded) update[`${key}.dtick`] = 2 * (Number(axis.dtick) || 1);
    }
  }
  if (!Object.keys(update).length) return undefined;
  return window.Plotly.relayout(div, update).then(() => (pass < 2 ? fitOnPhone(div, pass + 1) : undefined));
}

// Crossing the phone width (a rotation, a resized window) re-lays every chart's legend.
NARROW.addEventListener("change", () => {
  for (const div of document.querySelectorAll(".js-plotly-plot")) if (div.__dsePlot) plot(div, ...div.__dsePlot);
});

export function renderFigure(figure, target) {
  const div = target || h("div", { class: "figure", "data-figure": figure.key });
  const layout = figure.figure.layout || {};
  plot(
    div,
    figure.figure.data || [],
    { ...layout, title: { text: figure.title, x: 0.02, font: { size: 14 } } },
    layout.height || 360,
  );
  return div;
}

// A yes/no metric (value_type "boolean") reads yes or no; every other metric is a number in its unit.
function metricValue(m) {
  if (m.value_type === "boolean") {
    const text = m.value === null ? "—" : m.value ? "yes" : "no";
    return h(
      "div",
      { class: "metric-value", title: m.value === null ? "undefined" : text },
      h("span", { class: `value${m.value === null ? "" : m.value ? " good" : " bad"}` }, text),
    );
  }
  // A bit mask (why a plan cannot run) reads as the words of its bits, never as a number.
  if (m.codes && Object.keys(m.codes).length)
    return h(
      "div",
      { class: "metric-value metric-words", title: `code ${m.value}` },
      h("span", { class: "value" }, codeWords(m.codes, m.value)),
    );
  const { text, unit } = formatSI(m.value, m.unit, m.display);
  return h(
    "div",
    { class: "metric-value", title: m.value === null ? "undefined" : `${m.value} ${m.unit}` },
    h("span", { class: "value" }, text),
    h("span", { class: "unit" }, unit),
  );
}

// Where the measured value likely lies (P10–P90), from the residuals of the published figures the
// engine is tested against (dse.services.bands); the hover says which group and how many figures.
function metricBand(m) {
  const band = m.band;
  if (!band) return null;
  const low = formatSI(band.p10, m.unit, m.display);
  const high = formatSI(band.p90, m.unit, m.display);
  const range =
    low.unit === high.unit
      ? `${low.text}–${high.text} ${low.unit}`
      : `${low.text} ${low.unit}–${high.text} ${high.unit}`;
  const pct = (f) => `${f >= 1 ? "+" : "−"}${Math.abs((f - 1) * 100).toFixed(0)}%`;
  const how = band.method === "quantiles" ? "P10–P90" : "interval";
  return h(
    "div",
    {
      class: `metric-band${band.method === "quantiles" ? "" : " stated"}`,
      title: `Measured value likely ${range} (${pct(band.relative_p10)} … ${pct(band.relative_p90)}; median ${pct(band.relative_p50)}): ${band.note}.`,
    },
    `${how} ${range}`,
  );
}

function metricText(m, digits) {
  if (m.value_type === "boolean") return m.value === null ? "—" : m.value ? "yes" : "no";
  if (m.codes && Object.keys(m.codes).length) return `${codeWords(m.codes, m.value)} (code ${m.value})`;
  return `${formatNumber(m.value, digits)} ${m.unit}`;
}

function mathPanel(m, tables) {
  const terms = Object.entries(m.terms || {});
  return h(
    "div",
    { class: "math" },
    h(
      "div",
      { class: "formula" },
      h("span", { class: "muted" }, `${m.label} = `),
      h("code", {}, m.formula || "(an input or a direct count)"),
    ),
    terms.length
      ? h(
          "table",
          { class: "terms" },
          h("thead", {}, h("tr", {}, h("th", {}, "term"), h("th", { class: "num" }, "value"))),
          h(
            "tbody",
            {},
            terms.map(([k, v]) =>
              h(
                "tr",
                {},
                h("td", {}, h("code", {}, k)),
                h("td", { class: "num", title: String(v) }, typeof v === "number" ? formatNumber(v, 5) : v),
              ),
            ),
          ),
        )
      : null,
    h("div", { class: "result-line" }, "= ", h("strong", {}, metricText(m, 6))),
    tables.length
      ? h(
          "div",
          { class: "breakdowns" },
          "Breakdown: ",
          tables.map((t) =>
            h(
              "a",
              {
                href: `#table-${t.key}`,
                "data-table-link": t.key,
                onclick: (event) => {
                  event.preventDefault();
                  const target = document.getElementById(`table-${t.key}`);
                  if (target) {
                    target.open = true;
                    target.scrollIntoView({ behavior: "smooth", block: "start" });
                    target.classList.add("flash");
                    setTimeout(() => target.classList.remove("flash"), 1200);
                  }
                },
              },
              t.title,
            ),
          ),
        )
      : null,
  );
}

function tableToCsv(table) {
  const lines = [table.columns.map((c) => csvCell(c.unit ? `${c.label} [${c.unit}]` : c.label)).join(",")];
  for (const row of table.rows) lines.push(row.map(csvCell).join(","));
  return lines.join("\n") + "\n";
}

export function renderTable(table, open = false) {
  return h(
    "details",
    { class: "table", "data-table": table.key, id: `table-${table.key}`, open },
    h(
      "summary",
      {},
      h("span", {}, table.title),
      h("span", { class: "muted" }, ` · ${table.rows.length} rows`),
      h(
        "button",
        {
          type: "button",
          class: "link small",
          onclick: (event) => {
            event.preventDefault();
            download(`${table.key}.csv`, tableToCsv(table), "text/csv");
          },
        },
        "CSV",
      ),
    ),
    h(
      "div",
      { class: "scroll-x" },
      h(
        "table",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            // A header sits over its cells: right for a column of numbers, left for one of words.
            table.columns.map((c, j) =>
              h(
                "th",
                { class: table.rows.some((row) => typeof row[j] === "number") ? "num" : "" },
                c.label,
                c.unit ? h("span", { class: "muted" }, ` [${c.unit}]`) : "",
              ),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          table.rows.map((row) =>
            h(
              "tr",
              {},
              row.map((cell) =>
                h(
                  "td",
                  { class: typeof cell === "number" ? "num" : "", title: typeof cell === "number" ? String(cell) : "" },
                  typeof cell === "boolean" ? (cell ? "yes" : "no") : formatNumber(cell),
                ),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

// engine / published - 1 as a signed percentage ("—" when there is none).
export function errorText(r) {
  if (r.relative_error === null || r.relative_error === undefined) return "—";
  const pct = r.relative_error * 100;
  return `${pct >= 0 ? "+" : ""}${Math.abs(pct) < 0.01 && pct !== 0 ? pct.toExponential(1) : pct.toFixed(pct !== 0 && Math.abs(pct) < 1 ? 2 : 1)}%`;
}

// The verdict of a published comparison (or Validation row): context, failed, within, outside, info.
export function verdictPill(r) {
  if (r.role === "context")
    return h(
      "span",
      { class: "pill", title: "a published setting beside this scenario's own input, not a check of the engine" },
      "context",
    );
  if (r.error) return h("span", { class: "pill bad" }, "failed");
  if (r.within_tolerance === true) return h("span", { class: "pill good" }, "within");
  if (r.within_tolerance === false) return h("span", { class: "pill warn" }, r.known_miss ? "known miss" : "outside");
  return h("span", { class: "pill" }, "info");
}

// The published figure as stated: the number, or the text when it is not one number.
export function publishedCell(r) {
  if (r.published === null || r.published === undefined)
    return h("td", { class: "published-text", "data-label": "published" }, r.published_text || "—");
  return h(
    "td",
    { class: "num", title: r.published_text || String(r.published), "data-label": "published" },
    formatNumber(r.published),
  );
}

// result.published: typed rows of published figure vs engine; "context" rows are labelled as such.
function publishedTable(published) {
  if (!published || !published.length) return null;
  return h(
    "details",
    { class: "table", id: "published", open: true },
    h("summary", {}, "Published figures this scenario can be checked against"),
    h(
      "div",
      { class: "scroll-x" },
      h(
        "table",
        { class: "published-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["quantity", "published", "engine", "unit", "error", "tolerance", "", "source"].map((c, i) =>
              h("th", { class: i === 1 || i === 2 || i === 4 ? "num" : "" }, c),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          published.map((r) =>
            h(
              "tr",
              { "data-role": r.role },
              h("td", {}, r.quantity),
              publishedCell(r),
              h("td", { class: "num", title: String(r.engine), "data-label": "engine" }, formatNumber(r.engine)),
              h("td", { class: "muted" }, unitText(r.unit)),
              h("td", { class: "num", "data-label": "error" }, errorText(r)),
              h("td", { class: "muted", "data-label": "tolerance" }, r.tolerance_label || "—"),
              h("td", {}, verdictPill(r)),
              h("td", { class: "source" }, r.source, r.note ? h("div", { class: "muted" }, r.note) : null),
            ),
          ),
        ),
      ),
    ),
  );
}

// result.links: documents to open, each in its kind's page.
function linkItems(links) {
  return (links || []).map((link) =>
    h(
      "li",
      {},
      h(
        "a",
        { href: `/k/${encodeURIComponent(link.document.kind)}?doc=${encodeDoc(link.document)}`, "data-link": true },
        link.label || link.document.name || "open",
      ),
      link.note ? h("span", { class: "muted small" }, ` · ${link.note}`) : null,
    ),
  );
}

function scenarioLinks(result) {
  const items = linkItems(result.links);
  if (!items.length) return null;
  return h(
    "details",
    { class: "table", id: "scenario-links", open: true },
    h("summary", {}, "Open as a scenario"),
    h("ul", { class: "link-list" }, items),
  );
}

// The studies a quick answer left out (result.deferred): one button each; `onStudy(key)` asks for it.
function deferredStudies(result, onStudy) {
  const deferred = result.deferred || [];
  if (!deferred.length || !onStudy) return null;
  return h(
    "p",
    { class: "muted deferred-studies" },
    "Computed when asked for: ",
    // A separator between the buttons: without one their titles read as a single run-on link.
    ...deferred.flatMap((d, i) => [
      i ? h("span", { class: "sep", "aria-hidden": "true" }, " · ") : null,
      h("button", { type: "button", class: "link", "data-study": d.key, onclick: () => onStudy(d.key) }, d.title),
    ]),
  );
}

// A view updated in place: { el, update(result) }. `onStudy(key)` asks for a deferred study.
export function resultView({ onStudy } = {}) {
  const status = h("div", { class: "verdict", id: "feasible" });
  const notes = h("div", { class: "notes" });
  const metrics = h("div", { class: "metrics", id: "metrics" });
  const figures = h("div", { class: "figures", id: "figures" });
  const deferredBox = h("div", { id: "deferred" });
  const refs = h("div", { id: "references-box" });
  const tables = h("div", { id: "tables" });
  const el = h(
    "div",
    { class: "result", id: "result" },
    status,
    notes,
    metrics,
    h("h2", { class: "section" }, "Charts"),
    figures,
    deferredBox,
    refs,
    h("h2", { class: "section" }, "Breakdowns"),
    tables,
  );
  const openMath = new Set();
  let showAll = false;
  const openTables = new Set();
  const figureDivs = new Map();
  const drawnSignatures = new Map();

  function update(result, { figuresToo = true } = {}) {
    status.className = `verdict ${result.feasible ? "good" : "bad"}`;
    status.textContent = result.feasible ? "✓ Feasible" : "✗ Does not fit or is invalid — see the notes";
    const scope = result.validation_scope;
    const scopeNote = scope && scope.note ? scope.note : "";
    const all = (result.notes || []).filter((n) => n !== scopeNote);
    const item = (n) => h("li", {}, n);
    const ranking = result.ranking;
    fill(
      notes,
      scopeNote ? h("div", { class: "notice scope-note", id: "validation-scope" }, scopeNote) : null,
      ranking
        ? h(
            "div",
            { class: "notice ranking-note", id: "ranking-confidence", title: ranking.note },
            h("strong", {}, `${Math.round(ranking.probability * 100)}%`),
            ` likely that the best plan really beats the runner-up (${(ranking.margin * 100).toFixed(2)}% apart by the engine; errors correlated ${ranking.correlation.toFixed(2)}, ${Math.round(ranking.probability_independent * 100)}% if independent).`,
          )
        : null,
      all.length
        ? h(
            "div",
            { class: result.feasible ? "notice notes-box" : "error notes-box" },
            h("ul", {}, all.slice(0, 2).map(item)),
            all.length > 2
              ? h("details", {}, h("summary", {}, `${all.length - 2} more notes`), h("ul", {}, all.slice(2).map(item)))
              : null,
          )
        : null,
    );
    for (const d of metrics.querySelectorAll("details[open]")) openMath.add(d.dataset.key);
    for (const d of metrics.querySelectorAll("details:not([open])")) openMath.delete(d.dataset.key);
    // Undefined metrics (e.g. a mixture-of-experts metric of a dense model) come last, behind "show all".
    const ordered = [
      ...result.metrics.filter((m) => m.value !== null),
      ...result.metrics.filter((m) => m.value === null),
    ];
    const cards = ordered.map((m, i) => {
      const details = h(
        "details",
        { "data-key": m.key, open: openMath.has(m.key) },
        h("summary", {}, "show the math"),
        mathPanel(m, result.tables),
      );
      // A plan that does not fit: every number is of a plan that cannot run, and each card says so.
      const badge = result.feasible
        ? null
        : h("span", { class: "pill bad fit-badge", title: (result.notes || [])[0] || "" }, "does not fit");
      return h(
        "div",
        {
          class: `metric${i >= PRIMARY_METRICS ? " extra" : ""}${result.feasible ? "" : " infeasible"}`,
          "data-metric": m.key,
        },
        h("div", { class: "metric-label" }, m.label),
        metricValue(m),
        metricBand(m),
        badge,
        details,
      );
    });
    const extra = result.metrics.length - PRIMARY_METRICS;
    const toggle =
      extra > 0
        ? h(
            "button",
            {
              type: "button",
              class: "link more-metrics",
              id: "more-metrics",
              onclick: () => {
                showAll = !showAll;
                metrics.classList.toggle("show-all", showAll);
                toggle.textContent = showAll
                  ? "show fewer metrics"
                  : `show all ${result.metrics.length} metrics (+${extra})`;
              },
            },
            showAll ? "show fewer metrics" : `show all ${result.metrics.length} metrics (+${extra})`,
          )
        : null;
    metrics.classList.toggle("show-all", showAll);
    fill(metrics, ...cards, toggle);
    for (const d of tables.querySelectorAll("details"))
      d.open ? openTables.add(d.dataset.table) : openTables.delete(d.dataset.table);
    fill(
      tables,
      ...result.tables.map((t, i) => renderTable(t, openTables.has(t.key) || (i === 0 && !tables.dataset.seen))),
    );
    tables.dataset.seen = "1";
    fill(refs, publishedTable(result.published), scenarioLinks(result));
    fill(deferredBox, deferredStudies(result, onStudy));
    if (figuresToo) drawFigures(result);
  }

  function drawFigures(result) {
    const keys = new Set(result.charts.map((f) => f.key));
    for (const [key, div] of figureDivs)
      if (!keys.has(key)) {
        window.Plotly && window.Plotly.purge(div);
        div.remove();
        figureDivs.delete(key);
        drawnSignatures.delete(key);
      }
    const drawn = [];
    for (const f of result.charts) {
      let div = figureDivs.get(f.key);
      if (!div) {
        div = h("div", { class: "figure", "data-figure": f.key });
        figureDivs.set(f.key, div);
      }
      if (div.parentNode !== figures) figures.append(div);
      // Only figures whose content changed are redrawn (Plotly is the slow part of an update).
      const signature = JSON.stringify(f);
      if (drawnSignatures.get(f.key) === signature) continue;
      drawnSignatures.set(f.key, signature);
      drawn.push(renderFigure(f, div));
    }
    return drawn;
  }

  return { el, update, drawFigures };
}

export function resultToCsv(doc, result) {
  const lines = [["metric", "label", "value", "unit", "formula", "terms"].join(",")];
  for (const m of result.metrics) {
    const terms = Object.entries(m.terms || {})
      .map(([k, v]) => `${k}=${v}`)
      .join("; ");
    lines.push([m.key, m.label, m.value, m.unit, m.formula, terms].map(csvCell).join(","));
  }
  for (const t of result.tables) {
    lines.push("", csvCell(t.title));
    lines.push(t.columns.map((c) => csvCell(c.unit ? `${c.label} [${c.unit}]` : c.label)).join(","));
    for (const row of t.rows) lines.push(row.map(csvCell).join(","));
  }
  lines.push("", "input,value");
  const flat = (v, p) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.entries(v).flatMap(([k, x]) => flat(x, p ? `${p}.${k}` : k))
      : [[p, Array.isArray(v) ? JSON.stringify(v) : v]];
  for (const [k, v] of flat(doc.inputs, "")) lines.push([k, v].map(csvCell).join(","));
  return lines.join("\n") + "\n";
}
