// Numeric keys (key3's 53-bit numbers) to slots, kept in order of last use: the scan detectors'
// tables of pairs and walks. The detectors keep each slot's state in typed arrays of their own,
// grown through `onGrow`, so that the tens of thousands of pairs and walks of ordinary traffic are
// not each an object (with a Map entry and a heap number key) that outlives young-generation
// collections: as objects, the two scan detectors took ~0.4 s of the benchmark capture's import,
// and slots took ~0.15 s off that.
// Lookup is an open-addressing index (open-index.ts); the order a doubly linked list, least
// recently used at the head, so that eviction and the idle sweep look at the stalest first.
import { finish, mix } from '../flow/hash.js';
import { OpenIndex, growFloat64, growInt32, growUint32 } from '../flow/open-index.js';

const TWO32 = 4294967296;
/** Slots inspected for one to evict when the table is full. */
const EVICT_SCAN = 64;

export class LruSlots {
  private keyOf: Float64Array;
  private hashOf: Uint32Array;
  private prev: Int32Array;
  private next: Int32Array;
  private free: Int32Array;
  private freeCount = 0;
  /** Slots ever handed out since the last clear (the next new one). */
  private highWater = 0;
  private index: OpenIndex;
  /** Least and most recently used slot; -1 when empty. */
  head = -1;
  private tail = -1;
  private count = 0;

  /**
   * The owner sizes its per-slot arrays to `capacity` once constructed, and onGrow(n) asks it to
   * make them hold n slots.
   */
  constructor(
    initial: number,
    private readonly onGrow: (n: number) => void,
  ) {
    this.keyOf = new Float64Array(initial);
    this.hashOf = new Uint32Array(initial);
    this.prev = new Int32Array(initial);
    this.next = new Int32Array(initial);
    this.free = new Int32Array(initial);
    this.index = new OpenIndex(initial * 2);
  }

  get capacity(): number {
    return this.keyOf.length;
  }

  get size(): number {
    return this.count;
  }

  /** The slot under `key`, or -1. */
  get(key: number): number {
    const { slots, mask } = this.index;
    let i = hashKey(key) & mask;
    for (;;) {
      const slot = slots[i];
      if (slot < 0 || this.keyOf[slot] === key) return slot;
      i = (i + 1) & mask;
    }
  }

  /** A new slot for `key` (not in the table), the most recently used. */
  insert(key: number): number {
    let slot: number;
    if (this.freeCount > 0) slot = this.free[--this.freeCount];
    else {
      if (this.highWater === this.keyOf.length) this.grow(this.keyOf.length * 2);
      slot = this.highWater++;
    }
    const hash = hashKey(key);
    this.keyOf[slot] = key;
    this.hashOf[slot] = hash;
    this.index.place(slot, hash);
    this.count++;
    this.link(slot);
    return slot;
  }

  /** Makes `slot` the most recently used. */
  touch(slot: number): void {
    if (slot === this.tail) return;
    this.unlink(slot);
    this.link(slot);
  }

  /**
   * Room for one more slot under `max`: when full, drops (through `drop`, which must remove() it)
   * the least recently used of the first few slots that `keep` does not hold; false when all of
   * those are kept.
   */
  makeRoom(max: number, keep: (slot: number) => boolean, drop: (slot: number) => void): boolean {
    if (this.count < max) return true;
    let scanned = 0;
    for (let s = this.head; s >= 0 && scanned < EVICT_SCAN; s = this.next[s], scanned++) {
      if (!keep(s)) {
        drop(s);
        return true;
      }
    }
    return false;
  }

  /** Drops, least recently used first, the `stale` slots that `keep` does not hold; stops at the first slot not stale. */
  sweep(stale: (slot: number) => boolean, keep: (slot: number) => boolean, drop: (slot: number) => void): void {
    for (let s = this.head; s >= 0; ) {
      if (!stale(s)) break;
      const next = this.next[s];
      if (!keep(s)) drop(s);
      s = next;
    }
  }

  remove(slot: number): void {
    this.index.remove(slot, this.hashOf[slot], this.hashOf);
    this.unlink(slot);
    this.free[this.freeCount++] = slot;
    this.count--;
  }

  clear(): void {
    this.index.slots.fill(-1);
    this.freeCount = 0;
    this.highWater = 0;
    this.head = this.tail = -1;
    this.count = 0;
  }

  private link(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = -1;
    if (this.tail >= 0) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
  }

  private unlink(slot: number): void {
    const p = this.prev[slot];
    const n = this.next[slot];
    if (p >= 0) this.next[p] = n;
    else this.head = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail = p;
  }

  private grow(n: number): void {
    this.keyOf = growFloat64(this.keyOf, n);
    this.hashOf = growUint32(this.hashOf, n);
    this.prev = growInt32(this.prev, n);
    this.next = growInt32(this.next, n);
    this.free = growInt32(this.free, n);
    // Slots are never more than half the index: rebuild it twice the size.
    const index = new OpenIndex(n * 2);
    for (let s = this.head; s >= 0; s = this.next[s]) index.place(s, this.hashOf[s]);
    this.index = index;
    this.onGrow(n);
  }
}

function hashKey(key: number): number {
  // key >>> 0 is key mod 2^32 for any integer a double holds (ToUint32), without a floating-point
  // remainder (fmod), which cost tens of ns on every packet's lookup.
  const lo = key >>> 0;
  return finish(mix(lo, (key - lo) / TWO32));
}
