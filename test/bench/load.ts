// Flow paging under load (`npm run bench -- --only load`): 50 concurrent HTTP clients page through
// `flows(first: 100, after: cursor, filter, orderBy)` with totalCount, over a store holding a day of
// aggregates (api.ts's synthetic day: ~300,000 flow segments), against `flowlens serve` running as
// a child process so that its memory is its own. Targets: at least 300 requests/s, p99 under
// 250 ms, no errors, server peak RSS under 500 MB.
//
// The load generator is this process: each client is a loop of keep-alive HTTP requests on its own
// socket; a client pages one scenario (filter x order) for up to PAGES_PER_SCENARIO pages following
// endCursor, then moves on to the next scenario. A warm-up phase comes first (reported apart): the
// first page of each scenario is the costly one.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BUSY_HOST, DAY_START_US, FLOW_FIELDS, percentile, syntheticDay } from './api.js';
import { flowlensCommand, REPO_ROOT } from './flowlens.js';

export const LOAD_TARGETS = { requestsPerSecond: 300, p99Ms: 250, rssMb: 500 };

export interface LoadBenchOptions {
  /** Flow segments over the day (default 300,000). */
  flowRows?: number;
  hosts?: number;
  connections?: number;
  /** Measured seconds (default 20) after `warmupSeconds` (default 5). */
  seconds?: number;
  warmupSeconds?: number;
  /** Extra node flags for the server (e.g. --cpu-prof to profile it). */
  serverNodeArgs?: string[];
  log?: (msg: string) => void;
}

export interface LoadPhase {
  seconds: number;
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  firstError?: string;
}

export interface LoadBenchResult {
  /** The server's error-level log lines (pino JSON, level >= 50), at most 5, when any request failed. */
  serverErrors: string[];
  flowRows: number;
  connections: number;
  scenarios: number;
  warmup: LoadPhase;
  measured: LoadPhase;
  /** Server's peak resident memory (VmHWM) and its RSS at the end, MB. */
  serverPeakRssMb: number;
  serverEndRssMb: number;
  how: string;
}

const PAGES_PER_SCENARIO = 10;

const QUERY = `query Flows($from: DateTime, $to: DateTime, $filter: FlowFilter, $after: String, $orderBy: FlowOrder) {
  flows(from: $from, to: $to, filter: $filter, first: 100, after: $after, orderBy: $orderBy) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { ${FLOW_FIELDS} } } } }`;

