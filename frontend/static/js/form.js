// A form generated from a kind's JSON Schema. Preset fields (an id or an inline spec) get a picker.
import { catalogCategory } from "./api.js";
import { h } from "./dom.js";

function deref(schema, root) {
  let node = schema;
  while (node && node.$ref) node = root.$defs[node.$ref.split("/").pop()];
  return node || {};
}

function getAt(obj, path) { return path.reduce((o, k) => (o == null ? undefined : o[k]), obj); }
function setAt(obj, path, value) {
  let o = obj;
  for (const k of path.slice(0, -1)) { if (typeof o[k] !== "object" || o[k] === null) o[k] = {}; o = o[k]; }
  o[path[path.length - 1]] = value;
}

function labelFor(key, schema) {
  return schema.title || key.replaceAll("_", " ");
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

function numberInput(schema, value, onValue, nullable) {
  const attrs = { type: "number", step: schema.type === "integer" ? "1" : "any", value: value ?? "" };
  if (schema.minimum !== undefined) attrs.min = schema.minimum;
  if (schema.maximum !== undefined) attrs.max = schema.maximum;
  const input = h("input", attrs);
  input.addEventListener("input", () => {
    if (input.value === "" && nullable) return onValue(null);
    const number = schema.type === "integer" ? parseInt(input.value, 10) : parseFloat(input.value);
    if (!Number.isNaN(number)) onValue(number);
  });
  return input;
}

export function buildForm({ schema, doc, presetTypes, onChange }) {
  const root = schema;
  const inputsSchema = deref(schema.properties.inputs, root);
  const container = h("div", { class: "form" });
  const nameInput = h("input", { type: "text", value: doc.name, maxlength: 200, "aria-label": "scenario name" });
  nameInput.addEventListener("input", () => { doc.name = nameInput.value; onChange(doc); });
  container.append(h("label", { class: "field" }, h("span", {}, "name"), nameInput));

  function control(key, propSchema, path) {
    const schemaNode = deref(propSchema, root);
    const options = propSchema.anyOf || schemaNode.anyOf || [];
    const nullable = options.some((o) => o.type === "null");
    const nonNull = options.filter((o) => o.type !== "null");
    const value = getAt(doc.inputs, path);
    const emit = (v) => { setAt(doc.inputs, path, v); onChange(doc); };
    const hint = propSchema.description || schemaNode.description;
    const label = (input) => h("label", { class: "field", "data-path": path.join(".") },
      h("span", {}, labelFor(key, propSchema), hint ? h("span", { class: "hint" }, hint) : null), input);

    const preset = presetCategory(propSchema.anyOf ? propSchema : schemaNode, root, presetTypes);
    if (preset) return presetControl(key, preset, path, value, emit, label);
    const single = nonNull.length === 1 ? deref(nonNull[0], root) : schemaNode;
    if (single.enum || single.const !== undefined) {
      const choices = single.enum || [single.const];
      const select = h("select", {}, choices.map((c) => h("option", { value: c, selected: c === value }, c)));
      select.addEventListener("change", () => emit(select.value));
      return label(select);
    }
    if (single.type === "number" || single.type === "integer") return label(numberInput(single, value, emit, nullable));
    if (single.type === "boolean") {
      const box = h("input", { type: "checkbox", checked: !!value });
      box.style.width = "auto";
      box.addEventListener("change", () => emit(box.checked));
      return label(box);
    }
    if (single.type === "string") {
      const input = h("input", { type: "text", value: value ?? "" });
      input.addEventListener("input", () => emit(input.value === "" && nullable ? null : input.value));
      return label(input);
    }
    if (single.type === "object" && single.properties) {
      const fs = h("fieldset", {}, h("legend", {}, labelFor(key, propSchema)));
      for (const [k, s] of Object.entries(single.properties)) fs.append(control(k, s, [...path, k]));
      return fs;
    }
    return jsonControl(key, value, emit, label);
  }

  function jsonControl(key, value, emit, label) {
    const area = h("textarea", { rows: 4, spellcheck: "false" });
    area.value = JSON.stringify(value ?? null, null, 1);
    area.addEventListener("input", () => {
      try { emit(JSON.parse(area.value)); area.setCustomValidity(""); } catch { area.setCustomValidity("invalid JSON"); }
    });
    return label(area);
  }

  function presetControl(key, preset, path, value, emit, label) {
    const select = h("select", {}, h("option", { value: "" }, "loading…"));
    const custom = h("textarea", { rows: 8, spellcheck: "false", hidden: typeof value === "string" });
    const wrap = h("div", {}, select, custom);
    catalogCategory(preset.category).then((presets) => {
      select.replaceChildren(
        ...presets.map((p) => h("option", { value: p.id, selected: p.id === value, title: p.source }, p.name || p.id)),
        h("option", { value: "__custom__", selected: typeof value === "object" }, "custom (edit JSON)…"),
      );
      if (typeof value === "object" && value) custom.value = JSON.stringify(value, null, 1);
      select.addEventListener("change", () => {
        if (select.value === "__custom__") {
          const base = presets.find((p) => p.id === (typeof value === "string" ? value : "")) || presets[0];
          const inline = Object.fromEntries(Object.entries(base).filter(([k]) => k in (preset.specSchema.properties || {})));
          inline.id = "custom"; inline.name = `custom (from ${base.id})`;
          custom.hidden = false;
          custom.value = JSON.stringify(inline, null, 1);
          emit(inline);
        } else { custom.hidden = true; emit(select.value); }
      });
    });
    custom.addEventListener("input", () => {
      try { emit(JSON.parse(custom.value)); custom.setCustomValidity(""); } catch { custom.setCustomValidity("invalid JSON"); }
    });
    return label(wrap);
  }

  const fields = h("div", {});
  for (const [key, propSchema] of Object.entries(inputsSchema.properties || {})) fields.append(control(key, propSchema, [key]));
  container.append(fields);
  return container;
}
