// The Explore page's stacked area of the top items' series, laid out as a pure function (tested in
// node): each layer lies on the one before it, so the top edge is the sum of the items shown.

export interface StackOptions {
  /** Bucket starts, ms since the epoch, ascending; one per point of every series. */
  times: readonly number[];
  /** One series per layer, bottom first; each as long as `times` (missing points count as 0). */
  series: readonly (readonly number[])[];
  width: number;
  height: number;
  /** Room around the plot: the y axis labels on the left, the time labels below. */
  margin?: { top: number; right: number; bottom: number; left: number };
  /** About how many horizontal pixels a time label needs. */
  xLabelWidth?: number;
}

export interface StackLayer {
  /** Closed SVG path of the band between the layer's lower and upper edges. */
  path: string;
  /** The top edge alone (drawn as a line). */
  line: string;
  /** The layer's own values, as given. */
  values: number[];
}

export interface StackLayout {
  width: number;
  height: number;
  plot: { left: number; top: number; width: number; height: number };
  /** The top of the y axis (a nice number at or above the largest sum). */
  yMax: number;
  yTicks: { value: number; y: number }[];
  xTicks: { time: number; x: number; step: number }[];
  /** x of each point. */
  xs: number[];
  /** Sum of the layers at each point. */
  totals: number[];
  layers: StackLayer[];
}

export const STACK_MARGIN = { top: 8, right: 12, bottom: 24, left: 76 } as const;

const r2 = (n: number) => Math.round(n * 100) / 100;

/** Ticks from 0 to at least `max` at a 1, 2 or 5 × 10^k step: about `count` of them. */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let i = 0; ; i++) {
    const v = Number((i * step).toPrecision(12));
    ticks.push(v);
    if (v >= max) return ticks;
  }
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
];

/**
 * Time ticks between `from` and `to` at a round local step (minutes, hours, days) so that about
 * `maxTicks` fit. `offsetMs(t)`: the local zone's offset from UTC at t (east positive).
 */
export function timeTicks(
  from: number,
  to: number,
  maxTicks: number,
  offsetMs: (t: number) => number = (t) => -new Date(t).getTimezoneOffset() * MINUTE,
): number[] {
  if (!(to > from) || maxTicks < 1) return [];
  const step = TIME_STEPS.find((s) => (to - from) / s <= maxTicks) ?? Math.ceil((to - from) / maxTicks / DAY) * DAY;
  const off = offsetMs(from);
  const ticks: number[] = [];
  for (let t = Math.ceil((from + off) / step) * step - off; t <= to; t += step) ticks.push(t);
  return ticks;
}

/** A time tick's label: local HH:MM, with the date at midnight or when the step is a day or more. */
export function timeTickLabel(ms: number, step: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const date = `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  const hm = `${p(d.getHours())}:${p(d.getMinutes())}`;
  if (step >= DAY) return date;
  return d.getHours() === 0 && d.getMinutes() === 0 ? `${date} ${hm}` : hm;
}

/** Lays out the layers stacked bottom first, the axes' ticks, and each point's x. */
export function stackLayout(opts: StackOptions): StackLayout {
  const m = opts.margin ?? STACK_MARGIN;
  const { times, width, height } = opts;
  const plot = { left: m.left, top: m.top, width: Math.max(1, width - m.left - m.right), height: Math.max(1, height - m.top - m.bottom) };
  const n = times.length;
  const totals = times.map((_, j) => opts.series.reduce((s, ys) => s + (ys[j] ?? 0), 0));
  const yTicksValues = niceTicks(Math.max(0, ...totals));
  const yMax = yTicksValues[yTicksValues.length - 1];
  const from = times[0] ?? 0;
  const to = times[n - 1] ?? 0;
  const xOf = (t: number) => plot.left + (to > from ? ((t - from) / (to - from)) * plot.width : plot.width / 2);
  const yOf = (v: number) => plot.top + plot.height - (v / yMax) * plot.height;
  const xs = times.map((t) => r2(xOf(t)));

  const lower = times.map(() => 0);
  const layers = opts.series.map((ys): StackLayer => {
    const values = times.map((_, j) => ys[j] ?? 0);
    const upper = lower.map((l, j) => l + values[j]);
    const top = xs.map((x, j) => `${x},${r2(yOf(upper[j]))}`);
    const bottom = xs.map((x, j) => `${x},${r2(yOf(lower[j]))}`).reverse();
    const path = n ? `M${top.join('L')}L${bottom.join('L')}Z` : '';
    const line = n ? `M${top.join('L')}` : '';
    for (let j = 0; j < n; j++) lower[j] = upper[j];
    return { path, line, values };
  });

  const xLabelWidth = opts.xLabelWidth ?? 90;
  const ticks = timeTicks(from, to, Math.max(1, Math.floor(plot.width / xLabelWidth)));
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : to - from;
  return {
    width,
    height,
    plot,
    yMax,
    yTicks: yTicksValues.map((value) => ({ value, y: r2(yOf(value)) })),
    xTicks: ticks.map((time) => ({ time, x: r2(xOf(time)), step })),
    xs,
    totals,
    layers,
  };
}

/** The point nearest to a horizontal position (pixels in the chart's coordinates). */
export function nearestIndex(xs: readonly number[], x: number): number {
  if (xs.length === 0) return -1;
  let best = 0;
  for (let j = 1; j < xs.length; j++) if (Math.abs(xs[j] - x) < Math.abs(xs[best] - x)) best = j;
  return best;
}
