// QuestDB store start-up and export without a QuestDB server: the store runs against the local
// stand-ins of test/helpers/fake-questdb.ts, which record every statement sent, so these tests see
// which DDL start-up runs (only what is not already in place), that a read-only open runs none and
// replays no spool, and that the export reads one query through a cursor.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needsDedupEnable, needsTtl, QuestDbStore, ttlHours, type TableState } from '../src/store/questdb.js';
import type { SpoolLogger } from '../src/store/spool.js';
import { RECORDS } from '../src/records/index.js';
import { startFakePg, startFakeQuestDb, type FakePg, type FakeQuestDb } from './helpers/fake-questdb.js';

const quiet: SpoolLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const DDL = /^\s*(CREATE|ALTER|DROP|TRUNCATE|INSERT|UPDATE|RENAME)\b/i;
/** Every column of every table (from the definitions): tables that need no ADD COLUMN. */
const ALL_COLUMNS = [...new Set(RECORDS.flatMap((d) => d.list.map((c) => c.sql)))];

describe('QuestDB start-up DDL decisions', () => {
  const on = (keys: string[], hours: number | null = 0): TableState => ({ dedup: true, upsertKeys: keys, ttlHours: hours });

  test('DEDUP ENABLE only where dedup is off, on other keys, or the table is unknown', () => {
    assert.equal(needsDedupEnable(on(['ts', 'flow_id']), ['ts', ' flow_id']), false);
    assert.equal(needsDedupEnable(on(['flow_id', 'ts']), ['ts', 'FLOW_ID']), false, 'order and case do not matter');
    assert.equal(needsDedupEnable({ ...on(['ts', 'flow_id']), dedup: false }, ['ts', 'flow_id']), true);
    assert.equal(needsDedupEnable(on(['ts']), ['ts', 'flow_id']), true);
    assert.equal(needsDedupEnable(on(['ts', 'node', 'ip']), ['ts', 'node']), true);
    assert.equal(needsDedupEnable(undefined, ['ts']), true);
  });

  test('SET TTL only where the TTL differs', () => {
    assert.equal(ttlHours(7, 'DAY'), 168);
    assert.equal(ttlHours(1, 'WEEK'), 168);
    assert.equal(ttlHours(0, 'HOUR'), 0);
    assert.equal(ttlHours(1, 'MONTH'), null);
    assert.equal(ttlHours(undefined, undefined), null);
    assert.equal(needsTtl(on([], 168), 7), false);
    assert.equal(needsTtl(on([], 24), 7), true);
    assert.equal(needsTtl(on([], null), 7), true);
    assert.equal(needsTtl(undefined, 7), true);
  });
});

