// Outage spool for the QuestDB back end, and the writer that decides between sending and spooling.
//
// The spool is a directory of files, one per ILP request body, named by a zero-padded sequence
// number so that a directory listing sorted by name is the order the data was written in. It is
// bounded by bytes: when full, append() throws SpoolFullError (and logs it) instead of dropping
// anything silently, so the caller learns that this batch was not kept.
//
// SpoolingWriter keeps order across an outage: while the spool holds anything (or QuestDB is known
// to be down) new data goes to the spool's tail, never straight to the server, and the replay loop
// drains the spool head first. A batch replayed after it was partly applied duplicates nothing,
// because every table has DEDUP UPSERT KEYS (schema/questdb.sql).
import { makeDirectory } from './make-dir.js';
import { open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The subset of a pino logger the spool and writer use (a pino Logger fits). */
export interface SpoolLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export class SpoolFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpoolFullError';
  }
}

const FILE_RE = /^(\d{16})\.ilp$/;
const REJECTED_DIR = 'rejected';

interface SpoolEntry {
  name: string;
  bytes: number;
}

export interface SpoolDepth {
  batches: number;
  bytes: number;
}

export class Spool {
  private readonly entries: SpoolEntry[] = [];
  private bytes = 0;
  /** Bytes promised to appends still writing, so that concurrent appends cannot overshoot the bound. */
  private reserved = 0;
  private nextSeq = 1;

  private constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly log: SpoolLogger,
  ) {}

  /** Opens (creating if needed) a spool directory and takes over what a previous process left in it. */
  static async open(dir: string, maxBytes: number, log: SpoolLogger): Promise<Spool> {
    makeDirectory(dir);
    const spool = new Spool(dir, maxBytes, log);
    const names = (await readdir(dir)).sort();
    for (const name of names) {
      const m = FILE_RE.exec(name);
      if (m) {
        const { size } = await stat(join(dir, name));
        spool.entries.push({ name, bytes: size });
        spool.bytes += size;
        spool.nextSeq = Math.max(spool.nextSeq, Number(m[1]) + 1);
      } else if (name.endsWith('.tmp')) {
        // A crash while writing: that append never returned to its caller, so nothing was promised.
        await rm(join(dir, name), { force: true });
      }
    }
    if (spool.entries.length > 0) {
      log.warn({ dir, batches: spool.entries.length, bytes: spool.bytes }, 'questdb spool: found batches left by a previous run; they will be replayed');
    }
    return spool;
  }

  depth(): SpoolDepth {
    return { batches: this.entries.length, bytes: this.bytes };
  }

  /** The batches waiting in a spool directory as it is on disk (none when it does not exist), without opening it. */
  static async depthOf(dir: string): Promise<SpoolDepth> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { batches: 0, bytes: 0 };
      throw err;
    }
    const depth = { batches: 0, bytes: 0 };
    for (const name of names) {
      if (!FILE_RE.test(name)) continue;
      depth.batches++;
      depth.bytes += (await stat(join(dir, name))).size;
    }
    return depth;
  }

  isEmpty(): boolean {
    return this.entries.length === 0 && this.reserved === 0;
  }

  /** Writes one batch at the tail. Durable (fsynced) when it resolves; throws SpoolFullError when over the bound. */
  async append(data: Buffer): Promise<void> {
    if (this.bytes + this.reserved + data.length > this.maxBytes) {
      const err = new SpoolFullError(
        `QuestDB outage spool is full (${this.bytes} of ${this.maxBytes} bytes in ${this.entries.length} batches); ` +
          `this batch of ${data.length} bytes was NOT stored`,
      );
      this.log.error({ dir: this.dir, bytes: this.bytes, maxBytes: this.maxBytes, rejectedBytes: data.length }, err.message);
      throw err;
    }
    const name = `${String(this.nextSeq++).padStart(16, '0')}.ilp`;
    this.reserved += data.length;
    try {
      // Write then rename: a file with the final name is always complete.
      const tmp = join(this.dir, `${name}.tmp`);
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, name));
    } finally {
      this.reserved -= data.length;
    }
    this.entries.push({ name, bytes: data.length });
    this.bytes += data.length;
  }

  /** The oldest batch, or null when empty. */
  async peek(): Promise<{ name: string; data: Buffer } | null> {
    const head = this.entries[0];
    if (!head) return null;
    return { name: head.name, data: await readFile(join(this.dir, head.name)) };
  }

  /** Drops the head batch once the server has acknowledged it. */
  async shift(name: string): Promise<void> {
    this.dropHead(name);
    await rm(join(this.dir, name), { force: true });
  }

  /**
   * Moves the head batch, which the server keeps refusing as bad data, to rejected/ with the
   * server's reason next to it: replaying it forever would block everything behind it, and deleting
   * it would lose it silently.
   */
  async reject(name: string, reason: string): Promise<void> {
    const dir = join(this.dir, REJECTED_DIR);
    makeDirectory(dir);
    await rename(join(this.dir, name), join(dir, name));
    await writeFile(join(dir, `${name}.reason.txt`), `${reason}\n`);
    this.dropHead(name);
  }

  private dropHead(name: string): void {
    const head = this.entries[0];
    if (!head || head.name !== name) throw new Error(`spool head is ${head?.name ?? 'empty'}, not ${name}`);
    this.entries.shift();
    this.bytes -= head.bytes;
  }
}

