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
// A reference record (writeRef) carries no frame bytes: its recordLength has REF set, and after the
// header come the index of a shared buffer the reader was given (setShared) and the frame's offset
// in it. A parallel import reads the file into such buffers, so that frames cross to the workers
// without a copy each (src/capture/frame-pool.ts). Index TRANSIENT stands for a buffer of its own
// that the reader takes when it meets the record (a frame too long for the ring or the buffers).

const CTRL_BYTES = 64;
/** Control words (Int32 indices). */
const WRITE = 0;
const READ = 1;
/** Bumped by the producer after a burst; the consumer waits on it. */
const SEQ = 2;
export const RECORD_HEADER = 24;
/** recordLength bit of a reference record; records are shorter than 2^30 bytes. */
const REF = 0x80000000;
const REF_RECORD = RECORD_HEADER + 8;
/** Shared-buffer index of a reference to a frame in a buffer of its own (see setShared). */
export const TRANSIENT = 0xffffffff;

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
  /**
   * The most bytes ever in use, the record being written included (a frame that did not fit
   * counts as the whole ring): how close the consumer came to losing frames (--ring-mb).
   */
  peakUsed = 0;

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
    const i = this.begin(need, need, caplen, wirelen, tsSec, tsUsec, linkType, iface);
    if (i < 0) return false;
    frame.copy(this.data, i * 4 + RECORD_HEADER, frameOff, frameOff + caplen);
    if (tagged) {
      this.words[i + 6 + (padded >>> 2)] = this.tagHi;
      this.words[i + 7 + (padded >>> 2)] = this.tagLo;
      this.tagged = false;
    }
    this.publish();
    return true;
  }

  /**
   * Writes a reference to a frame in shared buffer `index` (of those the reader was given with
   * setShared) at `frameOff`; false (nothing written) when it does not fit. The producer must not
   * change the frame's bytes until the reader has read past it (position() and readPast()).
   */
  writeRef(index: number, frameOff: number, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, iface: number): boolean {
    const i = this.begin(REF_RECORD, (REF_RECORD | REF) >>> 0, caplen, wirelen, tsSec, tsUsec, linkType, iface);
    if (i < 0) return false;
    this.words[i + 6] = index;
    this.words[i + 7] = frameOff;
    this.publish();
    return true;
  }

  /** Where the record begin() reserved ends. */
  private end = 0;

  /**
   * Reserves `need` contiguous bytes (skipping a tail too short, marked for the reader) and writes
   * a record header there with `lengthWord`; returns the header's word index, or -1 when the ring
   * has no room (nothing written). publish() makes the record visible.
   */
  private begin(need: number, lengthWord: number, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, iface: number): number {
    const cap = this.capacity;
    let w = this.w;
    const free = cap - ((w - (Atomics.load(this.ctrl, READ) >>> 0)) >>> 0);
    let off = w & this.mask;
    const tail = cap - off;
    let skipped = 0;
    if (tail < need) {
      // Not contiguous: skip the tail (marked) and start over at offset 0.
      if (free < tail + need) return this.full();
      this.words[off >>> 2] = 0;
      w = (w + tail) >>> 0;
      off = 0;
      skipped = tail;
    } else if (free < need) {
      return this.full();
    }
    const inUse = cap - free + skipped + need;
    if (inUse > this.peakUsed) this.peakUsed = inUse;
    const i = off >>> 2;
    const words = this.words;
    words[i] = lengthWord;
    words[i + 1] = caplen;
    words[i + 2] = wirelen;
    words[i + 3] = tsSec;
    words[i + 4] = tsUsec;
    words[i + 5] = ((linkType & 0xffff) << 16) | (iface & 0xffff);
    this.end = (w + need) >>> 0;
    return i;
  }

  private full(): number {
    this.peakUsed = this.capacity;
    return -1;
  }

  private publish(): void {
    this.w = this.end;
    // Visible to the consumer at once; the wake-up (notify) is per burst, in `wake`.
    Atomics.store(this.ctrl, WRITE, this.w | 0);
  }

  /**
   * The longest frame a parallel import copies into this ring: a longer one goes by reference to a
   * buffer of its own (TRANSIENT), as a capture file's record may be longer than any ring (pcap
   * allows 64 MiB). A quarter of the ring, so that a long frame never waits for a ring emptied of
   * everything else. (Live frames are at most the snap length, far shorter than the ring.)
   */
  get longestCopied(): number {
    return this.capacity >>> 2;
  }

  /** The write position: every record written so far ends at or before it. */
  position(): number {
    return this.w;
  }

  /** Whether the reader has read every record written before `position` (a position() taken then). */
  readPast(position: number): boolean {
    return ((Atomics.load(this.ctrl, READ) - position) | 0) >= 0;
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
  /** The buffers reference records point into (writeRef). */
  private shared: Buffer[] = [];
  private takeTransient: () => Buffer = () => {
    throw new Error('a reference to a transient frame buffer, and no way to take one');
  };

  /**
   * The shared buffers of reference records, by index, and where the buffer of a TRANSIENT
   * reference comes from (the writer hands it over before it writes the record).
   */
  setShared(buffers: SharedArrayBuffer[], takeTransient?: () => Buffer): void {
    this.shared = buffers.map((b) => Buffer.from(b));
    if (takeTransient) this.takeTransient = takeTransient;
  }

  private sharedBuffer(index: number): Buffer {
    return index === TRANSIENT ? this.takeTransient() : this.shared[index];
  }

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
      if (len & REF) fn(this.sharedBuffer(words[i + 6]), words[i + 7], words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
      else fn(this.data, off + RECORD_HEADER, words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
      r = (r + (len & ~REF)) >>> 0;
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
    const len = words[i];
    if (len & REF) fn(this.sharedBuffer(words[i + 6]), words[i + 7], words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
    else fn(this.data, off + RECORD_HEADER, words[i + 1], words[i + 2], words[i + 3], words[i + 4], lt >>> 16, lt & 0xffff);
    Atomics.store(ctrl, READ, (r + (len & ~REF)) | 0);
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
