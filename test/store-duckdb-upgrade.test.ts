// A DuckDB file written by an earlier version gets the columns added since at its end (ALTER TABLE
// ADD COLUMN), while this version's definition may have them in the middle (the classifier's
// predicted_* columns sit before tunnel_parents). The appender must write in the file's order, or
// each value lands in another column (or the append fails on a type).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { FLOW } from '../src/records/index.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import type { FlowRecord } from '../src/store/types.js';
import { emptyRecord } from './helpers/records.js';

const SCHEMA = readFileSync(new URL('../schema/duckdb.sql', import.meta.url), 'utf8');
/** Columns of the flows table's CREATE TABLE that an earlier version's file lacks. */
const LATER = ['risks', 'predicted_category', 'predicted_app', 'predicted_confidence'];

describe('DuckDB: a file of an earlier version', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-upgrade-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is written in its own column order: every value in its column after the added ones moved to the end', async () => {
    const path = join(dir, 'old.duckdb');
    // The earlier version's schema: the CREATE TABLE without the later columns (their ALTERs stay,
    // as in the file's history: they add them at the end).
    const old = SCHEMA.split('\n')
      .filter((line) => !LATER.some((c) => line.startsWith(`  ${c} `)))
      .join('\n');
    assert.notEqual(old, SCHEMA);
    const instance = await DuckDBInstance.create(path);
    const conn = await instance.connect();
    await conn.run(old);
    const cols = (await conn.runAndReadAll("SELECT column_name FROM duckdb_columns() WHERE table_name = 'flows' ORDER BY column_index"))
      .getRows()
      .map((r) => r[0]);
    assert.deepEqual(cols.slice(-LATER.length), LATER, 'the later columns are at the end of the old file');
    conn.closeSync();
    instance.closeSync();

    const store = new DuckDbStore({ path });
    await store.init();
    const ts = Date.UTC(2026, 11, 6) * 1000;
    await store.write({
      flows: [
        emptyRecord<FlowRecord>(FLOW, {
          ts,
          flowId: '00000000000000aa',
          node: 'upgrade',
          iface: 'old.pcap',
          firstSeen: ts,
          lastSeen: ts + 5,
          transport: 'udp',
          ipProto: 17,
          clientIp: '10.9.0.1',
          clientPort: 40000,
          serverIp: '10.9.0.2',
          serverPort: 51820,
          clientPackets: 3,
          clientBytes: 444,
          risks: 'Known Proto on Non Std Port',
          predictedCategory: 'vpn-tunnel',
          predictedApp: '',
          predictedConfidence: 87,
          tunnelParents: 'parent-id',
          zeekSplits: '',
        }),
      ],
      hosts: [],
      traffic: [],
    });
    await store.close();

    const check = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
    const c2 = await check.connect();
    const rows = (
      await c2.runAndReadAll('SELECT server_port, client_bytes, risks, predicted_category, predicted_app, predicted_confidence, tunnel_parents FROM flows')
    ).getRows();
    c2.closeSync();
    check.closeSync();
    assert.deepEqual(rows, [[51820, 444n, 'Known Proto on Non Std Port', 'vpn-tunnel', '', 87, 'parent-id']]);
  });
});
