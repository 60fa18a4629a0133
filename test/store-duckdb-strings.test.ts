// The DuckDB store's column-at-a-time appends (src/store/duckdb-chunks.ts) write every string as
// it was given: short ASCII inline, long and non-ASCII strings through DuckDB, and a string that
// repeats within a chunk of 2,048 rows once, its other rows pointing at the same copy. Rows are
// read back in the order written and compared column by column.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLOW, emptyRecord } from '../src/records/index.js';
import { openStore } from '../src/store/index.js';
import type { FlowRecord } from '../src/store/types.js';

const dir = mkdtempSync(join(tmpdir(), 'flowlens-duckdb-strings-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Strings of every kind the appender tells apart, each repeated often within a chunk. */
const POOL = [
  '',
  'tls',
  'abcdefghijkl', // 12 bytes: the longest inline
  'abcdefghijklm', // 13: the shortest that is not
  'é', // non-ASCII, short: through DuckDB
  'Ünïcødé network name ☃ with more than twelve bytes',
  '/captures/a-long-capture-file-name.pcapng',
  'x'.repeat(5000),
];

function text(row: number, column: number): string {
  // Every 7th value is distinct (never repeats); the others come from the pool in runs of three
  // rows, in an order that differs by column, so that a repeat copied from the wrong row or column
  // shows. Every other column gets fresh copies: equal strings that are not the same object.
  if ((row + column) % 7 === 0) return `distinct value of row ${row}, column ${column}`;
  const s = POOL[(Math.floor(row / 3) + column) % POOL.length];
  return column % 2 === 0 ? s : [...s].join('');
}

test('strings come back as written: inline, long, non-ASCII and repeated within a chunk, over several chunks', async () => {
  const path = join(dir, 'strings.duckdb');
  const varchar = FLOW.list.filter((c) => c.duckdb === 'VARCHAR');
  assert.ok(varchar.length >= 20, `the flow record has ${varchar.length} string columns`);
  const rows = 5000; // two full chunks and part of a third
  const flows: FlowRecord[] = [];
  for (let i = 0; i < rows; i++) {
    const f = { ...emptyRecord(FLOW), ts: 1_700_000_000_000_000 + i, firstSeen: 1_700_000_000_000_000 + i, lastSeen: 1_700_000_000_000_000 + i } as Record<
      string,
      unknown
    >;
    varchar.forEach((c, k) => {
      f[c.field] = text(i, k);
    });
    flows.push(f as unknown as FlowRecord);
  }
  const store = await openStore({ db: path });
  try {
    // Two writes: the second's chunks start mid-way through the first's rows' pattern.
    await store.write({ flows: flows.slice(0, 3001), hosts: [], traffic: [] });
    await store.write({ flows: flows.slice(3001), hosts: [], traffic: [] });
    await store.flush();
  } finally {
    await store.close();
  }

  const db = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  try {
    const conn = await db.connect();
    const read = await conn.runAndReadAll(`SELECT ${varchar.map((c) => `"${c.sql}"`).join(', ')} FROM flows ORDER BY rowid`);
    const got = read.getRows();
    assert.equal(got.length, rows);
    for (let i = 0; i < rows; i++) {
      for (let k = 0; k < varchar.length; k++) {
        if (got[i][k] !== text(i, k)) {
          assert.fail(`row ${i}, ${varchar[k].sql}: ${JSON.stringify(String(got[i][k]).slice(0, 60))}, written ${JSON.stringify(text(i, k).slice(0, 60))}`);
        }
      }
    }
    conn.closeSync();
  } finally {
    db.closeSync();
  }
});

test('a value its column cannot hold refuses the whole batch, naming the column, for every kind of column', async () => {
  const store = await openStore({ db: join(dir, 'refused.duckdb') });
  try {
    const good = { ...emptyRecord(FLOW), ts: 1_700_000_000_000_000, flowId: 'good' } as FlowRecord;
    const cases: [Partial<Record<keyof FlowRecord, unknown>>, RegExp][] = [
      [{ ipProto: 256 }, /ipProto = 256 is not a utinyint/],
      [{ serverPort: -1 }, /serverPort = -1 is not a usmallint/],
      [{ clientBytes: -5 }, /clientBytes = -5 is not a ubigint/],
      [{ clientBytes: 2 ** 53 }, /clientBytes = 9007199254740992 is not a ubigint/],
      [{ ts: 1.5 }, /ts = 1\.5 is not a timestamp/],
      [{ app: 7 }, /app = 7 is not a varchar/],
      [{ final: 'yes' }, /final = "yes" is not a boolean/],
      [{ serverName: undefined }, /serverName = undefined is not a varchar/],
    ];
    for (const [change, message] of cases) {
      const bad = { ...good, ...change, flowId: 'bad' } as FlowRecord;
      await assert.rejects(store.write({ flows: [good, bad], hosts: [], traffic: [] }), message);
    }
    await store.write({ flows: [good], hosts: [], traffic: [] });
    await store.flush();
  } finally {
    await store.close();
  }
  const db = await DuckDBInstance.create(join(dir, 'refused.duckdb'), { access_mode: 'READ_ONLY' });
  try {
    const conn = await db.connect();
    const ids = (await conn.runAndReadAll('SELECT flow_id FROM flows')).getRows().map((r) => r[0]);
    assert.deepEqual(ids, ['good'], 'only the last, good batch was written');
    conn.closeSync();
  } finally {
    db.closeSync();
  }
});
