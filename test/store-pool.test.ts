// The DuckDB store's bounded read pool, cancellation and flow result cache, on real DuckDB files.
// A heavy read is made of many flow segments (2 million, each its own flow, inserted by DuckDB
// itself in a second or so) so that summing and sorting them takes seconds.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDbStore } from '../src/store/duckdb.js';
import { emptyRecord, FLOW } from '../src/records/index.js';
import { StoreBusyError, StoreQueryCancelled, type FlowQuery, type FlowRecord } from '../src/store/types.js';
import { tempDir } from './store-backends.js';

const SECOND = 1_000_000;
const BASE = Date.UTC(2024, 4, 1) * 1000;
const HEAVY_SEGMENTS = 2_000_000;
/** All the heavy file's segments, summed and sorted: seconds of work. */
const HEAVY: FlowQuery = { from: BASE, to: BASE + 86_400 * SECOND, first: 100, orderBy: 'bytes' };

/** A DuckDB file with the store's schema and HEAVY_SEGMENTS flow segments, each its own flow. */
async function heavyFile(): Promise<string> {
  const path = join(tempDir('flowlens-pool-'), 'heavy.duckdb');
  const store = new DuckDbStore({ path });
  await store.init();
  await store.close();
  const instance = await DuckDBInstance.create(path);
  const conn = await instance.connect();
  await conn.run(`
    INSERT INTO flows BY NAME
    SELECT make_timestamp(${BASE}::BIGINT + i * 40000) AS ts, printf('%016x', i) AS flow_id, 'n' AS node, 'eth0' AS iface,
           make_timestamp(${BASE}::BIGINT + i * 40000) AS first_seen, make_timestamp(${BASE}::BIGINT + i * 40000 + 1000) AS last_seen,
           'tcp' AS transport, 6 AS ip_proto, '10.0.' || (i % 250) || '.1' AS client_ip, (i % 60000)::USMALLINT AS client_port,
           '192.0.2.' || (i % 200) AS server_ip, 443 AS server_port, 3 AS client_packets, (i * 7919) % 100000 AS client_bytes,
           2 AS server_packets, 1500 AS server_bytes, 2 AS client_tcp_flags, 18 AS server_tcp_flags, 'established' AS tcp_state,
           false AS final, 'TLS' AS app, 'h' || (i % 1000) || '.example' AS server_name, 'dpi' AS confidence,
           '+74 -74 +66' AS first_packets, '' AS app_info, 1000 AS duration
    FROM range(${HEAVY_SEGMENTS}) t(i)`);
  conn.closeSync();
  instance.closeSync();
  return path;
}

function segment(i: number, ts: number): FlowRecord {
  return {
    ...emptyRecord(FLOW),
    ts,
    flowId: `ab${i.toString(16).padStart(14, '0')}`,
    node: 'n',
    source: '',
    iface: 'eth0',
    firstSeen: ts,
    lastSeen: ts + SECOND,
    transport: 'udp',
    ipProto: 17,
    clientIp: '10.9.0.1',
    clientPort: 5000 + i,
    serverIp: '10.9.0.2',
    serverPort: 53,
    clientPackets: 1,
    clientBytes: 80 + i,
    serverPackets: 1,
    serverBytes: 120,
    clientTcpFlags: 0,
    serverTcpFlags: 0,
    tcpState: '',
    final: true,
    app: 'DNS',
    serverName: '',
    confidence: 'dpi',
    firstPackets: '+80 -120',
    appInfo: '',
    duration: SECOND,
    endReason: '',
  };
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = performance.now();
  try {
    const value = await p;
    return { ms: performance.now() - t0, value };
  } catch (error) {
    return { ms: performance.now() - t0, error };
  }
}

