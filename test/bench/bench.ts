// Throughput and memory benchmark: flowlens import against tcpdump (read + write nowhere: the floor
// of reading a capture) and softflowd (a C flow meter), on one large capture, plus the store's
// ingest rate. Information rows show where the time goes: the import without DPI and detection,
// without the store, and without all three; and the DuckDB floor, the time DuckDB itself needs to
// write the import's rows (ingest.ts), and the JavaScript floor, the least a flow meter in JavaScript
// does with the file (js-floor.mjs). `npm run bench` (full) or `npm run bench -- --quick` (smaller capture, fewer runs).
//
// Options: --quick, --runs N, --copies N (real-traffic capture copies), --ingest-rows N,
// --only api (just the API figures of test/bench/api.ts), --only live, --only import (the import
// table and the store ingest rate), --only load (flow paging under load, test/bench/load.ts;
// --load-seconds N sets its measured time, default 20), --only ingest (QuestDB ILP serialise + send
// against a local /write sink in a child process, and the import into QuestDB against it vs DuckDB),
// --only classify (the learned classifier's cost per packet and per flow, not shipped, and an
// import's CPU time with and without it, test/bench/classify.ts),
// --only watchlist (a million-entry watchlist's load time, memory and lookups, test/bench/watchlist.ts),
// --only explore (Explore's p50/p99 and CPU time per request over a day of aggregates, test/bench/explore.ts),
// --only packets (the packet store's write rate beside tcpdump -w, and extracting a flow of ~1,000
// packets from a store of a few GB, test/bench/packets.ts).
// Needs: tcpdump, softflowd (ndpiReader from libndpi-bin and argus from argus-server add their rows);
// capinfos + mergecap + python3 for the real-traffic capture
// (../shared/bench/make-bench-pcap.sh); /usr/bin/time (Debian `time`) or python3 for exact peak RSS.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { formatApiBench, runApiBench } from './api.js';
import { formatClassifyBench, runClassifyBench } from './classify.js';
import { formatExploreBench, runExploreBench } from './explore.js';
import { ensureBuilt, flowlensCommand, REPO_ROOT } from './flowlens.js';
import {
  measureDuckDbFloor,
  measureDuckDbIngest,
  measureIlpSend,
  measureImportBackends,
  measureQuestDbIngest,
  processCost,
  startIlpSink,
  type FloorResult,
  type IngestResult,
} from './ingest.js';
import { formatLiveBench, runLiveBench } from './live.js';
import { formatLoadBench, runLoadBench } from './load.js';
import { measure, median, rusageWrapper, type Measurement } from './measure.js';
import { formatPacketsBench, runPacketsBench } from './packets.js';
import { countPcapRecords, writeSyntheticCapture } from './synth-pcap.js';
import { formatWatchlistBench, runWatchlistBench } from './watchlist.js';

const TARGET_RSS_MB = 300;
/** A run taking longer than this is killed and reported as failed. */
const RUN_TIMEOUT_MS = 10 * 60_000;

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    copies: { type: 'string' },
    'ingest-rows': { type: 'string' },
    only: { type: 'string' },
    'load-seconds': { type: 'string' },
  },
});
const quick = opt.quick ?? false;
const runs = Number(opt.runs ?? (quick ? 1 : 3));
const copies = Number(opt.copies ?? (quick ? 4 : 30));
const ingestRows = Number(opt['ingest-rows'] ?? (quick ? 100_000 : 1_000_000));

