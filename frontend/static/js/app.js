// The single-page dashboard: routes by URL path; every page renders from the URL alone.
import { api, ApiError, meta, ownerTokens } from "./api.js";
import { comparePage } from "./compare.js";
import { fill, formatNumber, formatSI, h, unitOf, wordsOf } from "./dom.js";
import { kindPage, kindUrl } from "./kind.js";
import { validationPage } from "./validation.js";

const app = document.getElementById("app");

function showError(target, error) {
  const text = error instanceof ApiError ? `${error.problem.title}: ${error.message}` : String(error.message || error);
  fill(target, h("div", { class: "error", role: "alert" }, text));
}

function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (link && link.origin === location.origin && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
    event.preventDefault();
    navigate(link.pathname + link.search);
  }
});
window.addEventListener("popstate", () => route());

const KIND_BLURBS = {
  inference: "Decode throughput, latency and KV memory of LLM serving on GPUs, NPUs and PIM.",
  training: "Iteration time, MFU and per-GPU memory of 3D-parallel LLM training.",
  rl_scaling: "Wall time and GPU/CPU balance of distributed PPO with simulators.",
  temporal_batching: "Throughput vs accuracy-risk of temporal batches in memory-based TGNNs.",
  pruning: "MACs, routing and throughput of prompt-based pruning of diffusion UNets.",
  plan_search: "Search parallelism plans; the Pareto front of speed vs memory.",
};

async function homePage() {
  const { kinds, examples } = await meta();
  fill(
    app,
    h(
      "section",
      { class: "hero" },
      h("h1", {}, "What if…? Answers about ML workloads on hardware, with the math shown."),
      h(
        "p",
        { class: "lede" },
        "Pick a question, change any input and watch the answer update. Every number opens to its formula and inputs; every engine is checked against published figures on the ",
        h("a", { href: "/validation", "data-link": true }, "validation page"),
        ". Save a scenario to share a link, or compare several.",
      ),
    ),
    h(
      "div",
      { class: "kind-cards" },
      kinds.map((kind) => {
        const mine = examples.filter((e) => e.kind === kind.kind);
        return h(
          "article",
          { class: "kind-card", "data-kind": kind.kind },
          h(
            "a",
            { class: "title", href: mine[0] ? kindUrl(mine[0]) : `/k/${kind.kind}`, "data-link": true },
            kind.title,
          ),
          h("p", { class: "muted" }, KIND_BLURBS[kind.kind] || kind.description),
          h(
            "div",
            { class: "metric-tags" },
            Object.values(kind.metrics)
              .slice(0, 4)
              .map((m) => h("span", { class: "tag" }, m.label)),
          ),
          mine.length
            ? h(
                "ul",
                { class: "examples" },
                mine.map((doc) =>
                  h("li", {}, h("a", { href: kindUrl(doc), "data-link": true, class: "example" }, doc.name)),
                ),
              )
            : null,
        );
      }),
    ),
    kinds.length ? null : h("p", { class: "notice" }, "No engine is installed yet."),
  );
}

async function scenarioPage(id) {
  const record = await api(`/scenarios/${encodeURIComponent(id)}`);
  await kindPage(app, { kindName: record.kind, saved: record, navigate, showError });
}

async function scenariosPage() {
  const params = new URLSearchParams(location.search);
  const offset = parseInt(params.get("offset") || "0", 10);
  const kind = params.get("kind") || "";
  const [page, { kinds, byKind }] = await Promise.all([
    api(`/scenarios?limit=20&offset=${offset}${kind ? `&kind=${encodeURIComponent(kind)}` : ""}`),
    meta(),
  ]);
  const filter = h(
    "select",
    { id: "kind-filter", "aria-label": "kind" },
    h("option", { value: "" }, "all kinds"),
    kinds.map((k) => h("option", { value: k.kind, selected: k.kind === kind }, k.title)),
  );
  filter.addEventListener("change", () =>
    navigate(`/scenarios${filter.value ? `?kind=${encodeURIComponent(filter.value)}` : ""}`),
  );
  const pageLink = (o) => `/scenarios?offset=${o}${kind ? `&kind=${encodeURIComponent(kind)}` : ""}`;
  fill(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Saved scenarios"),
        h(
          "p",
          { class: "muted lede" },
          "Every saved scenario has a link anyone can open. Yours (saved from this browser) can be deleted.",
        ),
      ),
    ),
    h(
      "div",
      { class: "toolbar" },
      filter,
      h("span", { class: "muted" }, `${page.total} in all`),
      h("span", { class: "grow" }),
      h("a", { href: "/compare", "data-link": true, class: "button secondary" }, "Compare…"),
    ),
    page.items.length
      ? h(
          "div",
          { class: "scroll-x" },
          h(
            "table",
            { id: "scenarios" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ["name", "kind", "id", "saved", "edited from", ""].map((c) => h("th", {}, c)),
              ),
            ),
            h(
              "tbody",
              {},
              page.items.map((s) =>
                h(
                  "tr",
                  {},
                  h("td", { class: "scenario-name" }, h("a", { href: `/s/${s.id}`, "data-link": true }, s.name)),
                  h("td", {}, byKind[s.kind]?.title || s.kind),
                  h("td", { class: "share muted" }, s.id),
                  h("td", { class: "muted" }, new Date(s.created_at).toLocaleString()),
                  h(
                    "td",
                    { class: "parent" },
                    s.parent_id
                      ? h("a", { href: `/s/${s.parent_id}`, "data-link": true, class: "share" }, s.parent_id)
                      : "",
                  ),
                  h("td", {}, ownerTokens.get(s.id) ? h("span", { class: "pill" }, "yours") : ""),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "muted" }, "Nothing saved yet."),
    h(
      "div",
      { class: "toolbar" },
      offset > 0 ? h("a", { href: pageLink(Math.max(0, offset - 20)), "data-link": true }, "← newer") : null,
      offset + 20 < page.total ? h("a", { href: pageLink(offset + 20), "data-link": true }, "older →") : null,
    ),
  );
}

