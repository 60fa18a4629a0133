/**
 * Explore from memory (src/store/explore-segments.ts) answers exactly as the SQL statement does:
 * many requests (every dimension and pairs, each metric, filters of values the data holds, ranges
 * that start in the middle of long flows and that cross hour blocks, several steps) over the
 * benchmark's synthetic day, compared item by item and bucket by bucket with exploreBySql. Also:
 * a committed write is seen by the next request (its hour blocks are read again), the blocks are
 * read once and then answered from memory, and a store with a small budget answers by SQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDbStore } from '../src/store/duckdb.js';
import { EXPLORE_DIMENSIONS, type ExploreDimension, type ExploreFilter, type ExploreQuery } from '../src/store/explore.js';
import { compareKey } from '../src/store/explore-segments.js';
import { BUSY_HOST, DAY_START_US, syntheticDay } from './bench/api.js';
import { rng } from './bench/synth-pcap.js';

const HOUR = 3_600_000_000;
const MINUTE = 60_000_000;

describe('explore from memory', () => {
  let dir: string;
  let store: DuckDbStore;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-explore-memory-'));
    store = new DuckDbStore({ path: join(dir, 'day.duckdb') });
    await store.init();
    for (const b of syntheticDay({ flowRows: 30_000, hosts: 60 })) await store.write(b);
    await store.flush();
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('equals the SQL statement on 120 requests', async () => {
    const rand = rng(21);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const singles = EXPLORE_DIMENSIONS.filter((d) => d !== 'peer');
    // Filter values the data holds, by dimension (from a whole-day answer of each).
    const day = { from: DAY_START_US, to: DAY_START_US + 24 * HOUR };
    const values = new Map<ExploreDimension, string[]>();
    for (const d of singles) {
      const items = await store.exploreBySql({ ...day, dimensions: [d], metric: 'flows', limit: 20, step: 24 * HOUR });
      values.set(
        d,
        items.map((i) => i.keys[0]!),
      );
    }
    let compared = 0;
    let nonEmpty = 0;
    for (let n = 0; n < 120; n++) {
      const d0 = pick(singles);
      const dims: ExploreDimension[] = [d0];
      if (rand() < 0.45) {
        const d1 = d0 === 'host' && rand() < 0.5 ? 'peer' : pick(singles.filter((d) => d !== d0));
        dims.push(d1);
      }
      // Ranges: the whole day, or a few hours starting anywhere (mid-minute: flows began before).
      const from = rand() < 0.2 ? day.from : day.from + Math.floor(rand() * 20 * HOUR) + Math.floor(rand() * MINUTE);
      const to = from === day.from && rand() < 0.5 ? day.to : from + Math.floor((0.2 + rand() * 4) * HOUR);
      const step = pick([5 * MINUTE, 15 * MINUTE, HOUR]);
      const limit = pick([1, 5, 10, 20]);
      const buckets = Math.ceil((to - Math.floor(from / step) * step) / step);
      if (buckets * limit > 5000) continue;
      const filters: ExploreFilter[] = [];
      const nFilters = rand() < 0.5 ? 0 : rand() < 0.7 ? 1 : 2;
      for (let f = 0; f < nFilters; f++) {
        const d = pick(['host', 'app', 'transport', 'port', 'serverName', 'server', 'client'] as const);
        const address = d === 'host' || d === 'server' || d === 'client';
        let value = rand() < 0.1 ? (address ? '203.0.113.77' : 'no-such-value') : d === 'host' && rand() < 0.5 ? BUSY_HOST : pick(values.get(d)!);
        // Applications in any case (flow-filter.ts): `tls` finds TLS.
        if (d === 'app' && rand() < 0.5) value = value.toLowerCase();
        // Addresses as CIDR prefixes, server names in any case and as globs (flow-filter.ts).
        if (address && rand() < 0.3 && value.includes('.')) value = `${value.split('.').slice(0, 3).join('.')}.0/${pick([24, 26, 28, 30])}`;
        if (d === 'serverName' && value.length > 2) {
          const r = rand();
          if (r < 0.2) value = value.toUpperCase();
          else if (r < 0.4) value = `*${value.slice(value.indexOf('.') + 1)}`;
          else if (r < 0.5) value = `*${value.slice(1, 3)}*`;
        }
        filters.push({ dimension: d, value });
      }
      if (filters.some((f) => f.dimension === 'port' && f.value === 'no-such-value')) continue;
      const q: ExploreQuery = { from, to, dimensions: dims, metric: pick(['bytes', 'packets', 'flows'] as const), limit, step, filters };
      const sql = await store.exploreBySql(q);
      // The blocks are read once (a request meanwhile is answered by SQL), then answered from memory.
      assert.equal(await store.warmExplore(q.from, q.to), true);
      const hits = store.readState().exploreCache!.hits;
      const memory = await store.explore(q);
      assert.equal(store.readState().exploreCache!.hits, hits + 1, 'answered from memory');
      assert.deepEqual(memory, sql, `request ${n}: ${JSON.stringify(q)}`);
      compared++;
      if (sql.length > 0) nonEmpty++;
    }
    assert.ok(compared >= 100, `${compared} requests compared`);
    assert.ok(nonEmpty >= 80, `${nonEmpty} of them with items`);
    const state = store.readState().exploreCache!;
    assert.ok(state.hits > 0 && state.blocks > 0, JSON.stringify(state));
  });

  it('a ported value given with leading zeros filters as the SQL does', async () => {
    const q: ExploreQuery = {
      from: DAY_START_US,
      to: DAY_START_US + 24 * HOUR,
      dimensions: ['app'],
      metric: 'bytes',
      limit: 5,
      step: HOUR,
      filters: [{ dimension: 'port', value: '0443' }],
    };
    await store.warmExplore(q.from, q.to);
    const memory = await store.explore(q);
    assert.ok(memory.length > 0);
    assert.deepEqual(memory, await store.exploreBySql(q));
  });

  it('sees a committed write at once (the hours it touched are read again)', async () => {
    const q: ExploreQuery = { from: DAY_START_US, to: DAY_START_US + 24 * HOUR, dimensions: ['app'], metric: 'flows', limit: 20, step: HOUR };
    await store.warmExplore(q.from, q.to);
    const beforeWrite = await store.explore(q);
    const [batch] = syntheticDay({ flowRows: 30_000, hosts: 60 });
    // Flows' first segments only: each counts one flow.
    const extra = batch!.flows
      .filter((f) => f.ts === f.firstSeen)
      .slice(0, 50)
      .map((f, i) => ({ ...f, flowId: `f${i.toString(16).padStart(15, '0')}`, app: 'EXTRA-APP', source: 'extra' }));
    await store.write({ flows: extra, hosts: [], traffic: [], anomalies: [] });
    await store.flush();
    assert.equal(store.readState().exploreCache!.blocks, 23, 'the hour written to was dropped');
    await store.warmExplore(q.from, q.to);
    const afterWrite = await store.explore(q);
    assert.deepEqual(afterWrite, await store.exploreBySql(q));
    const added = afterWrite.find((i) => i.keys[0] === 'EXTRA-APP');
    assert.equal(added?.flows, 50, 'the 50 flows written show');
    assert.equal(
      beforeWrite.find((i) => i.keys[0] === 'EXTRA-APP'),
      undefined,
    );
  });

  it('a store whose budget cannot hold the range answers by SQL, with the same items', async () => {
    const small = new DuckDbStore({ path: join(dir, 'day.duckdb'), exploreCacheBytes: 64 * 1024 });
    // The same file cannot be opened twice in one process: use the open store's answer as reference.
    const q: ExploreQuery = { from: DAY_START_US, to: DAY_START_US + 24 * HOUR, dimensions: ['host', 'peer'], metric: 'bytes', limit: 10, step: HOUR };
    const want = await store.exploreBySql(q);
    await store.close();
    await small.init();
    try {
      assert.deepEqual(await small.explore(q), want);
      assert.equal(await small.warmExplore(q.from, q.to), false, 'too large to hold');
      assert.deepEqual(await small.explore(q), want);
      assert.equal(small.readState().exploreCache!.blocks, 0, 'nothing kept');
    } finally {
      await small.close();
      store = new DuckDbStore({ path: join(dir, 'day.duckdb') });
      await store.init();
    }
  });

  it('orders keys as DuckDB does: by code point, nulls last', () => {
    const keys = ['b', null, 'a', '\u{1F600}', '\uFF01', 'ab', ''];
    assert.deepEqual(keys.sort(compareKey), ['', 'a', 'ab', 'b', '\uFF01', '\u{1F600}', null]);
  });
});
