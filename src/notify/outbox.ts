// The on-disk outbox of one channel: every notification is a file before anything is sent, named
// by a sequence number so that a directory listing is the sending order, and removed only once its
// receiver has taken it. A restart therefore resumes where it stopped, in order. The ids ever
// queued are kept in a journal, so the same notification (same anomaly, state and sequence: a
// re-imported capture, a restart) is queued once, however often it is offered.
import { makeDirectory } from '../store/make-dir.js';
import { appendFileSync, closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { AnomalyRecord } from '../records/index.js';

export interface Notification {
  /** Stable: anomaly id, state (firing, resolved) and sequence; a retry carries the same id. */
  id: string;
  status: 'firing' | 'resolved';
  /** 0 for the first firing, then one more per repeat; a resolved notification carries the last. */
  seq: number;
  /** When it was queued (ms since the epoch). */
  queuedAt: number;
  anomaly: AnomalyRecord;
  /** A test notification (sendTestNotification): no real anomaly behind it. */
  test?: boolean;
}

/** Ids remembered per channel; the journal is rewritten with the newest half when it passes this. */
const MAX_JOURNAL_IDS = 200_000;

interface Queued {
  file: string;
  n: Notification;
}

export class Outbox {
  private readonly queue: Queued[] = [];
  private readonly ids = new Set<string>();
  private readonly journal: string;
  private nextSeq = 0;

  constructor(readonly dir: string) {
    makeDirectory(dir);
    this.journal = join(dir, 'queued-ids.log');
    try {
      for (const id of readFileSync(this.journal, 'utf8').split('\n')) if (id) this.ids.add(id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const files = readdirSync(dir)
      .filter((f) => /^\d{12}\.json$/.test(f))
      .sort();
    for (const file of files) {
      try {
        const n = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Notification;
        this.queue.push({ file, n });
        // Queued but maybe not yet journaled (a crash between the two).
        this.ids.add(n.id);
      } catch {
        // A file cut short by a crash while it was written was never renamed into place; anything
        // else unreadable is set aside rather than blocking the channel.
        renameSync(join(dir, file), join(dir, `${file}.unreadable`));
      }
    }
    if (files.length > 0) this.nextSeq = Number(files[files.length - 1].slice(0, 12)) + 1;
  }

  get depth(): number {
    return this.queue.length;
  }

  /** Queues a notification unless its id was queued before; true when queued. Durable on return. */
  add(n: Notification): boolean {
    if (this.ids.has(n.id)) return false;
    const file = `${String(this.nextSeq++).padStart(12, '0')}.json`;
    const tmp = join(this.dir, `${file}.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, JSON.stringify(n));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, file));
    this.remember(n.id);
    this.queue.push({ file, n });
    return true;
  }

  /** True when a notification of this id was ever queued here (as far as the journal remembers). */
  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** The oldest notifications, in order (not removed). */
  peek(max: number): Notification[] {
    return this.queue.slice(0, max).map((q) => q.n);
  }

  /** Removes the `count` oldest: their receiver has them. */
  remove(count: number): void {
    for (const q of this.queue.splice(0, count)) unlinkSync(join(this.dir, q.file));
  }

  private remember(id: string): void {
    this.ids.add(id);
    if (this.ids.size > MAX_JOURNAL_IDS) {
      const keep = [...this.ids].slice(-MAX_JOURNAL_IDS / 2);
      this.ids.clear();
      for (const k of keep) this.ids.add(k);
      writeFileSync(`${this.journal}.tmp`, `${keep.join('\n')}\n`);
      renameSync(`${this.journal}.tmp`, this.journal);
      return;
    }
    appendFileSync(this.journal, `${id}\n`);
  }
}
