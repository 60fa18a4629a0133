// Per-host activity in the current aggregation interval. Hosts live in slots of typed arrays;
// flows keep the slots of their two ends, so per-packet accounting is array indexing, not hashing.
// A host slot is freed once no live flow refers to it and it was idle for a whole interval, or
// sooner when the table is at its cap (evictOrphans: its partial interval record goes out first).
import { addressToString } from './address.js';
import { finish, mix, pow2AtLeast } from './hash.js';
import { OpenIndex, growFloat64, growInt32, growUint32, growUint8 } from './open-index.js';
import type { HostRecord } from '../store/types.js';
import { type EndInfo, type Enricher, NO_END } from '../enrich/enricher.js';

export class HostTable {
  private cap = 0;
  count = 0;
  /** Most hosts held; the aggregator evicts before inserting past it (see evictOrphans). */
  limit = Number.MAX_SAFE_INTEGER;
  /**
   * Live hosts of every decode worker together (one Int32 in a SharedArrayBuffer), kept up to date by
   * each worker's table: the caps are one budget over the workers (Aggregator.tableBudget).
   */
  shared: Int32Array | null = null;
  /** Hosts freed before their interval ended because the table was full. */
  evicted = 0;
  /** Distinct host pairs not remembered because the pair table was at its cap (their peers may count twice). */
  pairsOverflowed = 0;
  private addr = new Uint32Array(0);
  private version = new Uint8Array(0);
  private hash = new Uint32Array(0);
  private used = new Uint8Array(0);
  /** Live flows that point at the host. */
  private refs = new Int32Array(0);
  private ip: string[] = [];
  /** Each host's enrichment, asked once per host (null: not yet), valid for endsGeneration. */
  private ends: (EndInfo | null)[] = [];
  private endsGeneration = 0;
  private index = new OpenIndex(16);
  /** Slots ever handed out; free ones below it are in `free`. */
  private high = 0;
  private free: number[] = [];

  // Counters of the current interval.
  private c = {
    bytesSent: new Float64Array(0),
    bytesReceived: new Float64Array(0),
    packetsSent: new Float64Array(0),
    packetsReceived: new Float64Array(0),
    flowsInitiated: new Float64Array(0),
    flowsReceived: new Float64Array(0),
    peers: new Float64Array(0),
  };
  /** Hosts with activity in the current interval, each listed once. */
  private active = new Int32Array(0);
  private activeCount = 0;
  private isActive = new Uint8Array(0);
  /** Hosts whose last flow ended: candidates to free at the next interval flush, oldest first, each once. */
  private orphans: number[] = [];
  private isOrphan = new Uint8Array(0);

  // Distinct (host, host) pairs seen in the current interval: open addressing over slot pairs.
  private pairA = new Int32Array(0);
  private pairB = new Int32Array(0);
  private pairMask = 0;
  private pairCount = 0;

  constructor(initialCapacity = 1024) {
    this.grow(initialCapacity);
    this.resetPairs(1024);
  }

  /** Slot of the host at words[at..at+3] (IPv4 in word 0), created if new. */
  lookupOrInsert(version: number, words: Uint32Array, at: number): number {
    const w0 = words[at];
    const w1 = version === 6 ? words[at + 1] : 0;
    const w2 = version === 6 ? words[at + 2] : 0;
    const w3 = version === 6 ? words[at + 3] : 0;
    const h = finish(mix(mix(mix(mix(version, w0), w1), w2), w3));
    const addr = this.addr;
    const index = this.index;
    let i = index.start(h);
    for (;;) {
      const slot = index.slots[i];
      if (slot < 0) break;
      const a = slot * 4;
      if (this.hash[slot] === h && addr[a] === w0 && addr[a + 1] === w1 && addr[a + 2] === w2 && addr[a + 3] === w3 && this.version[slot] === version) {
        return slot;
      }
      i = (i + 1) & index.mask;
    }
    if (this.count + 1 > this.cap) {
      this.grow(Math.max(this.count + 1, Math.min(this.cap * 2, this.limit)));
      return this.lookupOrInsert(version, words, at);
    }
    const slot = this.free.length > 0 ? this.free.pop()! : this.high++;
    this.count++;
    if (this.shared !== null) Atomics.add(this.shared, 0, 1);
    const a = slot * 4;
    this.addr[a] = w0;
    this.addr[a + 1] = w1;
    this.addr[a + 2] = w2;
    this.addr[a + 3] = w3;
    this.version[slot] = version;
    this.hash[slot] = h;
    this.used[slot] = 1;
    this.refs[slot] = 0;
    this.ip[slot] = addressToString(version, this.addr, a);
    this.ends[slot] = null;
    index.slots[i] = slot;
    return slot;
  }

