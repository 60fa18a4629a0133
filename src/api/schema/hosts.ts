// Hosts: the `hosts` ranking (store.topHosts) and one `host(ip)` (store.hostSummary) with its
// series (store.hostSeries, one query for all buckets), its peers and its service ports (from
// its flows: store.hostPeers, store.hostPorts).
import type { HostPeer, HostPoint, HostPort, HostSummary, TimeRange } from '../../store/types.js';
import { builder, checkCount, rangeArgs, resolveRange, resolveStep } from './builder.js';
import { STORE_QUERY } from '../limits.js';

/** Points of one host's series at most (see also Host.series in ../limits.ts). */
const MAX_HOST_POINTS = 200;
const DEFAULT_HOST_POINTS = 60;
const DEFAULT_HOST_LIST = 10;

/** A host as the API resolves it: its summary and the range (and node) it was asked for. */
type HostShape = HostSummary & { range: TimeRange; node?: string };

const HostPointRef = builder.objectRef<HostPoint>('HostPoint').implement({
  description: "One bucket of a host's series: its per-interval host records in the bucket summed.",
  fields: (t) => ({
    ts: t.field({ type: 'DateTime', resolve: (p) => p.ts, description: 'Bucket start.' }),
    bytesSent: t.field({ type: 'Counter', resolve: (p) => p.bytesSent }),
    bytesReceived: t.field({ type: 'Counter', resolve: (p) => p.bytesReceived }),
    packetsSent: t.field({ type: 'Counter', resolve: (p) => p.packetsSent }),
    packetsReceived: t.field({ type: 'Counter', resolve: (p) => p.packetsReceived }),
    flowsInitiated: t.exposeInt('flowsInitiated', { description: 'Flows started in the bucket with the host as client.' }),
    flowsReceived: t.exposeInt('flowsReceived', { description: 'Flows started in the bucket with the host as server.' }),
    flows: t.int({ resolve: (p) => p.flowsInitiated + p.flowsReceived, description: 'Flows started in the bucket (initiated + received).' }),
    peers: t.exposeInt('peers', { description: 'Distinct other ends: the largest count of one aggregation interval in the bucket.' }),
  }),
});

const HostPeerRef = builder.objectRef<HostPeer>('HostPeer').implement({
  description: "The other end of a host's flows, their traffic in the range summed (both directions).",
  fields: (t) => ({
    ip: t.exposeString('ip'),
    bytes: t.field({ type: 'Counter', resolve: (p) => p.bytes }),
    packets: t.field({ type: 'Counter', resolve: (p) => p.packets }),
    flows: t.exposeInt('flows', { description: 'Flows between the two with traffic in the range.' }),
  }),
});

const HostPortRef = builder.objectRef<HostPort>('HostPort').implement({
  description: "A service (server) port of a host's flows, whether the host was the client or the server, their traffic in the range summed.",
  fields: (t) => ({
    transport: t.exposeString('transport', { description: 'tcp, udp, icmp, icmpv6, sctp or ip-<protocol number>.' }),
    port: t.exposeInt('port', { description: 'The server port (0 for transports without ports).' }),
    bytes: t.field({ type: 'Counter', resolve: (p) => p.bytes }),
    packets: t.field({ type: 'Counter', resolve: (p) => p.packets }),
    flows: t.exposeInt('flows', { description: 'Flows on the port with traffic in the range.' }),
  }),
});

