// A form generated from a kind's JSON Schema: every input editable, with its unit.
// Preset fields (an id or an inline spec) get a picker; "customise" turns the preset into
// editable fields. onChange({ commit }) fires on every edit; commit is true when the edit is
// finished (change event), so the page can push a history entry then and only replace it while typing.
import { catalogCategory } from "./api.js";
import { fill, h, unitOf, wordsOf } from "./dom.js";

function deref(schema, root) {
  let node = schema;
  while (node && node.$ref) node = root.$defs[node.$ref.split("/").pop()];
  return node || {};
}

function getAt(obj, path) {
  return path.reduce((o, k) => (o == null ? undefined : o[k]), obj);
}
function setAt(obj, path, value) {
  let o = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof o[k] !== "object" || o[k] === null) o[k] = {};
    o = o[k];
  }
  o[path[path.length - 1]] = value;
}

//: Metadata of a preset, not an engine input: shown read-only in a customised preset.
const PRESET_METADATA = new Set([
  "id",
  "source",
  "field_sources",
  "notes",
  "calibration_source",
  "published_params_source",
]);

// The properties a form shows: a former (deprecated) field name is still accepted, never shown.
const shownProperties = (schemaNode) => Object.entries(schemaNode.properties || {}).filter(([, s]) => !s.deprecated);

// The title pydantic makes up from a field name ("kv_cache_dtype" -> "Kv Cache Dtype"): not a label.
function autoTitle(key) {
  return String(key)
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase())
    .join(" ");
}

//: A label in words: the field's own `title` (Field(title=...)) when it has one, else its name.
function labelFor(key, schema) {
  const title = schema.title;
  if (title && title !== key && title !== autoTitle(key)) return title;
  const { label } = unitOf(key);
  return label || wordsOf(key) || title || "";
}

// Whether a value meets one `x-applies-when` condition: a list of values (null stands for null/absent) or
// {minimum} (a number of at least it), as dse.scenarios.base.condition_holds reads it.
function allowedValue(allowed, value) {
  if (!Array.isArray(allowed)) return typeof value === "number" && value >= allowed.minimum;
  return allowed.some((a) => (a === null ? value === null || value === undefined : a === value));
}

function presetCategory(schema, root, presetTypes) {
  for (const option of schema.anyOf || []) {
    if (option.$ref) {
      const name = option.$ref.split("/").pop();
      if (presetTypes[name]) return { category: presetTypes[name], specSchema: deref(option, root) };
    }
  }
  return null;
}

function isNumberSchema(s) {
  return s.type === "number" || s.type === "integer";
}

function numberList(text, integer) {
  const parts = text
    .split(/[\s,;]+/)
    .filter(Boolean)
    .map(Number);
  if (!parts.length || parts.some((v) => !Number.isFinite(v) || (integer && !Number.isInteger(v)))) return null;
  return parts;
}

