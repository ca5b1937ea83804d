// Validation: every engine's numbers beside the published figures they are tested against.
// The rows are typed (dse.services.validation.ValidationRow): a published comparison of one kind,
// with its tolerance label, verdict, known miss (a figure the engine is known not to reproduce) and error.
import { api, meta } from "./api.js";
import { fill, formatNumber, h, unitText } from "./dom.js";
import { NARROW, errorText, plot, publishedCell, verdictPill } from "./result.js";

function summary(rows) {
  const judged = rows.filter(
    (r) => r.role !== "context" && r.within_tolerance !== null && r.within_tolerance !== undefined,
  );
  const within = judged.filter((r) => r.within_tolerance).length;
  const errors = rows
    .filter((r) => r.relative_error !== null && r.relative_error !== undefined)
    .map((r) => Math.abs(r.relative_error))
    .sort((a, b) => a - b);
  const median = errors.length ? errors[Math.floor(errors.length / 2)] : null;
  const failed = rows.filter((r) => r.error).length;
  const missed = rows.filter((r) => r.known_miss).length;
  return h(
    "div",
    { class: "summary" },
    h("span", {}, h("strong", {}, String(rows.length)), " checks"),
    h("span", {}, h("strong", {}, `${within}/${judged.length}`), " within tolerance"),
    missed ? h("span", {}, h("strong", {}, String(missed)), " known misses") : null,
    h("span", {}, "median |error| ", h("strong", {}, median === null ? "—" : `${(median * 100).toFixed(1)}%`)),
    failed ? h("span", { class: "bad" }, h("strong", {}, String(failed)), " could not be computed") : null,
  );
}

