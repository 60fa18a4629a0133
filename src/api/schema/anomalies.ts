// Anomalies: the `anomalies` query (store.queryAnomalies) and subscription (bus topic 'anomaly').
import type { AnomalyEvent } from '../../bus/types.js';
import type { AnomalyRecord } from '../../store/types.js';
import { busIterator } from '../stream.js';
import { ANOMALY, ANOMALY_KINDS } from '../../records/index.js';
import { builder, checkCount, rangeArgs, resolveRange } from './builder.js';
import { recordFields } from './record-fields.js';
import { STORE_QUERY } from '../limits.js';

const ANOMALY_QUEUE = 1_000;

const AnomalyKindEnum = builder.enumType('AnomalyKind', {
  values: ANOMALY_KINDS,
});

const SeverityEnum = builder.enumType('Severity', {
  values: { LOW: { value: 'low' }, MEDIUM: { value: 'medium' }, HIGH: { value: 'high' }, CRITICAL: { value: 'critical' } } as const,
});

const AnomalyStateEnum = builder.enumType('AnomalyState', {
  values: { ACTIVE: { value: 'active' }, ENDED: { value: 'ended' } } as const,
});

export const AnomalyRef = builder.objectRef<AnomalyRecord>('Anomaly').implement({
  description: 'An anomaly as of its latest update.',
  // From the record's definition (src/records/anomaly.ts); its enums by name.
  fields: (t) => recordFields(t, ANOMALY, ANOMALY.list, { AnomalyKind: AnomalyKindEnum, Severity: SeverityEnum, AnomalyState: AnomalyStateEnum }),
});

builder.queryField('anomalies', (t) =>
  t.field({
    type: [AnomalyRef],
    description: 'Anomalies active at any time in the range (default: see `dataRange`), newest first.',
    extensions: STORE_QUERY,
    args: {
      ...rangeArgs(t.arg),
      kind: t.arg({ type: AnomalyKindEnum }),
      host: t.arg.string({ description: 'Source or target.' }),
      limit: t.arg.int({ defaultValue: 100, description: 'At most 1000.' }),
    },
    resolve: async (_root, args, ctx) =>
      ctx.store.queryAnomalies(
        {
          ...(await resolveRange(args, ctx)),
          kind: args.kind ?? undefined,
          host: args.host ?? undefined,
          limit: checkCount('limit', args.limit ?? 100),
        },
        ctx,
      ),
  }),
);

const AnomalyEventTypeEnum = builder.enumType('AnomalyEventType', {
  values: { START: { value: 'start' }, UPDATE: { value: 'update' }, END: { value: 'end' } } as const,
});

const AnomalyUpdateRef = builder.objectRef<AnomalyEvent>('AnomalyUpdate').implement({
  fields: (t) => ({
    type: t.field({ type: AnomalyEventTypeEnum, resolve: (e) => e.type }),
    anomaly: t.field({ type: AnomalyRef, resolve: (e) => e.anomaly }),
  }),
});

builder.subscriptionField('anomalies', (t) =>
  t.field({
    type: AnomalyUpdateRef,
    description: 'Anomalies as they start, change and end.',
    args: { kind: t.arg({ type: AnomalyKindEnum }) },
    subscribe: (_root, args, ctx) =>
      busIterator(ctx.bus, 'anomaly', {
        capacity: ANOMALY_QUEUE,
        map: (e) => (args.kind == null || e.anomaly.kind === args.kind ? e : undefined),
        onDrop: () => ctx.dropped('anomaly'),
        onClose: ctx.subscriptionOpened('anomalies'),
      }),
    resolve: (e) => e,
  }),
);