export interface SendError extends Error {
  /** HTTP status of a refusal, when the server answered. */
  status?: number;
}

/** Sends one ILP request body; resolves when the server acknowledged it (HTTP 204). */
export type SendFn = (body: Buffer) => Promise<void>;

export interface SpoolingWriterOptions {
  send: SendFn;
  spool: Spool;
  log: SpoolLogger;
  /** Send when this many rows are pending (0 = no row trigger). */
  autoFlushRows: number;
  /** Send pending rows this long after the first of them was written (0 = at once). */
  autoFlushIntervalMs: number;
  /** false: send only on flush() (or when maxPendingBytes is reached, to keep memory bounded). */
  autoFlush: boolean;
  /** write() waits while more than this many bytes are pending or being delivered. */
  maxInFlightBytes: number;
  /** Replay back-off bounds. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Consecutive refusals of the same spooled batch (HTTP 400/413/422) before it is set aside in rejected/. */
  maxRefusals: number;
  /**
   * Called with a written body once the server has accepted it: nothing reads it any more (the
   * answer came after the whole request), so its memory may be reused. Not called for a body that
   * went to the spool or failed.
   */
  release?: (body: Buffer) => void;
}

export interface WriterState {
  up: boolean;
  downSince: number | null;
  lastError: string | null;
  spool: SpoolDepth;
  pendingBytes: number;
  inFlightBytes: number;
}

/** HTTP statuses that mean "this body is wrong", as opposed to "try later". */
const REFUSAL_STATUSES = new Set([400, 413, 422]);

export class SpoolingWriter {
  private readonly o: SpoolingWriterOptions;
  private pending: Buffer[] = [];
  private pendingRows = 0;
  private pendingBytes = 0;
  private inFlightBytes = 0;
  /** Serialises deliveries so that the send-or-spool decision is taken in write order. */
  private chain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private replaying: Promise<void> | null = null;
  private up = true;
  private downSince: number | null = null;
  private lastError: string | null = null;
  /** An error from a timer-driven delivery, handed to the next write()/flush() so it is not lost. */
  private deferred: Error | null = null;
  private started = false;
  private closed = false;
  private refusals = new Map<string, number>();

  constructor(opts: SpoolingWriterOptions) {
    this.o = opts;
    this.retryDelay = opts.retryMinMs;
  }

  /** Begins delivering: replays whatever the spool holds (from this or a previous process). */
  start(): void {
    this.started = true;
    if (!this.o.spool.isEmpty()) this.scheduleReplay(0);
  }

  state(): WriterState {
    return {
      up: this.up,
      downSince: this.downSince,
      lastError: this.lastError,
      spool: this.o.spool.depth(),
      pendingBytes: this.pendingBytes,
      inFlightBytes: this.inFlightBytes,
    };
  }

