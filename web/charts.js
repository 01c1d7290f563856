// Inline SVG charts (no libraries): horizontal bars per type, stacked bars per hour.
import { s } from './dom.js';

const EXECUTED = new Set(['DATA_ACCESSED', 'INFERENCE_EXECUTED', 'TRAINING_EXECUTED']);

export const SERIES = [
  { key: 'executed', label: 'executed (access, inference, training)', cls: 'c-exec' },
  { key: 'denied', label: 'denied (CONSENT_DENIED)', cls: 'c-deny' },
  { key: 'other', label: 'other (consent, tokens, erasure…)', cls: 'c-other' },
];

function seriesOf(type) {
  if (type === 'CONSENT_DENIED') return 'denied';
  return EXECUTED.has(type) ? 'executed' : 'other';
}

/** Horizontal bars: [{ label, value, cls }]. */
export function barChart(items, { testid, width = 640 } = {}) {
  const rowH = 26;
  const labelW = 190;
  const valueW = 60;
  const max = Math.max(1, ...items.map((i) => i.value));
  const height = items.length * rowH + 8;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': 'events per type', testid, preserveAspectRatio: 'xMinYMin meet' });
  items.forEach((it, i) => {
    const y = 4 + i * rowH;
    const w = ((width - labelW - valueW) * it.value) / max;
    svg.append(
      s('text', { x: labelW - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end', class: 'label' }, it.label),
      s('rect', { x: labelW, y: y + 4, width: Math.max(1, w), height: rowH - 8, rx: 3, class: it.cls ?? 'c-other' }, s('title', null, `${it.label}: ${it.value}`)),
      s('text', { x: labelW + w + 6, y: y + rowH / 2 + 4, class: 'value' }, String(it.value)),
    );
  });
  return svg;
}

function hourKey(ms) {
  return new Date(ms).toISOString().slice(0, 13);
}

/**
 * Buckets eventsByHour ([{ hour: 'YYYY-MM-DDTHH', counts }]) into a continuous series of hours,
 * or of days when the span is over two weeks. Returns [{ label, start, executed, denied, other }].
 */
export function bucketize(eventsByHour) {
  if (eventsByHour.length === 0) return { unit: 'hour', buckets: [] };
  const parse = (hour) => Date.parse(`${hour}:00:00.000Z`);
  const first = parse(eventsByHour[0].hour);
  const last = parse(eventsByHour[eventsByHour.length - 1].hour);
  const HOUR = 3_600_000;
  const unit = (last - first) / HOUR > 24 * 14 ? 'day' : 'hour';
  const step = unit === 'day' ? 24 * HOUR : HOUR;
  const start = unit === 'day' ? Math.floor(first / step) * step : first;
  const n = Math.floor((last - start) / step) + 1;
  const buckets = Array.from({ length: n }, (_, i) => ({
    start: start + i * step,
    label: unit === 'day' ? new Date(start + i * step).toISOString().slice(0, 10) : `${hourKey(start + i * step).replace('T', ' ')}:00`,
    executed: 0,
    denied: 0,
    other: 0,
  }));
  for (const { hour, counts } of eventsByHour) {
    const b = buckets[Math.floor((parse(hour) - start) / step)];
    if (!b) continue;
    for (const [type, c] of Object.entries(counts)) b[seriesOf(type)] += c;
  }
  return { unit, buckets };
}

/** An axis maximum and an integer tick step of 1, 2 or 5 × 10^k, with at most about 5 ticks. */
export function niceScale(maxValue) {
  const raw = Math.max(1, maxValue / 4);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * mag).find((x) => x >= raw) ?? 10 * mag);
  return { max: Math.ceil(maxValue / step) * step, step };
}

/** Stacked vertical bars over time. */
export function timeChart(eventsByHour, { testid, width = 1100, height = 230 } = {}) {
  const { unit, buckets } = bucketize(eventsByHour);
  const padL = 44;
  const padR = 8;
  const padT = 10;
  const padB = 28;
  const plotW = width - padL - padR;
  const plotH = height - padT - padB;
  const totals = buckets.map((b) => b.executed + b.denied + b.other);
  const { max, step: tick } = niceScale(Math.max(1, ...totals));
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': `events per ${unit}`, testid, 'data-buckets': buckets.length, 'data-unit': unit });
  // Axes and gridlines.
  for (let v = 0; v <= max; v += tick) {
    const y = padT + plotH - (v / max) * plotH;
    svg.append(s('line', { x1: padL, x2: width - padR, y1: y, y2: y, class: 'grid' }), s('text', { x: padL - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, String(v)));
  }
  const slot = plotW / Math.max(1, buckets.length);
  const barW = Math.max(1, Math.min(40, slot * 0.8));
  const labelEvery = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((b, i) => {
    const x = padL + i * slot + (slot - barW) / 2;
    let y = padT + plotH;
    const g = s('g', null, s('title', null, `${b.label} UTC: ${b.executed} executed, ${b.denied} denied, ${b.other} other`));
    for (const ser of SERIES) {
      const v = b[ser.key];
      if (v === 0) continue;
      const hgt = (v / max) * plotH;
      y -= hgt;
      g.append(s('rect', { x, y, width: barW, height: hgt, class: ser.cls }));
    }
    svg.append(g);
    if (i % labelEvery === 0) {
      const lbl = unit === 'day' ? b.label.slice(5) : `${b.label.slice(5, 13)}h`;
      svg.append(s('text', { x: x + barW / 2, y: height - padB + 16, 'text-anchor': 'middle', class: 'axis' }, lbl));
    }
  });
  return svg;
}
