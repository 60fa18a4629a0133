// The read arguments' checks (src/store/query-check.ts), once, and that both back ends run them
// before anything else: an uninitialised QuestDB store (no server needed) refuses the same queries
// with the same words as a DuckDB one.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeCursor } from '../src/store/cursor.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import {
  MAX_SERIES_POINTS,
  checkAnomalyQuery,
  checkFlowQuery,
  checkHostIpQuery,
  checkHostQuery,
  checkHostTopQuery,
  checkSeriesQuery,
} from '../src/store/query-check.js';
import { QuestDbStore } from '../src/store/questdb.js';
import { MAX_PAGE_SIZE, StoreQueryError, type FlowStore } from '../src/store/types.js';
import { tempDir } from './store-backends.js';

const SECOND = 1_000_000;
const MINUTE = 60 * SECOND;
const BASE = Date.UTC(2024, 4, 1) * 1000;
const RANGE = { from: BASE, to: BASE + 3600 * SECOND };

const timeCursor = encodeCursor({ order: 'time', value: BASE, flowId: '0123456789abcdef' });
const bytesCursor = encodeCursor({ order: 'bytes', value: 1000, flowId: '0123456789abcdef' });

/** Asserts that `f` throws a StoreQueryError whose message matches `message`. */
function refuses(f: () => unknown, message: RegExp, label: string): void {
  assert.throws(f, (err: unknown) => err instanceof StoreQueryError && message.test(err.message), label);
}

const BAD_RANGES: [string, { from: number; to: number }][] = [
  ['from 1.5', { from: 1.5, to: RANGE.to }],
  ['to NaN', { from: RANGE.from, to: Number.NaN }],
  ['to Infinity', { from: RANGE.from, to: Number.POSITIVE_INFINITY }],
  ['from beyond 2^53', { from: 2 ** 53, to: 2 ** 53 + 2 }],
  ['to a string', { from: RANGE.from, to: String(RANGE.to) as unknown as number }],
];
const RANGE_MESSAGE = /^from and to must be integers \(µs since the epoch\)$/;
const BAD_COUNTS = [0, -1, 1.5, MAX_PAGE_SIZE + 1, Number.NaN, '10' as unknown as number];

