// The single-page dashboard: routes by URL path, state in the URL.
import { api, ApiError, catalogCategory, meta, ownerTokens } from "./api.js";
import { debounce, decodeDoc, download, encodeDoc, formatNumber, h } from "./dom.js";
import { buildForm } from "./form.js";
import { renderFigure, renderResult, resultToCsv } from "./result.js";

const app = document.getElementById("app");

function showError(target, error) {
  const text = error instanceof ApiError ? `${error.problem.title}: ${error.message}` : String(error.message || error);
  target.replaceChildren(h("div", { class: "error", role: "alert" }, text));
}

function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (link && link.origin === location.origin && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    navigate(link.pathname + link.search);
  }
});
window.addEventListener("popstate", () => route());

function kindUrl(doc) { return `/k/${encodeURIComponent(doc.kind)}?doc=${encodeDoc(doc)}`; }

async function homePage() {
  const { kinds, examples } = await meta();
  app.replaceChildren(
    h("h1", {}, "What-if questions about ML workloads on hardware"),
    h("p", { class: "muted" }, "Pick a question, change any input, and see the answer with the math shown. Save it to share a link."),
    h("div", { class: "cards" }, examples.map((doc) => {
      const kind = kinds.find((k) => k.kind === doc.kind);
      return h("div", { class: "card", "data-kind": doc.kind },
        h("a", { class: "title", href: kindUrl(doc), "data-link": true }, doc.name),
        h("p", { class: "muted" }, kind ? kind.title : doc.kind));
    })),
    kinds.length ? null : h("p", { class: "notice" }, "No engine is installed yet."),
  );
}

async function kindPage(kindName, initialDoc, saved = null) {
  const { byKind, examples } = await meta();
  const kind = byKind[kindName];
  if (!kind) throw new Error(`unknown kind '${kindName}'`);
  const [schema, presetTypes] = await Promise.all([api(`/kinds/${kindName}/schema`), api("/preset-types")]);
  const params = new URLSearchParams(location.search);
  let doc = initialDoc;
  if (!doc && params.get("doc")) {
    try { doc = decodeDoc(params.get("doc")); } catch { doc = null; }
  }
  doc = doc || structuredClone(examples.find((e) => e.kind === kindName));
  let lastResult = null;
  let controller = null;

  const resultBox = h("div", { id: "result" }, h("p", { class: "muted" }, "Evaluating…"));
  const status = h("span", { class: "muted", id: "status" });
  const shareBox = h("div", { id: "share" });
  const sweepBox = h("div", { id: "sweep" });

  async function evaluate() {
    if (controller) controller.abort();
    controller = new AbortController();
    const started = performance.now();
    try {
      lastResult = await api("/evaluate", { method: "POST", body: doc, signal: controller.signal });
      resultBox.replaceChildren(renderResult(lastResult));
      status.textContent = `evaluated in ${Math.round(performance.now() - started)} ms`;
    } catch (error) {
      if (error.name !== "AbortError") showError(resultBox, error);
    }
  }
  const onChange = debounce(() => {
    if (!saved) history.replaceState(null, "", kindUrl(doc));
    evaluate();
  }, 100);

  async function save() {
    try {
      const parent = saved ? `?parent=${encodeURIComponent(saved.id)}` : "";
      const out = await api(`/scenarios${parent}`, { method: "POST", body: doc });
      if (out.owner_token) ownerTokens.set(out.id, out.owner_token);
      const link = `${location.origin}/s/${out.id}`;
      shareBox.replaceChildren(h("p", { class: "notice" }, out.created ? "Saved. Share this link: " : "Already saved. Link: ",
        h("a", { href: `/s/${out.id}`, class: "share", id: "share-link", "data-link": true }, link)));
    } catch (error) { showError(shareBox, error); }
  }

  function exportReport() {
    if (!lastResult) return;
    download(`${doc.name}.json`, JSON.stringify({ document: doc, result: lastResult }, null, 2), "application/json");
  }

  const form = buildForm({ schema, doc, presetTypes, onChange: () => onChange() });
  app.replaceChildren(
    h("h1", {}, kind.title),
    h("p", { class: "muted" }, kind.description),
    saved ? h("p", { class: "notice" }, `Saved scenario ${saved.id}`, saved.parent_id ? ` (edited from ${saved.parent_id})` : "") : null,
    h("div", { class: "toolbar" },
      h("button", { id: "save", onclick: save }, saved ? "Save as new (fork)" : "Save & share"),
      h("button", { class: "secondary", id: "export-csv", onclick: () => lastResult && download(`${doc.name}.csv`, resultToCsv(lastResult), "text/csv") }, "Export CSV"),
      h("button", { class: "secondary", id: "export-json", onclick: exportReport }, "Export JSON"),
      status),
    shareBox,
    h("div", { class: "layout" }, h("div", { class: "panel" }, form, sweepPanel(doc, kind, sweepBox)), h("div", {}, sweepBox, resultBox)),
  );
  evaluate();
}