describe('QuestDB store against local stand-ins', () => {
  let dir: string;
  let pg: FakePg;
  let ilp: FakeQuestDb;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowlens-qdb-startup-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function open(extra: { readOnly?: boolean; retentionDays?: number; spoolDir?: string } = {}): Promise<QuestDbStore> {
    const store = new QuestDbStore({
      ilp: `http::addr=127.0.0.1:${ilp.port};retry_timeout=200;request_timeout=1000;`,
      pg: pg.url,
      retentionDays: extra.retentionDays ?? 0,
      spoolDir: extra.spoolDir ?? join(dir, 'spool'),
      readOnly: extra.readOnly,
      log: quiet,
    });
    await store.init();
    return store;
  }

  const fresh = async () => {
    pg = await startFakePg();
    ilp = await startFakeQuestDb();
  };
  const stop = async () => {
    await pg.close();
    await ilp.close();
  };

  test('start-up enables dedup and sets TTL only on the tables that lack them', async () => {
    await fresh();
    try {
      const table = (dedup: boolean, upsertKeys: string[], ttlValue = 0, ttlUnit = 'HOUR') => ({ dedup, upsertKeys, columns: ALL_COLUMNS, ttlValue, ttlUnit });
      pg.tables.set('flows', table(true, ['ts', 'flow_id'], 1, 'WEEK'));
      pg.tables.set('hosts', table(false, []));
      pg.tables.set('traffic', table(true, ['ts']));
      // anomalies does not exist yet: CREATE TABLE makes it with its dedup keys.
      const store = await open({ retentionDays: 7 });
      await store.close();
      const alters = pg.statements.filter((s) => /^ALTER TABLE/i.test(s));
      assert.deepEqual(alters, [
        'ALTER TABLE hosts DEDUP ENABLE UPSERT KEYS(ts, node, ip, source)',
        'ALTER TABLE traffic DEDUP ENABLE UPSERT KEYS(ts, node, source)',
        'ALTER TABLE hosts SET TTL 7 DAYS',
        'ALTER TABLE traffic SET TTL 7 DAYS',
        'ALTER TABLE anomalies SET TTL 7 DAYS',
      ]);

      // A second start finds everything in place: no ALTER at all.
      pg.statements.length = 0;
      await (await open({ retentionDays: 7 })).close();
      assert.deepEqual(
        pg.statements.filter((s) => /^ALTER TABLE/i.test(s)),
        [],
      );
    } finally {
      await stop();
    }
  });

  test('a read-only open sends no statement, replays no spool and refuses writes', async () => {
    await fresh();
    try {
      const spoolDir = join(dir, 'left-by-a-writer');
      const first = await open({ spoolDir });
      await first.close();
      // A batch a writer left in the spool: only a writer may replay it.
      await writeFile(join(spoolDir, '0000000000000001.ilp'), 'traffic,node=a bytes=1i,packets=1i,flows=1i 1700000000000000000\n');
      pg.statements.length = 0;
      const store = await open({ readOnly: true, spoolDir });
      try {
        assert.deepEqual(pg.statements, [], 'no statement at start');
        await assert.rejects(store.write({ flows: [], hosts: [], traffic: [] }), /read-only/);
        for await (const _ of store.exportHosts()) assert.fail('no hosts expected');
        assert.equal(pg.statements.filter((s) => DDL.test(s)).length, 0, 'no DDL');
      } finally {
        await store.close();
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(ilp.requests.length, 0, 'nothing sent over ILP');
      assert.deepEqual(await readdir(spoolDir), ['0000000000000001.ilp']);
    } finally {
      await stop();
    }
  });

  test('exportFlows reads one query through a cursor, in chunks, to its end', async () => {
    await fresh();
    try {
      const n = 2_345;
      const names = ['flow_id', 'node', 'first_seen_us', 'last_seen_us', 'client_bytes', 'server_bytes', 'transport'];
      pg.answer = (sql) =>
        /\bFROM flows\b/.test(sql)
          ? {
              columns: names.map((name) => ({ name, type: name === 'flow_id' || name === 'node' || name === 'transport' ? 'text' : 'int8' }) as const),
              rows: Array.from({ length: n }, (_, i) => [
                `f${i}`,
                'n1',
                String(1_700_000_000_000_000 + i),
                String(1_700_000_000_000_000 + i + 5),
                '10',
                '20',
                'tcp',
              ]),
            }
          : null;
      const store = await open({ readOnly: true });
      const ids: string[] = [];
      try {
        for await (const f of store.exportFlows()) ids.push(f.flowId);
      } finally {
        await store.close();
      }
      assert.equal(ids.length, n);
      assert.equal(new Set(ids).size, n, 'each flow once');
      const reads = pg.statements.filter((s) => /\bFROM flows\b/.test(s));
      assert.equal(reads.length, 1, 'one query for the whole export');
      assert.doesNotMatch(reads[0]!, /\bLIMIT\b/);
      assert.match(reads[0]!, /ORDER BY first_seen_us ASC, flow_id ASC\s*$/);
      assert.ok(pg.executes.length >= 3 && pg.executes.every((r) => r === 1000), `chunked Execute messages: ${pg.executes.join(',')}`);
    } finally {
      await stop();
    }
  });
});
