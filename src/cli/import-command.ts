// `flowlens import FILE...`
import { importThroughServer } from '../api/client.js';
import { importFiles, type ImportSummary } from '../capture/import.js';
import { openStore, type StoreOptions } from '../store/index.js';
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
}

/** Runs the import and returns the process exit code. */
export async function runImport(files: string[], opts: ImportCommandOptions, logger: Logger): Promise<number> {
  // A running server is the store's one writer: import through it.
  if (opts.server) return report(await importThroughServer(files, { server: opts.server, token: opts.token, node: opts.node }), opts);
  // One DuckDB thread: an import only writes, and a second thread's task scheduling cost more CPU
  // than it saved (on the benchmark capture, ~7% of the wall time and ~10% of the CPU).
  const store = opts.dryRun ? null : await openStore({ ...opts, duckdbThreads: opts.duckdbThreads ?? 1 });
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
  try {
    summary = await importFiles(files, {
      store,
      ...aggregatorSettings(opts),
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
  } finally {
    progress.done();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    await store?.close();
  }
  return report(summary, opts);
}

/** Prints the summary and returns the exit code. */
function report(summary: ImportSummary, opts: ImportCommandOptions): number {
  const failed = summary.files.filter((f) => f.error);
  for (const f of failed) process.stderr.write(`flowlens: ${f.path}: ${f.error}\n`);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(opts.dryRun ? { ...summary, dryRun: true } : summary)}\n`);
  } else {
    process.stdout.write(formatSummary(summary, opts.dryRun === true));
  }
  if (summary.interrupted) return 130;
  return failed.length > 0 ? 1 : 0;
}

function formatSummary(s: ImportSummary, dryRun: boolean): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const verb = dryRun ? 'read (dry run: nothing written)' : 'imported';
  const lines = [
    `${s.interrupted ? 'interrupted after' : verb} ${n(s.files.length)} file${s.files.length === 1 ? '' : 's'} in ${s.seconds.toFixed(2)} s (${n(s.packetsPerSecond)} packets/s)`,
    `  packets    ${n(s.packets)} (${formatBytes(s.bytes)})`,
    `  flows      ${n(s.flows)}`,
    `  hosts      ${n(s.hosts)}`,
    `  non-IP     ${n(s.nonIp)}`,
    `  fragments  ${n(s.fragments)}`,
    `  malformed  ${n(s.malformed)}`,
  ];
  for (const [reason, count] of Object.entries(s.malformedByReason)) lines.push(`    ${reason.padEnd(22)} ${n(count)}`);
  if (s.firstPacket) lines.push(`  time span  ${s.firstPacket} .. ${s.lastPacket}`);
  return `${lines.join('\n')}\n`;
}
