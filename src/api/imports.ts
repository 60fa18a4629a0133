// Imports into a running server: the upload, already on disk (uploads.ts), is imported with the
// server's own store and bus (the server is the DuckDB file's one writer, and subscribers see the
// imported traffic live). Progress goes to listeners (the importProgress subscription) and metrics.
import { randomUUID } from 'node:crypto';
import type { EventBus } from '../bus/types.js';
import { importFiles, type ImportSummary } from '../capture/import.js';
import type { AggregatorOptions } from '../flow/aggregator.js';
import type { FlowStore } from '../store/types.js';
import type { Metrics } from './metrics.js';
import type { DiskUpload } from './uploads.js';

export type ImportState = 'uploading' | 'running' | 'done' | 'failed';

export interface ImportJob {
  id: string;
  fileName: string;
  state: ImportState;
  startedAt: number;
  /** Bytes of the capture file read so far, and its size. */
  bytesRead: number;
  totalBytes: number;
  packets: number;
  elapsedSec: number;
  summary?: ImportSummary;
  error?: string;
}

export interface ImportManagerOptions {
  store: FlowStore;
  bus: EventBus;
  metrics: Metrics;
  flow: Partial<Omit<AggregatorOptions, 'bus' | 'iface'>>;
  /** Imports allowed at once; they share the store's single writer. */
  maxConcurrent?: number;
  onWarning?: (message: string) => void;
}

export class ImportBusyError extends Error {}

/**
 * A place among the imports allowed at once, taken before an upload's body is read (so that
 * uploads beyond the limit are refused before they cost memory or disk) and given back when its
 * import ends or the request does. release() may be called more than once.
 */
export interface ImportSlot {
  release(): void;
}

/** Finished jobs kept for captureStatus. */
const KEEP_FINISHED = 20;

export class ImportManager {
  private readonly jobs = new Map<string, ImportJob>();
  private readonly listeners = new Set<(job: ImportJob) => void>();
  private readonly abort = new AbortController();
  private readonly running = new Set<Promise<unknown>>();
  private slotsTaken = 0;
  private readonly count: {
    packets: (n: number) => void;
    fileBytes: (n: number) => void;
    flows: (n: number) => void;
    imports: (n: number, labels: Record<string, string>) => void;
  };

  constructor(private readonly opts: ImportManagerOptions) {
    const m = opts.metrics;
    this.count = {
      packets: m.counter('flowlens_import_packets_total', 'Packets imported through this server'),
      fileBytes: m.counter('flowlens_import_file_bytes_total', 'Bytes of uploaded capture files read'),
      flows: m.counter('flowlens_import_flows_total', 'Flows found by imports through this server'),
      imports: m.counter('flowlens_imports_total', 'Imports through this server by result'),
    };
    m.gauge('flowlens_imports_in_progress', 'Imports running now', () => this.inProgress().length);
  }

  /** Imports running now (an upload still arriving has a slot but no job yet). */
  inProgress(): ImportJob[] {
    return [...this.jobs.values()].filter((j) => j.state === 'uploading' || j.state === 'running');
  }

  recent(): ImportJob[] {
    return [...this.jobs.values()];
  }

  /** Returns the unsubscribe function. */
  onProgress(listener: (job: ImportJob) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Takes a slot for an import, or throws ImportBusyError when all are taken. */
  reserve(): ImportSlot {
    if (this.abort.signal.aborted) throw new ImportBusyError('the server is shutting down');
    const max = this.opts.maxConcurrent ?? 2;
    if (this.slotsTaken >= max) throw new ImportBusyError(`${max} imports are in progress already; try again when one has finished`);
    this.slotsTaken++;
    let held = true;
    return {
      release: () => {
        if (held) this.slotsTaken--;
        held = false;
      },
    };
  }

  /**
   * Imports the uploaded files as one capture (flows continue across files, as in a local import
   * of several files) in the slot taken for them, and resolves with the finished job (state done
   * or failed). The files are the caller's: they are read, not moved or removed.
   */
  async importUploads(uploads: DiskUpload[], slot: ImportSlot, node?: string): Promise<ImportJob> {
    if (this.abort.signal.aborted) throw new ImportBusyError('the server is shutting down');
    const fileName = uploads.map((u) => u.name).join(', ');
    const totalBytes = uploads.reduce((n, u) => n + u.size, 0);
    const job: ImportJob = {
      id: randomUUID(),
      fileName,
      state: 'uploading',
      startedAt: Date.now() * 1000,
      bytesRead: 0,
      totalBytes,
      packets: 0,
      elapsedSec: 0,
    };
    this.jobs.set(job.id, job);
    this.prune();
    const work = this.run(job, uploads, node);
    this.running.add(work);
    try {
      await work;
    } finally {
      this.running.delete(work);
      slot.release();
    }
    return job;
  }

  /** Stops running imports (they write what they decoded so far) and waits for them. */
  async close(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.running]);
    this.listeners.clear();
  }

  private async run(job: ImportJob, uploads: DiskUpload[], node: string | undefined): Promise<void> {
    // Temporary path -> the uploaded file's name, for records, messages and the summary. Each
    // file is in a directory of its own under its own name: records name it (iface), as a local
    // import names the file it reads.
    const names = new Map(uploads.map((u) => [u.path, u.name]));
    try {
      job.state = 'running';
      this.emit(job);
      let counted = { packets: 0, bytesRead: 0 };
      const rename = (text: string) => {
        for (const [path, name] of names) text = text.split(path).join(name);
        return text;
      };
      const summary = await importFiles([...names.keys()], {
        ...this.opts.flow,
        node: node ?? this.opts.flow.node,
        store: this.opts.store,
        bus: this.opts.bus,
        signal: this.abort.signal,
        onWarning: (message) => this.opts.onWarning?.(rename(message)),
        onProgress: (p) => {
          this.count.packets(p.packets - counted.packets);
          this.count.fileBytes(p.bytesRead - counted.bytesRead);
          counted = { packets: p.packets, bytesRead: p.bytesRead };
          Object.assign(job, { bytesRead: p.bytesRead, totalBytes: p.totalBytes, packets: p.packets, elapsedSec: p.elapsedSec });
          this.emit(job);
        },
      });
      this.count.packets(summary.packets - counted.packets);
      this.count.flows(summary.flows);
      for (const f of summary.files) f.path = rename(f.path);
      job.summary = summary;
      job.packets = summary.packets;
      job.elapsedSec = summary.seconds;
      const fileError = summary.files.find((f) => f.error)?.error;
      job.state = fileError ? 'failed' : 'done';
      if (fileError) job.error = fileError;
    } catch (err) {
      job.state = 'failed';
      job.error = (err as Error).message;
    }
    this.count.imports(1, { result: job.state === 'done' ? 'ok' : 'failed' });
    this.emit(job);
  }

  private emit(job: ImportJob): void {
    for (const l of this.listeners) {
      try {
        l({ ...job });
      } catch {
        // one failing listener must not stop the import
      }
    }
  }

  private prune(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state === 'done' || j.state === 'failed');
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.jobs.delete(j.id);
  }
}
