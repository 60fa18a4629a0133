// Accuracy against tshark on the real-capture corpus (../shared/corpus/ndpi/pcap, ~311 files):
// every capture's flows are summed per 5-tuple and direction, and the
// share of tshark's TCP/UDP 5-tuples whose four figures (packets and bytes each way) flowlens gets
// exactly right must be at least 99.5%. How tshark's frames are attributed to tuples is described in
// test/helpers/tshark.ts. tshark results are cached outside the checkout (TSHARK_CACHE).
//
// Flows of different files must not merge. Starting two CLI processes per file would take minutes,
// so the files are imported in groups (see planGroups): within a group no two files share a
// 5-tuple and their times do not overlap, so one `flowlens import` of the whole group cannot merge
// anything across files; flows are matched back to their file by `iface` (the file name).
// FLOWLENS_CORPUS_ISOLATED=1 imports every file on its own instead (slow; for cross-checking).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { ensureBuilt, flowlensCommand, REPO_ROOT, CLI_SRC } from './bench/flowlens.js';
import type { FlowRecord } from './helpers/cli.js';
import { addCounts, formatKey, mapLimit, TSHARK_CACHE, tsharkTuples, tupleKey, type DirCounts, type TsharkResult } from './helpers/tshark.js';

const SHARED = join(REPO_ROOT, '..', 'shared');
const PCAP_DIR = join(SHARED, 'corpus', 'ndpi', 'pcap');
const CACHE = join(REPO_ROOT, 'test', '.cache');
const LANES = 2;
const REQUIRED_SHARE = 0.995;

