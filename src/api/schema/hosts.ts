// Hosts: the `hosts` ranking (store.topHosts) and one `host(ip)` with its traffic series, which
// are derived from the host's flows (see ../host-activity.ts for why and what is missing).
import type { HostSummary, TimeRange } from '../../store/types.js';
import { FlowBudget, hostActivity } from '../host-activity.js';
import { builder, checkCount, rangeArgs, resolveRange, resolveStep } from './builder.js';

/** Points of one host's series at most (each is a store query). */
const MAX_HOST_POINTS = 200;
const DEFAULT_HOST_POINTS = 60;

type HostShape = HostSummary & { range: TimeRange };

interface HostPoint {
  ts: number;
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  flows: number;
}

const HostPointRef = builder.objectRef<HostPoint>('HostPoint').implement({
  description: "One bucket of a host's series, from the flow segments that started in it.",
  fields: (t) => ({
    ts: t.field({ type: 'DateTime', resolve: (p) => p.ts, description: 'Bucket start.' }),
    bytesSent: t.field({ type: 'Counter', resolve: (p) => p.bytesSent }),
    bytesReceived: t.field({ type: 'Counter', resolve: (p) => p.bytesReceived }),
    packetsSent: t.field({ type: 'Counter', resolve: (p) => p.packetsSent }),
    packetsReceived: t.field({ type: 'Counter', resolve: (p) => p.packetsReceived }),
    flows: t.exposeInt('flows', { description: 'Flows with traffic in the bucket.' }),
  }),
});

const HostRef = builder.objectRef<HostShape>('Host').implement({
  description: "A host's activity in the queried range.",
  fields: (t) => ({
    ip: t.exposeString('ip'),
    bytesSent: t.field({ type: 'Counter', resolve: (h) => h.bytesSent }),
    bytesReceived: t.field({ type: 'Counter', resolve: (h) => h.bytesReceived }),
    bytes: t.field({ type: 'Counter', resolve: (h) => h.bytesSent + h.bytesReceived }),
    packetsSent: t.field({ type: 'Counter', resolve: (h) => h.packetsSent }),
    packetsReceived: t.field({ type: 'Counter', resolve: (h) => h.packetsReceived }),
    flowsInitiated: t.exposeInt('flowsInitiated', { description: 'Flows started in the range with the host as client.' }),
    flowsReceived: t.exposeInt('flowsReceived', { description: 'Flows started in the range with the host as server.' }),
    flows: t.exposeInt('flows'),
    peers: t.exposeInt('peers', { description: 'Distinct other ends (in `hosts`: the largest count of one aggregation interval).' }),
    firstSeen: t.field({ type: 'DateTime', resolve: (h) => h.firstSeen }),
    lastSeen: t.field({ type: 'DateTime', resolve: (h) => h.lastSeen }),
    series: t.field({
      type: [HostPointRef],
      description: `Sent and received per bucket over the queried range; at most ${MAX_HOST_POINTS} points. Empty buckets are zeros.`,
      args: { step: t.arg.int({ description: 'Bucket width in seconds, a multiple of the aggregation interval; default: about 60 points.' }) },
      resolve: async (h, args, ctx) => {
        const step = resolveStep(args.step, h.range, ctx.intervalUs, MAX_HOST_POINTS, DEFAULT_HOST_POINTS);
        const budget = new FlowBudget();
        const points: HostPoint[] = [];
        for (let ts = Math.floor(h.range.from / step) * step; ts < h.range.to; ts += step) {
          const a = await hostActivity(ctx.store, h.ip, { from: ts, to: ts + step }, budget);
          points.push({ ts, bytesSent: a.bytesSent, bytesReceived: a.bytesReceived, packetsSent: a.packetsSent, packetsReceived: a.packetsReceived, flows: a.flows });
        }
        return points;
      },
    }),
  }),
});

const HostOrderEnum = builder.enumType('HostOrder', {
  values: { BYTES: { value: 'bytes' }, PACKETS: { value: 'packets' }, FLOWS: { value: 'flows' } } as const,
});

builder.queryField('hosts', (t) =>
  t.field({
    type: [HostRef],
    description: 'Top hosts in the range (default: the last hour), with sent/received split.',
    args: {
      ...rangeArgs(t.arg),
      orderBy: t.arg({ type: HostOrderEnum, defaultValue: 'bytes' }),
      limit: t.arg.int({ defaultValue: 20, description: 'At most 1000.' }),
      node: t.arg.string(),
    },
    resolve: async (_root, args, ctx) => {
      const range = resolveRange(args);
      const hosts = await ctx.store.topHosts({ ...range, orderBy: args.orderBy ?? 'bytes', limit: checkCount('limit', args.limit ?? 20), node: args.node ?? undefined });
      return hosts.map((h) => ({ ...h, range }));
    },
  }),
);

builder.queryField('host', (t) =>
  t.field({
    type: HostRef,
    nullable: true,
    description: 'One host in the range (default: the last hour), from its flows; null when it had none.',
    args: { ip: t.arg.string({ required: true }), ...rangeArgs(t.arg) },
    resolve: async (_root, args, ctx) => {
      const range = resolveRange(args);
      const a = await hostActivity(ctx.store, args.ip, range, new FlowBudget());
      return a.flows === 0 ? null : { ...a, range };
    },
  }),
);
