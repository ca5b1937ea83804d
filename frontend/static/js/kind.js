// The page of one scenario kind (or one saved scenario): inputs on the left, live results on the right.
// The whole document lives in the URL (?doc=...), so reload and back/forward restore it.
import { api, meta, ownerTokens } from "./api.js";
import { debounce, decodeDoc, download, encodeDoc, fill, formatNumber, h, toast } from "./dom.js";
import { buildForm } from "./form.js";
import { resultToCsv, resultView } from "./result.js";
import { sweepPanel } from "./sweep.js";

//: Wait after the last keystroke before evaluating: short enough that the result lands within 150 ms.
const EDIT_DEBOUNCE_MS = 20;

// Timings of each live update, read by the browser tests (performance.now() milliseconds).
window.__dse = window.__dse || { updates: [] };

export function kindUrl(doc, extra = {}) {
  const params = new URLSearchParams({ doc: encodeDoc(doc), ...extra });
  return `/k/${encodeURIComponent(doc.kind)}?${params}`;
}

// The input (and its value) a kind's schema marks as giving a quick first answer, or null.
function quickFirstInput(schema) {
  let inputs = schema.properties?.inputs;
  while (inputs?.$ref) inputs = schema.$defs?.[inputs.$ref.split("/").pop()];
  for (const [key, prop] of Object.entries(inputs?.properties || {})) {
    if (prop["x-quick-first"] !== undefined) return { key, value: prop["x-quick-first"] };
  }
  return null;
}

// The address anyone opens a saved scenario at.
function shareLink(id) {
  return `${location.origin}/s/${encodeURIComponent(id)}`;
}

// A button that puts a saved scenario's link on the clipboard (where the page may not write to it, the
// link is on the page to select).
function copyLinkButton(link) {
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      toast("Link copied");
    } catch {
      toast("Select the link to copy it");
    }
  };
  return h("button", { type: "button", class: "secondary small copy-link", onclick: copy }, "Copy link");
}

function safeFileName(name) {
  return (
    (name || "scenario")
      .replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 80) || "scenario"
  );
}

