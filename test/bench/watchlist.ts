// Watchlist bench: a threat-intel list of a million entries (IPv4 and IPv6 addresses, CIDR prefixes
// of several lengths, domains, JA4 fingerprints, as a feed ships them: comments and a CSV header),
// loaded by parseWatchlist in a child process of its own (so that its heap and RSS are the list's),
// then looked up: addresses (half listed), server names with subdomains (half listed), JA4.
// `npm run bench -- --only watchlist`, or `node --import tsx test/bench/watchlist.ts [RUNS]`.
// Target: the million entries load in at most 5 s (CPU time, and wall time on an idle machine).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './measure.js';

export const TARGET_LOAD_S = 5;
const ENTRIES = 1_000_000;
const LOOKUPS = 1_000_000;

/** Deterministic pseudo-random numbers (xorshift32), so that every run reads the same list. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const hex = (r: () => number, n: number) =>
  Array.from({ length: n }, () =>
    Math.floor(r() * 16)
      .toString(16)
      .toLowerCase(),
  ).join('');

type Kind = 'address' | 'prefix' | 'name' | 'ja4';

/**
 * Entry i of the list, all distinct: 40% IPv4 addresses, 5% IPv4 prefixes (/16 to /30, in 100.64/10),
 * 5% IPv6 (addresses and /48s), 40% domains, 10% JA4.
 */
function entry(i: number, r: () => number): [Kind, string] {
  const k = i % 20;
  if (k < 8) return ['address', `${10 + ((i >>> 24) & 63)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`];
  if (k < 9) {
    const len = 16 + (i % 15);
    // Prefix j (one per 20 entries) of length len: distinct values for distinct (j, len).
    const j = Math.floor(i / 20);
    const base = ((100 << 24) | (64 << 16)) >>> 0;
    const value = (base + ((j << (32 - len)) >>> 0)) >>> 0;
    return ['prefix', `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}/${len}`];
  }
  if (k < 10)
    return i % 2 ? ['address', `2001:db8:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`] : ['prefix', `2001:db9:${(i >>> 4).toString(16)}::/48`];
  if (k < 18) return ['name', `x${hex(r, 8)}-${i}.${['example', 'bad', 'c2', 'phish'][i % 4]}.${['com', 'net', 'org', 'ru', 'top'][i % 5]}`];
  return ['ja4', `t13d${String(1000 + (i % 9000)).padStart(4, '0')}h2_${hex(r, 12)}_${hex(r, 12)}`];
}

export function writeMillionList(path: string): [Kind, string][] {
  const r = rng(23);
  const lines = ['indicator,type,first_seen', '# generated for the bench'];
  const sample: [Kind, string][] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const [kind, e] = entry(i, r);
    lines.push(i % 3 === 0 ? `${e},ioc,2026-01-01` : e);
    if (i % 47 === 0) sample.push([kind, e]);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
  return sample;
}

export interface WatchlistChildResult {
  entries: number;
  loadSec: number;
  /** CPU time of the load (user + system): what it costs on a machine shared with other work. */
  loadCpuSec: number;
  heapMB: number;
  rssMB: number;
  addressNs: number;
  nameNs: number;
  ja4Ns: number;
  addressHits: number;
  nameHits: number;
  ja4Hits: number;
}

