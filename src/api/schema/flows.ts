// Flows: the paginated `flows` query (Relay-style connection over store.queryFlows) and the
// `flowUpdates` subscription (bus topic 'flow', coalesced per flow).
import type { FlowEvent } from '../../bus/types.js';
import { checkFlowFilter, FlowFilterError, flowPredicate } from '../../records/flow-filter.js';
import type { FlowFilter, FlowSummary } from '../../store/types.js';
import { FlowCoalescer } from '../stream.js';
import { FLOW, flowBytes } from '../../records/index.js';
import { builder, checkCount, rangeArgs, resolveRange, userError } from './builder.js';
import { recordFields } from './record-fields.js';
import { STORE_QUERY } from '../limits.js';

/** A subscriber gets each flow at most this often (4 per second). */
const FLOW_UPDATE_TICK_MS = 250;
/** Distinct flows a subscriber may have waiting before new ones are dropped. */
const FLOW_UPDATE_MAX_PENDING = 10_000;

export const FlowRef = builder.objectRef<FlowSummary>('Flow').implement({
  description: 'A bidirectional flow; counts are its segments within the queried range summed (cumulative in subscriptions).',
  // The record's fields come from its definition (src/records/flow.ts); `bytes` is the API's own.
  fields: (t) => ({
    ...recordFields(t, FLOW, FLOW.summary),
    bytes: t.field({ type: 'Counter', resolve: flowBytes, description: 'Both directions.' }),
  }),
});

export const FlowFilterInput = builder.inputType('FlowFilter', {
  fields: (t) => ({
    host: t.string({ description: 'Either end of the flow: an address or a CIDR prefix (10.0.0.0/8, 2001:db8::/32).' }),
    port: t.int({ description: 'Either port.' }),
    transport: t.string(),
    app: t.string({ description: 'The application, in any case (dns finds DNS).' }),
    serverName: t.string({
      description: 'The server name in any case, or a glob: *.example.com (a suffix), *video* (a substring). "" finds flows without one.',
    }),
    minBytes: t.field({ type: 'Counter', description: 'Minimum bytes, both directions.' }),
    node: t.string(),
    communityId: t.string({ description: 'The Community ID (v1, seed 0, base64) that Zeek, Suricata or Arkime logged for the flow.' }),
    country: t.string({ description: "Either end's country (ISO 3166 alpha-2)." }),
    asn: t.field({ type: 'Counter', description: "Either end's AS number." }),
    network: t.string({ description: "Either end's network: a named network (--networks) or a special range such as private." }),
    risk: t.string({ description: "Flows with this risk among their risks (one of the names Flow.risks lists, e.g. 'Self-signed Cert')." }),
  }),
});

type FilterArg = { [K in keyof FlowFilter]?: FlowFilter[K] | null } | null | undefined;

/**
 * The API's filter for the store, checked by the one filter language (src/records/flow-filter.ts):
 * a value that can never match is an error saying why, not an empty answer (a host that is neither
 * an address nor a CIDR prefix, a port out of range, an unknown transport).
 */
export function toFlowFilter(f: FilterArg): FlowFilter {
  try {
    return checkFlowFilter(f);
  } catch (e) {
    if (e instanceof FlowFilterError) throw userError(e.message);
    throw e;
  }
}

/** The store's filter semantics, for flows that come from the bus rather than the store. */
export function matchesFlow(f: FlowSummary, q: FlowFilter): boolean {
  return flowPredicate(q)(f);
}

const FlowOrderEnum = builder.enumType('FlowOrder', {
  values: {
    TIME: { value: 'time', description: 'firstSeen ascending.' },
    BYTES: { value: 'bytes', description: 'Bytes (both directions, in the range) descending.' },
  } as const,
});

const PageInfo = builder.objectRef<{ hasNextPage: boolean; endCursor: string | null }>('PageInfo').implement({
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

const FlowEdge = builder.objectRef<{ node: FlowSummary; cursor: string }>('FlowEdge').implement({
  fields: (t) => ({
    node: t.field({ type: FlowRef, resolve: (e) => e.node }),
    cursor: t.exposeString('cursor'),
  }),
});

const FlowConnection = builder
  .objectRef<{ edges: { node: FlowSummary; cursor: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null }; totalCount: number }>(
    'FlowConnection',
  )
  .implement({
    fields: (t) => ({
      edges: t.field({ type: [FlowEdge], resolve: (c) => c.edges }),
      pageInfo: t.field({ type: PageInfo, resolve: (c) => c.pageInfo }),
      totalCount: t.exposeInt('totalCount', { description: 'Flows matching the filter in the range.' }),
    }),
  });

builder.queryField('flows', (t) =>
  t.field({
    type: FlowConnection,
    description: 'Flows with traffic in the range (default: see `dataRange`), a page at a time.',
    extensions: STORE_QUERY,
    args: {
      ...rangeArgs(t.arg),
      filter: t.arg({ type: FlowFilterInput }),
      first: t.arg.int({ defaultValue: 100, description: 'Page size, at most 1000.' }),
      after: t.arg.string({ description: 'endCursor of the previous page.' }),
      orderBy: t.arg({ type: FlowOrderEnum, defaultValue: 'time' }),
    },
    resolve: async (_root, args, ctx) =>
      ctx.store.queryFlows(
        {
          ...(await resolveRange(args, ctx)),
          filter: toFlowFilter(args.filter),
          first: checkCount('first', args.first ?? 100),
          after: args.after ?? undefined,
          orderBy: args.orderBy ?? 'time',
        },
        ctx,
      ),
  }),
);

const FlowEventTypeEnum = builder.enumType('FlowEventType', {
  values: { START: { value: 'start' }, UPDATE: { value: 'update' }, END: { value: 'end' } } as const,
});

const FlowUpdate = builder.objectRef<FlowEvent>('FlowUpdate').implement({
  fields: (t) => ({
    type: t.field({ type: FlowEventTypeEnum, resolve: (e) => e.type }),
    flow: t.field({ type: FlowRef, resolve: (e) => e.flow, description: 'The flow as of now, counts cumulative since it started.' }),
  }),
});

builder.subscriptionField('flowUpdates', (t) =>
  t.field({
    type: FlowUpdate,
    description: 'Flows as they start, progress and end; each flow at most 4 times a second with its latest state.',
    args: { filter: t.arg({ type: FlowFilterInput }) },
    subscribe: (_root, args, ctx) => {
      const filter = toFlowFilter(args.filter);
      const closed = ctx.subscriptionOpened('flowUpdates');
      let unsubscribe = () => {};
      const coalescer = new FlowCoalescer({
        tickMs: FLOW_UPDATE_TICK_MS,
        maxPending: FLOW_UPDATE_MAX_PENDING,
        onDrop: () => ctx.dropped('flow'),
        onClose: () => {
          unsubscribe();
          closed();
        },
      });
      const matches = flowPredicate(filter);
      unsubscribe = ctx.bus.subscribe('flow', (e) => {
        if (matches(e.flow)) coalescer.add(e);
      });
      return coalescer.output;
    },
    resolve: (e) => e,
  }),
);