describe('DuckDB read pool', () => {
  let path: string;
  /** How long HEAVY takes when nobody stops it (SQL path, no cache). */
  let heavyMs: number;

  before(async () => {
    path = await heavyFile();
    const store = new DuckDbStore({ path, readOnly: true, flowCacheBytes: 0 });
    await store.init();
    try {
      const r = await timed(store.queryFlows(HEAVY));
      assert.equal(r.error, undefined);
      assert.equal(r.value!.totalCount, HEAVY_SEGMENTS);
      heavyMs = r.ms;
    } finally {
      await store.close();
    }
  });

  for (const cache of [true, false]) {
    it(`an aborted heavy read rejects promptly with StoreQueryCancelled and the pool serves the next read (${cache ? 'cached' : 'SQL'} path)`, async () => {
      const store = new DuckDbStore({ path, readOnly: true, readConnections: 1, flowCacheBytes: cache ? 256 * 1024 * 1024 : 0 });
      await store.init();
      try {
        const ac = new AbortController();
        const heavy = timed(store.queryFlows(HEAVY, { signal: ac.signal }));
        await new Promise((r) => setTimeout(r, 150));
        const abortedAt = performance.now();
        ac.abort();
        const r = await heavy;
        const afterAbortMs = performance.now() - abortedAt;
        assert.ok(r.error instanceof StoreQueryCancelled, `rejected with ${String(r.error)}`);
        assert.ok(afterAbortMs < Math.max(100, heavyMs / 4), `rejected ${afterAbortMs.toFixed(0)} ms after the abort; the read takes ${heavyMs.toFixed(0)} ms`);

        // The only connection is free again soon (the interrupted statement stopped) and serves
        // the next read, well before the heavy one would have finished.
        const next = await timed(store.queryFlows({ from: BASE, to: BASE + SECOND, first: 10 }));
        assert.equal(next.error, undefined);
        assert.equal(next.value!.totalCount, 25); // one segment every 40 ms
        assert.ok(performance.now() - abortedAt < heavyMs / 5, `the next read ended ${(performance.now() - abortedAt).toFixed(0)} ms after the abort`);
        const { pool } = store.readState();
        assert.equal(pool.active, 0);
        assert.equal(pool.queued, 0);
        // The interrupted connection was closed, not put back; the small read's is clean and kept.
        assert.equal(pool.idle, 1);
        if (cache) assert.equal(store.readState().flowCache!.entries, 1, 'the small read is cached, the aborted one is not');
      } finally {
        await store.close();
      }
    });
  }

  it('a read waiting for a connection leaves the queue when aborted; a full queue refuses at once with StoreBusyError', async () => {
    const store = new DuckDbStore({ path, readOnly: true, readConnections: 1, readQueue: 2, flowCacheBytes: 0 });
    await store.init();
    try {
      const stop = new AbortController();
      const running = timed(store.queryFlows(HEAVY, { signal: stop.signal }));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(store.readState().pool.active, 1);

      const queuedAbort = new AbortController();
      const queued1 = timed(store.queryFlows({ ...HEAVY, orderBy: 'time' }, { signal: queuedAbort.signal }));
      const queued2 = timed(store.topHosts({ from: BASE, to: BASE + SECOND, limit: 5 }));
      assert.equal(store.readState().pool.queued, 2);

      // The queue is full: the next read is refused without waiting.
      const refused = await timed(store.trafficSeries({ from: BASE, to: BASE + 60 * SECOND, step: 10 * SECOND }));
      assert.ok(refused.error instanceof StoreBusyError, `rejected with ${String(refused.error)}`);
      assert.ok(refused.ms < 50, `refused after ${refused.ms.toFixed(0)} ms`);

      // An aborted waiter leaves the queue at once, and its place can be taken.
      queuedAbort.abort();
      const left = await queued1;
      assert.ok(left.error instanceof StoreQueryCancelled);
      assert.ok(left.ms < heavyMs / 2);
      assert.equal(store.readState().pool.queued, 1);
      const queued3 = timed(store.hostSummary({ from: BASE, to: BASE + SECOND, ip: '10.0.0.1' }));
      assert.equal(store.readState().pool.queued, 2);

      // The rest run in order once the running read stops.
      stop.abort();
      assert.ok((await running).error instanceof StoreQueryCancelled);
      const [r2, r3] = await Promise.all([queued2, queued3]);
      assert.equal(r2.error, undefined);
      assert.deepEqual(r2.value, []); // the file has no host rows
      assert.equal(r3.error, undefined);
      assert.equal(r3.value, null);
      assert.deepEqual({ ...store.readState().pool, idle: 0 }, { size: 1, queueLimit: 2, active: 0, queued: 0, idle: 0 });
    } finally {
      await store.close();
    }
  });
});