  ipOf(slot: number): string {
    return this.ip[slot];
  }

  /**
   * The host's country, AS and network, asked of the enricher once per host: a new flow's ends
   * took a string-keyed probe of the enricher's cache each, and one resolve per miss.
   */
  endOf(slot: number): EndInfo {
    const enrich = this.enrich;
    if (enrich === null) return NO_END;
    if (enrich.generation !== this.endsGeneration) {
      // The databases were reloaded: every host asks again.
      this.ends.fill(null);
      this.endsGeneration = enrich.generation;
    }
    let end = this.ends[slot];
    if (end === null) {
      end = enrich.lookup(this.ip[slot]);
      this.ends[slot] = end;
    }
    return end;
  }

  addRef(slot: number): void {
    this.refs[slot]++;
  }

  release(slot: number): void {
    if (--this.refs[slot] === 0 && this.isOrphan[slot] === 0) {
      this.isOrphan[slot] = 1;
      this.orphans.push(slot);
    }
  }

  private touch(slot: number): void {
    if (this.isActive[slot] === 0) {
      this.isActive[slot] = 1;
      this.active[this.activeCount++] = slot;
    }
  }

  /** One packet from `from` to `to`. */
  packet(from: number, to: number, bytes: number): void {
    const c = this.c;
    c.bytesSent[from] += bytes;
    c.packetsSent[from] += 1;
    c.bytesReceived[to] += bytes;
    c.packetsReceived[to] += 1;
    this.touch(from);
    this.touch(to);
  }

  flowStarted(client: number, server: number): void {
    this.c.flowsInitiated[client] += 1;
    this.c.flowsReceived[server] += 1;
    this.touch(client);
    this.touch(server);
  }

  /** A flow between the two hosts carried traffic in this interval: counts each pair once. */
  peerSeen(x: number, y: number): void {
    const a = Math.min(x, y);
    const b = Math.max(x, y);
    let i = finish(mix(a, b)) & this.pairMask;
    for (;;) {
      const pa = this.pairA[i];
      if (pa < 0) break;
      if (pa === a && this.pairB[i] === b) return;
      i = (i + 1) & this.pairMask;
    }
    // The pair table is bounded too: past its cap a pair is counted without being remembered.
    if ((this.pairCount + 1) * 2 > this.pairMask && (this.pairMask + 1) * 2 > this.maxPairSlots()) this.pairsOverflowed++;
    else {
      this.pairA[i] = a;
      this.pairB[i] = b;
      if (++this.pairCount * 2 > this.pairMask) this.growPairs();
    }
    this.c.peers[a] += 1;
    if (a !== b) this.c.peers[b] += 1;
    this.touch(a);
    this.touch(b);
  }

  /** Emits the interval's host records, resets the counters and frees hosts nobody uses any more. */
  flushInterval(ts: number, node: string, source: string, out: HostRecord[]): void {
    for (let k = 0; k < this.activeCount; k++) {
      const s = this.active[k];
      if (this.isActive[s] === 0) continue; // evicted (and its record emitted) during the interval
      this.emitRecord(s, ts, node, source, out);
    }
    this.activeCount = 0;
    this.resetPairs(this.pairMask + 1 > 4 * 1024 && this.pairCount * 8 < this.pairMask ? (this.pairMask + 1) / 2 : this.pairMask + 1);
    const orphans = this.orphans;
    this.orphans = [];
    for (const s of orphans) {
      this.isOrphan[s] = 0;
      if (this.used[s] && this.refs[s] === 0) this.remove(s);
    }
  }

  /**
   * Frees up to `want` hosts that no live flow refers to, oldest orphans first, before their
   * interval ends (the table is at its cap). A freed host's record for the interval so far is
   * emitted now; should it come back within the same interval, its second record has the same key
   * (DuckDB sums the two; QuestDB's dedup keeps the later). Returns how many were freed.
   */
  evictOrphans(want: number, ts: number, node: string, source: string, out: HostRecord[]): number {
    const orphans = this.orphans;
    let freed = 0;
    let k = 0;
    for (; k < orphans.length && freed < want; k++) {
      const s = orphans[k];
      this.isOrphan[s] = 0;
      if (!this.used[s] || this.refs[s] !== 0) continue;
      if (this.isActive[s] === 1) this.emitRecord(s, ts, node, source, out);
      this.remove(s);
      freed++;
    }
    orphans.splice(0, k);
    if (freed > 0) {
      this.evicted += freed;
      // The active list drops the freed slots (a slot reused this interval is listed afresh), and
      // the pair table forgets pairs naming them (a reused slot is another host).
      let n = 0;
      for (let j = 0; j < this.activeCount; j++) if (this.isActive[this.active[j]] === 1) this.active[n++] = this.active[j];
      this.activeCount = n;
      this.dropPairsOfFreedSlots();
    }
    return freed;
  }