interface Proc {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** What `export flows --format jsonl` writes (test/helpers/cli.ts). */
type ExportedFlow = FlowRecord;

interface ImportOutcome {
  files: string[];
  code: number | null;
  problem: string;
}

/**
 * Splits the captures into import groups. Within a group no two files share a TCP/UDP 5-tuple
 * (so no flow of one file can merge with, or share a flow id with, a flow of another), and the
 * files follow each other in time without overlap (so the group is one monotonic timeline, as if
 * it were one long capture). With isolated = true every file is its own group (slow: about two
 * CLI start-ups per file).
 */
function planGroups(results: TsharkResult[], isolated: boolean): string[][] {
  if (isolated) return results.map((r) => [r.file]);
  const sorted = [...results].sort((a, b) => (a.firstTime || 0) - (b.firstTime || 0) || a.file.localeCompare(b.file));
  const groups: { files: string[]; last: number; keys: Set<string> }[] = [];
  for (const r of sorted) {
    const timed = !Number.isNaN(r.firstTime);
    let g = groups.find((x) => (!timed || x.last <= r.firstTime) && ![...r.tuples.keys()].some((k) => x.keys.has(k)));
    if (!g) {
      g = { files: [], last: -Infinity, keys: new Set() };
      groups.push(g);
    }
    g.files.push(r.file);
    if (timed) g.last = Math.max(g.last, r.lastTime);
    for (const k of r.tuples.keys()) g.keys.add(k);
  }
  return groups.map((g) => g.files);
}

/** Imports each group into its own database (LANES groups at a time); returns the flows by file name. */
async function importGroups(groups: string[][], dir: string): Promise<{ outcomes: ImportOutcome[]; flowsByFile: Map<string, ExportedFlow[]>; how: string }> {
  const buildError = ensureBuilt();
  // tsc emits JavaScript even when type checking fails, so dist/ may still be up to date then.
  const fl = flowlensCommand('auto');
  if (buildError) console.log(`note: ${buildError.slice(0, 2000)}\nrunning the CLI as ${fl.how}`);
  const outcomes: ImportOutcome[] = [];
  const flowsByFile = new Map<string, ExportedFlow[]>();
  await mapLimit(groups, LANES, async (files, i) => {
    const db = join(dir, `group${i}.duckdb`);
    const r = await run(fl.cmd, [...fl.args, 'import', ...files, '--db', db, '--json', '--no-progress'], 300_000);
    let problem = '';
    try {
      const summary = JSON.parse(r.stdout) as { files?: { path: string; error?: string }[] };
      const errors = (summary.files ?? []).filter((f) => f.error).map((f) => `${basename(f.path)}: ${f.error}`);
      if (errors.length) problem = errors.join('; ');
    } catch {
      problem = `no JSON summary (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
    }
    if (!problem && r.code !== 0) problem = `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
    outcomes.push({ files, code: r.code, problem });
    if (!existsSync(db)) return;
    const e = await run(fl.cmd, [...fl.args, 'export', 'flows', '--db', db, '--format', 'jsonl'], 300_000);
    assert.equal(e.code, 0, `export flows --db ${db} failed: ${e.stderr}`);
    for (const line of e.stdout.split('\n')) {
      if (!line.trim()) continue;
      const f = JSON.parse(line) as ExportedFlow;
      const list = flowsByFile.get(f.iface) ?? [];
      list.push(f);
      flowsByFile.set(f.iface, list);
    }
  });
  return { outcomes, flowsByFile, how: fl.how };
}

/** flowlens's flows of one file summed per 5-tuple, in the key space of the tshark helper. */
function flowlensTuples(flows: ExportedFlow[]): Map<string, DirCounts> {
  const m = new Map<string, DirCounts>();
  for (const f of flows) {
    if (f.transport !== 'tcp' && f.transport !== 'udp') continue;
    const { key, forward } = tupleKey(f.transport, { ip: f.clientIp, port: Number(f.clientPort) }, { ip: f.serverIp, port: Number(f.serverPort) });
    addCounts(m, key, forward, Number(f.clientBytes), 0, Number(f.clientPackets));
    addCounts(m, key, !forward, Number(f.serverBytes), 0, Number(f.serverPackets));
  }
  return m;
}

interface Mismatch {
  file: string;
  key: string;
  ts: DirCounts;
  fl: DirCounts | undefined;
  /** For ranking: packet difference summed over both directions, then bytes. */
  dPackets: number;
  dBytes: number;
}

const fmtCounts = (c: DirCounts | undefined) => (c ? `${c.abPackets}p/${c.abBytes}B -> <- ${c.baPackets}p/${c.baBytes}B` : 'no flow');

test('flowlens per-flow packet and byte counts match tshark on the nDPI corpus', { timeout: 15 * 60_000 }, async (t) => {
  if (!existsSync(PCAP_DIR)) {
    const msg = `SKIPPED: ${PCAP_DIR} is absent (the shared corpus is not checked out next to the repository)`;
    console.log(msg);
    t.skip(msg);
    return;
  }
  if (!existsSync(CLI_SRC)) {
    t.skip('SKIPPED: src/cli/main.ts does not exist yet');
    return;
  }
  const files = readdirSync(PCAP_DIR)
    .filter((f) => /\.(pcap|pcapng|cap)$/.test(f))
    .sort()
    .map((f) => join(PCAP_DIR, f));
  assert.ok(files.length > 0, `no captures in ${PCAP_DIR}`);
  const names = new Set(files.map((f) => basename(f)));
  assert.equal(names.size, files.length, 'capture file names must be unique (flows are matched to files by name)');

  const t0 = Date.now();
  const ts = await mapLimit(files, LANES, (f) => tsharkTuples(f, TSHARK_CACHE));
  const tsharkSeconds = (Date.now() - t0) / 1000;
  const isolated = process.env.FLOWLENS_CORPUS_ISOLATED === '1';
  const groups = planGroups(
    ts.filter((r) => r.ok),
    isolated,
  );
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-corpus-'));
  let imported: Awaited<ReturnType<typeof importGroups>>;
  try {
    imported = await importGroups(groups, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const importSeconds = (Date.now() - t0) / 1000 - tsharkSeconds;
  const { outcomes, flowsByFile, how } = imported;

  const skipped = ts.filter((r) => !r.ok);
  let total = 0;
  let matched = 0;
  const extra: { file: string; key: string; fl: DirCounts }[] = [];
  const mismatches: Mismatch[] = [];
  const perFile: { file: string; tuples: number; bad: number }[] = [];
  for (const r of ts) {
    if (!r.ok) continue;
    const name = basename(r.file);
    const fl = flowlensTuples(flowsByFile.get(name) ?? []);
    let bad = 0;
    for (const [key, c] of r.tuples) {
      total++;
      const f = fl.get(key);
      if (f && f.abPackets === c.abPackets && f.abBytes === c.abBytes && f.baPackets === c.baPackets && f.baBytes === c.baBytes) {
        matched++;
        continue;
      }
      bad++;
      const dPackets = Math.abs((f?.abPackets ?? 0) - c.abPackets) + Math.abs((f?.baPackets ?? 0) - c.baPackets);
      const dBytes = Math.abs((f?.abBytes ?? 0) - c.abBytes) + Math.abs((f?.baBytes ?? 0) - c.baBytes);
      mismatches.push({ file: name, key, ts: c, fl: f, dPackets, dBytes });
    }
    for (const [key, c] of fl) if (!r.tuples.has(key)) extra.push({ file: name, key, fl: c });
    if (r.tuples.size) perFile.push({ file: name, tuples: r.tuples.size, bad });
  }
  const share = total ? matched / total : 0;

  const lines: string[] = [];
  lines.push(
    `corpus: ${files.length} captures in ${groups.length} import groups${isolated ? ' (isolated: one per file)' : ''}; CLI: ${how}; tshark ${tsharkSeconds.toFixed(0)} s, flowlens imports+exports ${importSeconds.toFixed(0)} s`,
  );
  lines.push(`flows matching tshark: ${matched}/${total} = ${(share * 100).toFixed(2)}% (required ${(REQUIRED_SHARE * 100).toFixed(1)}%)`);
  lines.push(`flowlens TCP/UDP 5-tuples tshark does not have: ${extra.length}`);
  for (const x of extra.slice(0, 10)) lines.push(`  ${x.file}: ${formatKey(x.key)}  flowlens ${fmtCounts(x.fl)}`);
  if (skipped.length) lines.push(`skipped, tshark cannot read them: ${skipped.map((r) => `${basename(r.file)} (${r.error})`).join('; ')}`);
  const failedImports = outcomes.filter((o) => o.problem);
  if (failedImports.length) lines.push(`imports with problems: ${failedImports.map((o) => o.problem).join('; ')}`);
  const worstFiles = perFile.filter((p) => p.bad > 0).sort((a, b) => b.bad - a.bad || a.file.localeCompare(b.file));
  lines.push(`files with mismatching flows: ${worstFiles.length}; worst:`);
  for (const p of worstFiles.slice(0, 15)) lines.push(`  ${p.file}: ${p.bad}/${p.tuples} flows differ`);
  mismatches.sort((a, b) => b.dPackets - a.dPackets || b.dBytes - a.dBytes || a.file.localeCompare(b.file));
  lines.push('15 worst flows (tshark vs flowlens; a = the lower end of the tuple):');
  for (const m of mismatches.slice(0, 15)) {
    lines.push(`  ${m.file} frame ${m.ts.firstFrame}: ${formatKey(m.key)}\n      tshark   ${fmtCounts(m.ts)}\n      flowlens ${fmtCounts(m.fl)}`);
  }
  const report = lines.join('\n');
  console.log(report);
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(
    join(CACHE, 'corpus-tshark-mismatches.txt'),
    `${report}\n\nall mismatches:\n${mismatches.map((m) => `${m.file}\tframe ${m.ts.firstFrame}\t${formatKey(m.key)}\ttshark ${fmtCounts(m.ts)}\tflowlens ${fmtCounts(m.fl)}`).join('\n')}\n`,
  );

  assert.ok(total > 1000, `tshark found only ${total} TCP/UDP 5-tuples in the corpus: the reference is broken`);
  assert.ok(
    share >= REQUIRED_SHARE,
    `only ${(share * 100).toFixed(2)}% of tshark's flows match (see above; full list in test/.cache/corpus-tshark-mismatches.txt)`,
  );
});
