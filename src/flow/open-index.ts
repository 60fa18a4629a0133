// The index half of an open-addressing hash table: a power-of-two array of slot numbers (-1 empty)
// probed linearly. The tables that own the keys do the probing for lookups themselves (their key
// comparison is inlined there); this class does what is the same for all of them: placing a slot,
// removing one by backward-shift deletion (no tombstones, so probe chains never rot) and rebuilding.

export class OpenIndex {
  slots: Int32Array;
  mask: number;

  constructor(size: number) {
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
  }

  /** First probe position for a hash. */
  start(hash: number): number {
    return hash & this.mask;
  }

  /** Puts slot into the first free position on its probe chain. */
  place(slot: number, hash: number): void {
    let i = hash & this.mask;
    while (this.slots[i] >= 0) i = (i + 1) & this.mask;
    this.slots[i] = slot;
  }

  /** Removes slot; `hashOf` gives the hash of any slot (to move later chain members back). */
  remove(slot: number, hash: number, hashOf: Uint32Array): void {
    const mask = this.mask;
    const slots = this.slots;
    let i = hash & mask;
    while (slots[i] !== slot) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const s = slots[j];
      if (s < 0) break;
      const ideal = hashOf[s] & mask;
      // s may move back to i unless its ideal position lies cyclically in (i, j].
      const reachable = i <= j ? ideal > i && ideal <= j : ideal > i || ideal <= j;
      if (!reachable) {
        slots[i] = s;
        i = j;
      }
    }
    slots[i] = -1;
  }

  /** A new index of `size` positions holding every slot for which `used[slot]` is set. */
  static rebuild(size: number, used: Uint8Array, hashOf: Uint32Array, count: number): OpenIndex {
    const index = new OpenIndex(size);
    for (let s = 0; s < count; s++) if (used[s]) index.place(s, hashOf[s]);
    return index;
  }
}

export function growUint32(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
export function growInt32(a: Int32Array, n: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
export function growUint8(a: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
export function growUint16(a: Uint16Array, n: number): Uint16Array<ArrayBuffer> {
  const b = new Uint16Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
export function growFloat64(a: Float64Array, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(n);
  b.set(a.subarray(0, Math.min(a.length, n)));
  return b;
}