/** Filters x orders the clients page through. */
function scenarios(): { filter: Record<string, unknown> | null; orderBy: 'TIME' | 'BYTES' }[] {
  const filters: (Record<string, unknown> | null)[] = [
    null,
    { host: BUSY_HOST },
    { app: 'TLS' },
    { transport: 'udp' },
    { port: 443 },
    { host: BUSY_HOST, app: 'TLS' },
    { minBytes: 100_000 },
    { app: 'DNS', transport: 'udp' },
  ];
  return filters.flatMap((filter) => [
    { filter, orderBy: 'TIME' as const },
    { filter, orderBy: 'BYTES' as const },
  ]);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function readKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** A pino JSON line at error level or above (50 error, 60 fatal). */
function isErrorLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return Number((JSON.parse(line) as { level?: unknown }).level) >= 50;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POSTs a GraphQL request; resolves with the parsed body or rejects with a short reason. */
function post(agent: Agent, port: number, body: string): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          try {
            const parsed = JSON.parse(text) as { data?: any; errors?: { message: string }[] };
            if (parsed.errors?.length || !parsed.data) return reject(new Error(`GraphQL: ${JSON.stringify(parsed.errors ?? parsed).slice(0, 200)}`));
            resolve(parsed.data);
          } catch (err) {
            reject(err);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function waitReady(port: number, child: { exitCode: number | null }, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`flowlens serve exited with ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`flowlens serve did not answer /health within ${timeoutMs} ms`);
    await sleep(100);
  }
}

export async function runLoadBench(opts: LoadBenchOptions = {}): Promise<LoadBenchResult> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  const connections = opts.connections ?? 50;
  const seconds = opts.seconds ?? 20;
  const warmupSeconds = opts.warmupSeconds ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-load-'));
  const db = join(dir, 'day.duckdb');
  let flowRows = 0;
  try {
    // ---- the day, written and closed before the server opens the file (one writer per file)
    const { openStore } = await import('../../src/store/index.js');
    const store = await openStore({ db });
    const tf = performance.now();
    try {
      for (const b of syntheticDay({ flowRows: opts.flowRows ?? 300_000, hosts: opts.hosts ?? 300 })) {
        flowRows += b.flows.length;
        await store.write(b);
      }
      await store.flush();
    } finally {
      await store.close();
    }
    log(`load: a day of ${flowRows} flow segments written in ${((performance.now() - tf) / 1000).toFixed(1)} s`);

    // ---- the server
    const port = await freePort();
    const fl = flowlensCommand('auto');
    const child = spawn(
      fl.cmd,
      [...(opts.serverNodeArgs ?? []), ...fl.args, '--log-level', 'warn', 'serve', '--db', db, '--host', '127.0.0.1', '--port', String(port)],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    // The tail of stderr, and apart every error-level line (the masked resolver errors, with `err`).
    const errorLines: string[] = [];
    let partial = '';
    child.stderr.on('data', (d: Buffer) => {
      const text = d.toString('utf8');
      stderr = (stderr + text).slice(-20_000);
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (errorLines.length < 5 && isErrorLine(line)) errorLines.push(line.slice(0, 2000));
    });
    const pid = child.pid!;
    let peakPolledKb = 0;
    const poll = setInterval(() => {
      peakPolledKb = Math.max(peakPolledKb, readKb(pid, 'VmRSS'));
    }, 100);
    try {
      await waitReady(port, child, 60_000);
      log(`load: flowlens serve (${fl.how}) on 127.0.0.1:${port}, pid ${pid}, RSS ${(readKb(pid, 'VmRSS') / 1024).toFixed(0)} MB`);

      // ---- clients
      const from = new Date(DAY_START_US / 1000).toISOString();
      const to = new Date(DAY_START_US / 1000 + 86_400_000).toISOString();
      const list = scenarios();
      const agent = new Agent({ keepAlive: true, maxSockets: connections });
      let phase: { latencies: number[]; errors: number; firstError?: string } = { latencies: [], errors: 0 };
      let stop = false;
      const client = async (i: number) => {
        let s = i % list.length;
        let after: string | null = null;
        let pages = 0;
        while (!stop) {
          const sc = list[s];
          const body = JSON.stringify({ query: QUERY, variables: { from, to, filter: sc.filter, after, orderBy: sc.orderBy } });
          const current = phase;
          const t0 = performance.now();
          try {
            const data = await post(agent, port, body);
            current.latencies.push(performance.now() - t0);
            const page = data.flows;
            if (typeof page.totalCount !== 'number' || !Array.isArray(page.edges)) throw new Error('no totalCount or edges');
            pages++;
            if (page.pageInfo.hasNextPage && pages < PAGES_PER_SCENARIO) {
              after = page.pageInfo.endCursor;
              continue;
            }
          } catch (err) {
            current.errors++;
            current.firstError ??= err instanceof Error ? err.message : String(err);
          }
          after = null;
          pages = 0;
          s = (s + 1) % list.length;
        }
      };
      const runPhase = async (secs: number): Promise<LoadPhase> => {
        phase = { latencies: [], errors: 0 };
        const p = phase;
        const t0 = performance.now();
        await sleep(secs * 1000);
        const elapsed = (performance.now() - t0) / 1000;
        const done = p.latencies.length;
        return {
          seconds: elapsed,
          requests: done,
          errors: p.errors,
          requestsPerSecond: done / elapsed,
          p50Ms: percentile(p.latencies, 50),
          p99Ms: percentile(p.latencies, 99),
          maxMs: p.latencies.length ? Math.max(...p.latencies) : NaN,
          firstError: p.firstError,
        };
      };
      const clients = Array.from({ length: connections }, (_, i) => client(i));
      const warmup = await runPhase(warmupSeconds);
      log(`load: warm-up ${warmup.requests} requests, ${warmup.requestsPerSecond.toFixed(0)}/s, p99 ${warmup.p99Ms.toFixed(0)} ms, ${warmup.errors} errors`);
      const measured = await runPhase(seconds);
      stop = true;
      await Promise.all(clients);
      agent.destroy();
      const serverPeakRssMb = Math.max(readKb(pid, 'VmHWM'), peakPolledKb) / 1024;
      const serverEndRssMb = readKb(pid, 'VmRSS') / 1024;
      return { flowRows, connections, scenarios: list.length, warmup, measured, serverPeakRssMb, serverEndRssMb, how: fl.how, serverErrors: errorLines };
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\nserver stderr: ${stderr.slice(-2000)}`);
    } finally {
      clearInterval(poll);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const exited = new Promise((r) => child.once('exit', r));
        if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) child.kill('SIGKILL');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures as printed by `npm run bench`. */
export function formatLoadBench(r: LoadBenchResult): string {
  const t = LOAD_TARGETS;
  const m = r.measured;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  const line = (name: string, p: LoadPhase) =>
    `${name.padEnd(9)}${p.requests.toString().padStart(9)}${p.requestsPerSecond.toFixed(0).padStart(8)}${p.p50Ms.toFixed(1).padStart(9)}${p.p99Ms.toFixed(1).padStart(9)}${p.maxMs.toFixed(0).padStart(8)}${p.errors.toString().padStart(8)}`;
  const out = [
    `flows paging under load: ${r.connections} concurrent HTTP clients, flows(first: 100, after: cursor, ${r.scenarios} filter x order scenarios) with totalCount,`,
    `over a day of ${r.flowRows} flow segments (DuckDB), server: flowlens serve (${r.how}) in its own process`,
    `${'phase'.padEnd(9)}${'requests'.padStart(9)}${'req/s'.padStart(8)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'max ms'.padStart(8)}${'errors'.padStart(8)}`,
    line('warm-up', r.warmup),
    line('measured', m),
    `server RSS: peak ${r.serverPeakRssMb.toFixed(0)} MB, at the end ${r.serverEndRssMb.toFixed(0)} MB`,
  ];
  if (m.firstError) out.push(`first error: ${m.firstError}`);
  for (const line of r.serverErrors) out.push(`server error log: ${line}`);
  out.push(`target >= ${t.requestsPerSecond} req/s: ${verdict(m.requestsPerSecond >= t.requestsPerSecond)} (${m.requestsPerSecond.toFixed(0)})`);
  out.push(`target p99 < ${t.p99Ms} ms: ${verdict(m.p99Ms < t.p99Ms)} (${m.p99Ms.toFixed(0)} ms)`);
  out.push(`target no errors: ${verdict(m.errors === 0 && m.requests > 0)} (${m.errors})`);
  out.push(`target server peak RSS < ${t.rssMb} MB: ${verdict(r.serverPeakRssMb < t.rssMb)} (${r.serverPeakRssMb.toFixed(0)} MB)`);
  return out.join('\n');
}
