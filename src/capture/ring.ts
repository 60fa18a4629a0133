// A single-producer, single-consumer packet ring in a SharedArrayBuffer: the capture callback (main
// thread) copies each frame in, one decode worker reads it out. Neither side allocates per packet,
// and the producer never waits: when the ring is full the frame is dropped and counted, so a slow
// decoder shows up as drops instead of stalling libpcap (whose own buffer would then overflow
// unseen until the next stats read).
//
// Layout: a control block of CTRL_BYTES, then `capacity` data bytes (a power of two). Positions
// are free-running 32-bit counters; the offset is `pos & (capacity - 1)`. Each record is 4-byte
// aligned and contiguous:
//   u32 recordLength (header + data padded to 4; 0 marks "wrap to the start")
//   u32 caplen, u32 wirelen, u32 tsSec, u32 tsUsec, u32 (linkType << 16 | ifaceIndex)
//   caplen bytes of frame
//   (a tagged record, tagNext: two u32 after the frame's padded bytes; a detection ring's flow id)

const CTRL_BYTES = 64;
/** Control words (Int32 indices). */
const WRITE = 0;
const READ = 1;
/** Bumped by the producer after a burst; the consumer waits on it. */
const SEQ = 2;
export const RECORD_HEADER = 24;

export function ringBytes(capacity: number): number {
  return CTRL_BYTES + capacity;
}

/** The largest power of two not above `bytes` (at least 64 KiB). */
export function ringCapacity(bytes: number): number {
  let cap = 1 << 16;
  while (cap * 2 <= bytes && cap < 1 << 30) cap *= 2;
  return cap;
}

abstract class RingView {
  protected readonly ctrl: Int32Array;
  protected readonly words: Uint32Array;
  readonly data: Buffer;
  readonly capacity: number;
  protected readonly mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.capacity = sab.byteLength - CTRL_BYTES;
    if (this.capacity <= 0 || (this.capacity & (this.capacity - 1)) !== 0) throw new Error('ring capacity must be a power of two');
    this.mask = this.capacity - 1;
    this.ctrl = new Int32Array(sab, 0, CTRL_BYTES / 4);
    this.words = new Uint32Array(sab, CTRL_BYTES, this.capacity / 4);
    this.data = Buffer.from(sab, CTRL_BYTES, this.capacity);
  }

  /** Bytes in use (written, not yet read). */
  used(): number {
    return (Atomics.load(this.ctrl, WRITE) - Atomics.load(this.ctrl, READ)) >>> 0;
  }
}

export class RingWriter extends RingView {
  private w: number;
  private published: number;
  private tagged = false;
  private tagHi = 0;
  private tagLo = 0;

  constructor(sab: SharedArrayBuffer) {
    super(sab);
    this.w = Atomics.load(this.ctrl, WRITE) >>> 0;
    this.published = this.w;
  }

  static create(capacity: number): RingWriter {
    return new RingWriter(new SharedArrayBuffer(ringBytes(capacity)));
  }

  /**
   * The next frame written carries two words after its padded bytes, which a reader finds at
   * tagOffset(offset, caplen): the flow id of a detection ring's frame (src/capture/replay-order.ts).
   * The tag stays until a write succeeds.
   */
  tagNext(hi: number, lo: number): void {
    this.tagged = true;
    this.tagHi = hi;
    this.tagLo = lo;
  }

  /** Copies one frame (caplen bytes of `frame` from `frameOff`) in; false (nothing written) when it does not fit. */
  write(frame: Buffer, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, iface: number, frameOff = 0): boolean {
    const tagged = this.tagged;
    const padded = (caplen + 3) & ~3;
    const need = RECORD_HEADER + padded + (tagged ? 8 : 0);
    const cap = this.capacity;
    let w = this.w;
    const free = cap - ((w - (Atomics.load(this.ctrl, READ) >>> 0)) >>> 0);
    let off = w & this.mask;
    const tail = cap - off;
    if (tail < need) {
      // Not contiguous: skip the tail (marked) and start over at offset 0.
      if (free < tail + need) return false;
      this.words[off >>> 2] = 0;
      w = (w + tail) >>> 0;
      off = 0;
    } else if (free < need) {
      return false;
    }
    const i = off >>> 2;
    const words = this.words;
    words[i] = need;
    words[i + 1] = caplen;
    words[i + 2] = wirelen;
    words[i + 3] = tsSec;
    words[i + 4] = tsUsec;
    words[i + 5] = ((linkType & 0xffff) << 16) | (iface & 0xffff);
    frame.copy(this.data, off + RECORD_HEADER, frameOff, frameOff + caplen);
    if (tagged) {
      words[i + 6 + (padded >>> 2)] = this.tagHi;
      words[i + 7 + (padded >>> 2)] = this.tagLo;
      this.tagged = false;
    }
    this.w = (w + need) >>> 0;
    // Visible to the consumer at once; the wake-up (notify) is per burst, in `wake`.
    Atomics.store(this.ctrl, WRITE, this.w | 0);
    return true;
  }