// Mean absolute error per engine and per accelerator/dtype group (GET /validation-summary, the same
// table as `dse validation-summary` and the README): every published figure, exact formulas and known
// misses included; the time/throughput ones are the residuals of the metric bands.
async function summarySection(section, showError) {
  const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
  try {
    const rows = await api("/validation-summary");
    const columns = [
      "engine",
      "group (accelerator/dtype)",
      "figures",
      "mean |error|",
      "largest",
      "time/throughput figures",
      "their mean |error|",
      "known misses",
    ];
    fill(
      section,
      h("h2", {}, "Mean absolute error per engine and group"),
      h(
        "p",
        { class: "muted" },
        "|engine / published − 1| averaged over every published figure the tests use, exact formulas and known misses included. The time and throughput figures (not exact formulas) are the residuals behind the P10–P90 bands on every result's time and throughput metrics; known misses count there too, since they are real errors.",
      ),
      h(
        "div",
        { class: "scroll-x" },
        h(
          "table",
          { class: "validation-table summary-table", id: "validation-summary" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              columns.map((c, i) => h("th", { class: i >= 2 ? "num" : "" }, c)),
            ),
          ),
          h(
            "tbody",
            {},
            rows.map((r) =>
              h(
                "tr",
                { class: r.group === "all" ? "total" : "", "data-kind": r.kind, "data-group": r.group },
                h("td", {}, r.group === "all" ? h("strong", {}, r.kind) : r.kind),
                h("td", {}, r.group === "all" ? h("strong", {}, "all") : r.group.split("/").slice(1).join("/")),
                // data-label: on a phone the header row is hidden and each cell is written after its
                // column's name (without one the row read "all 102 9.3% 67.6% 89 9.8% 16").
                ...[
                  String(r.figures),
                  pct(r.mean_abs_error),
                  pct(r.max_abs_error),
                  String(r.timing_figures),
                  pct(r.timing_mean_abs_error),
                  String(r.known_misses),
                ].map((text, i) => h("td", { class: "num", "data-label": columns[i + 2] }, text)),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    showError(section, error);
  }
}

// Kernel calibration (GET /calibration, dse.services.calibration): per accelerator x dtype, each fit's
// measured kernel times beside the fitted model, the data that replaces one efficiency per accelerator.
async function calibrationSection(app, showError) {
  const section = h(
    "section",
    { class: "validation calibration", id: "validation-calibration", "data-section": "calibration" },
    h("h2", {}, "Kernel calibration"),
    h("p", { class: "muted" }, "loading…"),
  );
  app.append(section);
  try {
    const charts = await api("/calibration");
    const groups = new Map();
    for (const c of charts) {
      const key = `${c.accelerator} · ${c.dtype}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(c);
    }
    const blocks = [];
    const pending = [];
    for (const [key, group] of groups) {
      const figures = group.map((c) => {
        const div = h("div", { class: "figure", "data-figure": `calibration-${c.key}` });
        pending.push([div, c]);
        return h(
          "div",
          {},
          div,
          h("p", { class: "muted small" }, `${c.rows} measurements · stack ${c.stack} · source: ${c.source}`),
        );
      });
      blocks.push(h("h3", {}, key), ...figures);
    }
    fill(
      section,
      h("h2", {}, "Kernel calibration"),
      h(
        "p",
        { class: "muted" },
        "The per-op kernel models (GEMM with wave quantization and a memory-to-compute transition; FlashAttention and decode attention) are fitted once per accelerator × dtype × software stack to public kernel-level measurements, never to end-to-end tables. Each chart shows the measurements and the fitted model; the title gives the mean and largest error over all measurements.",
      ),
      ...blocks,
    );
    for (const [div, c] of pending) await plot(div, c.figure.data, c.figure.layout, 380);
  } catch (error) {
    showError(section, error);
  }
}

// Links to the page's sections (it is long: a table per kind). A click scrolls there itself: following a
// "#…" link fires popstate, and the router would draw the whole page again.
function jumpLinks(targets) {
  const jump = (id) => (event) => {
    event.preventDefault();
    document.getElementById(id)?.scrollIntoView();
  };
  return h(
    "nav",
    { class: "jump-links", id: "validation-jump", "aria-label": "sections of this page" },
    h("span", { class: "muted" }, "Jump to: "),
    targets.flatMap(([id, text], i) => [
      i ? h("span", { class: "muted" }, " · ") : null,
      h("a", { href: `#${id}`, onclick: jump(id) }, text),
    ]),
  );
}

export async function validationPage(app, { showError }) {
  const { kinds } = await meta();
  const overview = h("div", { class: "figure", "data-figure": "validation-errors" });
  fill(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Validation"),
        h(
          "p",
          { class: "muted lede" },
          "Each engine's numbers next to the published figures it is tested against, with the error and the tolerance its test allows — so you can judge how far to trust each engine. Computed live from the engines on this server.",
        ),
      ),
    ),
    jumpLinks([
      ["validation-summary-section", "mean error per engine and group"],
      ...kinds.map((kind) => [`validation-${kind.kind}`, kind.title]),
      ["validation-calibration", "kernel calibration"],
    ]),
    overview,
  );
  const summaryBox = h(
    "section",
    { class: "validation", id: "validation-summary-section", "data-section": "summary" },
    h("h2", {}, "Mean absolute error per engine and group"),
    h("p", { class: "muted" }, "computing…"),
  );
  app.append(summaryBox);
  const summaryDone = summarySection(summaryBox, showError);
  const all = [];
  const sections = kinds.map((kind) => {
    const section = h(
      "section",
      { class: "validation", "data-kind": kind.kind, id: `validation-${kind.kind}` },
      h("h2", {}, kind.title),
      h("p", { class: "muted" }, "computing…"),
    );
    app.append(section);
    return api(`/validation/${encodeURIComponent(kind.kind)}`)
      .then((rows) => {
        all.push(...rows.map((r) => ({ ...r, title: kind.title })));
        fill(
          section,
          h("h2", {}, kind.title),
          summary(rows),
          rows.length
            ? h(
                "div",
                { class: "scroll-x" },
                h(
                  "table",
                  { class: "validation-table" },
                  h(
                    "thead",
                    {},
                    h(
                      "tr",
                      {},
                      ["quantity", "published", "engine", "unit", "error", "tolerance", "", "source"].map((c, i) =>
                        h("th", { class: i >= 1 && i <= 4 && i !== 3 ? "num" : "" }, c),
                      ),
                    ),
                  ),
                  h(
                    "tbody",
                    {},
                    rows.map((r) =>
                      h(
                        "tr",
                        { class: r.error ? "row-error" : "", "data-key": r.key || null, "data-role": r.role },
                        h(
                          "td",
                          {},
                          r.quantity,
                          r.group ? h("div", { class: "muted small group" }, `group ${r.group}`) : null,
                          r.note ? h("div", { class: "muted small" }, r.note) : null,
                          r.known_miss
                            ? h("div", { class: "muted small known-miss" }, `Known miss: ${r.known_miss}`)
                            : null,
                          r.error ? h("div", { class: "error small" }, r.error) : null,
                        ),
                        publishedCell(r),
                        h(
                          "td",
                          { class: "num", title: String(r.engine), "data-label": "engine" },
                          formatNumber(r.engine),
                        ),
                        h("td", { class: "muted" }, unitText(r.unit)),
                        h("td", { class: "num", "data-label": "error" }, errorText(r)),
                        h("td", { class: "muted", "data-label": "tolerance" }, r.tolerance_label || "—"),
                        h("td", {}, verdictPill(r)),
                        h("td", { class: "source" }, r.source),
                      ),
                    ),
                  ),
                ),
              )
            : h("p", { class: "muted" }, "No published figure is wired to this engine yet."),
        );
      })
      .catch((error) => showError(section, error));
  });
  await Promise.all(sections);
  const calibration = calibrationSection(app, showError);
  const rows = all.filter((r) => r.role !== "context" && r.relative_error !== null && r.relative_error !== undefined);
  const colour = (r) =>
    r.within_tolerance === true ? "#1b7f3b" : r.within_tolerance === false ? "#e07b00" : "#7b8794";
  await plot(
    overview,
    [
      {
        type: "scatter",
        mode: "markers",
        x: rows.map((r) => r.relative_error * 100),
        // On a phone the kinds' titles are cut short (the whole title is each section's heading).
        y: rows.map((r) => (NARROW.matches && r.title.length > 22 ? `${r.title.slice(0, 21)}…` : r.title)),
        text: rows.map(
          (r) =>
            `${r.quantity}<br>published ${formatNumber(r.published)} · engine ${formatNumber(r.engine)} ${unitText(r.unit)}<br>tolerance ${r.tolerance_label || "—"}${r.known_miss ? "<br>known miss" : ""}`,
        ),
        marker: { size: 11, color: rows.map(colour), opacity: 0.85, line: { width: 1, color: "#fff" } },
        hovertemplate: "%{text}<br>error %{x:.2f}%<extra></extra>",
      },
    ],
    {
      title: {
        text: NARROW.matches
          ? "Relative error of every check<br><sup>green: within tolerance, orange: outside, grey: informative</sup>"
          : "Engine vs published: relative error of every check (green: within its test's tolerance, orange: outside, grey: informative)",
        x: 0.02,
        font: { size: 13 },
      },
      xaxis: {
        title: { text: "engine / published − 1 (%)" },
        zeroline: true,
        zerolinecolor: "#888",
      },
      yaxis: { type: "category", automargin: true },
      showlegend: false,
      margin: { l: NARROW.matches ? 100 : 160, t: NARROW.matches ? 60 : 44, r: 16 },
    },
    300,
  );
  await Promise.all([calibration, summaryDone]);
}
