// The overview chart's series: the traffic query's buckets, with live interval points merged in,
// as per-second rates for uPlot. Pure (tested in node).
import { parseTime } from './format';

export interface Point {
  ts: string;
  bytes: number;
  packets: number;
  flows: number;
}

/** Bucket width (s) of a queried series: the spacing of its points, else `fallback`. */
export function seriesStep(points: Point[], fallback: number): number {
  if (points.length < 2) return fallback;
  const s = (parseTime(points[1].ts) - parseTime(points[0].ts)) / 1000;
  return s > 0 ? s : fallback;
}

/**
 * Merges live interval points into queried buckets of `step` seconds. A live interval as wide
 * as the buckets replaces its bucket (it is complete when sent); narrower ones are added to
 * their bucket only when they start at or after `queriedTo` (ms), so nothing counts twice.
 * Live points outside [fromMs, ∞) are ignored.
 */
export function mergeLive(history: Point[], step: number, live: { step: number; point: Point }[], queriedTo: number, fromMs: number): Map<number, Point> {
  const byTs = new Map<number, Point>();
  for (const p of history) byTs.set(parseTime(p.ts), { ...p });
  const stepMs = step * 1000;
  for (const { step: liveStep, point } of live) {
    const t = parseTime(point.ts);
    if (t < fromMs) continue;
    const bucket = Math.floor(t / stepMs) * stepMs;
    if (liveStep === step) {
      byTs.set(bucket, { ...point });
    } else if (liveStep < step && t >= queriedTo) {
      const cur = byTs.get(bucket) ?? { ts: new Date(bucket).toISOString(), bytes: 0, packets: 0, flows: 0 };
      byTs.set(bucket, { ...cur, bytes: cur.bytes + point.bytes, packets: cur.packets + point.packets, flows: cur.flows + point.flows });
    }
  }
  return byTs;
}

/** uPlot data: x (s), bytes/s, packets/s, sorted by time. */
export function toRates(byTs: Map<number, Point>, step: number): [number[], number[], number[]] {
  const keys = [...byTs.keys()].sort((a, b) => a - b);
  return [keys.map((k) => k / 1000), keys.map((k) => byTs.get(k)!.bytes / step), keys.map((k) => byTs.get(k)!.packets / step)];
}
