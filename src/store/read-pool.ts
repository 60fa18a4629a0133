// The bound on concurrent reads that every back end puts in front of its connections: at most
// `size` reads hold a slot; up to `queueLimit` more wait in FIFO order; a read arriving at a full
// queue is refused at once with StoreBusyError, so a flood of requests costs a rejection each rather
// than a connection, a query and its memory each. A waiting read whose signal aborts leaves the
// queue and rejects with StoreQueryCancelled.
import { StoreBusyError, StoreQueryCancelled } from './types.js';

export interface ReadGateOptions {
  /** Reads running at once (connections in use). */
  size: number;
  /** Reads waiting for a slot; one more is refused with StoreBusyError. */
  queueLimit: number;
}

export const DEFAULT_READ_POOL_SIZE = 4;
export const DEFAULT_READ_QUEUE_LIMIT = 256;

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface ReadGateState {
  size: number;
  queueLimit: number;
  /** Slots held now. */
  active: number;
  /** Reads waiting for one. */
  queued: number;
}

export class ReadGate {
  readonly size: number;
  readonly queueLimit: number;
  private active = 0;
  /** FIFO; `head` is the index of the oldest, so that taking one is O(1). */
  private waiters: (Waiter | undefined)[] = [];
  private head = 0;
  private waiting = 0;

  constructor(opts: ReadGateOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new Error(`read pool size must be a positive integer; got ${opts.size}`);
    if (!Number.isInteger(opts.queueLimit) || opts.queueLimit < 0) throw new Error(`read queue limit must be a non-negative integer; got ${opts.queueLimit}`);
    this.size = opts.size;
    this.queueLimit = opts.queueLimit;
  }

  state(): ReadGateState {
    return { size: this.size, queueLimit: this.queueLimit, active: this.active, queued: this.waiting };
  }

  /** Resolves once the caller holds a slot; it must call release() exactly once afterwards. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new StoreQueryCancelled());
    if (this.active < this.size && this.waiting === 0) {
      this.active++;
      return Promise.resolve();
    }
    if (this.waiting >= this.queueLimit) return Promise.reject(new StoreBusyError());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter, this.head);
          if (i < 0) return;
          this.waiters[i] = undefined;
          this.waiting--;
          this.compact();
          reject(new StoreQueryCancelled());
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.waiting++;
    });
  }

  /** Hands the slot to the oldest waiting read, or frees it. */
  release(): void {
    while (this.head < this.waiters.length) {
      const next = this.waiters[this.head];
      this.waiters[this.head++] = undefined;
      if (!next) continue;
      this.waiting--;
      this.compact();
      if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
      next.resolve();
      return;
    }
    this.compact();
    if (this.active > 0) this.active--;
  }

  /** Refuses every waiting read (the store is closing). */
  rejectWaiting(err: Error): void {
    const waiting = this.waiters.slice(this.head);
    this.waiters = [];
    this.head = 0;
    this.waiting = 0;
    for (const w of waiting) {
      if (!w) continue;
      if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(err);
    }
  }

  /** Drops the consumed front of the array once it is most of it (amortised O(1)). */
  private compact(): void {
    if (this.waiting === 0) {
      this.waiters.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}

/**
 * `work`, or StoreQueryCancelled as soon as `signal` aborts, whichever comes first. The work goes on
 * until it settles (the caller's cleanup runs then); its outcome after an abort is dropped.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new StoreQueryCancelled());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => undefined);
      reject(new StoreQueryCancelled());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(signal.aborted ? new StoreQueryCancelled() : err);
      },
    );
  });
}