describe('query-check', () => {
  it('flow pages: range, first, order and a cursor of that order', () => {
    assert.deepEqual(checkFlowQuery({ ...RANGE, first: 1 }), { order: 'time', cursor: undefined });
    assert.deepEqual(checkFlowQuery({ ...RANGE, first: MAX_PAGE_SIZE, orderBy: 'bytes', after: bytesCursor }), {
      order: 'bytes',
      cursor: { order: 'bytes', value: 1000, flowId: '0123456789abcdef' },
    });
    for (const [label, range] of BAD_RANGES) refuses(() => checkFlowQuery({ ...range, first: 10 }), RANGE_MESSAGE, label);
    for (const first of BAD_COUNTS) refuses(() => checkFlowQuery({ ...RANGE, first }), /^first must be an integer from 1 to 1000$/, `first ${first}`);
    for (const orderBy of ['size', 'constructor', '__proto__', ''])
      refuses(() => checkFlowQuery({ ...RANGE, first: 10, orderBy: orderBy as 'time' }), /^unknown flow order /, orderBy);
    refuses(() => checkFlowQuery({ ...RANGE, first: 10, after: bytesCursor }), /^cursor was made for order bytes, not time$/, 'bytes cursor, time order');
    refuses(() => checkFlowQuery({ ...RANGE, first: 10, orderBy: 'bytes', after: timeCursor }), /^cursor was made for order time, not bytes$/, 'time cursor');
    refuses(() => checkFlowQuery({ ...RANGE, first: 10, after: 'not a cursor' }), /^invalid cursor$/, 'garbage cursor');
  });

  it('top hosts: range, limit and order', () => {
    assert.equal(checkHostQuery({ ...RANGE, limit: 1 }), 'bytes');
    assert.equal(checkHostQuery({ ...RANGE, limit: MAX_PAGE_SIZE, orderBy: 'flows' }), 'flows');
    for (const [label, range] of BAD_RANGES) refuses(() => checkHostQuery({ ...range, limit: 10 }), RANGE_MESSAGE, label);
    for (const limit of BAD_COUNTS) refuses(() => checkHostQuery({ ...RANGE, limit }), /^limit must be an integer from 1 to 1000$/, `limit ${limit}`);
    for (const orderBy of ['time', 'constructor', 'toString'])
      refuses(() => checkHostQuery({ ...RANGE, limit: 10, orderBy: orderBy as 'bytes' }), /^unknown host order /, orderBy);
  });

  it("one host's summary, peers and ports: range, ip and limit", () => {
    checkHostIpQuery({ ...RANGE, ip: '10.0.0.1' });
    checkHostTopQuery({ ...RANGE, ip: '10.0.0.1', limit: MAX_PAGE_SIZE });
    for (const [label, range] of BAD_RANGES) {
      refuses(() => checkHostIpQuery({ ...range, ip: '10.0.0.1' }), RANGE_MESSAGE, label);
      refuses(() => checkHostTopQuery({ ...range, ip: '10.0.0.1', limit: 10 }), RANGE_MESSAGE, label);
    }
    refuses(() => checkHostIpQuery({ ...RANGE, ip: 7 as unknown as string }), /^ip must be a string$/, 'ip a number');
    for (const limit of BAD_COUNTS)
      refuses(() => checkHostTopQuery({ ...RANGE, ip: '10.0.0.1', limit }), /^limit must be an integer from 1 to 1000$/, `limit ${limit}`);
  });

  it('series: range, step, and the buckets it makes', () => {
    assert.deepEqual(checkSeriesQuery({ ...RANGE, step: MINUTE }), { first: BASE, buckets: 60 });
    // Buckets are aligned to the epoch: the first starts at or before `from`.
    assert.deepEqual(checkSeriesQuery({ from: BASE + 30 * SECOND, to: BASE + 2 * MINUTE, step: MINUTE }), { first: BASE, buckets: 2 });
    assert.deepEqual(checkSeriesQuery({ from: BASE, to: BASE + 61 * SECOND, step: MINUTE }), { first: BASE, buckets: 2 });
    for (const [label, range] of BAD_RANGES) refuses(() => checkSeriesQuery({ ...range, step: MINUTE }), RANGE_MESSAGE, label);
    for (const step of [0, -MINUTE, 1.5, Number.NaN, 2 ** 53])
      refuses(() => checkSeriesQuery({ ...RANGE, step }), /^step must be a positive integer \(µs\)$/, `step ${step}`);
    // Just as many buckets as allowed, then one more.
    assert.equal(checkSeriesQuery({ from: 0, to: MAX_SERIES_POINTS * SECOND, step: SECOND }).buckets, MAX_SERIES_POINTS);
    refuses(
      () => checkSeriesQuery({ from: 0, to: MAX_SERIES_POINTS * SECOND + 1, step: SECOND }),
      /^step too small: more than 100000 points in the range$/,
      'one bucket too many',
    );
  });

  it('anomalies: range and limit', () => {
    checkAnomalyQuery({ ...RANGE, limit: MAX_PAGE_SIZE });
    for (const [label, range] of BAD_RANGES) refuses(() => checkAnomalyQuery({ ...range, limit: 10 }), RANGE_MESSAGE, label);
    for (const limit of BAD_COUNTS) refuses(() => checkAnomalyQuery({ ...RANGE, limit }), /^limit must be an integer from 1 to 1000$/, `limit ${limit}`);
  });

  it('an empty or inverted range is not an error: it holds nothing', () => {
    for (const range of [
      { from: BASE, to: BASE },
      { from: RANGE.to, to: RANGE.from },
    ]) {
      checkFlowQuery({ ...range, first: 10 });
      checkHostQuery({ ...range, limit: 10 });
      checkAnomalyQuery({ ...range, limit: 10 });
      assert.equal(checkSeriesQuery({ ...range, step: MINUTE }).buckets, 0);
    }
  });
});