describe('DuckDB flow cache', () => {
  let store: DuckDbStore;
  before(async () => {
    store = new DuckDbStore({ path: join(tempDir('flowlens-cache-'), 'cache.duckdb') });
    await store.init();
    await store.write({ flows: Array.from({ length: 30 }, (_, i) => segment(i, BASE + i * SECOND)), hosts: [], traffic: [] });
    await store.flush();
  });
  after(() => store.close());

  const range = { from: BASE, to: BASE + 60 * SECOND };

  it('pages and totals come from one computation per range and filter, in both orders', async () => {
    const before = store.readState().flowCache!;
    const all: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.queryFlows({ ...range, first: 7, after: cursor });
      assert.equal(page.totalCount, 30);
      all.push(...page.edges.map((e) => e.node.flowId));
      if (!page.pageInfo.hasNextPage) break;
      cursor = page.pageInfo.endCursor!;
    }
    assert.equal(all.length, 30);
    const byBytes = await store.queryFlows({ ...range, first: 3, orderBy: 'bytes' });
    assert.deepEqual(
      byBytes.edges.map((e) => e.node.clientBytes),
      [109, 108, 107],
    );
    const after = store.readState().flowCache!;
    assert.equal(after.misses - before.misses, 1);
    assert.equal(after.hits - before.hits, 5);
  });

  it('a committed write in the range is seen by the next read; one outside it keeps the entry', async () => {
    const first = await store.queryFlows({ ...range, first: 1 });
    assert.equal(first.totalCount, 30);
    // After the range: the entry stays.
    await store.write({ flows: [segment(100, range.to + SECOND)], hosts: [], traffic: [] });
    await store.flush();
    const hits = store.readState().flowCache!.hits;
    assert.equal((await store.queryFlows({ ...range, first: 1 })).totalCount, 30);
    assert.equal(store.readState().flowCache!.hits, hits + 1);
    // In the range: written but not committed is not visible; committed is.
    await store.write({ flows: [segment(101, BASE + 45 * SECOND)], hosts: [], traffic: [] });
    assert.equal((await store.queryFlows({ ...range, first: 1 })).totalCount, 30);
    await store.flush();
    const page = await store.queryFlows({ ...range, first: 1, orderBy: 'bytes' });
    assert.equal(page.totalCount, 31);
    assert.equal(page.edges[0]!.node.flowId, segment(101, 0).flowId);
  });
});

