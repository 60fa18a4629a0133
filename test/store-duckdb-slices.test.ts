// The DuckDB store appends a batch a data chunk (2,048 rows) at a time, flushes each into the open
// transaction and lets the event loop turn between chunks (ChunkAppender.appendInSlices, src/store/duckdb-chunks.ts).
// Live capture reads libpcap on the thread that writes the store: a batch appended in one go held it
// for 50-330 ms, long enough for the kernel buffer to overflow at high packet rates. These tests
// check that a large write gives the event loop its turns while it appends, and that every row of
// batches cut into slices, flushed slice by slice and committed in between, comes back once, with
// its values.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLOW, HOST, emptyRecord } from '../src/records/index.js';
import { openStore } from '../src/store/index.js';
import type { FlowRecord, HostRecord } from '../src/store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'flowlens-duckdb-slices-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000_000;

function flows(n: number, first: number): FlowRecord[] {
  return Array.from({ length: n }, (_, k) => {
    const i = first + k;
    return {
      ...emptyRecord(FLOW),
      ts: T0 + i,
      firstSeen: T0 + i,
      lastSeen: T0 + i + 5,
      flowId: `flow-${i}`,
      clientIp: `10.0.${(i >> 8) & 255}.${i & 255}`,
      serverIp: '192.0.2.1',
      clientPackets: i,
      serverBytes: 2 * i,
      app: i % 3 === 0 ? 'TLS' : 'DNS',
      serverName: `host-${i % 17}.example.org`,
    } as FlowRecord;
  });
}

function hosts(n: number): HostRecord[] {
  return Array.from({ length: n }, (_, i) => ({ ...emptyRecord(HOST), ts: T0 + i, ip: `10.1.${(i >> 8) & 255}.${i & 255}`, bytesSent: i }) as HostRecord);
}

test('a large write lets the event loop turn between the chunks it appends', async () => {
  const store = await openStore({ db: join(dir, 'turns.duckdb') });
  try {
    // The first write opens the transaction; the second, under the rows that make a commit, is
    // appends and flushes only, with nothing to wait for.
    await store.write({ flows: flows(10, 0), hosts: [], traffic: [] });
    const rows = 12_000;
    let turns = 0;
    let writing = true;
    const turn = () => {
      if (!writing) return;
      turns++;
      setImmediate(turn);
    };
    setImmediate(turn);
    await store.write({ flows: flows(rows, 10), hosts: hosts(3000), traffic: [] });
    writing = false;
    // 12,000 flow rows are 6 chunks and 3,000 host rows 2: a turn between each two of a table's.
    assert.ok(turns >= 5 + 1, `the event loop turned ${turns} times during a write of ${rows} flows and 3,000 hosts`);
  } finally {
    await store.close();
  }
});

test('rows of batches cut into slices, each flushed, come back once, with their values', async () => {
  const path = join(dir, 'rows.duckdb');
  const store = await openStore({ db: path });
  // Batches that end inside a slice, a single row, and 25,000 rows that make a commit (20,000).
  const batches = [9000, 25_000, 1, 4097];
  let first = 0;
  try {
    for (const n of batches) {
      await store.write({ flows: flows(n, first), hosts: first === 0 ? hosts(10_000) : [], traffic: [] });
      first += n;
    }
    await store.flush();
  } finally {
    await store.close();
  }
  const total = first;
  const db = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  try {
    const conn = await db.connect();
    const r = (
      await conn.runAndReadAll(
        `SELECT count(*)::BIGINT AS n, count(DISTINCT flow_id)::BIGINT AS ids, sum(client_packets)::BIGINT AS packets,
                sum(server_bytes)::BIGINT AS bytes, min(ts) AS lo, max(ts) AS hi,
                count(*) FILTER (WHERE app = 'TLS')::BIGINT AS tls,
                count(*) FILTER (WHERE flow_id <> 'flow-' || (epoch_us(ts) - ${T0})::VARCHAR)::BIGINT AS misplaced
         FROM flows`,
      )
    ).getRowObjectsJson()[0];
    assert.equal(Number(r.n), total);
    assert.equal(Number(r.ids), total);
    assert.equal(Number(r.packets), (total * (total - 1)) / 2);
    assert.equal(Number(r.bytes), total * (total - 1));
    assert.equal(Number(r.tls), Math.ceil(total / 3));
    assert.equal(Number(r.misplaced), 0, 'every row keeps the values it was written with');
    const h = (await conn.runAndReadAll('SELECT count(*)::BIGINT AS n, sum(bytes_sent)::BIGINT AS b FROM hosts')).getRowObjectsJson()[0];
    assert.equal(Number(h.n), 10_000);
    assert.equal(Number(h.b), (10_000 * 9_999) / 2);
    conn.closeSync();
  } finally {
    db.closeSync();
  }
});