const CACHE = join(REPO_ROOT, 'test', '.cache');
const SHARED = join(REPO_ROOT, '..', 'shared');
const MAKE_BENCH = join(SHARED, 'bench', 'make-bench-pcap.sh');

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The benchmark capture (built once, cached) and its packet count. */
function benchCapture(): { path: string; packets: number; origin: string } {
  mkdirSync(CACHE, { recursive: true });
  let path: string;
  let origin: string;
  if (existsSync(MAKE_BENCH)) {
    path = join(CACHE, copies === 30 ? 'bench.pcap' : `bench-${copies}.pcap`);
    origin = `real traffic (nDPI corpus x ${copies} copies)`;
    if (!existsSync(path)) {
      log(`building ${relative(REPO_ROOT, path)} with make-bench-pcap.sh (${copies} copies)...`);
      const r = spawnSync('bash', [MAKE_BENCH, path, String(copies)], { stdio: ['ignore', 'inherit', 'inherit'] });
      if (r.status !== 0) throw new Error(`make-bench-pcap.sh failed (exit ${r.status})`);
    }
  } else {
    const target = Math.round((1_800_000 * copies) / 30);
    path = join(CACHE, `bench-synth-${target}.pcap`);
    origin = `synthetic (../shared absent): ${target} packets`;
    if (!existsSync(path)) {
      log(`../shared is absent: writing a synthetic capture of ${target} packets to ${relative(REPO_ROOT, path)}...`);
      writeSyntheticCapture(path, target);
    }
  }
  const st = statSync(path);
  const meta = `${path}.count.json`;
  try {
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { size: number; mtimeMs: number; packets: number };
    if (m.size === st.size && m.mtimeMs === st.mtimeMs) return { path, packets: m.packets, origin };
  } catch {
    // not counted yet
  }
  const packets = countPcapRecords(path);
  writeFileSync(meta, JSON.stringify({ size: st.size, mtimeMs: st.mtimeMs, packets }));
  return { path, packets, origin };
}

interface ToolResult {
  tool: string;
  runs: Measurement[];
  error?: string;
  note?: string;
}

/** A tool to time: how to start a run, what makes a run a failure, and a note from its runs. */
interface ToolSpec {
  result: ToolResult;
  make: (dir: string) => { cmd: string; args: string[] };
  check: (m: Measurement) => string;
  finish?: (r: ToolResult) => void;
}

/**
 * Times every tool `runs` times in rounds: one run of each tool, in order, then the next round.
 * This machine's speed drifts by a third within an hour, and not alike for every tool: all the
 * runs of one tool, then all of the next, made a ratio compare different moments. A tool that
 * fails is not run again.
 */
