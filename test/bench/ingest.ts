// Store ingest figure: synthetic flow records written through the FlowStore interface in batches of
// 10,000 rows, then flushed; rows per second over the whole write + flush.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { emptyRecord, FLOW } from '../../src/records/index.js';
import type { FlowRecord, RecordBatch } from '../../src/store/types.js';
import { median } from './measure.js';
import type { StoreOptions } from '../../src/store/index.js';

const EMPTY_FLOW = emptyRecord(FLOW);

/**
 * A full garbage collection, so that the records built before timing are in the old generation
 * when it starts: otherwise the timed writes pay for promoting a million pre-built records, which an
 * import (whose records are written soon after they are made, and die young) never does.
 */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export const BATCH_ROWS = 10_000;

export interface IngestResult {
  backend: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  /** CPU time of this process over the timed part (the ILP figure: the sink runs in a child). */
  cpuSeconds?: number;
}

const APPS = ['', 'TLS', 'HTTP', 'DNS', 'QUIC', 'SSH'];

export function syntheticBatch(start: number, rows: number, baseUs: number): RecordBatch {
  const flows: FlowRecord[] = new Array(rows);
  for (let k = 0; k < rows; k++) {
    const i = start + k;
    const ts = baseUs + i * 1000;
    const tcp = i % 4 !== 0;
    flows[k] = {
      ...EMPTY_FLOW,
      ts,
      flowId: (0x1000000000000 + i).toString(16).padStart(16, '0'),
      node: 'bench',
      source: '',
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
  collectGarbage();
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

/** The ILP sink (ilp-sink.mjs) in a child process: its port, the rows it counted, and a stop. */
export interface IlpSink {
  port: number;
  count(): Promise<number>;
  stop(): Promise<void>;
}

export async function startIlpSink(): Promise<IlpSink> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [join(import.meta.dirname, 'ilp-sink.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.on('exit', (code) => reject(new Error(`ilp-sink exited (${code})`)));
  });
  return {
    port,
    async count() {
      const r = await fetch(`http://127.0.0.1:${port}/count`);
      return Number(await r.text());
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * QuestDB ILP serialisation and sending alone: `rows` synthetic flow records written through the
 * ILP writer (createIlpWriter: serialiser, spooling writer, HTTP transport) to `port` (an
 * ilp-sink), in batches of BATCH_ROWS, then flushed; rows per second over write + flush. The sink
 * must have counted every row, or the run fails.
 */
export async function measureIlpSend(sink: IlpSink, rows: number): Promise<IngestResult> {
  const { createIlpWriter } = await import('../../src/store/questdb.js');
  const spoolDir = mkdtempSync(join(tmpdir(), 'flowlens-bench-spool-'));
  const { pino } = await import('pino');
  const w = await createIlpWriter({ ilp: `http://127.0.0.1:${sink.port}`, spoolDir, log: pino({ level: 'warn' }, pino.destination(2)) });
  w.writer.start();
  const baseUs = Date.now() * 1000;
  const batches: RecordBatch[] = [];
  for (let start = 0; start < rows; start += BATCH_ROWS) batches.push(syntheticBatch(start, Math.min(BATCH_ROWS, rows - start), baseUs));
  collectGarbage();
  try {
    const before = await sink.count();
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    for (const b of batches) await w.write(b);
    await w.writer.flush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const counted = (await sink.count()) - before;
    if (counted !== rows) throw new Error(`the sink counted ${counted} rows of ${rows}`);
    const spooled = w.writer.state().spool.batches;
    if (spooled) throw new Error(`${spooled} batches went to the spool`);
    return { backend: 'questdb-ilp', rows, seconds, rowsPerSecond: rows / seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  } finally {
    await w.close();
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

/** Wall and CPU time (user + system) of one process, from GNU time. */
export interface ProcessCost {
  code: number | null;
  seconds: number;
  cpuSeconds: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` under /usr/bin/time (Debian `time`) for its CPU seconds; wall time by the clock. */
export async function processCost(cmd: string, args: string[], cwd: string): Promise<ProcessCost> {
  const { spawn } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  const out = join(tmpdir(), `flowlens-bench-cost-${process.pid}-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', out, cmd, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      let cpuSeconds = Number.NaN;
      try {
        const [user, sys] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        cpuSeconds = user! + sys!;
      } catch {
        // no figure: reported as NaN
      }
      rmSync(out, { force: true });
      resolve({ code, seconds, cpuSeconds, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() });
    });
  });
}

export interface ImportBackendsResult {
  runs: number;
  duckdb: { seconds: number; cpuSeconds: number };
  questdb: { seconds: number; cpuSeconds: number; rowsSent: number };
}

/**
 * flowlens's own cost of importing `capture` with each back end, runs alternating: into DuckDB (a
 * fresh file), and into QuestDB's protocols with no QuestDB behind them: ILP/HTTP to ilp-sink.mjs
 * (a child process that counts rows and answers 204) and PostgreSQL wire to the tests' fake server
 * (test/helpers/fake-questdb.ts, in this process: canned answers to the start-up's DDL and
 * metadata reads, and a WAL that reports itself applied at once). Wall and CPU seconds are the
 * flowlens process's alone: QuestDB's parsing, storing and WAL apply are not in them, so this is
 * not the issue's "whole import into QuestDB" figure, only flowlens's side of it. Each QuestDB run
 * must exit 0 with its rows counted by the sink and its spool empty.
 */
export async function measureImportBackends(fl: { cmd: string; args: string[] }, capture: string, cwd: string, runs: number): Promise<ImportBackendsResult> {
  const { startFakePg } = await import('../helpers/fake-questdb.js');
  const sink = await startIlpSink();
  const pg = await startFakePg();
  const duck: ProcessCost[] = [];
  const quest: ProcessCost[] = [];
  let rowsSent = 0;
  try {
    for (let run = 0; run < runs; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-backends-'));
      try {
        const d = await processCost(fl.cmd, [...fl.args, 'import', capture, '--db', join(dir, 'bench.duckdb'), '--json'], cwd);
        if (d.code !== 0) throw new Error(`DuckDB import exit ${d.code}: ${d.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        duck.push(d);
        const spoolDir = join(dir, 'spool');
        const before = await sink.count();
        const q = await processCost(
          fl.cmd,
          [
            ...fl.args,
            'import',
            capture,
            '--questdb',
            `http://127.0.0.1:${sink.port}`,
            '--questdb-pg',
            pg.url,
            '--spool-dir',
            spoolDir,
            '--spool-wait',
            '10',
            '--json',
          ],
          cwd,
        );
        if (q.code !== 0) throw new Error(`QuestDB import exit ${q.code}: ${q.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        rowsSent = (await sink.count()) - before;
        if (rowsSent === 0) throw new Error('the QuestDB import sent no rows');
        quest.push(q);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await pg.close();
    await sink.stop();
  }
  const med = (xs: ProcessCost[], k: 'seconds' | 'cpuSeconds') => median(xs.map((x) => x[k]));
  return {
    runs,
    duckdb: { seconds: med(duck, 'seconds'), cpuSeconds: med(duck, 'cpuSeconds') },
    questdb: { seconds: med(quest, 'seconds'), cpuSeconds: med(quest, 'cpuSeconds'), rowsSent },
  };
}