function sweepPanel(doc, kind, target) {
  const path = h("input", { type: "text", value: "", placeholder: "input path, e.g. batch_size", id: "sweep-path" });
  const values = h("input", { type: "text", value: "", placeholder: "values: 1,2,4 or 1:512:x2", id: "sweep-values" });
  const metricSelect = h("select", { id: "sweep-metric" }, Object.entries(kind.metrics).map(([k, m]) => h("option", { value: k }, `${m.label} [${m.unit}]`)));
  function parseValues(text) {
    const m = text.match(/^\s*([\d.e+-]+)\s*:\s*([\d.e+-]+)\s*:\s*(x?)([\d.e+-]+)\s*$/);
    if (m) {
      const [a, b, mul, step] = [parseFloat(m[1]), parseFloat(m[2]), m[3] === "x", parseFloat(m[4])];
      const out = [];
      for (let v = a; v <= b * (1 + 1e-12) && out.length < 100000; v = mul ? v * step : v + step) out.push(v);
      return out;
    }
    return text.split(",").map((s) => parseFloat(s)).filter((v) => !Number.isNaN(v));
  }
  async function run() {
    try {
      const axis = { path: path.value.trim(), values: parseValues(values.value) };
      const out = await api("/sweep", { method: "POST", body: { document: doc, axes: [axis] } });
      const key = metricSelect.value;
      target.replaceChildren(renderFigure({ key: "sweep", title: `${out.labels[key]} vs ${axis.path}`, figure: {
        data: [{ x: axis.values, y: out.metrics[key], type: "scatter", mode: "lines+markers", name: out.labels[key] }],
        layout: { xaxis: { title: { text: axis.path } }, yaxis: { title: { text: `${out.labels[key]} [${out.units[key]}]` } } } } }));
    } catch (error) { showError(target, error); }
  }
  return h("fieldset", {}, h("legend", {}, "Sweep one input"), path, values, metricSelect, h("button", { class: "secondary", onclick: run, id: "sweep-run" }, "Sweep"));
}

async function scenarioPage(id) {
  const record = await api(`/scenarios/${encodeURIComponent(id)}`);
  await kindPage(record.kind, structuredClone(record.document), record);
  const token = ownerTokens.get(record.id);
  if (token) {
    const del = h("button", { class: "secondary", id: "delete", onclick: async () => {
      await api(`/scenarios/${record.id}`, { method: "DELETE", headers: { "X-Owner-Token": token } });
      ownerTokens.drop(record.id);
      navigate("/scenarios");
    } }, "Delete (owner)");
    app.querySelector(".toolbar").append(del);
  }
}

async function scenariosPage() {
  const params = new URLSearchParams(location.search);
  const offset = parseInt(params.get("offset") || "0", 10);
  const kind = params.get("kind") || "";
  const page = await api(`/scenarios?limit=20&offset=${offset}${kind ? `&kind=${encodeURIComponent(kind)}` : ""}`);
  const { kinds } = await meta();
  const filter = h("select", { id: "kind-filter" }, h("option", { value: "" }, "all kinds"), kinds.map((k) => h("option", { value: k.kind, selected: k.kind === kind }, k.title)));
  filter.addEventListener("change", () => navigate(`/scenarios${filter.value ? `?kind=${filter.value}` : ""}`));
  app.replaceChildren(
    h("h1", {}, "Saved scenarios"), h("div", { class: "toolbar" }, filter, h("span", { class: "muted" }, `${page.total} in all`)),
    h("table", { id: "scenarios" }, h("thead", {}, h("tr", {}, ["name", "kind", "id", "saved", "parent"].map((c) => h("th", {}, c)))),
      h("tbody", {}, page.items.map((s) => h("tr", {},
        h("td", {}, h("a", { href: `/s/${s.id}`, "data-link": true }, s.name)), h("td", {}, s.kind), h("td", { class: "share" }, s.id),
        h("td", {}, new Date(s.created_at).toLocaleString()), h("td", {}, s.parent_id || ""))))),
    h("div", { class: "toolbar" },
      offset > 0 ? h("a", { href: `/scenarios?offset=${Math.max(0, offset - 20)}${kind ? `&kind=${kind}` : ""}`, "data-link": true }, "← newer") : null,
      offset + 20 < page.total ? h("a", { href: `/scenarios?offset=${offset + 20}${kind ? `&kind=${kind}` : ""}`, "data-link": true }, "older →") : null),
  );
}

