// Picks the store back end from the settings: QuestDB when its ILP configuration string is given,
// the embedded DuckDB file otherwise.
import type { SpoolLogger } from './spool.js';
import type { FlowStore } from './types.js';
import { dirname } from 'node:path';
import { makeDirectory } from './make-dir.js';

export interface StoreOptions {
  /** DuckDB file (default ./data/flowlens.duckdb). */
  db?: string;
  /** QuestDB ILP configuration string, e.g. 'http::addr=localhost:9000;', or ILP/HTTP URL, e.g. 'http://localhost:9000'. */
  questdb?: string;
  /** QuestDB PostgreSQL wire URL, e.g. 'postgres://admin:quest@localhost:8812/qdb'. */
  questdbPg?: string;
  /** QuestDB retention (TTL) in days; 0 = keep forever. */
  retentionDays?: number;
  /** Directory of the QuestDB outage spool. */
  spoolDir?: string;
  /**
   * Open read-only (export, serve against a file another process writes). QuestDB: no schema
   * statements, no ILP writer, no spool replay.
   */
  readOnly?: boolean;
  /** Where the store logs (QuestDB: the writer and the outage spool); the CLI passes its stderr logger. */
  log?: SpoolLogger;
  /** DuckDB's worker threads; undefined: DuckDB's default (one per core). */
  duckdbThreads?: number;
  /** DuckDB's memory_limit in MB (default DEFAULT_DUCKDB_MEMORY_MB). */
  duckdbMemoryMb?: number;
  /** DuckDB's checkpoint_threshold in MB (default DEFAULT_DUCKDB_CHECKPOINT_MB). */
  duckdbCheckpointMb?: number;
  /** Reads running at once, each on a pooled connection (default 4; both back ends). */
  readConnections?: number;
  /** Reads waiting for a connection before the next is refused with StoreBusyError (default 256). */
  readQueue?: number;
  /** DuckDB: memory budget of the flow result cache in bytes (default 128 MiB; 0 turns it off). */
  flowCacheBytes?: number;
  /** DuckDB: memory budget of Explore's segments in bytes (default 128 MiB; 0 turns it off). */
  exploreCacheBytes?: number;
}

export const DEFAULT_DB_PATH = './data/flowlens.duckdb';
/**
 * DuckDB's memory_limit (MB). DuckDB's own default is 80% of the machine's memory, and it keeps
 * what its buffer pool has grown to: concurrent reads aggregating a day of flows took the server
 * past 900 MB. An import's writes need ~50 MB of it (20,000 rows a commit, three tables).
 */
export const DEFAULT_DUCKDB_MEMORY_MB = 256;
/**
 * DuckDB's checkpoint_threshold (MB): committed rows wait in the write-ahead log until it is this
 * large, then a checkpoint writes them into the file, compressing the tables' last row groups
 * again. At DuckDB's own 16 MiB the store checkpointed at almost every commit of 20,000 flow rows:
 * writing 1,000,000 synthetic flow rows (test/bench/ingest.ts, separate processes) ran at 40,000 to
 * 47,000 rows/s for 32 to 39 CPU-s; at 32 MB, 91,000 to 95,000 rows/s; at 64 MB, 101,000 to
 * 114,000 rows/s for 15 to 16.5 CPU-s, and 128 MB gained nothing more. An import of 5.5 million
 * packets took 31-36 s at 16 MB, 25 s at 64 and 28-30 s at 256 (two alternated runs each), and
 * 64 MB of log replays in seconds after a crash.
 */
export const DEFAULT_DUCKDB_CHECKPOINT_MB = 64;

export async function openStore(opts: StoreOptions): Promise<FlowStore> {
  let store: FlowStore;
  if (opts.questdb) {
    const { QuestDbStore } = await import('./questdb.js');
    store = new QuestDbStore({
      ilp: opts.questdb,
      pg: opts.questdbPg ?? 'postgres://admin:quest@127.0.0.1:8812/qdb',
      retentionDays: opts.retentionDays ?? 0,
      spoolDir: opts.spoolDir ?? './data/spool',
      readConnections: opts.readConnections,
      readQueue: opts.readQueue,
      readOnly: opts.readOnly ?? false,
      log: opts.log,
    });
  } else {
    const { DuckDbStore } = await import('./duckdb.js');
    const path = opts.db ?? DEFAULT_DB_PATH;
    // The file's directory, made here so that a path that cannot be made fails at once (make-dir.ts).
    if (!opts.readOnly && path !== ':memory:') makeDirectory(dirname(path));
    store = new DuckDbStore({
      path,
      readOnly: opts.readOnly ?? false,
      threads: opts.duckdbThreads,
      memoryLimit: opts.duckdbMemoryMb === undefined ? undefined : `${opts.duckdbMemoryMb}MB`,
      checkpointThreshold: opts.duckdbCheckpointMb === undefined ? undefined : `${opts.duckdbCheckpointMb}MB`,
      readConnections: opts.readConnections,
      readQueue: opts.readQueue,
      flowCacheBytes: opts.flowCacheBytes,
      exploreCacheBytes: opts.exploreCacheBytes,
    });
  }
  await store.init();
  return store;
}
