// `dataRange`: the range every query takes when it names none, and why (src/api/default-range.ts),
// with the whole span of the data, so that a client can say what it shows and offer all of it.
import type { DefaultRange } from '../default-range.js';
import { STORE_QUERY } from '../limits.js';
import { builder } from './builder.js';

const RangeBasisEnum = builder.enumType('RangeBasis', {
  values: {
    NOW: { value: 'now', description: 'The last hour before now: a live capture runs, the store is empty, or its newest data is less than an hour old.' },
    LATEST_DATA: {
      value: 'latest-data',
      description: 'The last hour of data held, or the whole span of the latest import or capture when that is shorter.',
    },
  } as const,
});

const DataRangeRef = builder.objectRef<DefaultRange>('DataRange').implement({
  description: 'The default range of every query (used when a query gives neither from nor to) and the span of the stored data.',
  fields: (t) => ({
    from: t.field({ type: 'DateTime', resolve: (r) => r.from, description: 'Inclusive start of the default range.' }),
    to: t.field({ type: 'DateTime', resolve: (r) => r.to, description: 'Exclusive end of the default range.' }),
    basis: t.field({ type: RangeBasisEnum, resolve: (r) => r.basis }),
    reason: t.exposeString('reason', { description: 'The default range in words, e.g. "the last hour of data held".' }),
    dataFrom: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (r) => r.data?.from ?? null,
      description: 'Start of the aggregation interval of the earliest stored row; null when the store is empty.',
    }),
    dataTo: t.field({
      type: 'DateTime',
      nullable: true,
      resolve: (r) => r.data?.to ?? null,
      description: 'End of the aggregation interval of the latest stored row; null when the store is empty.',
    }),
  }),
});

builder.queryField('dataRange', (t) =>
  t.field({
    type: DataRangeRef,
    description: 'The range queries take when given neither from nor to, and the whole span of the data.',
    extensions: STORE_QUERY,
    resolve: (_root, _args, ctx) => ctx.ranges.get(),
  }),
);
