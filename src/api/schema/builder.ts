// The Pothos builder shared by the per-domain schema files, its scalars and the argument helpers
// every query uses (time range, limits).
//
// Scalars:
// - DateTime: ISO 8601 text with microseconds in UTC ("2024-05-01T12:00:00.123456Z"). Records keep
//   µs since the epoch; the text keeps all of it, which a JS Date (ms) would not. Input accepts any
//   ISO 8601 date-time with an offset and up to 9 fractional digits (truncated to µs).
// - Counter: packet and byte counters, serialized as a JSON number (a GraphQL Float with an
//   integer value). Exact up to 2^53 (9 PB of bytes), which no summed range here reaches, and
//   usable as a number by every client, unlike a BigInt-as-string.
// - File: a multipart upload (GraphQL multipart request spec), saved to disk by uploads.ts.
import SchemaBuilder, { type ArgBuilder } from '@pothos/core';
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import { isoMicros } from '../../store/time.js';
import { MAX_PAGE_SIZE, type TimeRange } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { DEFAULT_RANGE_US } from '../default-range.js';
import { UPLOAD_ID_PREFIX } from '../uploads.js';

export const builder = new SchemaBuilder<{
  Context: ApiContext;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: number; Output: number };
    Counter: { Input: number; Output: number };
    /** The id of a file the request uploaded (see uploads.ts). */
    File: { Input: string; Output: never };
  };
}>({ defaultFieldNullability: false });

/** A client mistake: shown to the client as is (not masked), with code BAD_USER_INPUT. */
export function userError(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

const ISO = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

export function parseDateTime(value: unknown): number {
  const m = typeof value === 'string' ? ISO.exec(value) : null;
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) throw userError(`DateTime must be ISO 8601 with an offset, e.g. 2024-05-01T12:00:00.123456Z; got ${JSON.stringify(value)}`);
  const micros = Number((m[2] ?? '').padEnd(6, '0').slice(0, 6));
  return ms * 1000 + micros;
}

builder.scalarType('DateTime', {
  description: 'ISO 8601 date-time in UTC with microseconds, e.g. 2024-05-01T12:00:00.123456Z.',
  serialize: (us) => isoMicros(us),
  parseValue: (v) => parseDateTime(v),
});

function parseCounter(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw userError(`Counter must be a non-negative integer up to 2^53-1; got ${JSON.stringify(v)}`);
  return v;
}

builder.scalarType('Counter', {
  description: 'A packet or byte count: a non-negative integer sent as a JSON number, exact up to 2^53-1.',
  serialize: (n) => n,
  parseValue: (v) => parseCounter(v),
  parseLiteral: (node: ValueNode) => {
    if (node.kind !== Kind.INT && node.kind !== Kind.FLOAT) throw userError('Counter must be a number');
    return parseCounter(Number(node.value));
  },
});

builder.scalarType('File', {
  description: 'A file upload (GraphQL multipart request spec).',
  serialize: () => {
    throw new Error('File is an input-only scalar');
  },
  // The server saves a multipart request's files to disk before the operation runs and puts
  // each file's id where the spec's map says (uploads.ts); the resolver finds the file by it.
  parseValue: (v) => {
    if (typeof v !== 'string' || !v.startsWith(UPLOAD_ID_PREFIX)) {
      throw userError('File must be a file part of a multipart request (GraphQL multipart request spec)');
    }
    return v;
  },
  parseLiteral: () => {
    throw userError('File must be a file part of a multipart request (GraphQL multipart request spec)');
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

export function rangeArgs(arg: ArgBuilder<Types>) {
  return {
    from: arg({
      type: 'DateTime',
      required: false,
      description: 'Inclusive start; default: `to` minus one hour, or with neither given the default range (see `dataRange`).',
    }),
    to: arg({ type: 'DateTime', required: false, description: 'Exclusive end; default: now, or with neither given the default range (see `dataRange`).' }),
  };
}

/**
 * The range of a query: the default range (src/api/default-range.ts: the data's own most recent
 * range, or the last hour before now) when it names neither end; otherwise `to` (default now) and
 * `from` (default an hour before `to`).
 */
export async function resolveRange(args: { from?: number | null; to?: number | null }, ctx: Pick<ApiContext, 'ranges'>): Promise<TimeRange> {
  if (args.from == null && args.to == null) {
    const { from, to } = await ctx.ranges.get();
    return { from, to };
  }
  const to = args.to ?? Date.now() * 1000;
  const from = args.from ?? to - DEFAULT_RANGE_US;
  if (from >= to) throw userError('from must be before to');
  return { from, to };
}

/** Page sizes and list limits share the store's maximum. */
export function checkCount(name: string, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw userError(`${name} must be an integer from 1 to ${MAX_PAGE_SIZE}; got ${n}`);
  return n;
}

/** '' in records means "not known": null in the API. */
export const orNull = (s: string): string | null => (s === '' ? null : s);

/**
 * Bucket width (µs) for a series: the requested step (seconds), which must be a multiple of the
 * aggregation interval, or by default the smallest such multiple giving at most `defaultPoints`.
 */
export function resolveStep(stepSec: number | null | undefined, range: TimeRange, intervalUs: number, maxPoints: number, defaultPoints: number): number {
  let step: number;
  if (stepSec == null) {
    step = Math.max(1, Math.ceil((range.to - range.from) / defaultPoints / intervalUs)) * intervalUs;
  } else {
    step = stepSec * 1_000_000;
    if (!Number.isSafeInteger(step) || step <= 0 || step % intervalUs !== 0) {
      throw userError(`step must be a positive multiple of the aggregation interval (${intervalUs / 1_000_000} s); got ${stepSec}`);
    }
  }
  const first = Math.floor(range.from / step) * step;
  if (Math.ceil((range.to - first) / step) > maxPoints) throw userError(`step too small: more than ${maxPoints} points in the range`);
  return step;
}
