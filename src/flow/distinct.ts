// Distinct host addresses of a run, in bounded memory: exact up to EXACT_MAX addresses (an
// open-addressing set of the address words), a HyperLogLog estimate past that. Summaries of small
// captures keep their exact counts; a spoofed-source flood of millions of addresses costs the
// set's fixed size plus 4 KiB of registers instead of a string per address.
//
// Both halves merge exactly: the union of sets is the set of the union, and the register-wise
// maximum of HyperLogLogs is the HyperLogLog of the union. Workers that each saw part of the
// traffic therefore give, merged, the very figure that one counter over all of it gives (exact
// when the union has at most EXACT_MAX addresses, the same estimate otherwise).
import { finish, mix } from './hash.js';

/** Addresses counted exactly; past it the estimate is used (a fixed 1.3 MB set). */
export const EXACT_MAX = 1 << 15;
const SET_SIZE = EXACT_MAX * 2;
/** HyperLogLog precision: 2^12 registers, about 1.6% standard error. */
const P = 12;
const M = 1 << P;

export interface DistinctState {
  /** Address words of the exact set, 5 per entry (version, w0..w3); null once past EXACT_MAX. */
  exact: Uint32Array | null;
  registers: Uint8Array;
}

export class DistinctAddresses {
  /** 5 words per slot: version (0 = empty), then the four address words. */
  private set: Uint32Array | null = new Uint32Array(SET_SIZE * 5);
  private size = 0;
  private readonly registers = new Uint8Array(M);

  /** Counts the address of `version` at words[at..at+3] (IPv4 in word 0). */
  add(version: number, words: Uint32Array, at: number): void {
    const w0 = words[at];
    const w1 = version === 6 ? words[at + 1] : 0;
    const w2 = version === 6 ? words[at + 2] : 0;
    const w3 = version === 6 ? words[at + 3] : 0;
    this.addWords(version, w0, w1, w2, w3);
  }

  private addWords(version: number, w0: number, w1: number, w2: number, w3: number): void {
    const h = finish(mix(mix(mix(mix(version ^ 0x5bd1e995, w0), w1), w2), w3));
    // A second, independent hash for the registers: the set's probe position must not decide them.
    const g = finish(mix(h, 0x27d4eb2f));
    const reg = g >>> (32 - P);
    const rest = (g << P) >>> 0;
    const rank = rest === 0 ? 32 - P + 1 : Math.clz32(rest) + 1;
    if (rank > this.registers[reg]) this.registers[reg] = rank;

    const set = this.set;
    if (set === null) return;
    const mask = SET_SIZE - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = i * 5;
      if (set[k] === 0) {
        if (this.size === EXACT_MAX) {
          this.set = null; // past the bound: the estimate from now on
          return;
        }
        set[k] = version;
        set[k + 1] = w0;
        set[k + 2] = w1;
        set[k + 3] = w2;
        set[k + 4] = w3;
        this.size++;
        return;
      }
      if (set[k] === version && set[k + 1] === w0 && set[k + 2] === w1 && set[k + 3] === w2 && set[k + 4] === w3) return;
    }
  }

  /** Distinct addresses counted: exact up to EXACT_MAX, estimated past it. */
  count(): number {
    if (this.set !== null) return this.size;
    return Math.round(estimate(this.registers));
  }

  /** What merge() takes: copies, to post to another thread. */
  state(): DistinctState {
    return { exact: this.set?.slice(0, this.set.length) ?? null, registers: this.registers.slice() };
  }

  /** Adds another counter's addresses (another worker's share of the same run). */
  merge(other: DistinctState): void {
    const r = this.registers;
    for (let i = 0; i < M; i++) if (other.registers[i] > r[i]) r[i] = other.registers[i];
    if (other.exact === null) {
      this.set = null;
      return;
    }
    const e = other.exact;
    for (let k = 0; k < e.length && this.set !== null; k += 5) {
      // Sets the registers again to values they already hold: harmless, and one code path.
      if (e[k] !== 0) this.addWords(e[k], e[k + 1], e[k + 2], e[k + 3], e[k + 4]);
    }
  }
}

/** HyperLogLog estimate with the small-range (linear counting) correction. */
function estimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < M; i++) {
    sum += 2 ** -registers[i];
    if (registers[i] === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / M);
  const raw = (alpha * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return M * Math.log(M / zeros);
  return raw;
}
