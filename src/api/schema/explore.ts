// `explore`: top-N of the flows in a range by any dimension or pair of dimensions, in bytes,
// packets or flows, with each top item's series (src/store/explore.ts); the web client's Explore
// page and Overview's top applications read it. Filters are dimension = value (drill-down).
import {
  canExplore,
  EXPLORE_DIMENSIONS,
  EXPLORE_METRICS,
  type ExploreDimension,
  type ExploreItem,
  type ExploreMetric,
  type ExplorePoint,
  MAX_EXPLORE_ITEMS,
  MAX_EXPLORE_POINTS,
} from '../../store/explore.js';
import { STORE_QUERY } from '../limits.js';
import { builder, rangeArgs, resolveRange, resolveStep, userError } from './builder.js';

/** Points per series by default, fewer when many items share MAX_EXPLORE_POINTS. */
const DEFAULT_EXPLORE_POINTS = 60;

/** GraphQL enum names (SERVER_NAME) of the store's dimensions (serverName). */
const enumName = (d: string) => d.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();

const DIMENSION_DESCRIPTIONS: Record<ExploreDimension, string> = {
  host: 'Either end of a flow: a flow between A and B counts for A and for B.',
  peer: 'The other end of a flow from `host` (only paired with HOST).',
  client: 'The client address (the end that opened the flow).',
  server: 'The server address.',
  port: 'The server port (0 for ICMP and other transports without ports).',
  transport: 'tcp, udp, icmp, icmpv6, sctp or ip-N.',
  app: 'The application identified by DPI (empty when none).',
  serverName: 'The server name (TLS SNI, HTTP Host, DNS query), empty when none.',
  node: 'The capture worker node.',
  iface: 'The capture interface.',
  clientCountry: "The client's country (ISO 3166 alpha-2; empty when unknown or private).",
  serverCountry: "The server's country (ISO 3166 alpha-2; empty when unknown or private).",
  clientAsn: "The client's AS number (0 when unknown).",
  serverAsn: "The server's AS number (0 when unknown).",
  clientNetwork: "The client's network: a named network (--networks), else a special range such as private.",
  serverNetwork: "The server's network: a named network, else a special range.",
};

const ExploreDimensionEnum = builder.enumType('ExploreDimension', {
  values: Object.fromEntries(EXPLORE_DIMENSIONS.map((d) => [enumName(d), { value: d, description: DIMENSION_DESCRIPTIONS[d] }])) as Record<
    string,
    { value: ExploreDimension; description: string }
  >,
});

const ExploreMetricEnum = builder.enumType('ExploreMetric', {
  values: Object.fromEntries(EXPLORE_METRICS.map((m) => [m.toUpperCase(), { value: m }])) as Record<string, { value: ExploreMetric }>,
});

const ExploreFilterInput = builder.inputType('ExploreFilter', {
  description: 'Flows whose dimension equals the value (HOST and PEER: either end).',
  fields: (t) => ({
    dimension: t.field({ type: ExploreDimensionEnum, required: true }),
    value: t.string({ required: true, description: 'As the item showed it (a port as its number).' }),
  }),
});

const ExplorePointRef = builder.objectRef<ExplorePoint>('ExplorePoint').implement({
  fields: (t) => ({
    ts: t.field({ type: 'DateTime', resolve: (p) => p.ts, description: 'Bucket start.' }),
    bytes: t.field({ type: 'Counter', resolve: (p) => p.bytes }),
    packets: t.field({ type: 'Counter', resolve: (p) => p.packets }),
    flows: t.field({ type: 'Counter', resolve: (p) => p.flows, description: 'Flows that began in the bucket.' }),
  }),
});

const ExploreItemRef = builder.objectRef<ExploreItem>('ExploreItem').implement({
  fields: (t) => ({
    keys: t.stringList({ resolve: (i) => i.keys, description: 'One value per dimension, in the query’s order ("" when not known).' }),
    bytes: t.field({ type: 'Counter', resolve: (i) => i.bytes }),
    packets: t.field({ type: 'Counter', resolve: (i) => i.packets }),
    flows: t.field({ type: 'Counter', resolve: (i) => i.flows, description: 'Distinct flows with a segment in the range.' }),
    series: t.field({ type: [ExplorePointRef], resolve: (i) => i.series, description: 'Every bucket of the range; zeros where the item had none.' }),
  }),
});

interface ExploreResult {
  from: number;
  to: number;
  step: number;
  items: ExploreItem[];
}

const ExploreResultRef = builder.objectRef<ExploreResult>('ExploreResult').implement({
  fields: (t) => ({
    from: t.field({ type: 'DateTime', resolve: (r) => r.from, description: 'The range explored (the default range when none was given).' }),
    to: t.field({ type: 'DateTime', resolve: (r) => r.to }),
    step: t.int({ resolve: (r) => r.step / 1_000_000, description: 'Bucket width of the series in seconds.' }),
    items: t.field({ type: [ExploreItemRef], resolve: (r) => r.items, description: 'The top items, largest first (ties by key).' }),
  }),
});

builder.queryField('explore', (t) =>
  t.field({
    type: ExploreResultRef,
    description:
      'Top items of the flows in the range (default: see `dataRange`) by one dimension or a pair, measured in bytes, packets or flows, each with its series.',
    extensions: STORE_QUERY,
    args: {
      ...rangeArgs(t.arg),
      dimensions: t.arg({ type: [ExploreDimensionEnum], required: true, description: 'One dimension, or a pair.' }),
      metric: t.arg({ type: ExploreMetricEnum, defaultValue: 'bytes' }),
      limit: t.arg.int({ defaultValue: 10, description: `Top items, 1..${MAX_EXPLORE_ITEMS}.` }),
      filters: t.arg({ type: [ExploreFilterInput], description: 'All must hold.' }),
      step: t.arg.int({ description: 'Series bucket width in seconds, a multiple of the aggregation interval; default: about 60 points.' }),
    },
    resolve: async (_root, args, ctx) => {
      const store = ctx.store;
      if (!canExplore(store)) throw userError(`explore is not available on the ${store.backend} store yet`);
      const range = await resolveRange(args, ctx);
      const limit = args.limit ?? 10;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EXPLORE_ITEMS) throw userError(`limit must be 1..${MAX_EXPLORE_ITEMS}; got ${limit}`);
      const perItem = Math.floor(MAX_EXPLORE_POINTS / limit);
      const step = resolveStep(args.step, range, ctx.intervalUs, perItem, Math.min(DEFAULT_EXPLORE_POINTS, perItem));
      const items = await store.explore(
        {
          ...range,
          step,
          dimensions: args.dimensions,
          metric: args.metric ?? 'bytes',
          limit,
          filters: (args.filters ?? []).map((f) => ({ dimension: f.dimension, value: f.value })),
        },
        ctx,
      );
      return { ...range, step, items };
    },
  }),
);
