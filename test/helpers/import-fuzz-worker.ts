/**
 * The fuzz loop of test/fuzz-import.test.ts, in a worker thread so that the test can stop a case
 * that hangs (a loop that never yields) and bound the heap (resourceLimits). For each case: mutate a
 * seed capture, import it in process (no store, or every `storeEvery`-th case into one DuckDB store),
 * sometimes followed by an intact file, and check the summary's accounting. Posts a heartbeat per
 * case, a message per failed check, and the figures at the end.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { importFiles, type ImportSummary } from '../../src/capture/import.js';
import { MAX_TIMESTAMP_US } from '../../src/capture/pcap-file.js';
import { openStore } from '../../src/store/index.js';
import type { FlowStore } from '../../src/store/types.js';
import { captureLayout, mutateCapture } from './capture-mutate.js';
import { rng } from './random.js';

export interface FuzzSeed {
  name: string;
  bytes: Uint8Array;
}

export interface FuzzJob {
  seeds: FuzzSeed[];
  /** An intact capture imported after the mutated one in some cases, and its packet count. */
  companion: { bytes: Uint8Array; packets: number };
  cases: number;
  seed: number;
  /** Every n-th case goes into the DuckDB store (0: none). */
  storeEvery: number;
  dir: string;
}

export type FuzzMessage =
  | { type: 'case'; index: number; what: string }
  | { type: 'fail'; index: number; what: string; message: string }
  | {
      type: 'done';
      cases: number;
      storeCases: number;
      slowestMs: number;
      heapStartMb: number;
      heapEndMb: number;
      packets: number;
      malformed: number;
      fileErrors: number;
    };

const job = workerData as FuzzJob;
const post = (m: FuzzMessage) => parentPort!.postMessage(m);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** The summary's accounting; returns what is wrong, or ''. */
function check(s: ImportSummary, files: string[], companion: string | null): string {
  const wrong: string[] = [];
  const sumReasons = Object.values(s.malformedByReason).reduce((n, v) => n + v, 0);
  if (s.malformed !== sumReasons) wrong.push(`malformed ${s.malformed} != sum of malformedByReason ${sumReasons}`);
  // Every record read is a packet, decoded or malformed; none lost, none counted twice.
  if (s.records !== s.packets) wrong.push(`records read ${s.records} != packets ${s.packets}`);
  if (s.nonIp + s.malformed > s.packets) wrong.push(`nonIp ${s.nonIp} + malformed ${s.malformed} > packets ${s.packets}`);
  if (s.files.length !== files.length) wrong.push(`${s.files.length} files[] entries for ${files.length} files`);
  for (const f of s.files) {
    if (f.records !== f.packets) wrong.push(`${f.path}: records ${f.records} != packets ${f.packets}`);
    if (f.error !== undefined && (typeof f.error !== 'string' || f.error === '')) wrong.push(`${f.path}: empty error`);
  }
  const c = s.files.find((f) => f.path === companion);
  if (companion && (c?.error !== undefined || c?.records !== job.companion.packets)) wrong.push(`the intact file after it: ${JSON.stringify(c)}`);
  for (const t of [s.firstPacket, s.lastPacket]) {
    const ms = Date.parse(t);
    if (t !== '' && !(ms >= 0 && ms * 1000 < MAX_TIMESTAMP_US)) wrong.push(`time ${t} outside the window`);
  }
  if ((s.firstPacket === '') !== (s.packets - (s.malformedByReason['pcap.bad-timestamp'] ?? 0) - (s.malformedByReason['pcap.truncated-record'] ?? 0) === 0)) {
    wrong.push(`firstPacket '${s.firstPacket}' with ${s.packets} packets`);
  }
  return wrong.join('; ');
}

async function main(): Promise<void> {
  const layouts = job.seeds.map((s) => captureLayout(s.bytes));
  const companion = join(job.dir, 'companion.pcap');
  writeFileSync(companion, job.companion.bytes);
  const file = join(job.dir, 'case.cap');
  let store: FlowStore | null = null;
  let storeCases = 0;
  let slowestMs = 0;
  let packets = 0;
  let malformed = 0;
  let fileErrors = 0;
  let heapStartMb = 0;
  const r = rng(job.seed);
  try {
    for (let i = 0; i < job.cases; i++) {
      if (i === 50) heapStartMb = heapMb(); // after the first cases have warmed up the tables
      const k = Math.floor(r() * job.seeds.length);
      const { bytes, what: mutation } = mutateCapture(job.seeds[k].bytes, layouts[k], r);
      const what = `case ${i} (seed ${job.seed}): ${job.seeds[k].name}: ${mutation}`;
      post({ type: 'case', index: i, what });
      writeFileSync(file, bytes);
      const withStore = job.storeEvery > 0 && i % job.storeEvery === 0;
      if (withStore && store === null) store = await openStore({ db: join(job.dir, 'fuzz.duckdb'), duckdbThreads: 1 });
      const files = i % 4 === 1 ? [file, companion] : [file];
      const t0 = performance.now();
      let summary: ImportSummary;
      try {
        summary = await importFiles(files, { store: withStore ? store : null, iface: 'fuzz' });
      } catch (err) {
        post({ type: 'fail', index: i, what, message: `import threw: ${(err as Error).stack ?? err}` });
        continue;
      }
      const ms = performance.now() - t0;
      slowestMs = Math.max(slowestMs, ms);
      if (withStore) storeCases++;
      packets += summary.packets;
      malformed += summary.malformed;
      fileErrors += summary.files.filter((f) => f.error).length;
      const wrong = check(summary, files, files.length > 1 ? companion : null);
      if (wrong) post({ type: 'fail', index: i, what, message: wrong });
    }
  } finally {
    await store?.close();
  }
  post({ type: 'done', cases: job.cases, storeCases, slowestMs, heapStartMb, heapEndMb: heapMb(), packets, malformed, fileErrors });
}

main().catch((err) => post({ type: 'fail', index: -1, what: 'worker', message: (err as Error).stack ?? String(err) }));