  /** The host's record of the interval so far; its counters start again from zero. */
  /** Country, AS and network of a host's records (the enricher caches its answers per address). */
  enrich: Enricher | null = null;

  private enrichedHost(s: number): Pick<HostRecord, 'country' | 'asn' | 'asOrg' | 'network'> {
    const end = this.endOf(s);
    return { country: end.country, asn: end.asn, asOrg: end.asOrg, network: end.network };
  }

  private emitRecord(s: number, ts: number, node: string, source: string, out: HostRecord[]): void {
    const c = this.c;
    out.push({
      ts,
      node,
      ip: this.ip[s],
      bytesSent: c.bytesSent[s],
      bytesReceived: c.bytesReceived[s],
      packetsSent: c.packetsSent[s],
      packetsReceived: c.packetsReceived[s],
      flowsInitiated: c.flowsInitiated[s],
      flowsReceived: c.flowsReceived[s],
      peers: c.peers[s],
      source,
      ...this.enrichedHost(s),
    });
    c.bytesSent[s] = c.bytesReceived[s] = c.packetsSent[s] = c.packetsReceived[s] = 0;
    c.flowsInitiated[s] = c.flowsReceived[s] = c.peers[s] = 0;
    this.isActive[s] = 0;
  }

  private maxPairSlots(): number {
    // One pair a host at load 1/2: a flood's pairs are its flows, at most half the hosts.
    return pow2AtLeast(Math.min(this.limit, 2 ** 28) * 2);
  }

  private dropPairsOfFreedSlots(): void {
    const oldA = this.pairA;
    const oldB = this.pairB;
    this.pairA = new Int32Array(oldA.length).fill(-1);
    this.pairB = new Int32Array(oldB.length);
    this.pairCount = 0;
    for (let k = 0; k < oldA.length; k++) {
      const a = oldA[k];
      if (a < 0 || !this.used[a] || !this.used[oldB[k]]) continue;
      let i = finish(mix(a, oldB[k])) & this.pairMask;
      while (this.pairA[i] >= 0) i = (i + 1) & this.pairMask;
      this.pairA[i] = a;
      this.pairB[i] = oldB[k];
      this.pairCount++;
    }
  }

  private remove(slot: number): void {
    this.index.remove(slot, this.hash[slot], this.hash);
    this.used[slot] = 0;
    this.ip[slot] = '';
    this.ends[slot] = null;
    this.free.push(slot);
    this.count--;
    if (this.shared !== null) Atomics.sub(this.shared, 0, 1);
  }

  private grow(cap: number): void {
    this.addr = growUint32(this.addr, cap * 4);
    this.hash = growUint32(this.hash, cap);
    this.version = growUint8(this.version, cap);
    this.used = growUint8(this.used, cap);
    this.refs = growInt32(this.refs, cap);
    this.isOrphan = growUint8(this.isOrphan, cap);
    this.isActive = growUint8(this.isActive, cap);
    this.active = growInt32(this.active, cap);
    for (const k of Object.keys(this.c) as (keyof HostTable['c'])[]) this.c[k] = growFloat64(this.c[k], cap);
    this.cap = cap;
    // Load factor at most 1/2 keeps probe chains short.
    this.index = OpenIndex.rebuild(pow2AtLeast(cap * 2), this.used, this.hash, this.high);
  }

  private resetPairs(size: number): void {
    if (this.pairA.length !== size) {
      this.pairA = new Int32Array(size);
      this.pairB = new Int32Array(size);
    }
    this.pairA.fill(-1);
    this.pairMask = size - 1;
    this.pairCount = 0;
  }

  private growPairs(): void {
    const oldA = this.pairA;
    const oldB = this.pairB;
    const size = (this.pairMask + 1) * 2;
    this.pairA = new Int32Array(size).fill(-1);
    this.pairB = new Int32Array(size);
    this.pairMask = size - 1;
    for (let k = 0; k < oldA.length; k++) {
      const a = oldA[k];
      if (a < 0) continue;
      let i = finish(mix(a, oldB[k])) & this.pairMask;
      while (this.pairA[i] >= 0) i = (i + 1) & this.pairMask;
      this.pairA[i] = a;
      this.pairB[i] = oldB[k];
    }
  }
}
