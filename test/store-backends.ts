// The store back ends the contract suite runs against. DuckDB always runs (a fresh temporary file
// per open); QuestDB needs a server, so it runs only when one is configured and is reported as
// skipped otherwise.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDbStore } from '../src/store/duckdb.js';
import type { FlowStore } from '../src/store/types.js';

export interface StoreBackend {
  name: string;
  /** Opens (and inits) a store to test; the caller closes it. */
  open(): Promise<FlowStore>;
  /** Why this back end does not run here, when it does not. */
  skip?: string;
}

const tempDirs: string[] = [];
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function storeBackends(): StoreBackend[] {
  const backends: StoreBackend[] = [
    {
      name: 'DuckDB',
      async open() {
        const store = new DuckDbStore({ path: join(tempDir('flowlens-duckdb-'), 'flowlens.duckdb') });
        await store.init();
        return store;
      },
    },
  ];

  const ilp = process.env.FLOWLENS_QUESTDB;
  const pg = process.env.FLOWLENS_QUESTDB_PG;
  if (ilp && pg) {
    backends.push({
      name: 'QuestDB',
      async open() {
        // Imported only here so the suite runs without the QuestDB client set up.
        const { QuestDbStore } = await import('../src/store/questdb.js');
        const store = new QuestDbStore({ ilp, pg, retentionDays: 0, spoolDir: tempDir('flowlens-spool-') });
        await store.init();
        return store;
      },
    });
  } else {
    backends.push({
      name: 'QuestDB',
      open: () => Promise.reject(new Error('QuestDB is not configured')),
      skip: 'QuestDB: set FLOWLENS_QUESTDB and FLOWLENS_QUESTDB_PG to run against a server',
    });
  }
  return backends;
}