  /** Adds serialised rows. Resolves once they are buffered within the memory bound. */
  async write(body: Buffer, rows: number): Promise<void> {
    if (this.closed) throw new Error('QuestDB writer is closed');
    this.throwDeferred();
    if (body.length === 0) return;
    this.pending.push(body);
    this.pendingRows += rows;
    this.pendingBytes += body.length;
    const o = this.o;
    if (
      this.pendingBytes >= o.maxInFlightBytes ||
      (o.autoFlush && (o.autoFlushIntervalMs === 0 || (o.autoFlushRows > 0 && this.pendingRows >= o.autoFlushRows)))
    ) {
      // Not awaited: the caller goes on serialising while these bodies are sent (bounded by the
      // back-pressure below); waiting for each delivery left the writer idle for every round trip.
      // A failure to send or spool reaches the next write(), flush() or close().
      this.deliverPending().catch((err: Error) => {
        this.deferred = err;
      });
    } else if (o.autoFlush && !this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null;
        this.deliverPending().catch((err: Error) => {
          this.deferred = err;
        });
      }, o.autoFlushIntervalMs);
      this.flushTimer.unref();
    }
    // Back-pressure: the caller waits while too much is still on its way.
    while (this.inFlightBytes > o.maxInFlightBytes) await this.chain;
    this.throwDeferred();
  }

  /** Sends (or spools) everything written so far, then tries the spool once if it holds anything. */
  async flush(): Promise<void> {
    this.throwDeferred();
    await this.deliverPending();
    await this.chain;
    this.throwDeferred();
    if (this.started && !this.o.spool.isEmpty()) await this.replay();
  }

  /** Flushes, then stops the timers. Data that could not be sent stays in the spool for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.deliverPending();
      await this.chain;
      if (this.replaying) await this.replaying;
      this.throwDeferred();
    } finally {
      this.closed = true;
      if (this.flushTimer) clearTimeout(this.flushTimer);
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.flushTimer = this.retryTimer = null;
    }
  }

  private throwDeferred(): void {
    const err = this.deferred;
    if (err) {
      this.deferred = null;
      throw err;
    }
  }

  /**
   * Queues the delivery of each pending body, in order, one request each: they are bounded already
   * (questdb.ts MAX_BODY_BYTES), and joining them cost a copy of every byte.
   */
  private deliverPending(): Promise<void> {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.pending.length === 0) return this.chain;
    const bodies = this.pending;
    this.pending = [];
    this.pendingRows = 0;
    this.pendingBytes = 0;
    let last: Promise<void> = this.chain;
    for (const body of bodies) {
      this.inFlightBytes += body.length;
      last = this.chain
        .then(() => this.deliver(body))
        .finally(() => {
          this.inFlightBytes -= body.length;
        });
      // The chain itself never rejects, so one failed delivery does not stop the ones after it.
      this.chain = last.catch(() => undefined);
    }
    return last;
  }

  private async deliver(body: Buffer): Promise<void> {
    const direct = this.started && this.up && !this.replaying && this.o.spool.isEmpty();
    if (direct) {
      try {
        await this.o.send(body);
        this.o.release?.(body);
        return;
      } catch (err) {
        this.markDown(err as SendError);
      }
    }
    await this.o.spool.append(body);
    this.scheduleReplay(this.retryDelay);
  }

  private markDown(err: SendError): void {
    this.lastError = err.message;
    if (this.up) {
      this.up = false;
      this.downSince = Date.now();
      this.o.log.error({ err: err.message, status: err.status }, 'questdb: ILP write failed; spooling batches to disk until QuestDB accepts them again');
    }
  }

  private markUp(): void {
    if (!this.up) {
      const downMs = Date.now() - (this.downSince ?? Date.now());
      this.o.log.info({ downMs }, 'questdb: ILP writes accepted again; spool replayed');
    }
    this.up = true;
    this.downSince = null;
    this.lastError = null;
    this.retryDelay = this.o.retryMinMs;
  }

  private scheduleReplay(delayMs: number): void {
    if (!this.started || this.closed || this.retryTimer || this.replaying) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.replay();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Drains the spool head-first; on a failure backs off and tries again later. One at a time. */
  private replay(): Promise<void> {
    if (this.replaying) return this.replaying;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.replaying = this.drain()
      .catch((err: Error) => {
        // A local file-system failure: keep the data, log, and try again later.
        this.o.log.error({ err: err.message }, 'questdb spool: replay failed');
        return false;
      })
      .then((drained) => {
        this.replaying = null;
        if (drained) return;
        this.retryDelay = Math.min(this.retryDelay * 2, this.o.retryMaxMs);
        this.scheduleReplay(this.retryDelay);
      });
    return this.replaying;
  }

  /** true when the spool was emptied. */
  private async drain(): Promise<boolean> {
    const spool = this.o.spool;
    for (;;) {
      const head = await spool.peek();
      if (!head) {
        // Synchronously with the emptiness check, so no write can slip in between.
        if (spool.isEmpty()) {
          this.markUp();
          return true;
        }
        return false; // an append is still being written; come back shortly
      }
      try {
        await this.o.send(head.data);
        this.refusals.delete(head.name);
        await spool.shift(head.name);
      } catch (e) {
        const err = e as SendError;
        this.markDown(err);
        if (err.status !== undefined && REFUSAL_STATUSES.has(err.status)) {
          const n = (this.refusals.get(head.name) ?? 0) + 1;
          this.refusals.set(head.name, n);
          if (n >= this.o.maxRefusals) {
            this.refusals.delete(head.name);
            await spool.reject(head.name, err.message);
            this.o.log.error(
              { batch: head.name, dir: spool.dir, err: err.message },
              "questdb: server keeps refusing a spooled batch as invalid; moved it to the spool's rejected/ directory",
            );
            continue;
          }
        }
        return false;
      }
    }
  }
}
