// Tiny DOM helpers. User text only ever goes through textContent (never innerHTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// replaceChildren that skips null/undefined/false (replaceChildren itself would print "null").
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value !== "number") return String(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 1e7) return value.toLocaleString("en-US");
  if (abs >= 1e7 || abs < 1e-3) return value.toExponential(digits - 1);
  return Number(value.toPrecision(digits)).toLocaleString("en-US", { maximumFractionDigits: 6 });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function encodeDoc(doc) {
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function decodeDoc(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export function download(filename, content, type) {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// Units carried by input names (the project's convention): suffix -> unit shown beside the field.
const UNIT_SUFFIXES = [
  ["_gb_per_s", "GB/s"],
  ["_bytes_per_s", "B/s"],
  ["_flops_per_s", "FLOP/s"],
  ["_tokens_per_s", "tokens/s"],
  ["_per_s", "1/s"],
  ["_bytes", "B"],
  ["_gib", "GiB"],
  ["_gb", "GB"],
  ["_ms", "ms"],
  ["_us", "µs"],
  ["_ns", "ns"],
  ["_s", "s"],
  ["_days", "days"],
  ["_px", "px"],
  ["_tokens", "tokens"],
  ["_events", "events"],
  ["_samples", "samples"],
  ["_w", "W"],
  ["_ratio", "ratio"],
  ["_fraction", "fraction"],
  ["_count", "count"],
  ["_dim", "elements"],
  ["_hz", "Hz"],
  ["_usd", "USD"],
];

//: Suffixes that are only a unit (dropped from the label); the others also name the quantity (kept).
const PURE_UNITS = new Set([
  "GB/s",
  "B/s",
  "FLOP/s",
  "tokens/s",
  "B",
  "GB",
  "GiB",
  "ms",
  "µs",
  "ns",
  "s",
  "days",
  "px",
  "W",
  "Hz",
  "1/s",
  "USD",
]);

//: Abbreviations a field name writes in lower case ("ttft_slo_s", "kv_cache_dtype") that a label spells
//: in capitals.
const ACRONYMS = new Set(["gpu", "npu", "cpu", "pim", "kv", "ttft", "tpot", "slo", "ssd", "moe", "tp", "pp", "dp"]);

//: A field name in words: underscores to spaces, abbreviations in capitals ("GPU memory utilization").
export function wordsOf(name) {
  return String(name)
    .split("_")
    .filter(Boolean)
    .map((w) => (ACRONYMS.has(w.toLowerCase()) ? w.toUpperCase() : w))
    .join(" ");
}

export function unitOf(key) {
  const name = String(key);
  for (const [suffix, unit] of UNIT_SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      return { unit, label: wordsOf(PURE_UNITS.has(unit) ? name.slice(0, -suffix.length) : name) };
    }
  }
  return { unit: "", label: "" };
}

// Text handed to Plotly, which renders a subset of HTML in labels: user text goes in as entities.
export function plotlyText(text) {
  return String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

// Numbers for people: SI prefixes for big/small magnitudes, plain digits otherwise. One byte convention:
// sizes (B) in binary prefixes (KiB, MiB, GiB, TiB), rates (B/s) in decimal ones (GB/s, TB/s).
// display "percent" shows a fraction (0.42) as 42 % (the API value stays the fraction).
export function formatSI(value, unitIn = "", display = "number") {
  let unit = unitIn;
  if (value === null || value === undefined || typeof value !== "number" || !Number.isFinite(value))
    return { text: formatNumber(value), unit };
  if (display === "percent") return { text: formatNumber(value * 100, 3), unit: "%" };
  if (unit === "bytes") unit = "B";
  if (unit === "B" && Math.abs(value) >= 1024) {
    const binary = [
      [2 ** 40, "TiB"],
      [2 ** 30, "GiB"],
      [2 ** 20, "MiB"],
      [2 ** 10, "KiB"],
    ];
    for (const [scale, name] of binary)
      if (Math.abs(value) >= scale) return { text: formatNumber(value / scale), unit: name };
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e7 && !["B", "B/s", "FLOP", "FLOP/s", "MAC"].includes(unit))
    return { text: formatNumber(value), unit };
  const prefixable = [
    "B",
    "B/s",
    "FLOP",
    "FLOP/s",
    "W",
    "Hz",
    "MAC",
    "tokens/s",
    "samples/s",
    "events/s",
    "images/s",
    "count",
    "params",
    "s",
  ];
  if (!prefixable.includes(unit) || value === 0) return { text: formatNumber(value), unit };
  const abs = Math.abs(value);
  const big = [
    [1e15, "P"],
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
    [1e3, "k"],
  ];
  const small = [
    [1e-3, "m"],
    [1e-6, "µ"],
    [1e-9, "n"],
  ];
  if (unit === "s") {
    if (abs >= 86400 * 2) return { text: formatNumber(value / 86400), unit: "days" };
    if (abs >= 1) return { text: formatNumber(value), unit };
  }
  for (const [scale, prefix] of big)
    if (abs >= scale && unit !== "s")
      return { text: formatNumber(value / scale), unit: unit === "count" ? prefix : prefix + unit };
  if (abs < 1 && unit === "s")
    for (const [scale, prefix] of small)
      if (abs >= scale) return { text: formatNumber(value / scale), unit: prefix + unit };
  return { text: formatNumber(value), unit };
}

//: Units as a table writes them, where the API's spelling is ASCII ("x" for a ratio, "1.8 ×").
const UNIT_SIGNS = { x: "×" };

// A unit for display (the API keeps its own spelling).
export function unitText(unit) {
  return UNIT_SIGNS[unit] ?? unit ?? "";
}

//: What a unit prefix formatSI writes multiplies by.
const PREFIX_FACTORS = { P: 1e15, T: 1e12, G: 1e9, M: 1e6, k: 1e3, m: 1e-3, µ: 1e-6, n: 1e-9 };
const BINARY_FACTORS = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

// One display unit for a series of values in `unitIn` (a chart's axis): the unit formatSI writes for the
// largest of them ("ms" for sub-second times, as the metric cards read), and the factor a value is
// divided by to read in it.
export function displayScale(values, unitIn = "", display = "number") {
  const unit = unitIn === "bytes" ? "B" : unitIn;
  const sizes = values.filter((v) => typeof v === "number" && Number.isFinite(v) && v !== 0).map(Math.abs);
  if (!sizes.length) return { unit, factor: 1 };
  const shown = formatSI(Math.max(...sizes), unit, display).unit;
  if (shown === unit) return { unit, factor: 1 };
  if (shown === "%") return { unit: shown, factor: 0.01 };
  if (shown === "days") return { unit: shown, factor: 86400 };
  if (shown in BINARY_FACTORS) return { unit: shown, factor: BINARY_FACTORS[shown] };
  const prefix = unit === "count" ? shown : shown.slice(0, shown.length - unit.length);
  return { unit: shown, factor: PREFIX_FACTORS[prefix] ?? 1 };
}

export function toast(message, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: "status" }, message);
  document.body.append(el);
  setTimeout(() => el.classList.add("gone"), 2600);
  setTimeout(() => el.remove(), 3200);
}

// One CSV cell. Text beginning with = + - @ (or a tab / carriage return) would be read as a formula
// by a spreadsheet ("CSV injection"): it gets a leading single quote, which makes it plain text.
// Numbers stay numbers (a negative number is not text).
export function csvCell(v) {
  let s = v === null || v === undefined ? "" : String(v);
  if (typeof v !== "number" && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

// The words of the bits a bit-mask value sets (a metric's `codes`: bit -> meaning), e.g. why a plan
// cannot run; "none" for 0. Keys arrive as JSON strings.
export function codeWords(codes, value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const set = Object.entries(codes || {})
    .filter(([bit]) => (Math.round(value) & Number(bit)) !== 0)
    .map(([, words]) => words);
  return set.length ? set.join("; ") : "none";
}
