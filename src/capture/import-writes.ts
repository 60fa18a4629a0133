// How both import paths (import.ts and import-parallel.ts) hand records to the store: several
// batches may be on their way while the next packets are decoded. The store runs its writes one
// after another, and DuckDB commits on a thread of its own; an import that waited for each write
// before decoding on (one batch in flight, as it once did) sat idle on its main thread during
// every commit: about 1 s of a 5.8 s import of the benchmark capture. The bound is in rows, so the
// records waiting cost a bounded amount of memory: on that capture, 16,384 rows took the import
// from 6.55 to 5.95 s for 17 MB more peak; 65,536 to 5.83 s for 75 MB more (medians of 3).
import { stat } from 'node:fs/promises';
import type { RecordBatch, StoreWriter } from '../store/types.js';

/** Rows handed to the store and not yet written before the import waits (see above). */
export const DEFAULT_ROWS_IN_FLIGHT = 16_384;

/** Store writes in flight, bounded by their rows; a write that failed fails the next call. */
export class StoreWrites {
  /** The writes not known to have ended, oldest first (they end in order: the store queues them). */
  private readonly pending: { done: Promise<void>; ended: boolean }[] = [];
  private rows = 0;
  private failure: unknown = null;

  constructor(
    private readonly store: StoreWriter,
    private readonly maxRows = DEFAULT_ROWS_IN_FLIGHT,
  ) {}

  /** Hands a batch to the store; waits while more than maxRows rows are on their way. */
  async write(batch: RecordBatch): Promise<void> {
    this.throwIfFailed();
    const rows = batch.flows.length + batch.hosts.length + batch.traffic.length;
    const entry = { done: Promise.resolve(), ended: false };
    const end = (err?: unknown) => {
      this.rows -= rows;
      entry.ended = true;
      if (err !== undefined) this.failure ??= err;
    };
    entry.done = this.store.write(batch).then(
      () => end(),
      (err: unknown) => end(err ?? new Error('store write failed')),
    );
    while (this.pending.length > 0 && this.pending[0].ended) this.pending.shift();
    this.pending.push(entry);
    this.rows += rows;
    while (this.rows > this.maxRows && this.pending.length > 0) await this.pending.shift()!.done;
    this.throwIfFailed();
  }

  /** Waits for every write handed over; throws the first failure. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) await this.pending.shift()!.done;
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw new StoreWriteFailure(this.failure);
  }
}

/** A store write that failed, on its way through a file's error handling (which would report it as the file's). */
export class StoreWriteFailure {
  constructor(readonly cause: unknown) {}
}

export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0; // the reader reports why it cannot open the file
  }
}