const HIDDEN_CATALOG_KEYS = ["id", "name", "source", "field_sources", "notes", "calibration_source"];
//: Facts about a preset (published figures, checks, their sources): behind "source", not in the row.
const isAboutPreset = (key) => /^(published_|derived_)|_source$/.test(key);

// One "label value unit" item of a preset's compact row (units from the field name; sizes in GiB).
function catalogItem(key, value) {
  const { unit, label } = unitOf(key);
  const name = label || wordsOf(key);
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const numeric = Object.entries(value).filter(([, v]) => typeof v === "number");
    if (numeric.length === Object.keys(value).length && numeric.length) {
      const parts = numeric.map(([k, v]) => {
        const f = formatSI(v, unit);
        return `${k} ${f.text} ${f.unit}`.trim();
      });
      return h("span", { class: "kv", "data-key": key }, h("span", { class: "k" }, name), ` ${parts.join(" · ")}`);
    }
    return null; // a nested description (e.g. a UNet's blocks): in the details
  }
  const f = typeof value === "number" ? formatSI(value, unit) : { text: formatNumber(value), unit: "" };
  return h(
    "span",
    { class: "kv", "data-key": key },
    h("span", { class: "k" }, name),
    ` ${f.text}${f.unit ? ` ${f.unit}` : ""}`,
  );
}

async function catalogPage() {
  const catalog = await api("/catalog");
  const categories = Object.keys(catalog);
  fill(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, "Catalog of presets"),
        h(
          "p",
          { class: "muted lede" },
          "The hardware, models and workloads the pickers offer: one row per preset, with units (sizes in GiB, rates in GB/s); its source opens with one click. The API gives SI values (bytes, FLOP/s, s).",
        ),
      ),
    ),
    h(
      "nav",
      { class: "chips" },
      categories.map((c) => h("a", { class: "chip", href: `#cat-${c}` }, `${c} (${catalog[c].length})`)),
    ),
    ...categories.map((category) =>
      h(
        "section",
        { "data-category": category, id: `cat-${category}` },
        h("h2", {}, category.replaceAll("_", " ")),
        h(
          "table",
          { class: "catalog-compact" },
          h("thead", {}, h("tr", {}, h("th", {}, "preset"), h("th", {}, "values"), h("th", {}, "source"))),
          h(
            "tbody",
            {},
            catalog[category].map((p) => {
              const nested = Object.entries(p).filter(
                ([k, v]) =>
                  !HIDDEN_CATALOG_KEYS.includes(k) && v !== null && typeof v === "object" && !catalogItem(k, v),
              );
              return h(
                "tr",
                { "data-preset": p.id },
                h(
                  "td",
                  { class: "preset-name" },
                  h("strong", {}, p.name || p.id),
                  h("div", { class: "muted small" }, p.id),
                ),
                h(
                  "td",
                  { class: "preset-values" },
                  Object.entries(p)
                    .filter(
                      ([k, v]) =>
                        !HIDDEN_CATALOG_KEYS.includes(k) && !isAboutPreset(k) && v !== null && v !== undefined,
                    )
                    .map(([k, v]) => catalogItem(k, v)),
                ),
                h(
                  "td",
                  { class: "preset-source" },
                  h(
                    "details",
                    {},
                    h("summary", {}, "source"),
                    h("p", {}, p.source || "—"),
                    p.calibration_source ? h("p", {}, h("strong", {}, "calibration: "), p.calibration_source) : null,
                    p.notes ? h("p", { class: "muted" }, p.notes) : null,
                    Object.entries(p)
                      .filter(([k]) => isAboutPreset(k))
                      .map(([k, v]) =>
                        h("p", { class: "about" }, h("strong", {}, `${k.replaceAll("_", " ")}: `), formatNumber(v)),
                      ),
                    p.field_sources && Object.keys(p.field_sources).length
                      ? h(
                          "ul",
                          {},
                          Object.entries(p.field_sources).map(([k, v]) => h("li", {}, h("code", {}, k), `: ${v}`)),
                        )
                      : null,
                    nested.map(([k, v]) => h("pre", { class: "json" }, `${k}: ${JSON.stringify(v, null, 1)}`)),
                  ),
                ),
              );
            }),
          ),
        ),
      ),
    ),
  );
}

async function route() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("#nav a")) {
    const href = a.getAttribute("href");
    a.classList.toggle("active", href === path || (href === "/" && (path.startsWith("/k/") || path.startsWith("/s/"))));
  }
  try {
    if (path === "/") await homePage();
    else if (path === "/catalog") await catalogPage();
    else if (path === "/scenarios") await scenariosPage();
    else if (path === "/compare") await comparePage(app, { navigate, showError });
    else if (path === "/validation") await validationPage(app, { showError });
    else if (path.startsWith("/k/"))
      await kindPage(app, { kindName: decodeURIComponent(path.slice(3)), navigate, showError });
    else if (path.startsWith("/s/")) await scenarioPage(decodeURIComponent(path.slice(3)));
    else fill(app, h("p", {}, "Not found."));
    document.title = `${document.querySelector("h1")?.textContent || "DSE"} — ML-systems design-space explorer`;
  } catch (error) {
    showError(app, error);
  }
}

route();