/** In the child: loads the list and times lookups. */
async function child(path: string, samplePath: string): Promise<void> {
  const { readFileSync } = await import('node:fs');
  const { parseWatchlist } = await import('../../src/alert/watchlist.js');
  const sample = JSON.parse(readFileSync(samplePath, 'utf8')) as [Kind, string][];
  globalThis.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const rss0 = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const list = parseWatchlist(path, readFileSync(path, 'utf8'));
  const loadSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const loadCpuSec = (cpu.user + cpu.system) / 1e6;
  globalThis.gc?.();
  const heapMB = (process.memoryUsage().heapUsed - heap0) / 1e6;
  const rssMB = (process.memoryUsage().rss - rss0) / 1e6;

  const addrs: string[] = [];
  const names: string[] = [];
  const ja4s: string[] = [];
  const r = rng(7);
  for (const [kind, e] of sample) {
    if (kind === 'ja4') ja4s.push(e);
    else if (kind === 'address') addrs.push(e);
    // An address inside a listed prefix.
    else if (kind === 'prefix') addrs.push(e.includes(':') ? e.replace('::/48', '::7') : e.replace(/\.\d+\/\d+$/, '.1'));
    else names.push(`www.${e}`);
  }
  // Half misses: addresses outside every listed range, names under unlisted domains.
  const n = addrs.length;
  for (let i = 0; i < n; i++) addrs.push(`203.0.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`);
  const m = names.length;
  for (let i = 0; i < m; i++) names.push(`cdn${i}.assets.${hex(r, 6)}.org`);
  const jn = ja4s.length;
  for (let i = 0; i < jn; i++) ja4s.push(`t13d1516h2_${hex(r, 12)}_${hex(r, 12)}`);

  // CPU time per lookup: wall time on a shared machine counts other processes' turns.
  const time = (inputs: string[], fn: (s: string) => unknown): { ns: number; hits: number } => {
    let hits = 0;
    const c = process.cpuUsage();
    for (let i = 0; i < LOOKUPS; i++) if (fn(inputs[i % inputs.length]) !== undefined) hits++;
    const used = process.cpuUsage(c);
    return { ns: ((used.user + used.system) * 1000) / LOOKUPS, hits };
  };
  const a = time(addrs, (s) => list.matchAddress(s));
  const nm = time(names, (s) => list.matchServerName(s));
  const j = time(ja4s, (s) => list.matchJa4(s));
  const out: WatchlistChildResult = {
    entries: list.size,
    loadSec,
    loadCpuSec,
    heapMB,
    rssMB,
    addressNs: a.ns,
    nameNs: nm.ns,
    ja4Ns: j.ns,
    addressHits: a.hits / LOOKUPS,
    nameHits: nm.hits / LOOKUPS,
    ja4Hits: j.hits / LOOKUPS,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** Runs `runs` children over one generated list; the medians. */
export function runWatchlistBench(runs: number): WatchlistChildResult {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-watchlist-bench-'));
  try {
    const path = join(dir, 'million.csv');
    const samplePath = join(dir, 'sample.json');
    writeFileSync(samplePath, JSON.stringify(writeMillionList(path)));
    const results: WatchlistChildResult[] = [];
    for (let i = 0; i < Math.max(1, runs); i++) {
      const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), '--child', path, samplePath], {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      if (r.status !== 0) throw new Error(`watchlist bench child failed (${r.status}): ${r.stderr.slice(-2000)}`);
      results.push(JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as WatchlistChildResult);
    }
    const med = (k: keyof WatchlistChildResult) => median(results.map((x) => x[k]));
    return {
      entries: results[0].entries,
      loadSec: med('loadSec'),
      loadCpuSec: med('loadCpuSec'),
      heapMB: med('heapMB'),
      rssMB: med('rssMB'),
      addressNs: med('addressNs'),
      nameNs: med('nameNs'),
      ja4Ns: med('ja4Ns'),
      addressHits: results[0].addressHits,
      nameHits: results[0].nameHits,
      ja4Hits: results[0].ja4Hits,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatWatchlistBench(r: WatchlistChildResult, runs: number): string {
  const pct = (x: number) => `${Math.round(x * 100)}% listed`;
  return [
    `Watchlist: ${r.entries.toLocaleString('en-US')} entries (IPv4/IPv6 addresses and prefixes /16-/48, domains, JA4; CSV), median of ${runs}:`,
    `  load (read + parse + index): ${r.loadSec.toFixed(2)} s (CPU ${r.loadCpuSec.toFixed(2)} s), heap ${Math.round(r.heapMB)} MB, RSS +${Math.round(r.rssMB)} MB`,
    `  lookup (CPU time each) of a new flow's address: ${r.addressNs.toFixed(0)} ns (${pct(r.addressHits)}); server name with subdomains: ${r.nameNs.toFixed(0)} ns (${pct(r.nameHits)}); JA4: ${r.ja4Ns.toFixed(0)} ns (${pct(r.ja4Hits)})`,
    `  machine load average while measured: ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores`,
    `target load <= ${TARGET_LOAD_S} s of CPU: ${r.loadCpuSec <= TARGET_LOAD_S ? 'PASS' : 'MISS'}; wall: ${r.loadSec <= TARGET_LOAD_S ? 'PASS' : 'MISS'}`,
  ].join('\n');
}

if (process.argv[2] === '--child') {
  child(process.argv[3], process.argv[4]).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // Run on its own.
  const runs = Number(process.argv[2] ?? 3);
  console.log(formatWatchlistBench(runWatchlistBench(runs), runs));
}