describe('both back ends check their reads with query-check', () => {
  let duckdb: DuckDbStore;
  // Never initialised: every read below is refused before it would need a server.
  const questdb = new QuestDbStore({ ilp: 'http://127.0.0.1:1', pg: 'postgres://127.0.0.1:1/qdb', retentionDays: 0, spoolDir: '/nonexistent' });

  before(async () => {
    duckdb = new DuckDbStore({ path: join(tempDir('flowlens-query-check-'), 'q.duckdb') });
    await duckdb.init();
  });
  after(() => duckdb.close());

  /** Each bad read, and the message query-check gives it. */
  const bad: [string, (s: FlowStore) => Promise<unknown>, RegExp][] = [
    ['flows: from 1.5', (s) => s.queryFlows({ from: 1.5, to: RANGE.to, first: 10 }), RANGE_MESSAGE],
    ['flows: first 1001', (s) => s.queryFlows({ ...RANGE, first: 1001 }), /^first must be an integer from 1 to 1000$/],
    ['flows: unknown order', (s) => s.queryFlows({ ...RANGE, first: 10, orderBy: 'size' as 'time' }), /^unknown flow order size$/],
    ['flows: cursor of the other order', (s) => s.queryFlows({ ...RANGE, first: 10, after: bytesCursor }), /^cursor was made for order bytes, not time$/],
    ['hosts: limit 0', (s) => s.topHosts({ ...RANGE, limit: 0 }), /^limit must be an integer from 1 to 1000$/],
    ['hosts: limit 1001', (s) => s.topHosts({ ...RANGE, limit: 1001 }), /^limit must be an integer from 1 to 1000$/],
    ['hosts: unknown order', (s) => s.topHosts({ ...RANGE, limit: 10, orderBy: 'constructor' as 'bytes' }), /^unknown host order constructor$/],
    ['traffic: step 1.5', (s) => s.trafficSeries({ ...RANGE, step: 1.5 }), /^step must be a positive integer \(µs\)$/],
    ['traffic: step too small', (s) => s.trafficSeries({ ...RANGE, step: 1000 }), /^step too small: /],
    ['host series: step 0', (s) => s.hostSeries({ ...RANGE, ip: '10.0.0.1', step: 0 }), /^step must be a positive integer \(µs\)$/],
    ['host summary: to NaN', (s) => s.hostSummary({ from: BASE, to: Number.NaN, ip: '10.0.0.1' }), RANGE_MESSAGE],
    ['host peers: limit 2.5', (s) => s.hostPeers({ ...RANGE, ip: '10.0.0.1', limit: 2.5 }), /^limit must be an integer from 1 to 1000$/],
    ['host ports: limit 1001', (s) => s.hostPorts({ ...RANGE, ip: '10.0.0.1', limit: 1001 }), /^limit must be an integer from 1 to 1000$/],
    ['anomalies: limit 1001', (s) => s.queryAnomalies({ ...RANGE, limit: 1001 }), /^limit must be an integer from 1 to 1000$/],
  ];

  for (const [backend, store] of [
    ['duckdb', () => duckdb],
    ['questdb', () => questdb],
  ] as const) {
    it(`${backend} refuses each bad read with query-check's words`, async () => {
      for (const [label, read, message] of bad) {
        await assert.rejects(read(store()), (err: unknown) => err instanceof StoreQueryError && message.test(err.message), label);
      }
    });
  }

  it('duckdb answers the good reads next to them (empty: nothing written)', async () => {
    assert.equal((await duckdb.queryFlows({ ...RANGE, first: MAX_PAGE_SIZE, orderBy: 'bytes' })).totalCount, 0);
    assert.deepEqual(await duckdb.topHosts({ ...RANGE, limit: MAX_PAGE_SIZE, orderBy: 'packets' }), []);
    assert.equal((await duckdb.trafficSeries({ ...RANGE, step: MINUTE })).length, 60);
    assert.deepEqual(await duckdb.trafficSeries({ from: BASE, to: BASE, step: MINUTE }), []);
    assert.deepEqual(await duckdb.queryAnomalies({ ...RANGE, limit: MAX_PAGE_SIZE }), []);
  });
});
