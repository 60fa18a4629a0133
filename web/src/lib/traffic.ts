// The overview chart's series: the traffic query's buckets, with newer live interval points added,
// as per-second rates for uPlot. Pure (tested in node).
import { parseTime } from './format.js';
import { graphql, type ResultOf } from './graphql.js';

/** A traffic interval's totals, as the traffic query and subscription send them. */
export const PointFields = graphql(`
  fragment PointFields on TrafficPoint {
    ts bytes packets flows
  }
`);

export type Point = ResultOf<typeof PointFields>;

/** Bucket width (s) of a queried series: the spacing of its points, else `fallback`. */
export function seriesStep(points: Point[], fallback: number): number {
  if (points.length < 2) return fallback;
  const s = (parseTime(points[1].ts) - parseTime(points[0].ts)) / 1000;
  return s > 0 ? s : fallback;
}

/**
 * Adds live interval points received after the history was queried into its buckets of `step`
 * seconds (several sources, nodes or imports, may report the same interval: they add up).
 * Points before `fromMs` are ignored. The caller re-queries soon after live points arrive, so a
 * point that reached the store before the query ran counts twice only briefly.
 */
export function mergeLive(history: Point[], step: number, live: { point: Point }[], fromMs: number): Map<number, Point> {
  const byTs = new Map<number, Point>();
  for (const p of history) byTs.set(parseTime(p.ts), { ...p });
  const stepMs = step * 1000;
  for (const { point } of live) {
    const t = parseTime(point.ts);
    if (t < fromMs) continue;
    const bucket = Math.floor(t / stepMs) * stepMs;
    const cur = byTs.get(bucket) ?? { ts: new Date(bucket).toISOString(), bytes: 0, packets: 0, flows: 0 };
    byTs.set(bucket, { ...cur, bytes: cur.bytes + point.bytes, packets: cur.packets + point.packets, flows: cur.flows + point.flows });
  }
  return byTs;
}

/** uPlot data: x (s), bytes/s, packets/s, sorted by time. */
export function toRates(byTs: Map<number, Point>, step: number): [number[], number[], number[]] {
  const keys = [...byTs.keys()].sort((a, b) => a - b);
  return [keys.map((k) => k / 1000), keys.map((k) => byTs.get(k)!.bytes / step), keys.map((k) => byTs.get(k)!.packets / step)];
}
