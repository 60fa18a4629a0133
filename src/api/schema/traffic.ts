// Traffic: the `traffic` series query (store.trafficSeries) and the `traffic` subscription (bus
// topic 'traffic', one event per closed aggregation interval, optionally rolled up to a wider step).
import type { TrafficEvent } from '../../bus/types.js';
import type { TrafficPoint } from '../../store/types.js';
import { busIterator } from '../stream.js';
import { builder, rangeArgs, resolveRange, resolveStep, userError } from './builder.js';
import { STORE_QUERY } from '../limits.js';

const MAX_TRAFFIC_POINTS = 10_000;
const DEFAULT_TRAFFIC_POINTS = 500;
/** Interval events a subscriber may have unread before the oldest are dropped. */
const TRAFFIC_QUEUE = 1_000;

const TrafficPointRef = builder.objectRef<TrafficPoint>('TrafficPoint').implement({
  fields: (t) => ({
    ts: t.field({ type: 'DateTime', resolve: (p) => p.ts, description: 'Bucket start.' }),
    bytes: t.field({ type: 'Counter', resolve: (p) => p.bytes }),
    packets: t.field({ type: 'Counter', resolve: (p) => p.packets }),
    flows: t.exposeInt('flows', { description: 'Flows started in the bucket.' }),
  }),
});

const TrafficFilterInput = builder.inputType('TrafficFilter', {
  fields: (t) => ({ node: t.string({ description: 'Only this worker node.' }) }),
});

builder.queryField('traffic', (t) =>
  t.field({
    type: [TrafficPointRef],
    description: 'Traffic per bucket over the range (default: see `dataRange`); buckets without traffic are zeros.',
    extensions: STORE_QUERY,
    args: {
      ...rangeArgs(t.arg),
      step: t.arg.int({ description: 'Bucket width in seconds, a multiple of the aggregation interval; default: about 500 points.' }),
      filter: t.arg({ type: TrafficFilterInput }),
    },
    resolve: async (_root, args, ctx) => {
      const range = await resolveRange(args, ctx);
      const step = resolveStep(args.step, range, ctx.intervalUs, MAX_TRAFFIC_POINTS, DEFAULT_TRAFFIC_POINTS);
      return ctx.store.trafficSeries({ ...range, step, node: args.filter?.node ?? undefined }, ctx);
    },
  }),
);

const TrafficUpdateRef = builder.objectRef<TrafficEvent>('TrafficUpdate').implement({
  fields: (t) => ({
    node: t.string({ nullable: true, resolve: (e) => e.node || null }),
    step: t.int({ resolve: (e) => e.step / 1_000_000, description: 'Bucket width in seconds.' }),
    point: t.field({ type: TrafficPointRef, resolve: (e) => e.point }),
  }),
});

/**
 * Sums interval events into buckets of `step` per node; a bucket is emitted when the first event
 * of a later bucket arrives (intervals close in packet time, so that is when it is complete).
 */
export function rollUp(step: number): (e: TrafficEvent) => TrafficEvent | undefined {
  const open = new Map<string, TrafficEvent>();
  return (e) => {
    if (step % e.step !== 0) return undefined; // an interval wider than the step cannot be split
    const bucket = Math.floor(e.point.ts / step) * step;
    const cur = open.get(e.node);
    if (cur && cur.point.ts === bucket) {
      cur.point.bytes += e.point.bytes;
      cur.point.packets += e.point.packets;
      cur.point.flows += e.point.flows;
      return undefined;
    }
    open.set(e.node, { node: e.node, step, point: { ...e.point, ts: bucket } });
    return cur;
  };
}

builder.subscriptionField('traffic', (t) =>
  t.field({
    type: TrafficUpdateRef,
    description: 'Traffic of each aggregation interval as it closes, or rolled up to `step` seconds (emitted when the next bucket begins).',
    args: { step: t.arg.int({ description: 'Bucket width in seconds, a multiple of the aggregation interval.' }) },
    subscribe: (_root, args, ctx) => {
      if (args.step != null && (args.step <= 0 || (args.step * 1_000_000) % ctx.intervalUs !== 0)) {
        throw userError(`step must be a positive multiple of the aggregation interval (${ctx.intervalUs / 1_000_000} s)`);
      }
      const map = args.step == null || args.step * 1_000_000 === ctx.intervalUs ? (e: TrafficEvent) => e : rollUp(args.step * 1_000_000);
      return busIterator(ctx.bus, 'traffic', {
        capacity: TRAFFIC_QUEUE,
        map,
        onDrop: () => ctx.dropped('traffic'),
        onClose: ctx.subscriptionOpened('traffic'),
      });
    },
    resolve: (e) => e,
  }),
);
