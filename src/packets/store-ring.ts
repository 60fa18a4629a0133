// The bounded ring between a decode worker and its packet-store writer thread (store-writer.ts):
// single producer, single consumer, in a SharedArrayBuffer, as the capture ring (src/capture/ring.ts)
// but its records carry what the store needs besides the frame (the flow's aggregator slot and id).
// The producer never waits: a record that does not fit is refused, and the caller drops the packet
// from the store and counts it; the capture goes on.
//
// Layout: CTRL_BYTES of control words, then `capacity` data bytes (a power of two); free-running
// 32-bit positions. Each record is 4-byte aligned and contiguous:
//   u32 recordLength (0 marks "wrap to the start"), u32 slot, u32 idHi, u32 idLo, u32 tsHi, u32 tsLo,
//   u32 (linkType << 16 | ifIdx), u32 caplen, u32 wirelen, then caplen bytes of frame.
import { ringBytes, waitForChange } from '../capture/ring.js';

const CTRL_BYTES = 64;
const WRITE = 0;
const READ = 1;
const SEQ = 2;
/** Set by the consumer's owner: the producer's close() asks the writer to finish. */
const STOP = 3;
const HEADER = 36;

export type StoreRecordHandler = (
  slot: number,
  idHi: number,
  idLo: number,
  tsUs: number,
  linkType: number,
  ifIdx: number,
  data: Buffer,
  offset: number,
  caplen: number,
  wirelen: number,
) => void;

export function storeRingBuffer(capacity: number): SharedArrayBuffer {
  if (capacity < 1 << 16 || (capacity & (capacity - 1)) !== 0) throw new Error('store ring capacity must be a power of two >= 64 KiB');
  return new SharedArrayBuffer(ringBytes(capacity));
}

export class StoreRing {
  private readonly ctrl: Int32Array;
  private readonly words: Uint32Array;
  private readonly data: Buffer;
  private readonly capacity: number;
  private readonly mask: number;
  /** The producer's position (only the producer uses it). */
  private w: number;

  constructor(readonly sab: SharedArrayBuffer) {
    this.capacity = sab.byteLength - CTRL_BYTES;
    this.mask = this.capacity - 1;
    this.ctrl = new Int32Array(sab, 0, CTRL_BYTES / 4);
    this.words = new Uint32Array(sab, CTRL_BYTES, this.capacity / 4);
    this.data = Buffer.from(sab, CTRL_BYTES, this.capacity);
    this.w = Atomics.load(this.ctrl, WRITE) >>> 0;
  }

  /** Bytes written and not yet read. */
  used(): number {
    return (Atomics.load(this.ctrl, WRITE) - Atomics.load(this.ctrl, READ)) >>> 0;
  }

  /** Producer: one packet in; false (nothing written) when the ring has no room for it. */
  readonly write = (...[slot, idHi, idLo, tsUs, linkType, ifIdx, frame, off, caplen, wirelen]: Parameters<StoreRecordHandler>): boolean => {
    const need = HEADER + ((caplen + 3) & ~3);
    const cap = this.capacity;
    let w = this.w;
    const free = cap - ((w - (Atomics.load(this.ctrl, READ) >>> 0)) >>> 0);
    let at = w & this.mask;
    const tail = cap - at;
    if (tail < need) {
      if (free < tail + need) return false;
      this.words[at >>> 2] = 0;
      w = (w + tail) >>> 0;
      at = 0;
    } else if (free < need) return false;
    const i = at >>> 2;
    const words = this.words;
    const hi = Math.floor(tsUs / 4294967296);
    words[i] = need;
    words[i + 1] = slot;
    words[i + 2] = idHi;
    words[i + 3] = idLo;
    words[i + 4] = hi;
    words[i + 5] = tsUs - hi * 4294967296;
    words[i + 6] = ((linkType & 0xffff) << 16) | (ifIdx & 0xffff);
    words[i + 7] = caplen;
    words[i + 8] = wirelen;
    frame.copy(this.data, at + HEADER, off, off + caplen);
    this.w = (w + need) >>> 0;
    Atomics.store(this.ctrl, WRITE, this.w | 0);
    return true;
  };

  /** Producer: wakes the consumer (after a batch, or to make it see stop()). */
  wake(): void {
    Atomics.add(this.ctrl, SEQ, 1);
    Atomics.notify(this.ctrl, SEQ);
  }

  /** Producer: no more packets; the consumer drains what is left and ends. */
  stop(): void {
    Atomics.store(this.ctrl, STOP, 1);
    this.wake();
  }

  get stopped(): boolean {
    return Atomics.load(this.ctrl, STOP) === 1;
  }

  /**
   * Consumer: hands the records written so far to `fn`, at most `max` and none once `full()` says
   * the consumer has no room (those stay in the ring); returns how many.
   */
  drain(fn: StoreRecordHandler, max: number, full: () => boolean): number {
    const ctrl = this.ctrl;
    const words = this.words;
    let r = Atomics.load(ctrl, READ) >>> 0;
    const w = Atomics.load(ctrl, WRITE) >>> 0;
    let n = 0;
    while (r !== w && n < max && !full()) {
      const at = r & this.mask;
      const i = at >>> 2;
      const len = words[i];
      if (len === 0) {
        r = (r + this.capacity - at) >>> 0;
        continue;
      }
      const lt = words[i + 6];
      fn(
        words[i + 1],
        words[i + 2],
        words[i + 3],
        words[i + 4] * 4294967296 + words[i + 5],
        lt >>> 16,
        lt & 0xffff,
        this.data,
        at + HEADER,
        words[i + 7],
        words[i + 8],
      );
      r = (r + len) >>> 0;
      n++;
      // The room is given back as it is read: the producer never waits for a whole batch.
      if ((n & 255) === 0) Atomics.store(ctrl, READ, r | 0);
    }
    Atomics.store(ctrl, READ, r | 0);
    return n;
  }

  seq(): number {
    return Atomics.load(this.ctrl, SEQ);
  }

  /** Consumer: resolves when the producer wakes it after `seen`, or after `timeoutMs`. */
  wait(seen: number, timeoutMs: number): Promise<unknown> {
    return waitForChange(this.ctrl, SEQ, seen, timeoutMs);
  }
}