  /** Wakes the consumer if anything was written since the last call. */
  wake(): void {
    if (this.published === this.w) return;
    this.published = this.w;
    this.poke();
  }

  /** Wakes the consumer unconditionally (it has a message to read). */
  poke(): void {
    Atomics.add(this.ctrl, SEQ, 1);
    Atomics.notify(this.ctrl, SEQ);
  }
}

/** Where a tagged record's two words are in the ring's data (`offset` and `caplen` as a handler gets them). */
export function tagOffset(offset: number, caplen: number): number {
  return offset + ((caplen + 3) & ~3);
}

/** Called for each frame; `data` is only valid during the call. */
export type RingRecordHandler = (
  data: Buffer,
  offset: number,
  caplen: number,
  wirelen: number,
  tsSec: number,
  tsUsec: number,
  linkType: number,
  iface: number,
) => void;

export class RingReader extends RingView {
  /** Frames read and handed out, reading position published this often (frees space sooner). */
  private static readonly PUBLISH_EVERY = 256;

  /** Hands every frame written so far to `fn`; returns how many. */
  drain(fn: RingRecordHandler): number {
    const ctrl = this.ctrl;
    const words = this.words;
    const mask = this.mask;
    let r = Atomics.load(ctrl, READ) >>> 0;
    let w = Atomics.load(ctrl, WRITE) >>> 0;
    let n = 0;
    while (r !== w) {
      const off = r & mask;
      const i = off >>> 2;
      const len = words[i];
      if (len === 0) {
        r = (r + this.capacity - off) >>> 0;
        continue;
      }
      const lt = words[i + 5];
      fn(this.data, off + RECORD_HEADER, words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
      r = (r + len) >>> 0;
      if (++n % RingReader.PUBLISH_EVERY === 0) {
        Atomics.store(ctrl, READ, r | 0);
        w = Atomics.load(ctrl, WRITE) >>> 0;
      }
    }
    Atomics.store(ctrl, READ, r | 0);
    return n;
  }

  /** Hands the next frame to `fn` if there is one; false when the ring is empty. */
  next(fn: RingRecordHandler): boolean {
    const ctrl = this.ctrl;
    const words = this.words;
    let r = Atomics.load(ctrl, READ) >>> 0;
    const w = Atomics.load(ctrl, WRITE) >>> 0;
    if (r === w) return false;
    let off = r & this.mask;
    if (words[off >>> 2] === 0) {
      r = (r + this.capacity - off) >>> 0;
      if (r === w) {
        Atomics.store(ctrl, READ, r | 0);
        return false;
      }
      off = 0;
    }
    const i = off >>> 2;
    const lt = words[i + 5];
    fn(this.data, off + RECORD_HEADER, words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
    Atomics.store(ctrl, READ, (r + words[i]) | 0);
    return true;
  }

  /** The wake-up counter, to wait on while the ring is empty. */
  seq(): number {
    return Atomics.load(this.ctrl, SEQ);
  }

  /** Resolves when the producer wakes us after `seen`, or after `timeoutMs`. */
  wait(seen: number, timeoutMs: number): Promise<unknown> {
    return waitForChange(this.ctrl, SEQ, seen, timeoutMs);
  }
}

/**
 * Resolves when `ctrl[index]` is no longer `seen` and its writer notified, or after `timeoutMs`.
 * Atomics.waitAsync (V8, Node >= 16) keeps the waiting thread's event loop free for messages.
 */
export function waitForChange(ctrl: Int32Array, index: number, seen: number, timeoutMs: number): Promise<unknown> {
  const waitAsync = (Atomics as unknown as { waitAsync: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: unknown } }).waitAsync;
  const res = waitAsync(ctrl, index, seen, timeoutMs);
  return res.async ? (res.value as Promise<unknown>) : Promise.resolve(res.value);
}
