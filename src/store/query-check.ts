// The read arguments every back end takes, checked once here (and worded once): each back end calls
// the check of a query first thing in its read, before any SQL is built. What a check lets through
// is safe to put into SQL text where a back end must (QuestDB's LIMIT and SAMPLE BY take literals):
// integers in range and names from closed lists.
//
// A range with from >= to is not an error: it holds nothing, so reads of it are empty.
import { RISK_NAMES } from '../dpi/risks.js';
import { decodeCursor, type CursorKey } from './cursor.js';
import {
  MAX_PAGE_SIZE,
  StoreQueryError,
  type AnomalyQuery,
  type FlowOrder,
  type FlowQuery,
  type HostIpQuery,
  type HostOrder,
  type HostQuery,
  type HostTopQuery,
  type TimeRange,
  type TrafficQuery,
} from './types.js';

/**
 * Most buckets one series read lays out: every bucket is present, empty ones too, and both back ends
 * make them all at once (DuckDB's generate_series is eager; QuestDB's grid is built in memory).
 */
export const MAX_SERIES_POINTS = 100_000;

export const FLOW_ORDERS: readonly FlowOrder[] = ['time', 'bytes'];
export const HOST_ORDERS: readonly HostOrder[] = ['bytes', 'packets', 'flows'];

/** from and to: integers (µs since the epoch) that a JS number holds exactly. */
export function checkRange(range: TimeRange): void {
  if (!Number.isSafeInteger(range.from) || !Number.isSafeInteger(range.to)) {
    throw new StoreQueryError('from and to must be integers (µs since the epoch)');
  }
}

/** A page size or limit: an integer from 1 to MAX_PAGE_SIZE. */
function checkCount(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw new StoreQueryError(`${name} must be an integer from 1 to ${MAX_PAGE_SIZE}`);
}

/** Order names reach SQL text (through the back ends' tables of orders), so only the closed list's pass. */
function checkOrder<T extends string>(order: T, orders: readonly T[], what: string): T {
  if (!orders.includes(order)) throw new StoreQueryError(`unknown ${what} order ${String(order)}`);
  return order;
}

/** A flow page: its order (default 'time') and the decoded cursor, which must be of that order. */
export function checkFlowQuery(q: FlowQuery): { order: FlowOrder; cursor: CursorKey | undefined } {
  checkRange(q);
  checkCount(q.first, 'first');
  const order = checkOrder(q.orderBy ?? 'time', FLOW_ORDERS, 'flow');
  // Risk names reach a LIKE pattern on QuestDB: only the closed list's pass (none holds % or _,
  // and none is part of another).
  const risk = q.filter?.risk;
  if (risk !== undefined && !(RISK_NAMES as readonly string[]).includes(risk)) {
    throw new StoreQueryError(`unknown risk ${JSON.stringify(risk)}; one of: ${RISK_NAMES.join(', ')}`);
  }
  return { order, cursor: q.after === undefined ? undefined : decodeCursor(q.after, order) };
}

/** Top hosts: its order (default 'bytes'). */
export function checkHostQuery(q: HostQuery): HostOrder {
  checkRange(q);
  checkCount(q.limit, 'limit');
  if (q.country !== undefined && typeof q.country !== 'string') throw new StoreQueryError('country must be a string');
  if (q.network !== undefined && typeof q.network !== 'string') throw new StoreQueryError('network must be a string');
  if (q.asn !== undefined && !(Number.isInteger(q.asn) && q.asn >= 0 && q.asn <= 0xffffffff))
    throw new StoreQueryError('asn must be an AS number (0 to 4294967295)');
  return checkOrder(q.orderBy ?? 'bytes', HOST_ORDERS, 'host');
}

/** One host's summary. */
export function checkHostIpQuery(q: HostIpQuery): void {
  checkRange(q);
  if (typeof q.ip !== 'string') throw new StoreQueryError('ip must be a string');
}

/** One host's peers or ports. */
export function checkHostTopQuery(q: HostTopQuery): void {
  checkHostIpQuery(q);
  checkCount(q.limit, 'limit');
}

/**
 * A series (traffic, or one host's with its ip checked by checkHostIpQuery too): the buckets of
 * `step` µs over [from, to), aligned to the epoch, so the first starts at `first`, at or before
 * `from`; `buckets` is their number (0 for an empty range). Whether the step is a multiple of the
 * aggregation interval is the API's to check (src/api/schema/builder.ts): the store does not know it.
 */
export function checkSeriesQuery(q: TrafficQuery): { first: number; buckets: number } {
  checkRange(q);
  if (!Number.isSafeInteger(q.step) || q.step <= 0) throw new StoreQueryError('step must be a positive integer (µs)');
  const first = Math.floor(q.from / q.step) * q.step;
  const buckets = q.to <= first ? 0 : Math.ceil((q.to - first) / q.step);
  if (buckets > MAX_SERIES_POINTS) throw new StoreQueryError(`step too small: more than ${MAX_SERIES_POINTS} points in the range`);
  return { first, buckets };
}

export function checkAnomalyQuery(q: AnomalyQuery): void {
  checkRange(q);
  checkCount(q.limit, 'limit');
}