/** The store query of a host list field: the host's range and node, and the checked limit. */
const hostListQuery = (h: HostShape, limit: number | null | undefined) => ({
  ...h.range,
  ip: h.ip,
  node: h.node,
  limit: checkCount('limit', limit ?? DEFAULT_HOST_LIST),
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
    peers: t.exposeInt('peers', { description: 'Distinct other ends: the largest count of one aggregation interval in the range.' }),
    firstSeen: t.field({ type: 'DateTime', resolve: (h) => h.firstSeen, description: 'Start of the first aggregation interval with activity in the range.' }),
    lastSeen: t.field({ type: 'DateTime', resolve: (h) => h.lastSeen, description: 'Start of the last aggregation interval with activity in the range.' }),
    // As stored in the host's latest record in the range (what capture's enrichment found); for
    // records written without enrichment, looked up when asked (cached per address) with the
    // databases the server was started with.
    country: t.string({
      nullable: true,
      description: 'Country (ISO 3166 alpha-2) from the geo database; null when unknown, private or special, or enrichment is off.',
      resolve: (h, _a, ctx) => h.country || ctx.enrich?.lookup(h.ip).country || null,
    }),
    asn: t.field({
      type: 'Counter',
      nullable: true,
      description: 'AS number (needs --asn-db); null when unknown.',
      resolve: (h, _a, ctx) => h.asn || ctx.enrich?.lookup(h.ip).asn || null,
    }),
    asOrg: t.string({
      nullable: true,
      description: 'AS organisation (needs --asn-db); null when unknown.',
      resolve: (h, _a, ctx) => h.asOrg || ctx.enrich?.lookup(h.ip).asOrg || null,
    }),
    network: t.string({
      nullable: true,
      description: 'Named network (--networks), else special range (private, loopback...); null for a public address in none.',
      resolve: (h, _a, ctx) => h.network || ctx.enrich?.lookup(h.ip).network || null,
    }),
    networkRole: t.string({
      nullable: true,
      description: "The named network's role (inside, dmz, guest...); null when none.",
      resolve: (h, _a, ctx) => ctx.enrich?.lookup(h.ip).role || null,
    }),
    series: t.field({
      type: [HostPointRef],
      description: `Sent and received per bucket over the queried range; at most ${MAX_HOST_POINTS} points. Empty buckets are zeros.`,
      args: { step: t.arg.int({ description: 'Bucket width in seconds, a multiple of the aggregation interval; default: about 60 points.' }) },
      extensions: STORE_QUERY,
      resolve: (h, args, ctx) => {
        const step = resolveStep(args.step, h.range, ctx.intervalUs, MAX_HOST_POINTS, DEFAULT_HOST_POINTS);
        return ctx.store.hostSeries({ ...h.range, ip: h.ip, node: h.node, step }, ctx);
      },
    }),
    // Not `peers`: that name is the distinct-peer count above.
    topPeers: t.field({
      type: [HostPeerRef],
      description: "The other ends of the host's flows with traffic in the range, by bytes (both directions) descending.",
      args: { limit: t.arg.int({ defaultValue: DEFAULT_HOST_LIST, description: 'At most 1000.' }) },
      extensions: STORE_QUERY,
      resolve: (h, args, ctx) => ctx.store.hostPeers(hostListQuery(h, args.limit), ctx),
    }),
    ports: t.field({
      type: [HostPortRef],
      description: "The service ports of the host's flows with traffic in the range (as client or server), by bytes descending.",
      args: { limit: t.arg.int({ defaultValue: DEFAULT_HOST_LIST, description: 'At most 1000.' }) },
      extensions: STORE_QUERY,
      resolve: (h, args, ctx) => ctx.store.hostPorts(hostListQuery(h, args.limit), ctx),
    }),
  }),
});

const HostOrderEnum = builder.enumType('HostOrder', {
  values: { BYTES: { value: 'bytes' }, PACKETS: { value: 'packets' }, FLOWS: { value: 'flows' } } as const,
});

builder.queryField('hosts', (t) =>
  t.field({
    type: [HostRef],
    description: 'Top hosts in the range (default: see `dataRange`), with sent/received split.',
    extensions: STORE_QUERY,
    args: {
      ...rangeArgs(t.arg),
      orderBy: t.arg({ type: HostOrderEnum, defaultValue: 'bytes' }),
      limit: t.arg.int({ defaultValue: 20, description: 'At most 1000.' }),
      node: t.arg.string(),
      country: t.arg.string({ description: 'Only hosts whose records carry this country (ISO 3166 alpha-2), as enrichment found it when they were written.' }),
      asn: t.arg({ type: 'Counter', description: 'Only hosts whose records carry this AS number.' }),
      network: t.arg.string({ description: 'Only hosts whose records carry this network (a named network, or a special range such as private).' }),
    },
    resolve: async (_root, args, ctx) => {
      const range = await resolveRange(args, ctx);
      const node = args.node ?? undefined;
      const hosts = await ctx.store.topHosts(
        {
          ...range,
          orderBy: args.orderBy ?? 'bytes',
          limit: checkCount('limit', args.limit ?? 20),
          node,
          country: args.country ?? undefined,
          asn: args.asn ?? undefined,
          network: args.network ?? undefined,
        },
        ctx,
      );
      return hosts.map((h) => ({ ...h, range, node }));
    },
  }),
);

builder.queryField('host', (t) =>
  t.field({
    type: HostRef,
    nullable: true,
    description: 'One host in the range (default: see `dataRange`), from its per-interval host records; null when it has none.',
    extensions: STORE_QUERY,
    args: { ip: t.arg.string({ required: true }), ...rangeArgs(t.arg), node: t.arg.string({ description: 'Only what this node saw; default: all nodes.' }) },
    resolve: async (_root, args, ctx) => {
      const range = await resolveRange(args, ctx);
      const node = args.node ?? undefined;
      const host = await ctx.store.hostSummary({ ...range, ip: args.ip, node }, ctx);
      return host && { ...host, range, node };
    },
  }),
);
