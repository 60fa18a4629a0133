// Store ingest figure: synthetic flow records written through the FlowStore interface in batches of
// 10,000 rows, then flushed; rows per second over the whole write + flush.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlowRecord, RecordBatch } from '../../src/store/types.js';
import { median } from './measure.js';
import type { StoreOptions } from '../../src/store/index.js';

export const BATCH_ROWS = 10_000;

export interface IngestResult {
  backend: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
}

const APPS = ['', 'TLS', 'HTTP', 'DNS', 'QUIC', 'SSH'];

function syntheticBatch(start: number, rows: number, baseUs: number): RecordBatch {
  const flows: FlowRecord[] = new Array(rows);
  for (let k = 0; k < rows; k++) {
    const i = start + k;
    const ts = baseUs + i * 1000;
    const tcp = i % 4 !== 0;
    flows[k] = {
      ts,
      flowId: (0x1000000000000 + i).toString(16).padStart(16, '0'),
      node: 'bench',
      iface: 'bench.pcap',
      firstSeen: ts,
      lastSeen: ts + 250_000,
      transport: tcp ? 'tcp' : 'udp',
      ipProto: tcp ? 6 : 17,
      clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      clientPort: 1024 + (i % 60000),
      serverIp: `198.51.${(i >> 8) & 15}.${i & 255}`,
      serverPort: tcp ? 443 : 53,
      clientPackets: 1 + (i % 17),
      clientBytes: 60 + (i % 17) * 300,
      serverPackets: i % 13,
      serverBytes: (i % 13) * 1200,
      clientTcpFlags: tcp ? 0x1b : 0,
      serverTcpFlags: tcp ? 0x1b : 0,
      tcpState: tcp ? 'closed' : '',
      final: true,
      app: APPS[i % APPS.length],
      serverName: i % 3 === 0 ? `host${i % 1000}.example.com` : '',
      confidence: 'dpi',
      firstPackets: '+74 -74 +66',
      appInfo: '',
      duration: 0,
      endReason: '',
    };
  }
  return { flows, hosts: [], traffic: [] };
}

/** Writes `rows` synthetic flow records through openStore(opts) and flushes. */
export async function measureIngest(opts: StoreOptions, rows: number): Promise<IngestResult> {
  const { openStore } = await import('../../src/store/index.js');
  const store = await openStore(opts);
  // Distinct time per run so repeated runs against one QuestDB do not collide on (ts, flowId).
  const baseUs = Date.now() * 1000;
  // Batches are built before timing: the figure is the store's, not the generator's.
  const batches: RecordBatch[] = [];
  for (let start = 0; start < rows; start += BATCH_ROWS) batches.push(syntheticBatch(start, Math.min(BATCH_ROWS, rows - start), baseUs));
  try {
    const t0 = process.hrtime.bigint();
    for (const b of batches) await store.write(b);
    await store.flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { backend: store.backend, rows, seconds, rowsPerSecond: rows / seconds };
  } finally {
    await store.close();
  }
}

/** DuckDB ingest into a fresh temporary database file. */
export async function measureDuckDbIngest(rows: number): Promise<IngestResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-ingest-'));
  try {
    return await measureIngest({ db: join(dir, 'ingest.duckdb') }, rows);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** QuestDB ingest (ILP + PG wire URLs), with a temporary outage spool directory. */
export async function measureQuestDbIngest(ilp: string, pg: string, rows: number): Promise<IngestResult> {
  const spoolDir = mkdtempSync(join(tmpdir(), 'flowlens-bench-spool-'));
  try {
    return await measureIngest({ questdb: ilp, questdbPg: pg, spoolDir }, rows);
  } finally {
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

export interface FloorResult {
  rows: number;
  /** Median wall seconds and CPU seconds of the timed part. */
  seconds: number;
  cpuSeconds: number;
}

/**
 * What DuckDB itself needs to store the rows of an import, with no flowlens code in the way: the
 * import's flows, hosts and traffic tables (from `source`, a database an import wrote) are loaded
 * into memory untimed; then, timed, they are inserted into a fresh database file with one
 * INSERT ... SELECT per table and checkpointed, with one DuckDB thread as an import uses. No
 * design that keeps these rows in DuckDB can write them in less.
 */
export async function measureDuckDbFloor(source: string, runs: number): Promise<FloorResult> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-floor-'));
  const tables = ['flows', 'hosts', 'traffic'];
  const walls: number[] = [];
  const cpus: number[] = [];
  let rows = 0;
  try {
    for (let run = 0; run < runs; run++) {
      const path = join(dir, `floor-${run}.duckdb`);
      const instance = await DuckDBInstance.create(path, { threads: '1' });
      const conn = await instance.connect();
      try {
        await conn.run(`ATTACH '${source.replaceAll("'", "''")}' AS src (READ_ONLY)`);
        rows = 0;
        for (const t of tables) {
          await conn.run(`CREATE TABLE ${t} AS SELECT * FROM src.${t} LIMIT 0`);
          await conn.run(`CREATE TEMP TABLE mem_${t} AS SELECT * FROM src.${t}`);
          const count = await conn.runAndReadAll(`SELECT count(*) FROM mem_${t}`);
          rows += Number(count.getRows()[0][0]);
        }
        await conn.run('DETACH src');
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        for (const t of tables) await conn.run(`INSERT INTO ${t} SELECT * FROM mem_${t}`);
        await conn.run('CHECKPOINT');
        walls.push(Number(process.hrtime.bigint() - t0) / 1e9);
        const cpu = process.cpuUsage(cpu0);
        cpus.push((cpu.user + cpu.system) / 1e6);
      } finally {
        conn.closeSync();
        instance.closeSync();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, seconds: median(walls), cpuSeconds: median(cpus) };
}
