// A per-target rate over a sliding one-second window, for the flood detectors: two one-second
// buckets, the rate being the current bucket plus the part of the previous one still inside the
// window. Alongside: an auxiliary count (completed handshakes, replies), the majority source by
// the Boyer–Moore vote (no per-source table: a spoofed flood has thousands), and a linear-counting
// estimate of distinct sources. Nothing here allocates after construction.
import { finish, mix } from '../flow/hash.js';
import { AddressSlot, type PacketFacts } from './facts.js';

const BITS = 1024;

export class RateWindow {
  /** Current bucket (whole seconds of packet time). */
  sec = -1;
  cur = 0;
  prev = 0;
  curBytes = 0;
  prevBytes = 0;
  curAux = 0;
  prevAux = 0;
  /** First packet of each bucket (µs). */
  curFirst = 0;
  prevFirst = 0;
  /** First packet of the current episode (the window was empty before it). */
  episodeStart = 0;
  lastTs = 0;
  /** Majority vote over the sources of the episode. */
  readonly candidate = new AddressSlot();
  candidateKey = -1;
  votes = 0;
  /** Packets from the candidate since it became the candidate. */
  candidateHits = 0;
  private readonly sources = new Uint32Array(BITS / 32);
  /** Peak rate seen while the window was above threshold. */
  peak = 0;

  /** Moves the buckets to `ts`; empties everything when the window had gone quiet. */
  roll(ts: number): void {
    const sec = Math.floor(ts / 1e6);
    if (sec === this.sec) return;
    if (sec === this.sec + 1) {
      this.prev = this.cur;
      this.prevBytes = this.curBytes;
      this.prevAux = this.curAux;
      this.prevFirst = this.curFirst;
    } else {
      this.prev = 0;
      this.prevBytes = 0;
      this.prevAux = 0;
    }
    this.cur = 0;
    this.curBytes = 0;
    this.curAux = 0;
    this.sec = sec;
  }

  /** Counts one packet towards the target. */
  add(p: PacketFacts): void {
    const ts = p.ts;
    this.roll(ts);
    if (this.cur === 0 && this.prev === 0) {
      this.episodeStart = ts;
      this.votes = 0;
      this.candidateKey = -1;
      this.candidateHits = 0;
      this.sources.fill(0);
      this.peak = 0;
    }
    if (this.cur === 0) this.curFirst = ts;
    this.cur++;
    this.curBytes += p.bytes;
    this.lastTs = ts;
    const src = p.srcKey;
    if (src === this.candidateKey) {
      this.votes++;
      this.candidateHits++;
    } else if (this.votes === 0) {
      this.candidate.copy(p.pkt.ipVersion, p.pkt.src);
      this.candidateKey = src;
      this.votes = 1;
      this.candidateHits = 1;
    } else this.votes--;
    const h = finish(mix(mix(0x5bd1e995, src % 4294967296), Math.floor(src / 4294967296))) & (BITS - 1);
    this.sources[h >>> 5] |= 1 << (h & 31);
  }

  /** Counts one auxiliary event (a completed handshake, a reply). */
  addAux(ts: number): void {
    this.roll(ts);
    this.curAux++;
  }

  /** Packets per second over the last second, as of `ts`. */
  rate(ts: number): number {
    const frac = (ts - this.sec * 1e6) / 1e6;
    return this.prev * Math.max(0, 1 - frac) + this.cur;
  }

  /**
   * When the surge began: the first packet of the previous bucket when that bucket already carried
   * at least `level` packets, else of the current one. (The episode may have started long before
   * with ordinary traffic to the same target.)
   */
  surgeStart(level: number): number {
    return this.prev >= level ? Math.max(this.prevFirst, this.episodeStart) : this.curFirst;
  }

  /** Packets and bytes in the two buckets. */
  packets(): number {
    return this.prev + this.cur;
  }

  bytes(): number {
    return this.prevBytes + this.curBytes;
  }

  aux(): number {
    return this.prevAux + this.curAux;
  }

  /** The source when one sends at least `share` of the window's packets, else 'distributed'. */
  source(share: number): string {
    return this.candidateKey >= 0 && this.candidateHits >= share * this.packets() ? this.candidate.toString() : 'distributed';
  }

  /** Linear counting estimate of the distinct sources of the episode. */
  distinctSources(): number {
    let zeros = 0;
    for (let i = 0; i < this.sources.length; i++) zeros += 32 - popcount(this.sources[i]);
    if (zeros === 0) return BITS * Math.log(BITS); // saturated: at least this many
    return Math.round(-BITS * Math.log(zeros / BITS));
  }
}

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Evicts the oldest entries (Map insertion order) once a table is full; returns whether there is room. */
export function makeRoom<V>(map: Map<number, V>, max: number, keep: (v: V) => boolean): boolean {
  if (map.size < max) return true;
  let scanned = 0;
  for (const [k, v] of map) {
    if (!keep(v)) {
      map.delete(k);
      return true;
    }
    if (++scanned >= 64) break;
  }
  return false;
}
