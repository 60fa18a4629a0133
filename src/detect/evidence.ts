// The flows an anomaly names as its evidence (the anomaly record's evidenceFlows): the ids of the
// flows whose packets or attempts its detector counted, bounded: the first and the last
// EVIDENCE_FLOW_IDS of them, and the number of all. Every packet a detector sees carries its flow's
// id (PacketFacts.flowHi/flowLo: the flow table gave it when the flow started, and a parallel
// import or capture hands it to the detection thread with the frame, src/capture/replay-order.ts);
// 0/0 means no flow (ARP). Nothing here allocates per packet: typed arrays, a bounded set.
//
// A detector crosses its threshold after part of its evidence went by (a flood's first second, a
// scan's first failures): RecentFlows keeps the last few thousand (key, flow, time) it counted,
// and at the start the anomaly takes those of its key since its start time.
import { EVIDENCE_FLOW_IDS } from '../records/anomaly.js';

/** Slots of the dedup set (open addressing over the flow ids): distinct flows remembered. */
const SET_SLOTS = 4096;
const N = EVIDENCE_FLOW_IDS;

function hex32(x: number): string {
  return (x >>> 0).toString(16).padStart(8, '0');
}

export class EvidenceFlows {
  /** Distinct flows added (a flow seen again after SET_SLOTS / 2 others may count twice). */
  count = 0;
  private first = new Uint32Array(16);
  private firstN = 0;
  private last: Uint32Array | null = null;
  private lastN = 0;
  private lastAt = 0;
  private set: Uint32Array | null = null;
  private setN = 0;
  private prevHi = 0;
  private prevLo = 0;

  /** One flow of the evidence (0/0: none). */
  add(hi: number, lo: number): void {
    if ((hi | lo) === 0 || (hi === this.prevHi && lo === this.prevLo)) return;
    this.prevHi = hi;
    this.prevLo = lo;
    if (this.set === null) {
      // Up to N flows: they are all in `first`, looked through.
      const f = this.first;
      for (let i = 0; i < this.firstN * 2; i += 2) if (f[i] === hi && f[i + 1] === lo) return;
      if (this.firstN === N) {
        this.set = new Uint32Array(SET_SLOTS * 2);
        for (let i = 0; i < N * 2; i += 2) this.remember(f[i], f[i + 1]);
      }
    }
    if (this.set !== null && !this.remember(hi, lo)) return;
    this.count++;
    if (this.firstN < N) {
      if (this.firstN * 2 === this.first.length) {
        const grown = new Uint32Array(Math.min(N * 2, this.first.length * 2));
        grown.set(this.first);
        this.first = grown;
      }
      this.first[this.firstN * 2] = hi;
      this.first[this.firstN * 2 + 1] = lo;
      this.firstN++;
      return;
    }
    this.last ??= new Uint32Array(N * 2);
    this.last[this.lastAt * 2] = hi;
    this.last[this.lastAt * 2 + 1] = lo;
    this.lastAt = (this.lastAt + 1) % N;
    if (this.lastN < N) this.lastN++;
  }

  /** A flow id as text (16 hex digits), as the alert engine has them. */
  addId(id: string): void {
    if (id.length !== 16) return;
    this.add(Number.parseInt(id.slice(0, 8), 16), Number.parseInt(id.slice(8), 16));
  }

  /** The record's evidenceFlows: the count, then the first and the last ids, space separated. */
  toString(): string {
    const parts = [String(this.count)];
    for (let i = 0; i < this.firstN; i++) parts.push(hex32(this.first[i * 2]) + hex32(this.first[i * 2 + 1]));
    const last = this.last;
    if (last !== null) {
      const from = this.lastN < N ? 0 : this.lastAt;
      for (let k = 0; k < this.lastN; k++) {
        const i = (from + k) % N;
        parts.push(hex32(last[i * 2]) + hex32(last[i * 2 + 1]));
      }
    }
    return parts.join(' ');
  }

  /** Adds the id to the set; false when it was there. When half full the set starts again with the listed ids. */
  private remember(hi: number, lo: number): boolean {
    const set = this.set as Uint32Array;
    const mask = SET_SLOTS - 1;
    let i = (Math.imul(hi ^ Math.imul(lo, 0x9e3779b1), 0x85ebca6b) >>> 18) & mask;
    for (;;) {
      const h = set[i * 2];
      const l = set[i * 2 + 1];
      if ((h | l) === 0) break;
      if (h === hi && l === lo) return false;
      i = (i + 1) & mask;
    }
    set[i * 2] = hi;
    set[i * 2 + 1] = lo;
    if (++this.setN >= SET_SLOTS / 2) this.restartSet();
    return true;
  }

  private restartSet(): void {
    (this.set as Uint32Array).fill(0);
    this.setN = 0;
    for (let i = 0; i < this.firstN * 2; i += 2) this.remember(this.first[i], this.first[i + 1]);
    const last = this.last;
    if (last !== null) for (let i = 0; i < this.lastN * 2; i += 2) this.remember(last[i], last[i + 1]);
  }
}

/** Entries RecentFlows keeps (the oldest are overwritten). */
const RECENT = 1 << 14;

/**
 * The last RECENT flows a detector counted towards a key (a flood's target, a scan's walk) before
 * any anomaly: when one starts, it takes those of its key since its start (see the header).
 */
export class RecentFlows {
  private readonly key = new Float64Array(RECENT);
  private readonly ts = new Float64Array(RECENT);
  private readonly hi = new Uint32Array(RECENT);
  private readonly lo = new Uint32Array(RECENT);
  private at = 0;
  private size = 0;

  add(key: number, ts: number, hi: number, lo: number): void {
    if ((hi | lo) === 0) return;
    const i = this.at;
    this.key[i] = key;
    this.ts[i] = ts;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.at = (i + 1) & (RECENT - 1);
    if (this.size < RECENT) this.size++;
  }

  /** Adds to `into`, oldest first, the flows counted towards `key` at or after `since`. */
  take(key: number, since: number, into: EvidenceFlows): void {
    const start = (this.at - this.size + RECENT) & (RECENT - 1);
    for (let k = 0; k < this.size; k++) {
      const i = (start + k) & (RECENT - 1);
      if (this.key[i] === key && this.ts[i] >= since) into.add(this.hi[i], this.lo[i]);
    }
  }

  clear(): void {
    this.size = 0;
    this.at = 0;
  }
}
