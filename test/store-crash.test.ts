// Rows the DuckDB store has committed survive the process being killed before the store is closed:
// with the checkpoint threshold at 64 MB (DEFAULT_DUCKDB_CHECKPOINT_MB) they are still only in the
// write-ahead log then, and the next open replays them, once.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { openStore } from '../src/store/index.js';
import { REPO_ROOT, spawnWatched, withTempDir } from './helpers/cli.js';

const ROWS = 30_000;

test('flows committed by the DuckDB store are there after the writer is killed with SIGKILL, once', async () => {
  await withTempDir(async (dir) => {
    const db = join(dir, 'crash.duckdb');
    const { child, output, exited } = spawnWatched(['--import', 'tsx', join(REPO_ROOT, 'test', 'helpers', 'store-crash-writer.ts'), db, String(ROWS)]);
    const flushed = await Promise.race([
      new Promise<boolean>((resolve) => child.stdout?.on('data', () => output.stdout.includes('flushed') && resolve(true))),
      exited.then(() => false),
    ]);
    assert.ok(flushed, `the writer ended before it had committed its rows: ${output.stderr}`);
    // The rows are committed and not yet checkpointed: the log holds them.
    const wal = `${db}.wal`;
    assert.ok(existsSync(wal) && statSync(wal).size > 1_000_000, `${wal} should hold the committed rows`);
    child.kill('SIGKILL');
    assert.equal((await exited).signal, 'SIGKILL');

    // The store opens the file again (replaying the log) and has every row, once.
    const store = await openStore({ db, duckdbThreads: 1 });
    await store.close();
    const instance = await DuckDBInstance.create(db, { access_mode: 'READ_ONLY' });
    try {
      const conn = await instance.connect();
      const rows = (
        await conn.runAndReadAll(
          "SELECT count(*)::INTEGER AS n, count(DISTINCT flow_id)::INTEGER AS ids, sum(client_bytes)::BIGINT AS bytes FROM flows WHERE source = 'crash-test'",
        )
      ).getRowObjectsJson()[0];
      let bytes = 0;
      for (let i = 0; i < ROWS; i++) bytes += 60 + (i % 100);
      assert.deepEqual(rows, { n: ROWS, ids: ROWS, bytes: String(bytes) });
      conn.closeSync();
    } finally {
      instance.closeSync();
    }
    // Closing the store checkpointed: the log is gone and the file holds everything.
    assert.equal(existsSync(wal), false);
  });
});
