// The read buffers of a parallel import (src/capture/import-parallel.ts), in shared memory: the
// capture file is read straight into them, and a frame goes to its decode worker as a reference
// into one (RingWriter.writeRef) instead of a copy of its bytes. Copying each frame into a
// SharedArrayBuffer costs V8 ~0.4 µs a call whatever its size (its shared-memory path), which was a
// third of the reading thread's work; a whole 4 MiB read into shared memory costs the kernel what
// any read does.
//
// A buffer the reader is done with (retire) is reused only when every worker has read past the
// last frame handed out from it: its ring's read position has passed the write position the ring
// had at retirement. The pool is fixed, so the file bytes in flight are bounded by it; a reader
// that wants a buffer while all are in flight waits for the workers (acquire).
import type { RingWriter } from './ring.js';

/** What CaptureFileReader reads into instead of buffers of its own (see its `buffers` option). */
export interface ReadBuffers {
  /** Size of every buffer acquire() gives. */
  readonly size: number;
  /** A buffer no frame handed out still points into. */
  acquire(): Promise<Buffer>;
  /** The reader will not write into `buf` again; frames handed out from it may still be read. */
  retire(buf: Buffer): void;
  /** `buf` never had a frame handed out from it (a read-ahead dropped unread): free at once. */
  release(buf: Buffer): void;
}

export class FramePool implements ReadBuffers {
  readonly sabs: SharedArrayBuffer[];
  private readonly buffers: Buffer[];
  private readonly free: number[] = [];
  /** Retired buffers, with each ring's write position at retirement. */
  private readonly retired: { index: number; marks: number[] }[] = [];
  private readonly indexOf = new Map<ArrayBufferLike, number>();

  /**
   * @param rings the rings frames from these buffers go into
   * @param waitForWorkers called while every buffer is in flight: lets the workers (and whatever
   *   they wait on) go on; resolves when it is worth looking again
   */
  constructor(
    count: number,
    readonly size: number,
    private readonly rings: readonly RingWriter[],
    private readonly waitForWorkers: () => Promise<void>,
  ) {
    this.sabs = Array.from({ length: count }, () => new SharedArrayBuffer(size));
    this.buffers = this.sabs.map((sab) => Buffer.from(sab));
    this.sabs.forEach((sab, i) => {
      this.indexOf.set(sab, i);
      this.free.push(i);
    });
  }

  /** The index of the pool buffer `buf` is a view of, or -1. */
  index(buf: Buffer): number {
    return this.indexOf.get(buf.buffer) ?? -1;
  }

  async acquire(): Promise<Buffer> {
    for (;;) {
      this.collect();
      const i = this.free.pop();
      if (i !== undefined) return this.buffers[i];
      await this.waitForWorkers();
    }
  }

  retire(buf: Buffer): void {
    const index = this.index(buf);
    if (index < 0) return; // a buffer of the reader's own (a record larger than the pool's)
    this.retired.push({ index, marks: this.rings.map((r) => r.position()) });
  }

  release(buf: Buffer): void {
    const index = this.index(buf);
    if (index >= 0) this.free.push(index);
  }

  /** Frees the retired buffers every worker has read past. */
  private collect(): void {
    for (let k = 0; k < this.retired.length; ) {
      const { index, marks } = this.retired[k];
      if (this.rings.every((r, w) => r.readPast(marks[w]))) {
        this.free.push(index);
        this.retired.splice(k, 1);
      } else k++;
    }
  }
}