export async function kindPage(app, { kindName, saved = null, navigate, showError }) {
  const { byKind, examples } = await meta();
  const kind = byKind[kindName];
  if (!kind) throw new Error(`unknown kind '${kindName}'`);
  const params = new URLSearchParams(location.search);
  const [schema, presetTypes] = await Promise.all([
    api(`/kinds/${encodeURIComponent(kindName)}/schema`),
    api("/preset-types"),
  ]);
  let doc = null;
  if (saved) doc = structuredClone(saved.document);
  else if (params.get("doc")) {
    try {
      doc = decodeDoc(params.get("doc"));
    } catch {
      doc = null;
    }
  }
  const kindExamples = examples.filter((e) => e.kind === kindName);
  doc = doc || structuredClone(kindExamples[0]);
  const parentId = saved ? saved.id : params.get("from");
  let sweepConfig = null;
  try {
    sweepConfig = params.get("sweep") ? JSON.parse(params.get("sweep")) : null;
  } catch {
    sweepConfig = null;
  }

  let lastResult = null;
  let controller = null;
  let lastEditAt = null;
  let edited = false;
  // Deferred studies the user asked for (a result's `deferred`): every later evaluation includes them.
  const included = new Set();
  const view = resultView({
    onStudy: (key) => {
      included.add(key);
      evaluate();
    },
  });
  const timing = h("span", { class: "timing muted", id: "status", "aria-live": "polite" });
  const shareBox = h("div", { id: "share" });
  const errorBox = h("div", { id: "eval-error", "aria-live": "assertive" });

  function currentUrl() {
    const extra = {};
    if (parentId) extra.from = parentId;
    if (sweepConfig) extra.sweep = JSON.stringify(sweepConfig);
    return kindUrl(doc, extra);
  }

  // A kind may declare an input whose value gives a quick, coarser first answer ("x-quick-first" in its
  // schema, e.g. plan_search's search_effort: "quick"): an edit then shows that answer, marked
  // "refining…", and replaces it with the answer to the user's own document. Only the evaluation
  // request changes: the URL, saves and exports keep the user's document.
  const quickFirst = quickFirstInput(schema);

  // Shows one result; false when a newer evaluation started meanwhile (its entry would be stale).
  async function show(result, { signal, editAt, started, received, phase }) {
    if (signal.aborted || !view.el.isConnected) return false; // superseded, or the page was left
    view.update(result, { figuresToo: false });
    const numbersAt = performance.now();
    await Promise.all(view.drawFigures(result));
    const chartsAt = performance.now();
    if (signal.aborted) return false;
    const entry = { edit: editAt, server: received - started, numbers: numbersAt, charts: chartsAt };
    if (phase) entry.phase = phase;
    window.__dse.updates.push(entry);
    const label = phase === "quick" ? "quick search, refining… " : phase === "full" ? "full search: " : "";
    timing.dataset.phase = phase === "quick" ? "refining" : phase || "";
    timing.textContent =
      label +
      (editAt === null
        ? `evaluated in ${Math.round(received - started)} ms`
        : `updated ${Math.round(numbersAt - editAt)} ms after the edit (server ${Math.round(received - started)} ms, charts +${Math.round(chartsAt - numbersAt)} ms)`);
    app.querySelector(".layout")?.classList.remove("stale");
    clearErrors();
    return true;
  }

  async function evaluate(initial = false) {
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    const started = performance.now();
    const editAt = lastEditAt;
    const include = included.size ? `?include=${encodeURIComponent([...included].join(","))}` : "";
    const post = (body) => api(`/evaluate${include}`, { method: "POST", body, signal });
    try {
      if (initial && saved) {
        lastResult = await api(`/scenarios/${encodeURIComponent(saved.id)}/result`, { signal });
        await show(lastResult, { signal, editAt, started, received: performance.now() });
      } else if (quickFirst && doc.inputs?.[quickFirst.key] !== quickFirst.value) {
        const quick = await post({ ...doc, inputs: { ...doc.inputs, [quickFirst.key]: quickFirst.value } });
        const quickAt = performance.now();
        const full = post(doc); // sent before the quick charts are drawn: the server works meanwhile
        full.catch(() => {}); // awaited below (an abort or error is handled there)
        if (!(await show(quick, { signal, editAt, started, received: quickAt, phase: "quick" }))) return;
        lastResult = await full;
        await show(lastResult, { signal, editAt, started: quickAt, received: performance.now(), phase: "full" });
      } else {
        lastResult = await post(doc);
        await show(lastResult, { signal, editAt, started, received: performance.now() });
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      // Keep the last good result (dimmed) and say which input is refused and why.
      clearErrors();
      showError(errorBox, error);
      for (const e of error.problem?.errors || []) {
        const path = String(e.field || "").replace(/^inputs\./, "");
        const row = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
        row?.classList.add("invalid");
        const slot = row?.querySelector(":scope > .field-error, :scope > label > .field-error");
        if (slot) slot.textContent = `${e.reason} (value ${JSON.stringify(inputAt(path))})`;
      }
      timing.textContent = "not evaluated: an input is refused";
      timing.dataset.phase = "";
      app.querySelector(".layout")?.classList.remove("stale");
    }
  }
  const evaluateSoon = debounce(() => evaluate(), EDIT_DEBOUNCE_MS);

  function inputAt(path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), doc.inputs);
  }

  // A refusal belongs to the value it refused: every edit clears it until the new value is answered.
  function clearErrors() {
    fill(errorBox);
    for (const el of form.querySelectorAll(".invalid")) el.classList.remove("invalid");
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  }

  // Each finished edit is one history entry: the first keystroke after a finished edit pushes
  // an entry, later keystrokes (and the change event that ends them) replace it.
  let startsNewEntry = true;
  function onChange({ commit }) {
    lastEditAt = performance.now();
    app.querySelector(".layout")?.classList.add("stale");
    const url = currentUrl();
    if (startsNewEntry && url !== location.pathname + location.search) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
    startsNewEntry = commit;
    edited = true;
    evaluateSoon();
  }

  // Saving is always the saver's own scenario (own id, name and token), even for inputs saved
  // before; showing the token of this page's last save (or of the scenario it shows) makes a
  // second click on Save give that scenario back instead of a duplicate.
  let lastSavedId = saved ? saved.id : null;
  async function save() {
    try {
      const parent = parentId ? `?parent=${encodeURIComponent(parentId)}` : "";
      const mine = lastSavedId ? ownerTokens.get(lastSavedId) : null;
      const out = await api(`/scenarios${parent}`, {
        method: "POST",
        body: doc,
        headers: mine ? { "X-Owner-Token": mine } : {},
      });
      if (out.owner_token) ownerTokens.set(out.id, out.owner_token);
      lastSavedId = out.id;
      const link = shareLink(out.id);
      fill(
        shareBox,
        h(
          "div",
          { class: "notice share-notice" },
          h("strong", {}, out.created ? `Saved as “${out.name}”. ` : `Already saved as “${out.name}”. `),
          out.same_content_id
            ? h(
                "span",
                { class: "same-content", id: "same-content" },
                `${out.same_content_as} `,
                "(",
                h(
                  "a",
                  { href: `/s/${out.same_content_id}`, "data-link": true, id: "same-content-link" },
                  "open the earlier one",
                ),
                ") ",
              )
            : null,
          "Anyone with this link sees the same inputs and results: ",
          h("a", { href: `/s/${out.id}`, class: "share", id: "share-link", "data-link": true }, link),
          " ",
          copyLinkButton(link),
          " ",
          h("a", { href: `/compare?ids=${encodeURIComponent(out.id)}`, "data-link": true }, "compare with others →"),
        ),
      );
      toast(out.created ? "Saved" : "Already saved");
    } catch (error) {
      showError(shareBox, error);
    }
  }

  // A fork is an editable copy that remembers its parent: saving it stores parent_id (a fork saved
  // unchanged is the forker's own named copy of the same inputs).
  function fork() {
    const copy = { ...structuredClone(doc), name: `${doc.name} (fork)` };
    navigate(kindUrl(copy, { from: saved.id }));
    toast("Editing a copy: change any input, then save it");
  }

  async function exportReport() {
    try {
      const base =
        saved && !edited ? `/api/v1/scenarios/${encodeURIComponent(saved.id)}/report.html` : "/api/v1/report";
      const response = await fetch(
        base,
        saved && !edited
          ? {}
          : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(doc) },
      );
      if (!response.ok) throw new Error(`report failed (${response.status})`);
      download(`${safeFileName(doc.name)}-report.html`, await response.blob(), "text/html");
    } catch (error) {
      showError(shareBox, error);
    }
  }

  const exportJson = () =>
    lastResult &&
    download(
      `${safeFileName(doc.name)}.json`,
      JSON.stringify({ document: doc, result: lastResult }, null, 2),
      "application/json",
    );
  const exportCsv = () =>
    lastResult && download(`${safeFileName(doc.name)}.csv`, resultToCsv(doc, lastResult), "text/csv");

  const examplePicker =
    kindExamples.length > 1
      ? h(
          "select",
          { id: "example-picker", "aria-label": "start from an example" },
          h("option", { value: "" }, "Start from an example…"),
          kindExamples.map((e, i) => h("option", { value: String(i) }, e.name)),
        )
      : null;
  examplePicker?.addEventListener("change", () => {
    if (examplePicker.value !== "") navigate(kindUrl(kindExamples[Number(examplePicker.value)]));
  });

  const form = buildForm({ schema, doc, presetTypes, onChange });
  // Capture phase: cleared before the field's own check may put its local message back.
  form.addEventListener("input", clearErrors, true);
  form.addEventListener("change", clearErrors, true);
  const token = saved ? ownerTokens.get(saved.id) : null;
  const sweep = sweepPanel({
    getDoc: () => doc,
    kind,
    initial: sweepConfig,
    onConfig: (config) => {
      sweepConfig = config;
      history.replaceState(
        null,
        "",
        saved && !edited ? `${location.pathname}?sweep=${encodeURIComponent(JSON.stringify(config))}` : currentUrl(),
      );
    },
  });

  fill(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("div", { class: "crumbs muted" }, h("a", { href: "/", "data-link": true }, "Explore"), " / ", kind.title),
        h("h1", {}, saved ? saved.name : kind.title),
        h("p", { class: "muted lede" }, kind.description),
      ),
    ),
    saved
      ? h(
          "div",
          { class: "notice saved-banner", id: "saved-banner" },
          h("span", {}, "Saved scenario "),
          h("code", { class: "share" }, saved.id),
          saved.parent_id
            ? h(
                "span",
                {},
                " · edited from ",
                h("a", { href: `/s/${saved.parent_id}`, "data-link": true }, saved.parent_id),
              )
            : null,
          h("span", { class: "muted" }, ` · saved ${new Date(saved.created_at).toLocaleString()}`),
          " ",
          copyLinkButton(shareLink(saved.id)),
        )
      : null,
    h(
      "div",
      { class: "toolbar" },
      h("button", { id: "save", onclick: save }, saved ? "Save changes as new" : "Save & share"),
      !saved && parentId
        ? h(
            "span",
            { class: "muted small", id: "fork-of" },
            "copy of ",
            h("a", { href: `/s/${parentId}`, "data-link": true }, parentId),
          )
        : null,
      saved ? h("button", { class: "secondary", id: "fork", onclick: fork }, "Fork") : null,
      h("span", { class: "sep" }),
      h("button", { class: "secondary", id: "export-csv", onclick: exportCsv }, "CSV"),
      h("button", { class: "secondary", id: "export-json", onclick: exportJson }, "JSON"),
      h("button", { class: "secondary", id: "export-html", onclick: exportReport }, "HTML report"),
      token
        ? h(
            "button",
            {
              class: "secondary danger",
              id: "delete",
              onclick: async () => {
                const sure = window.confirm(
                  `Delete the saved scenario "${saved.name}" (${saved.id})? Its link stops working for everyone; this cannot be undone.`,
                );
                if (!sure) return;
                await api(`/scenarios/${encodeURIComponent(saved.id)}`, {
                  method: "DELETE",
                  headers: { "X-Owner-Token": token },
                });
                ownerTokens.drop(saved.id);
                navigate("/scenarios");
              },
            },
            "Delete",
          )
        : null,
      h("span", { class: "grow" }),
      timing,
      examplePicker,
    ),
    shareBox,
    h(
      "div",
      { class: "layout" },
      h("aside", { class: "panel inputs", "aria-label": "inputs" }, form),
      h("div", { class: "main-col" }, errorBox, view.el, sweep.el),
    ),
  );
  // Inputs left to their preset ("auto") show the value the preset gives them.
  sweep.ready.then(() => {
    for (const [path, value] of Object.entries(sweep.paths())) {
      const input = form.querySelector(`label.field[data-path="${CSS.escape(path)}"] input[placeholder="auto"]`);
      if (input) input.placeholder = `auto · ${formatNumber(value)}`;
    }
  });
  await evaluate(true);
}