export function buildForm({ schema, doc, presetTypes, onChange }) {
  const root = schema;
  // Schema defaults by dotted path, and the inputs that apply only in some settings (`x-applies-when`).
  const defaults = {};
  const ruled = [];
  const inputsSchema = deref(schema.properties.inputs, root);
  const container = h("div", { class: "form" });
  const nameInput = h("input", {
    type: "text",
    value: doc.name,
    maxlength: 200,
    "aria-label": "scenario name",
    id: "scenario-name",
  });
  nameInput.addEventListener("input", () => {
    doc.name = nameInput.value;
    onChange({ commit: false });
  });
  nameInput.addEventListener("change", () => onChange({ commit: true }));
  container.append(h("label", { class: "name-field" }, h("span", {}, "Scenario name"), nameInput));

  function emitter(path) {
    return (value, commit = false) => {
      setAt(doc.inputs, path, value);
      applyRules();
      onChange({ commit });
    };
  }

  // An input that does not apply in the current settings is disabled, with the reason shown.
  function applyRules() {
    for (const { el, rule, parentPath } of ruled) {
      const failing = Object.entries(rule.when || {}).some(([field, allowed]) => {
        const at = [...parentPath, field];
        const stored = getAt(doc.inputs, at);
        return !allowedValue(allowed, stored === undefined ? defaults[at.join(".")] : stored);
      });
      el.classList.toggle("not-applicable", failing);
      for (const c of el.querySelectorAll("input, select, textarea, button")) c.disabled = failing;
      let note = el.querySelector(":scope > .na-reason");
      if (!note) {
        note = h("span", { class: "na-reason" });
        el.append(note);
      }
      note.textContent = failing ? `Not used: ${rule.reason}` : "";
      note.hidden = !failing;
    }
  }

  // The message under a field: a refusal of the value it holds now (cleared on the next edit).
  function fieldError(input, message) {
    const row = input.closest("[data-path]");
    row?.classList.toggle("invalid", !!message);
    const slot = row?.querySelector(".field-error");
    if (slot) slot.textContent = message || "";
  }

  function fieldRow(key, propSchema, path, input, unit) {
    const hint = propSchema.description;
    return h(
      "label",
      { class: "field", "data-path": path.join("."), title: hint || "" },
      h("span", { class: "field-label" }, labelFor(key, propSchema), hint ? h("span", { class: "hint" }, hint) : null),
      h("span", { class: "field-input" }, input, h("span", { class: "unit", "data-unit": unit || "" }, unit || "")),
      h("span", { class: "field-error", "aria-live": "polite" }),
    );
  }

  function numberInput(s, value, emit, nullable) {
    const attrs = {
      type: "number",
      step: s.type === "integer" ? "1" : "any",
      value: value ?? "",
      inputmode: "decimal",
    };
    if (s.minimum !== undefined) attrs.min = s.minimum;
    if (s.maximum !== undefined) attrs.max = s.maximum;
    if (nullable) attrs.placeholder = "auto";
    const input = h("input", attrs);
    const read = (commit) => {
      if (input.value === "" && nullable) {
        input.setCustomValidity("");
        fieldError(input, "");
        return emit(null, commit);
      }
      const number = Number(input.value);
      const bad = input.value === "" || !Number.isFinite(number) || (s.type === "integer" && !Number.isInteger(number));
      const message = bad ? (s.type === "integer" ? "enter a whole number" : "enter a number") : "";
      input.setCustomValidity(message);
      fieldError(input, message);
      if (!bad) emit(number, commit);
    };
    input.addEventListener("input", () => read(false));
    input.addEventListener("change", () => read(true));
    return input;
  }

  function listInput(itemSchema, value, emit, allowScalar) {
    const input = h("input", {
      type: "text",
      value: Array.isArray(value) ? value.join(", ") : (value ?? ""),
      placeholder: value === undefined ? "default" : allowScalar ? "one value or a list" : "comma-separated",
    });
    const read = (commit) => {
      const list = numberList(input.value, itemSchema.type === "integer");
      input.setCustomValidity(list ? "" : "numbers, comma-separated");
      fieldError(input, list ? "" : "numbers, comma-separated");
      if (list) emit(allowScalar && list.length === 1 ? list[0] : list, commit);
    };
    input.addEventListener("input", () => read(false));
    input.addEventListener("change", () => read(true));
    return input;
  }

  function control(key, propSchema, path, base = doc.inputs) {
    const node = deref(propSchema, root);
    const options = propSchema.anyOf || node.anyOf || [];
    const nullable = options.some((o) => o.type === "null");
    const nonNull = options.filter((o) => o.type !== "null").map((o) => deref(o, root));
    const stored = getAt(base, path);
    // Fields left out of the document take the schema's default; show it so every input has a value.
    const value = stored === undefined ? (propSchema.default ?? node.default) : stored;
    defaults[path.join(".")] = propSchema.default ?? node.default;
    const el = plainControl(key, propSchema, node, path, base, value, nullable, nonNull);
    const rule = propSchema["x-applies-when"];
    if (rule) ruled.push({ el, rule, parentPath: path.slice(0, -1) });
    return el;
  }

  function plainControl(key, propSchema, node, path, base, value, nullable, nonNull) {
    const emit = emitter(path);
    const { unit } = unitOf(key);
    // The field's own title only (a $ref'd model's title names the model, not the field).
    const described = { ...node, ...propSchema, title: propSchema.title };

    const preset = presetCategory(propSchema.anyOf ? propSchema : node, root, presetTypes);
    if (preset) return presetControl(key, described, preset, path, value, emit);

    // number | list of numbers (e.g. one keep fraction, or one per stage)
    if (
      nonNull.length === 2 &&
      nonNull.some(isNumberSchema) &&
      nonNull.some((o) => o.type === "array" && isNumberSchema(deref(o.items || {}, root)))
    ) {
      return fieldRow(key, described, path, listInput(nonNull.find(isNumberSchema), value, emit, true), unit);
    }
    const single = nonNull.length === 1 ? nonNull[0] : node;
    if (single.enum || single.const !== undefined) {
      const choices = single.enum || [single.const];
      const select = h(
        "select",
        {},
        nullable ? h("option", { value: "", selected: value === null }, "none") : null,
        choices.map((c) => h("option", { value: c, selected: c === value }, String(c).replaceAll("_", " "))),
      );
      select.addEventListener("change", () => emit(select.value === "" && nullable ? null : select.value, true));
      return fieldRow(key, described, path, select, unit);
    }
    if (isNumberSchema(single)) return fieldRow(key, described, path, numberInput(single, value, emit, nullable), unit);
    if (single.type === "boolean") {
      const box = h("input", { type: "checkbox", checked: !!value, class: "toggle" });
      box.addEventListener("change", () => emit(box.checked, true));
      return fieldRow(key, described, path, box, "");
    }
    if (single.type === "string") {
      const input = h("input", { type: "text", value: value ?? "", placeholder: nullable ? "none" : "" });
      input.addEventListener("input", () => emit(input.value === "" && nullable ? null : input.value));
      input.addEventListener("change", () => emit(input.value === "" && nullable ? null : input.value, true));
      return fieldRow(key, described, path, input, unit);
    }
    if (single.type === "array") {
      const items = deref(single.items || {}, root);
      if (isNumberSchema(items)) return fieldRow(key, described, path, listInput(items, value, emit, false), unit);
      if (items.enum || items.type === "boolean") return choiceList(key, described, items, path, value, emit);
      if (items.type === "object" && items.properties)
        return arrayTable(key, described, items, path, value || [], emit);
    }
    if (single.type === "object" && single.properties) {
      // Absent: a group of its own fields, each showing its default (a form, never a raw JSON box).
      if (value === null && nullable) return jsonControl(key, described, path, value, emit, nullable);
      const fs = h("fieldset", { "data-path": path.join(".") }, h("legend", {}, labelFor(key, described)));
      for (const [k, s] of shownProperties(single)) fs.append(control(k, s, [...path, k], base));
      return fs;
    }
    if (
      single.type === "object" &&
      single.additionalProperties &&
      isNumberSchema(deref(single.additionalProperties, root)) &&
      value
    ) {
      const fs = h(
        "fieldset",
        { class: "map", "data-path": path.join(".") },
        h("legend", {}, labelFor(key, described), unit ? ` [${unit}]` : ""),
      );
      for (const k of Object.keys(value))
        fs.append(control(k, { ...deref(single.additionalProperties, root), title: k }, [...path, k], base));
      return fs;
    }
    return jsonControl(key, described, path, value, emit, nullable);
  }

  // A list of choices (e.g. the schedules a plan search tries): one checkbox per choice, at least one kept.
  function choiceList(key, schemaNode, items, path, value, emit) {
    const choices = items.enum || [false, true];
    const chosen = new Set(Array.isArray(value) ? value : choices);
    const boxes = choices.map((c) => {
      const box = h("input", { type: "checkbox", checked: chosen.has(c), value: String(c) });
      box.addEventListener("change", () => {
        const next = choices.filter((x, i) => (boxes[i] === box ? box.checked : boxes[i].checked));
        if (!next.length) {
          box.checked = true; // the schema asks for at least one
          fieldError(box, "keep at least one");
          return;
        }
        fieldError(box, "");
        emit(next, true);
      });
      return box;
    });
    const group = h(
      "span",
      { class: "choice-list", role: "group", "aria-label": labelFor(key, schemaNode) },
      choices.map((c, i) =>
        h(
          "label",
          { class: "choice" },
          boxes[i],
          typeof c === "boolean" ? (c ? "on" : "off") : String(c).replaceAll("_", " "),
        ),
      ),
    );
    const hint = schemaNode.description;
    // A div, not a label: each choice is its own label.
    return h(
      "div",
      { class: "field choices", "data-path": path.join("."), title: hint || "" },
      h("span", { class: "field-label" }, labelFor(key, schemaNode), hint ? h("span", { class: "hint" }, hint) : null),
      h("span", { class: "field-input" }, group),
      h("span", { class: "field-error", "aria-live": "polite" }),
    );
  }

  // A value edited as JSON. An absent one (null) is an empty box that says so, with the schema's example
  // as its placeholder; emptying the box sets it back to null.
  function jsonControl(key, schemaNode, path, value, emit, nullable = false) {
    const example = schemaNode.examples?.[0];
    const placeholder = [nullable ? "empty: none" : "", example !== undefined ? `e.g. ${JSON.stringify(example)}` : ""]
      .filter(Boolean)
      .join("; ");
    const area = h("textarea", { rows: 3, spellcheck: "false", class: "json", placeholder });
    area.value = value === null && nullable ? "" : JSON.stringify(value ?? null);
    const read = (commit) => {
      try {
        const parsed = area.value.trim() === "" && nullable ? null : JSON.parse(area.value);
        area.setCustomValidity("");
        fieldError(area, "");
        emit(parsed, commit);
      } catch {
        area.setCustomValidity("invalid JSON");
        fieldError(area, "invalid JSON");
        return;
      }
    };
    area.addEventListener("input", () => read(false));
    area.addEventListener("change", () => read(true));
    return fieldRow(key, schemaNode, path, area, "JSON");
  }

  function arrayTable(key, schemaNode, itemSchema, path, rows, emit) {
    const columns = shownProperties(itemSchema);
    const wrap = h("div", { class: "array-table", "data-path": path.join(".") });
    const render = () => {
      const body = rows.map((row, i) =>
        h(
          "tr",
          {},
          columns.map(([col, colSchema]) => {
            const cellPath = [...path, i, col];
            const cell = control(col, colSchema, cellPath);
            const input = cell.querySelector("input, select, textarea") || cell;
            input.setAttribute("aria-label", `${key} ${i + 1} ${col}`);
            return h("td", {}, input);
          }),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "icon",
                title: "remove row",
                "aria-label": "remove row",
                onclick: () => {
                  if (rows.length <= (schemaNode.minItems || 0)) return;
                  rows.splice(i, 1);
                  emit(rows, true);
                  render();
                },
              },
              "×",
            ),
          ),
        ),
      );
      fill(
        wrap,
        h(
          "div",
          { class: "array-title" },
          labelFor(key, schemaNode),
          schemaNode.description ? h("span", { class: "hint" }, schemaNode.description) : null,
        ),
        h(
          "div",
          { class: "scroll-x" },
          h(
            "table",
            { class: "compact" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                columns.map(([col]) => {
                  const u = unitOf(col);
                  return h("th", {}, labelFor(col, {}), u.unit ? ` [${u.unit}]` : "");
                }),
                h("th", {}),
              ),
            ),
            h("tbody", {}, body),
          ),
        ),
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: () => {
              rows.push(structuredClone(rows[rows.length - 1] || {}));
              emit(rows, true);
              render();
            },
          },
          "+ add row",
        ),
      );
    };
    render();
    return wrap;
  }

  function presetControl(key, schemaNode, preset, path, value, emit) {
    const nullable = (schemaNode.anyOf || []).some((o) => o.type === "null");
    const select = h(
      "select",
      { "data-preset": preset.category },
      h("option", { value: typeof value === "string" ? value : "" }, typeof value === "string" ? value : "loading…"),
    );
    const details = h("div", { class: "preset-fields" });
    const row = fieldRow(key, schemaNode, path, select, "");
    const wrap = h("div", { class: "preset", "data-path": path.join(".") }, row, details);
    let presets = [];
    const showFields = () => {
      fill(details);
      const current = getAt(doc.inputs, path);
      if (current && typeof current === "object") {
        const fs = h("fieldset", { class: "custom-spec" }, h("legend", {}, `custom ${preset.category}`));
        for (const [k, s] of shownProperties(preset.specSchema)) {
          if (PRESET_METADATA.has(k)) continue;
          fs.append(control(k, s, [...path, k]));
        }
        details.append(fs);
      }
    };
    catalogCategory(preset.category).then((list) => {
      presets = list;
      // Left out of the document, the field takes its schema default: the picker shows that preset.
      const current = getAt(doc.inputs, path) === undefined ? value : getAt(doc.inputs, path);
      fill(
        select,
        nullable
          ? h("option", { value: "__none__", selected: current === null || current === undefined }, "none")
          : null,
        ...presets.map((p) =>
          h("option", { value: p.id, selected: p.id === current, title: p.source || "" }, p.name || p.id),
        ),
        h("option", { value: "__custom__", selected: !!current && typeof current === "object" }, "customise…"),
      );
      showFields();
    });
    select.addEventListener("change", () => {
      const current = getAt(doc.inputs, path);
      if (select.value === "__custom__") {
        const shown = current === undefined ? value : current;
        const from = presets.find((p) => p.id === (typeof shown === "string" ? shown : "")) || presets[0];
        const inline = Object.fromEntries(
          Object.entries(from).filter(([k]) => k in (preset.specSchema.properties || {})),
        );
        inline.id = "custom";
        inline.name = `custom (from ${from.name || from.id})`;
        emit(inline, true);
      } else emit(select.value === "__none__" ? null : select.value, true);
      showFields();
      applyRules();
    });
    return wrap;
  }

  const groups = { presets: [], numbers: [], more: [] };
  for (const [key, propSchema] of Object.entries(inputsSchema.properties || {})) {
    const el = control(key, propSchema, [key]);
    const isPreset = el.classList.contains("preset");
    (isPreset
      ? groups.presets
      : el.tagName === "FIELDSET" || el.classList.contains("array-table")
        ? groups.more
        : groups.numbers
    ).push(el);
  }
  applyRules();
  container.append(
    ...[
      groups.presets.length
        ? h("section", { class: "form-group" }, h("h3", {}, "Hardware & workload"), groups.presets)
        : null,
      h("section", { class: "form-group" }, h("h3", {}, "Settings"), groups.numbers),
      groups.more.length ? h("section", { class: "form-group" }, h("h3", {}, "Structured inputs"), groups.more) : null,
    ].filter(Boolean),
  );
  return container;
}
