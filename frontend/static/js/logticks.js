// The ticks of a log axis, for the dashboard (result.js plot) and the standalone HTML report, which
// embeds this file as it is (backend/dse/services/reports.py), so it imports nothing.
// Plotly labels a log axis over a decade or more with "D1"/"D2" ticks: lone digits 2 … 9 that read as
// 2 or 5, not 2000 or 0.05 ("2 5 1000 2 5 10k", "2 3 … 9 0.1"). Here such an axis is labelled at
// 1, 2 and 5 × 10^k, each label written in full; where those run into each other, at the powers of ten.

//: Plotly's suffixes (exponentformat "B") by power of a thousand, so these labels read as its own do.
const LOG_TICK_SUFFIXES = { "-4": "p", "-3": "n", "-2": "μ", 1: "k", 2: "M", 3: "B", 4: "T" };

// A tick's label: plain from 0.001 to 999 ("0.02", "500"), else with Plotly's suffixes ("2k", "10k",
// "200μ"; Plotly itself writes 1000 to 9999 plain, which made "5000 10k" of one axis).
export function logTickLabel(value) {
  const power = Math.floor(Math.log10(value) + 1e-9);
  if (power >= -3 && power <= 2) return String(Number(value.toPrecision(6)));
  const thousands = Math.floor(power / 3);
  const suffix = LOG_TICK_SUFFIXES[thousands];
  if (suffix === undefined) return value.toExponential(0);
  return `${Number((value / 10 ** (3 * thousands)).toPrecision(6))}${suffix}`;
}

// Ticks at mantissa × 10^k for each of `mantissas` (1 is the powers of ten), over log10 positions
// lo … hi, with their labels.
export function logTicks(lo, hi, mantissas) {
  const tickvals = [];
  for (let power = Math.floor(lo); power <= Math.ceil(hi); power++)
    for (const mantissa of mantissas) {
      const value = Number((mantissa * 10 ** power).toPrecision(6));
      const at = Math.log10(value);
      if (at >= lo - 1e-9 && at <= hi + 1e-9) tickvals.push(value);
    }
  return { tickmode: "array", tickvals, ticktext: tickvals.map(logTickLabel) };
}

// The smallest and largest positive value the traces put on an axis ("xaxis2" is a trace's "x2").
export function logSpan(data, axisKey) {
  const letter = axisKey[0];
  const ref = `${letter}${axisKey.slice(5)}`;
  let lo = Infinity;
  let hi = 0;
  for (const trace of data) {
    if ((trace[`${letter}axis`] || letter) !== ref) continue;
    for (const v of (trace[letter] || []).flat()) {
      if (typeof v === "number" && v > 0) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  return hi > 0 ? [lo, hi] : [1, 1];
}

// Before drawing: a log axis whose data span a decade or more, with no ticks of its own, gets ticks at
// 1, 2 and 5 × 10^k (a decade either side: Plotly pads the range, and draws only the ticks inside it).
export function presetLogTicks(data, layout) {
  const out = { ...layout };
  for (const key of Object.keys(out)) {
    const axis = out[key];
    if (!/^[xy]axis\d*$/.test(key) || !axis || axis.type !== "log") continue;
    if (axis.dtick !== undefined || axis.tickvals !== undefined) continue;
    const [lo, hi] = logSpan(data, key);
    if (hi / lo >= 10) out[key] = { ...axis, ...logTicks(Math.log10(lo) - 1, Math.log10(hi) + 1, [1, 2, 5]) };
  }
  return out;
}

// Whether any two of an axis's tick labels run into each other (2 px slack), measured on the drawing,
// or Plotly turned them on their side to keep them apart (its tickangle "auto").
function ticksCollide(div, id) {
  const labels = [...div.querySelectorAll(`g.${id}tick text`)];
  const angle = (t) => Number(/rotate\(\s*(-?[\d.]+)/.exec(t.getAttribute("transform") || "")?.[1] || 0);
  if (labels.some((t) => angle(t) !== 0)) return true;
  const boxes = labels.map((t) => t.getBoundingClientRect());
  return boxes.some((a, i) =>
    boxes.some(
      (b, j) =>
        j > i &&
        Math.min(a.right, b.right) - Math.max(a.left, b.left) > -2 &&
        Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > -2,
    ),
  );
}

// Once drawn, at any width: a log axis Plotly still gave digit ticks (its padded range spans a decade,
// its data less) gets 1, 2 and 5 × 10^k; one whose labels run into each other (a narrow chart, or
// Plotly's "0.2M 0.4M 0.6M 0.8M 1M" over one decade) is labelled at the powers of ten only where its
// range holds two of them, else it steps linearly by a round number, three or four labels. Measured
// on the drawing; a few layout passes at most.
export function fitLogTicks(div, pass = 0) {
  if (!div._fullLayout || !div.querySelector(".main-svg")) return undefined;
  const update = {};
  const set = (key, values) => Object.entries(values).forEach(([k, v]) => (update[`${key}.${k}`] = v));
  for (const key of Object.keys(div._fullLayout)) {
    const m = /^([xy])axis(\d*)$/.exec(key);
    const axis = div._fullLayout[key];
    if (!m || !axis || axis.type !== "log" || axis.visible === false) continue;
    const [lo, hi] = [Math.min(...axis.range), Math.max(...axis.range)];
    if (axis.tickmode !== "array" && String(axis.dtick).startsWith("D")) {
      set(key, logTicks(lo, hi, [1, 2, 5]));
      continue;
    }
    const powersOnly =
      axis.tickmode === "array" ? axis.tickvals.every((v) => Number.isInteger(Math.log10(v))) : axis.dtick === 1;
    if (powersOnly || !ticksCollide(div, `${m[1]}${m[2]}`)) continue;
    if (Math.floor(hi) - Math.ceil(lo) >= 1) set(key, logTicks(lo, hi, [1]));
    else {
      // Linear steps ("L<step>") of a round size, three or four of them across the range; when those
      // still collide (a plot a hundred pixels wide), the next round size up.
      const previous = typeof axis.dtick === "string" && axis.dtick.startsWith("L") ? Number(axis.dtick.slice(1)) : 0;
      const raw = Math.max((10 ** hi - 10 ** lo) / 3, previous * 1.01);
      const magnitude = 10 ** Math.floor(Math.log10(raw));
      const step = [1, 2, 5, 10].find((f) => f * magnitude >= raw) * magnitude;
      set(key, { tickmode: "linear", tick0: 0, dtick: `L${step}`, tickangle: 0 });
    }
  }
  if (!Object.keys(update).length) return undefined;
  const relaid = window.Plotly.relayout(div, update);
  return pass < 3 ? relaid.then(() => fitLogTicks(div, pass + 1)) : relaid;
}