async function catalogPage() {
  const catalog = await api("/catalog");
  app.replaceChildren(h("h1", {}, "Catalog of presets"), ...Object.entries(catalog).map(([category, presets]) => {
    const keys = presets.length ? Object.keys(presets[0]).filter((k) => !["source", "field_sources", "notes", "calibration_source", "published_params_source"].includes(k)) : [];
    return h("section", { "data-category": category }, h("h2", {}, category),
      h("div", { style: "overflow-x:auto" }, h("table", {},
        h("thead", {}, h("tr", {}, keys.map((k) => h("th", {}, k)), h("th", {}, "source"))),
        h("tbody", {}, presets.map((p) => h("tr", {}, keys.map((k) => h("td", { class: typeof p[k] === "number" ? "num" : "" },
          typeof p[k] === "object" && p[k] !== null ? JSON.stringify(p[k]) : formatNumber(p[k]))), h("td", { class: "muted" }, p.source)))))));
  }));
}

async function comparePage() {
  const params = new URLSearchParams(location.search);
  const ids = (params.get("ids") || "").split(",").filter(Boolean);
  const page = await api("/scenarios?limit=100");
  const boxes = page.items.map((s) => h("label", { style: "display:block" }, h("input", { type: "checkbox", value: s.id, checked: ids.includes(s.id), style: "width:auto" }), ` ${s.name} (${s.kind}, ${s.id})`));
  const out = h("div", { id: "comparison" });
  const go = h("button", { id: "compare-run", onclick: () => navigate(`/compare?ids=${boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value).join(",")}`) }, "Compare");
  app.replaceChildren(h("h1", {}, "Compare scenarios"), h("div", { class: "panel" }, boxes.length ? boxes : h("p", { class: "muted" }, "Save scenarios first."), go), out);
  if (ids.length >= 2) {
    try {
      const c = await api("/compare", { method: "POST", body: { items: ids } });
      out.append(
        h("h2", {}, "Inputs that differ"),
        h("table", { id: "inputs-differ" }, h("thead", {}, h("tr", {}, h("th", {}, "input"), c.names.map((n) => h("th", {}, n)))),
          h("tbody", {}, c.inputs_differ.map((d) => h("tr", {}, h("td", {}, d.path), d.values.map((v) => h("td", {}, typeof v === "object" ? JSON.stringify(v) : formatNumber(v))))))),
        h("h2", {}, "Metrics (deltas against the first)"),
        h("table", { id: "metric-deltas" }, h("thead", {}, h("tr", {}, h("th", {}, "metric"), c.names.map((n) => h("th", {}, n)))),
          h("tbody", {}, c.metrics.map((m) => h("tr", {}, h("td", {}, `${m.label} [${m.unit}]`), m.values.map((v, i) =>
            h("td", { class: "num" }, formatNumber(v), i > 0 && m.relative_delta[i] !== null ? ` (${m.relative_delta[i] >= 0 ? "+" : ""}${(m.relative_delta[i] * 100).toFixed(1)}%)` : "")))))),
      );
    } catch (error) { showError(out, error); }
  }
}

async function validationPage() {
  app.replaceChildren(h("h1", {}, "Validation"), h("p", { class: "muted" }, "Each engine's numbers beside the published figures they are tested against."));
  const { kinds } = await meta();
  for (const kind of kinds) {
    const section = h("section", { "data-kind": kind.kind }, h("h2", {}, kind.title), h("p", { class: "muted" }, "loading…"));
    app.append(section);
    api(`/validation/${kind.kind}`).then((rows) => {
      section.replaceChildren(h("h2", {}, kind.title), h("table", {}, h("thead", {}, h("tr", {}, ["quantity", "published", "engine", "error", "tolerance", "source"].map((c) => h("th", {}, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.quantity), h("td", { class: "num" }, formatNumber(r.published)), h("td", { class: "num" }, formatNumber(r.engine)),
          h("td", { class: "num" }, r.relative_error == null ? "—" : `${(r.relative_error * 100).toFixed(1)}%`), h("td", { class: "num" }, r.tolerance == null ? "—" : `${(r.tolerance * 100).toFixed(0)}%`), h("td", { class: "muted" }, r.source))))));
    }).catch((error) => showError(section, error));
  }
}

async function route() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === path);
  try {
    if (path === "/") await homePage();
    else if (path === "/catalog") await catalogPage();
    else if (path === "/scenarios") await scenariosPage();
    else if (path === "/compare") await comparePage();
    else if (path === "/validation") await validationPage();
    else if (path.startsWith("/k/")) await kindPage(decodeURIComponent(path.slice(3)), null);
    else if (path.startsWith("/s/")) await scenarioPage(decodeURIComponent(path.slice(3)));
    else app.replaceChildren(h("p", {}, "Not found."));
  } catch (error) { showError(app, error); }
}

route();