describe('DuckDB flow cache under concurrent requests', () => {
  let path: string;
  before(async () => {
    path = await heavyFile();
  });

  it('different ranges requested at once are computed one at a time, within a small memory_limit (200 MB), without errors', async () => {
    // Four computations at once over 250,000 flows each ran DuckDB out of memory under this limit
    // (the load bench's "Unexpected error.": Out of Memory Error: failed to pin block). One DuckDB
    // thread: with two, one computation alone peaks near 200 MB and ran out in about one attempt in
    // ten (then it is retried, and at worst paged by SQL: the next test), so that CI found 3 entries
    // twice; one thread never did in 24 computations.
    const store = new DuckDbStore({ path, readOnly: true, threads: 1, memoryLimit: '200MB', flowCacheBytes: 512 * 1024 * 1024 });
    await store.init();
    try {
      const quarter = 250_000 * 40_000; // 250,000 segments, one every 40 ms
      let mostBuilding = 0;
      const poll = setInterval(() => {
        mostBuilding = Math.max(mostBuilding, store.readState().flowCache!.building);
      }, 5);
      const results = await Promise.all(
        [0, 1, 2, 3].map((k) => timed(store.queryFlows({ from: BASE + k * quarter, to: BASE + (k + 1) * quarter, first: 10, orderBy: 'bytes' }))),
      );
      clearInterval(poll);
      for (const r of results) {
        assert.equal(r.error, undefined, String(r.error));
        assert.equal(r.value!.totalCount, 250_000);
      }
      assert.equal(mostBuilding, 1);
      console.log(`# flow cache: ${JSON.stringify(store.readState().flowCache)}`);
      assert.equal(store.readState().flowCache!.entries, 4);
    } finally {
      await store.close();
    }
  });

  it('a range whose computation runs out of the memory_limit is paged by SQL: the same answers, nothing cached', async () => {
    const store = new DuckDbStore({ path, readOnly: true, memoryLimit: '64MB', flowCacheBytes: 512 * 1024 * 1024 });
    const reference = new DuckDbStore({ path, readOnly: true, threads: 1, memoryLimit: '256MB', flowCacheBytes: 512 * 1024 * 1024 });
    await store.init();
    await reference.init();
    try {
      const query: FlowQuery = { from: BASE, to: BASE + 250_000 * 40_000, first: 10, orderBy: 'bytes' };
      const page = await store.queryFlows(query);
      assert.equal(page.totalCount, 250_000);
      assert.equal(store.readState().flowCache!.entries, 0, 'the computation ran out of 64 MB: nothing is cached');
      const expected = await reference.queryFlows(query);
      assert.equal(reference.readState().flowCache!.entries, 1);
      assert.deepEqual(
        page.edges.map((e) => e.node),
        expected.edges.map((e) => e.node),
      );
      assert.equal(page.pageInfo.endCursor, expected.pageInfo.endCursor);
    } finally {
      await store.close();
      await reference.close();
    }
  });

  it('filters of one range requested at once share one computation, and their views page as SQL does', async () => {
    const range = { from: BASE, to: BASE + 10_000 * SECOND }; // 250,000 flows
    const filters = [
      {},
      { port: 443 },
      { minBytes: 90_000 + 1500 },
      { host: '10.0.7.1' },
      { host: '10.0.7.1', serverName: 'h7.example' },
      { host: '203.0.113.99' },
    ];
    const sql = new DuckDbStore({ path, readOnly: true, flowCacheBytes: 0 });
    await sql.init();
    const expected: unknown[] = [];
    try {
      for (const filter of filters) {
        for (const orderBy of ['time', 'bytes'] as const) {
          const first = await sql.queryFlows({ ...range, filter, first: 50, orderBy });
          const second = first.pageInfo.endCursor ? await sql.queryFlows({ ...range, filter, first: 50, orderBy, after: first.pageInfo.endCursor }) : null;
          expected.push([first, second]);
        }
      }
    } finally {
      await sql.close();
    }
    const store = new DuckDbStore({ path, readOnly: true });
    await store.init();
    try {
      const firstPages = await Promise.all(
        filters.flatMap((filter) => (['time', 'bytes'] as const).map((orderBy) => store.queryFlows({ ...range, filter, first: 50, orderBy }))),
      );
      const state = store.readState().flowCache!;
      assert.equal(state.builds, 1, 'one computation for all the filters');
      assert.equal(state.views, filters.length - 1);
      const got: unknown[] = [];
      for (const [i, first] of firstPages.entries()) {
        const filter = filters[Math.floor(i / 2)]!;
        const orderBy = i % 2 ? 'bytes' : 'time';
        const second = first.pageInfo.endCursor ? await store.queryFlows({ ...range, filter, first: 50, orderBy, after: first.pageInfo.endCursor }) : null;
        got.push([first, second]);
      }
      assert.deepEqual(got, expected);
      assert.ok((got[2] as any)[0].totalCount > 0 && (got[6] as any)[0].totalCount > 0, 'the filters select some flows');
    } finally {
      await store.close();
    }
  });
});