async function runInRounds(specs: ToolSpec[]): Promise<ToolResult[]> {
  for (let i = 0; i < runs; i++) {
    for (const { result, make, check } of specs) {
      if (result.error) continue;
      const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-'));
      try {
        const { cmd, args } = make(dir);
        const m = await measure(cmd, args, { cwd: REPO_ROOT, timeoutMs: RUN_TIMEOUT_MS });
        const problem = check(m);
        if (problem) {
          result.error = problem;
          continue;
        }
        result.runs.push(m);
        log(`  round ${i + 1}/${runs}: ${result.tool} ${m.seconds.toFixed(2)} s, peak ${(m.peakRssKb / 1024).toFixed(0)} MB`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  for (const s of specs) s.finish?.(s.result);
  return specs.map((s) => s.result);
}

/**
 * What the speed targets ask of the CPU. A run cannot take less wall time than its CPU time spread
 * over every core, so the medians' CPU seconds give a bound that no scheduling of the same work
 * beats: for the full import, what flowlens-nostore does (decode, flows, hosts, DPI, detection) plus
 * what DuckDB alone spends writing its rows (the DuckDB floor); for decode, flows and hosts,
 * flowlens-base's CPU time. Each is set beside its target's wall time.
 */
function cpuBounds(by: (tool: string) => { sec: number; cpu: number } | undefined, floorCpu: number | null): string[] {
  const cores = availableParallelism();
  const ok = (x: { sec: number; cpu: number } | undefined): x is { sec: number; cpu: number } =>
    x !== undefined && Number.isFinite(x.sec) && Number.isFinite(x.cpu);
  const out: string[] = [];
  const full = by('flowlens');
  const nd = by('ndpiReader');
  const nostore = by('flowlens-nostore');
  if (ok(full) && ok(nd)) {
    out.push(`CPU time: flowlens ${full.cpu.toFixed(2)} s, ${(full.cpu / nd.cpu).toFixed(2)}x ndpiReader's ${nd.cpu.toFixed(2)} s (medians)`);
  }
  if (ok(nd) && ok(nostore) && floorCpu !== null) {
    const target = 0.6 * nd.sec;
    const least = (nostore.cpu + floorCpu) / cores;
    // The CPU the pipeline may use for the target to be reachable at all, every core busy all along.
    const allowed = target * cores - floorCpu;
    out.push(
      `CPU bound, full import: flowlens-nostore's ${nostore.cpu.toFixed(2)} CPU-s and the DuckDB floor's ${floorCpu.toFixed(2)} over ${cores} cores take at least ${least.toFixed(2)} s of wall time, against the target's ${target.toFixed(2)} s (0.6x ndpiReader's ${nd.sec.toFixed(2)} s)` +
        (least > target
          ? `: out of reach unless decode, flows, hosts, DPI and detection take at most ${Math.max(0, allowed).toFixed(2)} CPU-s (${Math.max(0, (100 * allowed) / nostore.cpu).toFixed(0)}% of now) on perfectly busy cores`
          : ': within reach of a schedule that keeps every core busy'),
    );
  }
  const base = by('flowlens-base');
  const soft = by('softflowd');
  if (ok(base) && ok(soft)) {
    const least = base.cpu / cores;
    out.push(
      `CPU bound, decode, flows and hosts: flowlens-base's ${base.cpu.toFixed(2)} CPU-s over ${cores} cores take at least ${least.toFixed(2)} s, against softflowd's ${soft.sec.toFixed(2)} s (${soft.cpu.toFixed(2)} CPU-s)` +
        (least > soft.sec
          ? `: out of reach unless they take at most ${(soft.sec * cores).toFixed(2)} CPU-s (${((100 * soft.sec * cores) / base.cpu).toFixed(0)}% of now)`
          : ''),
    );
  }
  return out;
}

/** The median over rounds of a's time over b's, from the rounds both ran in. */
function medianRatioPerRound(a: ToolResult | undefined, b: ToolResult | undefined): number {
  if (!a || !b || a.error || b.error) return Number.NaN;
  const n = Math.min(a.runs.length, b.runs.length);
  if (n === 0) return Number.NaN;
  return median(Array.from({ length: n }, (_, i) => a.runs[i].seconds / b.runs[i].seconds));
}

/**
 * What country/AS lookups cost the import (#25: within 10%): runs with and without --no-geo
 * alternated, so that a busy machine's drift falls on both; CPU time is the figure (wall time is
 * printed beside it).
 */
async function enrichmentCost(
  fl: { cmd: string; args: string[] },
  capture: string,
): Promise<{ runs: number; geo: { cpu: number; wall: number }; nogeo: { cpu: number; wall: number } } | { error: string }> {
  const n = Math.max(runs, 3);
  log(`enrichment cost: ${n} imports with and ${n} without --no-geo, alternated, CPU time by /usr/bin/time`);
  const geo: { cpu: number; wall: number }[] = [];
  const nogeo: { cpu: number; wall: number }[] = [];
  for (let i = 0; i < n; i++) {
    for (const [extra, into] of [
      [[], geo],
      [['--no-geo'], nogeo],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-geo-'));
      try {
        const r = await processCost(fl.cmd, [...fl.args, 'import', capture, '--db', join(dir, 'bench.duckdb'), '--json', ...extra], REPO_ROOT);
        if (r.code !== 0) return { error: `import${extra.length ? ' --no-geo' : ''} exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}` };
        into.push({ cpu: r.cpuSeconds, wall: r.seconds });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const med = (xs: { cpu: number; wall: number }[]) => ({ cpu: median(xs.map((x) => x.cpu)), wall: median(xs.map((x) => x.wall)) });
  return { runs: n, geo: med(geo), nogeo: med(nogeo) };
}

/**
 * The DuckDB floor (ingest.ts): one more import, untimed, writes the rows that DuckDB alone then
 * writes again, timed.
 */
async function duckDbFloor(fl: { cmd: string; args: string[] }, capture: string): Promise<FloorResult | { error: string }> {
  log("DuckDB floor: the import's rows written by DuckDB alone (INSERT ... SELECT + CHECKPOINT)");
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-bench-'));
  try {
    const db = join(dir, 'bench.duckdb');
    const r = spawnSync(fl.cmd, [...fl.args, 'import', capture, '--db', db, '--json'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
    if (r.status !== 0) return { error: `import exit ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
    const floor = await measureDuckDbFloor(db, runs);
    log(`  ${floor.rows} rows: ${floor.seconds.toFixed(2)} s wall, ${floor.cpuSeconds.toFixed(2)} s CPU (median of ${runs})`);
    return floor;
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function describeFailure(m: Measurement): string {
  return `exit ${m.code}; stderr: ${m.stderr.trim().split('\n').slice(-5).join(' | ')}`;
}

const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** API query latency and live subscriber capacity (test/bench/api.ts). */
async function apiSection(): Promise<void> {
  console.log('');
  const r = await runApiBench(quick ? { flowRows: 50_000, hosts: 80, requests: 15, subscriberSteps: [10, 50, 100], publishSeconds: 2 } : {});
  console.log(formatApiBench(r));
}

/** Flow paging by 50 concurrent clients against `flowlens serve` in a child process (test/bench/load.ts). */
async function loadSection(): Promise<void> {
  console.log('');
  const seconds = Number(opt['load-seconds'] ?? (quick ? 8 : 20));
  const buildError = ensureBuilt();
  if (buildError) log(`WARNING: ${buildError}`);
  try {
    console.log(formatLoadBench(await runLoadBench({ seconds, warmupSeconds: quick ? 3 : 5 })));
  } catch (err) {
    console.log(`flows paging under load: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

/**
 * Live capture (test/bench/live.ts): tcpreplay into a veth, flowlens capture against tcpdump on its
 * peer. Needs root, tcpreplay, editcap; `--only live` runs just this.
 */
async function liveSection(capture: string): Promise<void> {
  console.log('');
  console.log(formatLiveBench(await runLiveBench({ capture, quick })));
}

const TARGET_ILP_ROWS_PER_S = 300_000;

/**
 * QuestDB ILP serialisation + sending of synthetic flow rows (ingest.ts measureIlpSend) against a
 * local /write endpoint in a child process (ilp-sink.mjs: counts rows, answers 204), so that only
 * flowlens's side is in the figure; median of `runs` (at least 3).
 */
async function ilpSection(): Promise<void> {
  console.log('');
  const n = Math.max(3, runs);
  const sink = await startIlpSink();
  try {
    const figures: number[] = [];
    const perCpu: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await measureIlpSend(sink, ingestRows);
      figures.push(r.rowsPerSecond);
      perCpu.push(r.rows / r.cpuSeconds!);
      log(
        `  ILP run ${i + 1}/${n}: ${Math.round(r.rowsPerSecond).toLocaleString('en-US')} rows/s (${r.rows} rows in ${r.seconds.toFixed(2)} s, ${r.cpuSeconds!.toFixed(2)} CPU-s)`,
      );
    }
    const m = median(figures);
    // Per CPU-second of flowlens's process: what a busy machine's wall clock hides.
    log(`  ILP rows per CPU-second of the writer's process: ${Math.round(median(perCpu)).toLocaleString('en-US')}, median of ${n}`);
    console.log(
      `QuestDB ILP serialise + send (${ingestRows} synthetic flow rows, batches of 10000, to a local /write sink in a child process): ${Math.round(m).toLocaleString('en-US')} rows/s, median of ${n}`,
    );
    console.log(`target ILP >= ${TARGET_ILP_ROWS_PER_S.toLocaleString('en-US')} rows/s: ${m >= TARGET_ILP_ROWS_PER_S ? 'PASS' : 'MISS'}`);
  } finally {
    await sink.stop();
  }
  await importBackendsSection();
}

/**
 * flowlens's own wall and CPU time importing the benchmark capture into QuestDB's protocols (a local
 * ILP sink and the tests' fake PostgreSQL-wire server) beside the same import into DuckDB
 * (ingest.ts measureImportBackends). The issue's target, the whole import into QuestDB within 1.3x
 * of DuckDB's wall time, includes QuestDB's own work and needs a real server: not measured here.
 */
async function importBackendsSection(): Promise<void> {
  const cap = benchCapture();
  const buildError = ensureBuilt();
  const fl = flowlensCommand('auto');
  if (buildError) log(`WARNING: ${buildError}\nrunning flowlens as ${fl.how}`);
  log(`import into DuckDB and into QuestDB's protocols (local sink, fake pg), ${runs} run(s) each, alternating...`);
  try {
    const r = await measureImportBackends(fl, cap.path, REPO_ROOT, runs);
    const f = (x: number) => x.toFixed(2);
    console.log(`import of ${relative(REPO_ROOT, cap.path)} (${cap.packets} packets), flowlens's process only, median of ${r.runs}:`);
    console.log(`  into DuckDB:                     ${f(r.duckdb.seconds)} s wall, ${f(r.duckdb.cpuSeconds)} CPU-s`);
    console.log(
      `  into QuestDB (ILP to a local sink, ${r.questdb.rowsSent.toLocaleString('en-US')} rows; pg wire to a fake): ${f(r.questdb.seconds)} s wall, ${f(r.questdb.cpuSeconds)} CPU-s`,
    );
    console.log(
      `  QuestDB/DuckDB, flowlens's side only: wall ${f(r.questdb.seconds / r.duckdb.seconds)}x, CPU ${f(r.questdb.cpuSeconds / r.duckdb.cpuSeconds)}x ` +
        "(QuestDB's own parsing, storing and WAL apply not included: the issue's 1.3x target for the whole import needs a real QuestDB 8 server)",
    );
  } catch (err) {
    console.log(`import into DuckDB vs QuestDB (flowlens's side): FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

/** The packet store (test/bench/packets.ts): write rate beside tcpdump -w, extraction from a store of a few GB. */
async function packetsSection(capture: string): Promise<void> {
  console.log('');
  const r = await runPacketsBench({ capture, storeBytes: quick ? 0.5e9 : 3e9, runs: Math.max(3, runs), log });
  console.log(formatPacketsBench(r));
}

/** The learned classifier (test/bench/classify.ts): collection and prediction costs, and an import's CPU time with and without them. */
async function classifySection(capture: string): Promise<void> {
  console.log('');
  console.log(formatClassifyBench(await runClassifyBench({ capture, runs: Math.max(3, runs), log })));
}

/** Explore over a day of aggregates (test/bench/explore.ts). */
async function exploreSection(): Promise<void> {
  console.log('');
  const r = await runExploreBench(quick ? { flowRows: 50_000, hosts: 80, requests: 20, log } : { log });
  console.log(formatExploreBench(r));
}

function watchlistSection(): void {
  log('watchlist: a million entries, load and lookups...');
  console.log(formatWatchlistBench(runWatchlistBench(runs), runs));
}

async function main(): Promise<void> {
  if (opt.only === 'watchlist') return watchlistSection();
  if (opt.only === 'explore') return exploreSection();
  if (opt.only === 'classify') return classifySection(benchCapture().path);
  if (opt.only === 'ingest') return ilpSection();
  if (opt.only === 'api') return apiSection();
  if (opt.only === 'live') return liveSection(benchCapture().path);
  if (opt.only === 'load') return loadSection();
  if (opt.only === 'packets') return packetsSection(benchCapture().path);
  const missing = ['tcpdump', 'softflowd'].filter((c) => !have(c));
  const cap = benchCapture();
  log(`capture: ${relative(REPO_ROOT, cap.path)}, ${cap.packets} packets, ${(statSync(cap.path).size / 1e6).toFixed(0)} MB, ${cap.origin}`);
  log(`peak RSS via: ${rusageWrapper() === 'none' ? 'polling /proc only (install Debian package `time` for exact figures)' : rusageWrapper()} + /proc polling`);

  const buildError = ensureBuilt();
  // tsc emits JavaScript even when type checking fails, so dist/ may still be up to date then.
  const fl = flowlensCommand('auto');
  if (buildError) log(`WARNING: ${buildError}\nrunning flowlens as ${fl.how}`);

  // Warm the page cache so that the first timed tool does not pay for the disk.
  spawnSync('cat', [cap.path], { stdio: ['ignore', 'ignore', 'ignore'] });

  const specs: ToolSpec[] = [];
  const addTool = (tool: string, make: ToolSpec['make'], check: ToolSpec['check'], finish?: ToolSpec['finish']) => {
    specs.push({ result: { tool, runs: [] }, make, check, finish });
  };
  const exitOk = (m: Measurement) => (m.code === 0 ? '' : describeFailure(m));
  if (!missing.includes('tcpdump')) {
    log('tcpdump -r FILE -w /dev/null');
    addTool('tcpdump', () => ({ cmd: 'tcpdump', args: ['-r', cap.path, '-w', '/dev/null'] }), exitOk);
  }
  if (!missing.includes('softflowd')) {
    // -d: stay in the foreground and exit at the end of the file; -6: track IPv6 too; -m: room for
    // every concurrent flow (the default 8192 forces early expiry); NetFlow goes to the discard
    // port on loopback, nothing leaves the machine. -c none: no control socket. With one, softflowd
    // 1.1.0 reading a file sometimes blocks forever in accept() on it (it depends on the
    // argument strings, e.g. the socket path), so a run would never end.
    log('softflowd -r FILE -d -6 -m 262144 -n 127.0.0.1:9 -c none');
    addTool(
      'softflowd',
      (dir) => ({ cmd: 'softflowd', args: ['-r', cap.path, '-d', '-6', '-m', '262144', '-n', '127.0.0.1:9', '-p', join(dir, 'pid'), '-c', 'none'] }),
      exitOk,
      (r) => {
        const processed = /Packets processed: (\d+)/.exec(r.runs[0]?.stdout ?? '')?.[1];
        if (processed) r.note = `processed ${processed} IP packets`;
      },
    );
  }
  // nDPI's own C tool, full DPI and no store: the issue's reference for the full import's wall time.
  if (have('ndpiReader')) {
    log('ndpiReader -i FILE -q');
    addTool('ndpiReader', () => ({ cmd: 'ndpiReader', args: ['-i', cap.path, '-q'] }), exitOk);
  } else missing.push('libndpi-bin');
  // argus: a C flow meter that also keeps per-flow state both ways (Debian's argus-server).
  if (have('argus')) {
    log('argus -r FILE -w /dev/null');
    addTool('argus', () => ({ cmd: 'argus', args: ['-r', cap.path, '-w', '/dev/null'] }), exitOk);
  } else missing.push('argus-server');
  // The JavaScript floor (js-floor.mjs): reading the file and counting packets per 5-tuple in
  // JavaScript with nothing else, to show how much of softflowd's time that alone takes.
  {
    log('node test/bench/js-floor.mjs FILE');
    let floorFlows = 0;
    addTool(
      'js-floor',
      () => ({ cmd: process.execPath, args: [join(REPO_ROOT, 'test', 'bench', 'js-floor.mjs'), cap.path] }),
      (m) => {
        if (m.code !== 0) return describeFailure(m);
        try {
          const s = JSON.parse(m.stdout) as { packets: number; flows: number };
          if (s.packets !== cap.packets) return `read ${s.packets} of ${cap.packets} packets`;
          floorFlows = s.flows;
          return '';
        } catch {
          return `stdout is not one JSON object: ${m.stdout.slice(0, 200)}`;
        }
      },
      (r) => {
        if (floorFlows) r.note = `read, decode, ${floorFlows} 5-tuples counted; nothing else (information only)`;
      },
    );
  }
  const addFlowlens = (tool: string, extra: string[], note: string) => {
    log(`flowlens import FILE --db <fresh tmp> --json${extra.map((a) => ` ${a}`).join('')}  (${fl.how})`);
    let flowlensPackets = 0;
    addTool(
      tool,
      (dir) => ({ cmd: fl.cmd, args: [...fl.args, 'import', cap.path, '--db', join(dir, 'bench.duckdb'), '--json', ...extra] }),
      (m) => {
        if (m.code !== 0) return describeFailure(m);
        try {
          const s = JSON.parse(m.stdout) as { packets: number; flows: number };
          flowlensPackets = s.packets;
          return '';
        } catch {
          return `stdout is not one JSON object: ${m.stdout.slice(0, 200)}`;
        }
      },
      (r) => {
        if (flowlensPackets) r.note = `reported ${flowlensPackets} packets${note}`;
      },
    );
  };
  addFlowlens('flowlens', [], '');
  // The same import through two decode workers (the records are the same whatever the number).
  addFlowlens('flowlens-w2', ['--workers', '2'], '; --workers 2');
  // The same import without country/AS lookups (#25: enrichment must cost under 10%).
  addFlowlens('flowlens-nogeo', ['--no-geo'], '; --no-geo (no country and AS lookups)');
  // Where the time goes: the same import without DPI and anomaly detection, i.e. what softflowd
  // does (decode, flows) plus per-host aggregates and the store. For information; the targets
  // are the full import's.
  addFlowlens('flowlens-core', ['--no-dpi', '--no-detect'], '; --no-dpi --no-detect');
  // And the full pipeline with no store at all (--dry-run): what the DuckDB writes cost.
  addFlowlens('flowlens-nostore', ['--dry-run'], '; --dry-run (no store)');
  // Decode, flows and hosts alone: the part that does what softflowd does.
  addFlowlens('flowlens-base', ['--dry-run', '--no-dpi', '--no-detect'], '; --dry-run --no-dpi --no-detect');
  log(`${runs} round(s), each running every tool above once, in that order`);
  const results = await runInRounds(specs);
  const floor = await duckDbFloor(fl, cap.path);
  const enrichment = await enrichmentCost(fl, cap.path);

  // ---- table
  const rows = results.map((r) => {
    if (!r.runs.length) return { tool: r.tool, pps: NaN, sec: NaN, cpu: NaN, mb: NaN, r };
    const sec = median(r.runs.map((m) => m.seconds));
    const cpu = median(r.runs.map((m) => m.cpuSeconds));
    return { tool: r.tool, pps: cap.packets / sec, sec, cpu, mb: Math.max(...r.runs.map((m) => m.peakRssKb)) / 1024, r };
  });
  const out: string[] = [];
  out.push('');
  out.push(`capture ${relative(REPO_ROOT, cap.path)}: ${cap.packets} packets (${cap.origin}); ${runs} run(s) each, medians`);
  out.push(`${pad('tool', 18)}${lpad('packets/s', 13)}${lpad('seconds', 10)}${lpad('CPU s', 8)}${lpad('peak RSS MB', 13)}  notes`);
  const num = (x: number, digits: number) => (Number.isNaN(x) ? '-' : x.toFixed(digits));
  for (const x of rows) {
    const note = x.r.error ? `FAILED: ${x.r.error}` : (x.r.note ?? '');
    out.push(
      `${pad(x.tool, 18)}${lpad(Number.isNaN(x.pps) ? '-' : Math.round(x.pps).toLocaleString('en-US'), 13)}${lpad(num(x.sec, 2), 10)}${lpad(num(x.cpu, 2), 8)}${lpad(num(x.mb, 0), 13)}  ${note}`,
    );
  }
  for (const m of missing) out.push(`${pad(m, 18)} not installed (apt-get install ${m})`);
  const by = (t: string) => rows.find((x) => x.tool === t);
  const f = by('flowlens');
  const ratio = (t: string, of = f) => {
    const o = by(t);
    return of && o && !Number.isNaN(of.pps) && !Number.isNaN(o.pps) ? of.pps / o.pps : NaN;
  };
  const fixed = (x: number) => (Number.isNaN(x) ? 'n/a' : x.toFixed(3));
  out.push('');
  out.push(`flowlens/tcpdump throughput:   ${fixed(ratio('tcpdump'))}`);
  out.push(`flowlens/softflowd throughput: ${fixed(ratio('softflowd'))}`);
  out.push(`flowlens-core/softflowd throughput: ${fixed(ratio('softflowd', by('flowlens-core')))} (no DPI, no detection; information only)`);
  out.push(`flowlens-nostore/softflowd throughput: ${fixed(ratio('softflowd', by('flowlens-nostore')))} (DPI and detection, no store; information only)`);
  out.push(
    `flowlens-base/softflowd throughput: ${fixed(ratio('softflowd', by('flowlens-base')))} (decode, flows and hosts only: no DPI, no detection, no store; information only)`,
  );
  const soft = by('softflowd');
  const jsFloor = by('js-floor');
  if (jsFloor && soft && !Number.isNaN(jsFloor.sec) && !Number.isNaN(soft.sec)) {
    out.push(
      `JS floor: reading and counting 5-tuples in JavaScript, nothing else: ${jsFloor.sec.toFixed(2)} s = ${(jsFloor.sec / soft.sec).toFixed(2)}x softflowd's whole run`,
    );
  }
  if ('error' in floor) out.push(`DuckDB floor: FAILED: ${floor.error}`);
  else {
    const share = soft && !Number.isNaN(soft.sec) ? ` = ${(floor.seconds / soft.sec).toFixed(2)}x softflowd's whole run` : '';
    out.push(
      `DuckDB floor: DuckDB alone writing the import's ${floor.rows.toLocaleString('en-US')} rows (INSERT ... SELECT from memory, then CHECKPOINT, 1 thread): ${floor.seconds.toFixed(2)} s wall, ${floor.cpuSeconds.toFixed(2)} s CPU${share}`,
    );
  }
  out.push(`enrichment (country lookups, default database) throughput ratio flowlens/flowlens-nogeo from the table: ${fixed(ratio('flowlens-nogeo'))}`);
  if ('error' in enrichment) out.push(`enrichment cost: FAILED: ${enrichment.error}`);
  else {
    const cpu = enrichment.geo.cpu / enrichment.nogeo.cpu;
    out.push(
      `enrichment cost, ${enrichment.runs} alternated runs each, medians: CPU ${enrichment.geo.cpu.toFixed(2)} s with lookups vs ${enrichment.nogeo.cpu.toFixed(2)} s --no-geo (${cpu.toFixed(3)}x), wall ${enrichment.geo.wall.toFixed(2)} vs ${enrichment.nogeo.wall.toFixed(2)} s (${(enrichment.geo.wall / enrichment.nogeo.wall).toFixed(3)}x); target (CPU, what lookups cost) within 10%: ${cpu <= 1.1 ? 'PASS' : 'MISS'}`,
    );
  }
  // Wall time against ndpiReader's on the same file: the issue's target is at most 0.6x. Judged on
  // the median of the rounds' ratios, each of runs made minutes apart (runInRounds).
  for (const t of ['flowlens', 'flowlens-w2']) {
    const perRound = medianRatioPerRound(by(t)?.r, by('ndpiReader')?.r);
    const nd = ratio('ndpiReader', by(t));
    out.push(
      `${t}: wall time ${Number.isNaN(perRound) ? 'n/a' : perRound.toFixed(3)}x ndpiReader's (median of the rounds' ratios; ratio of the medians ${Number.isNaN(nd) ? 'n/a' : (1 / nd).toFixed(3)}x); target <= 0.6x: ${Number.isNaN(perRound) ? 'n/a' : perRound <= 0.6 ? 'PASS' : 'MISS'}`,
    );
  }
  const thr = ratio('softflowd');
  out.push(`target throughput >= softflowd: ${Number.isNaN(thr) ? 'n/a' : thr >= 1 ? 'PASS' : 'MISS'}`);
  // Throughput ratio from the rounds: softflowd's time over flowlens-base's, median of the rounds.
  const baseRounds = medianRatioPerRound(by('softflowd')?.r, by('flowlens-base')?.r);
  out.push(
    `target decode, flows and hosts alone (flowlens-base) >= softflowd: ${Number.isNaN(baseRounds) ? 'n/a' : baseRounds >= 1 ? 'PASS' : 'MISS'} (${fixed(baseRounds)}, median of the rounds' ratios; ${fixed(ratio('softflowd', by('flowlens-base')))} from the medians)`,
  );
  out.push(`flowlens/argus throughput: ${fixed(ratio('argus'))}; flowlens/ndpiReader throughput: ${fixed(ratio('ndpiReader'))}`);
  out.push(...cpuBounds(by, 'error' in floor ? null : floor.cpuSeconds));
  out.push(
    `target peak memory < ${TARGET_RSS_MB} MB: ${f && !Number.isNaN(f.mb) ? `${f.mb < TARGET_RSS_MB ? 'PASS' : 'MISS'} (${f.mb.toFixed(0)} MB)` : 'n/a'}`,
  );
  if (f && !Number.isNaN(f.mb)) out.push(`(peak RSS source for flowlens: ${f.r.runs.map((m) => m.rssSource).join(', ')})`);
  console.log(out.join('\n'));

  // ---- store ingest
  console.log('');
  console.log(`store ingest: ${ingestRows} synthetic flow records, batches of 10000, then flush`);
  const ingest = async (label: string, fn: () => Promise<IngestResult>) => {
    try {
      const r = await fn();
      console.log(`${pad(label, 9)} ${lpad(Math.round(r.rowsPerSecond).toLocaleString('en-US'), 12)} rows/s  (${r.rows} rows in ${r.seconds.toFixed(2)} s)`);
    } catch (err) {
      console.log(`${pad(label, 9)} FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  await ingest('DuckDB:', () => measureDuckDbIngest(ingestRows));
  const qIlp = process.env.FLOWLENS_QUESTDB;
  const qPg = process.env.FLOWLENS_QUESTDB_PG;
  if (qIlp && qPg) await ingest('QuestDB:', () => measureQuestDbIngest(qIlp, qPg, ingestRows));
  else console.log('QuestDB: not configured (set FLOWLENS_QUESTDB and FLOWLENS_QUESTDB_PG)');

  if (opt.only !== 'import') {
    await liveSection(cap.path);
    await apiSection();
    await exploreSection();
    await loadSection();
    watchlistSection();
    await classifySection(cap.path);
    await packetsSection(cap.path);
  }

  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
