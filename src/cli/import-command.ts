// `flowlens import FILE...`
import { makeDirectory } from '../store/make-dir.js';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { importThroughServer } from '../api/client.js';
import { importFiles, type ImportSummary } from '../capture/import.js';
import { importSource } from '../capture/source.js';
import { PacketIndexWriter } from '../packets/index-writer.js';
import { DEFAULT_DB_PATH, openStore, type StoreOptions } from '../store/index.js';
import { Spool, type SpoolDepth } from '../store/spool.js';
import type { FlowStore } from '../store/types.js';
import type { Logger } from './logger.js';
import { Progress, formatBytes } from './progress.js';
import { aggregatorSettings, type FlowOptions } from './options.js';

export interface ImportCommandOptions extends FlowOptions, StoreOptions {
  json?: boolean;
  progress?: boolean;
  /** URL of a running `flowlens serve` to import through, and its token. */
  server?: string;
  token?: string;
  /** Decode and summarise only: no store is opened and nothing is written. */
  dryRun?: boolean;
  /** QuestDB: how long (seconds) to wait for the outage spool to drain before exiting (default 60). */
  spoolWait?: number;
  /** Where to index each flow's packets (src/packets); undefined: no index (--no-packet-index). */
  packetsDir?: string;
  /** Copy the imported files into the packet store (<packetsDir>/files) and index the copies (--copy-packets). */
  copyPackets?: boolean;
  /** Decode worker threads (--workers); 1 or absent: decode in the reading thread. */
  workers?: number;
}

export const DEFAULT_SPOOL_WAIT_SEC = 60;
/** The exit code when rows are left in the QuestDB outage spool (sysexits' EX_TEMPFAIL: try again later). */
export const EXIT_SPOOLED = 75;

/** A store with an outage spool (QuestDB). */
interface SpoolingStore extends FlowStore {
  drainSpool(timeoutMs: number): Promise<SpoolDepth>;
}

const hasSpool = (store: FlowStore): store is SpoolingStore => typeof (store as Partial<SpoolingStore>).drainSpool === 'function';

/** Runs the import and returns the process exit code. */
export async function runImport(files: string[], opts: ImportCommandOptions, logger: Logger): Promise<number> {
  // A running server is the store's one writer: import through it.
  if (opts.server) return report(await importThroughServer(files, { server: opts.server, token: opts.token, node: opts.node }), opts);
  // One DuckDB thread: an import only writes, and a second thread's task scheduling cost more CPU
  // than it saved (on the benchmark capture, ~7% of the wall time and ~10% of the CPU).
  // A DuckDB file this import creates is removed again when no file could be read: a failed
  // import leaves no empty store behind.
  const dbPath = opts.db ?? DEFAULT_DB_PATH;
  const createsDb = !opts.dryRun && !opts.questdb && dbPath !== ':memory:' && !existsSync(dbPath);
  // The packet index's directory first: one that cannot be made fails before any store file is.
  if (!opts.dryRun && opts.packetsDir) makeDirectory(opts.packetsDir);
  const store = opts.dryRun ? null : await openStore({ ...opts, duckdbThreads: opts.duckdbThreads ?? 1, log: logger });
  const progress = new Progress(logger);
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130); // a second Ctrl-C: leave now
    progress.done();
    logger.warn('interrupted: writing what was decoded so far (Ctrl-C again to quit at once)');
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  let summary: ImportSummary;
  let spooled: SpoolDepth | null = null;
  try {
    // The index names the run's source, as the store's rows do: a re-import replaces its runs.
    const source = await importSource(files);
    const packetIndex =
      store && opts.packetsDir
        ? new PacketIndexWriter(opts.packetsDir, { source, node: opts.node, copyTo: opts.copyPackets ? join(opts.packetsDir, 'files') : undefined })
        : undefined;
    summary = await importFiles(files, {
      store,
      source,
      packetIndex,
      ...aggregatorSettings(opts),
      workers: opts.workers,
      signal: abort.signal,
      onWarning: (message) => {
        progress.done();
        logger.warn(message);
      },
      onProgress:
        opts.progress === false
          ? undefined
          : (p) =>
              progress.update({
                done: p.bytesRead,
                total: p.totalBytes,
                items: p.packets,
                elapsedSec: p.elapsedSec,
                label: p.files > 1 ? `[${p.fileIndex + 1}/${p.files}] ${p.file}` : p.file,
              }),
    });
    // QuestDB: rows that only reached the local spool are not imported yet. Wait for QuestDB to take
    // them (not after Ctrl-C: the user wants out), then count what is left once the store is closed.
    if (store && hasSpool(store) && !summary.interrupted) await store.drainSpool((opts.spoolWait ?? DEFAULT_SPOOL_WAIT_SEC) * 1000);
  } finally {
    progress.done();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await store?.close();
  }
  if (createsDb && summary.files.every((f) => f.error)) for (const p of [dbPath, `${dbPath}.wal`]) rmSync(p, { force: true });
  if (store && hasSpool(store)) spooled = await Spool.depthOf(opts.spoolDir ?? './data/spool');
  const code = report(summary, opts);
  if (spooled && spooled.batches > 0) {
    const dir = resolve(opts.spoolDir ?? './data/spool');
    process.stderr.write(
      `flowlens: ${spooled.batches} batch${spooled.batches === 1 ? '' : 'es'} of rows (${formatBytes(spooled.bytes)}) wait in the QuestDB outage spool ${dir}, ` +
        `not accepted by QuestDB within --spool-wait ${opts.spoolWait ?? DEFAULT_SPOOL_WAIT_SEC} s; the next flowlens process with --questdb ` +
        `and --spool-dir ${dir} (import, capture, run or serve) sends them, in order, once QuestDB accepts writes\n`,
    );
    if (code === 0 || code === 1) return EXIT_SPOOLED;
  }
  return code;
}

/** Prints the summary and returns the exit code. */
function report(summary: ImportSummary, opts: ImportCommandOptions): number {
  const failed = summary.files.filter((f) => f.error);
  for (const f of failed) process.stderr.write(`flowlens: ${f.path}: ${f.error}\n`);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(opts.dryRun ? { ...summary, dryRun: true } : summary)}\n`);
  } else if (failed.length < summary.files.length || summary.interrupted) {
    // Nothing read at all: the errors above say it all, no summary of an import that did not happen.
    process.stdout.write(formatSummary(summary, opts.dryRun === true));
  }
  if (summary.interrupted) return 130;
  return failed.length > 0 ? 1 : 0;
}

function formatSummary(s: ImportSummary, dryRun: boolean): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const verb = dryRun ? 'read (dry run: nothing written)' : 'imported';
  const failed = s.files.filter((f) => f.error).length;
  const read = s.files.length - failed;
  const files = `${n(read)}${failed > 0 ? ` of ${n(s.files.length)}` : ''} file${(failed > 0 ? s.files.length : read) === 1 ? '' : 's'}`;
  const lines = [
    `${s.interrupted ? 'interrupted after' : verb} ${files} in ${s.seconds.toFixed(2)} s (${n(s.packetsPerSecond)} packets/s)`,
    `  packets    ${n(s.packets)} (${formatBytes(s.bytes)})`,
    `  flows      ${n(s.flows)}`,
    `  hosts      ${n(s.hosts)}`,
    `  non-IP     ${n(s.nonIp)}`,
    `  fragments  ${n(s.fragments)}`,
    `  malformed  ${n(s.malformed)}`,
  ];
  for (const [reason, count] of Object.entries(s.malformedByReason)) lines.push(`    ${reason.padEnd(22)} ${n(count)}`);
  // Only when a table reached its cap: a flood, or caps too small for the capture.
  if (s.evictedFlows + s.evictedHosts > 0)
    lines.push(`  evicted    ${n(s.evictedFlows)} flows, ${n(s.evictedHosts)} hosts (tables at their caps: --max-flows, --max-hosts)`);
  lines.push(`  anomalies  ${n(s.anomalies)}`);
  if (s.firstPacket) lines.push(`  time span  ${s.firstPacket} .. ${s.lastPacket}`);
  return `${lines.join('\n')}\n`;
}
