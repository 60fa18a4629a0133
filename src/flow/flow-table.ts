// The bidirectional flow table: flows live in slots of typed arrays (struct of arrays) indexed by
// an open-addressing hash of the canonical 5-tuple, so a packet's lookup allocates nothing.
// The key is stored with the lexicographically smaller endpoint as "A"; which end is the client
// is a per-flow bit, because both directions must find the same slot.
import type { DecodedPacket } from '../decode/packet.js';
import { finish, mix, pow2AtLeast } from './hash.js';
import { OpenIndex, growFloat64, growInt32, growUint16, growUint32, growUint8 } from './open-index.js';

/** segStart of a flow with nothing to export since its last segment. */
export const NO_SEGMENT = -1;

export class FlowTable {
  cap = 0;
  /** Live flows. */
  count = 0;
  /** Slots ever handed out (slots below it are live or in the free list). */
  high = 0;
  /** Most flows held; the aggregator evicts before inserting past it, so the arrays never grow beyond. */
  limit = Number.MAX_SAFE_INTEGER;
  /**
   * Live flows of every decode worker together (one Int32 in a SharedArrayBuffer), kept up to date by
   * each worker's table: the caps are one budget over the workers (Aggregator.tableBudget).
   */
  shared: Int32Array | null = null;
  private free: number[] = [];
  private index = new OpenIndex(16);

  // Key: endpoint A then B, four words each (IPv4 in the first), ports, protocol, IP version.
  keyAddr = new Uint32Array(0);
  keyPortA = new Uint16Array(0);
  keyPortB = new Uint16Array(0);
  keyProto = new Uint8Array(0);
  keyVersion = new Uint8Array(0);
  hash = new Uint32Array(0);
  used = new Uint8Array(0);

  // State. Per-direction arrays are indexed slot*2 + dir, dir 0 = client to server.
  clientIsA = new Uint8Array(0);
  firstSeen = new Float64Array(0);
  lastSeen = new Float64Array(0);
  /** First packet of the segment not yet exported (µs), NO_SEGMENT when the segment is empty. */
  segStart = new Float64Array(0);
  /** Interval boundary from which the active timeout of the current segment counts (µs). */
  segBase = new Float64Array(0);
  segPackets = new Float64Array(0);
  segBytes = new Float64Array(0);
  totalPackets = new Float64Array(0);
  totalBytes = new Float64Array(0);
  tcpFlags = new Uint8Array(0);
  tcpState = new Uint8Array(0);
  hostClient = new Int32Array(0);
  hostServer = new Int32Array(0);
  /** Aggregation interval of the last packet (for per-interval distinct peers). */
  lastInterval = new Float64Array(0);
  /** Last live update published on the bus (packet time, µs). */
  lastPublished = new Float64Array(0);
  idHi = new Uint32Array(0);
  idLo = new Uint32Array(0);
  /** Index of the interface (or file) the flow was first seen on, in the aggregator's list of names. */
  iface = new Uint16Array(0);

  /** Set by find(): whether the packet's source is endpoint A of the key. */
  srcIsA = false;
  // Probe state left by a failed find(), reused by insert().
  private pendingHash = 0;

  constructor(initialCapacity = 4096) {
    this.grow(initialCapacity);
  }

  /** The flow of the packet's 5-tuple (ports 0 when it has none), or -1. */
  find(pkt: DecodedPacket, srcPort: number, dstPort: number): number {
    const s = pkt.src;
    const d = pkt.dst;
    // Canonical order: compare addresses word by word, then ports.
    let srcIsA: boolean;
    if (s[0] !== d[0]) srcIsA = s[0] < d[0];
    else if (s[1] !== d[1]) srcIsA = s[1] < d[1];
    else if (s[2] !== d[2]) srcIsA = s[2] < d[2];
    else if (s[3] !== d[3]) srcIsA = s[3] < d[3];
    else srcIsA = srcPort <= dstPort;
    this.srcIsA = srcIsA;
    const a = srcIsA ? s : d;
    const b = srcIsA ? d : s;
    const portA = srcIsA ? srcPort : dstPort;
    const portB = srcIsA ? dstPort : srcPort;
    const proto = pkt.ipProto;
    let h = mix(pkt.ipVersion * 256 + proto, portA * 65536 + portB);
    h = mix(mix(mix(mix(h, a[0]), a[1]), a[2]), a[3]);
    h = finish(mix(mix(mix(mix(h, b[0]), b[1]), b[2]), b[3]));
    this.pendingHash = h;

    const index = this.index;
    const slots = index.slots;
    const mask = index.mask;
    const key = this.keyAddr;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const f = slots[i];
      if (f < 0) return -1;
      if (this.hash[f] !== h) continue;
      const k = f * 8;
      if (
        key[k] === a[0] &&
        key[k + 1] === a[1] &&
        key[k + 2] === a[2] &&
        key[k + 3] === a[3] &&
        key[k + 4] === b[0] &&
        key[k + 5] === b[1] &&
        key[k + 6] === b[2] &&
        key[k + 7] === b[3] &&
        this.keyPortA[f] === portA &&
        this.keyPortB[f] === portB &&
        this.keyProto[f] === proto &&
        this.keyVersion[f] === pkt.ipVersion
      ) {
        return f;
      }
    }
  }

  /** Creates the flow that the last find() did not find; the caller fills in its state. */
  insert(pkt: DecodedPacket, srcPort: number, dstPort: number): number {
    if (this.count + 1 > this.cap) this.grow(Math.max(this.count + 1, Math.min(this.cap * 2, this.limit)));
    const f = this.free.length > 0 ? this.free.pop()! : this.high++;
    this.count++;
    if (this.shared !== null) Atomics.add(this.shared, 0, 1);
    const srcIsA = this.srcIsA;
    const a = srcIsA ? pkt.src : pkt.dst;
    const b = srcIsA ? pkt.dst : pkt.src;
    const k = f * 8;
    this.keyAddr.set(a, k);
    this.keyAddr.set(b, k + 4);
    this.keyPortA[f] = srcIsA ? srcPort : dstPort;
    this.keyPortB[f] = srcIsA ? dstPort : srcPort;
    this.keyProto[f] = pkt.ipProto;
    this.keyVersion[f] = pkt.ipVersion;
    this.hash[f] = this.pendingHash;
    this.used[f] = 1;
    const d = f * 2;
    this.segPackets[d] = this.segPackets[d + 1] = 0;
    this.segBytes[d] = this.segBytes[d + 1] = 0;
    this.totalPackets[d] = this.totalPackets[d + 1] = 0;
    this.totalBytes[d] = this.totalBytes[d + 1] = 0;
    this.tcpFlags[d] = this.tcpFlags[d + 1] = 0;
    this.tcpState[f] = 0;
    this.segStart[f] = NO_SEGMENT;
    this.lastInterval[f] = -1;
    this.lastPublished[f] = 0;
    this.index.place(f, this.pendingHash);
    return f;
  }

  remove(f: number): void {
    this.index.remove(f, this.hash[f], this.hash);
    this.used[f] = 0;
    this.free.push(f);
    this.count--;
    if (this.shared !== null) Atomics.sub(this.shared, 0, 1);
  }

  clientPort(f: number): number {
    return this.clientIsA[f] ? this.keyPortA[f] : this.keyPortB[f];
  }

  serverPort(f: number): number {
    return this.clientIsA[f] ? this.keyPortB[f] : this.keyPortA[f];
  }

  /** Offset in keyAddr of the client's (or server's) address words. */
  clientAddrAt(f: number): number {
    return f * 8 + (this.clientIsA[f] ? 0 : 4);
  }

  serverAddrAt(f: number): number {
    return f * 8 + (this.clientIsA[f] ? 4 : 0);
  }

  private grow(cap: number): void {
    this.keyAddr = growUint32(this.keyAddr, cap * 8);
    this.keyPortA = growUint16(this.keyPortA, cap);
    this.keyPortB = growUint16(this.keyPortB, cap);
    this.keyProto = growUint8(this.keyProto, cap);
    this.keyVersion = growUint8(this.keyVersion, cap);
    this.hash = growUint32(this.hash, cap);
    this.used = growUint8(this.used, cap);
    this.clientIsA = growUint8(this.clientIsA, cap);
    this.firstSeen = growFloat64(this.firstSeen, cap);
    this.lastSeen = growFloat64(this.lastSeen, cap);
    this.segStart = growFloat64(this.segStart, cap);
    this.segBase = growFloat64(this.segBase, cap);
    this.segPackets = growFloat64(this.segPackets, cap * 2);
    this.segBytes = growFloat64(this.segBytes, cap * 2);
    this.totalPackets = growFloat64(this.totalPackets, cap * 2);
    this.totalBytes = growFloat64(this.totalBytes, cap * 2);
    this.tcpFlags = growUint8(this.tcpFlags, cap * 2);
    this.tcpState = growUint8(this.tcpState, cap);
    this.hostClient = growInt32(this.hostClient, cap);
    this.hostServer = growInt32(this.hostServer, cap);
    this.lastInterval = growFloat64(this.lastInterval, cap);
    this.lastPublished = growFloat64(this.lastPublished, cap);
    this.idHi = growUint32(this.idHi, cap);
    this.idLo = growUint32(this.idLo, cap);
    this.iface = growUint16(this.iface, cap);
    this.cap = cap;
    this.index = OpenIndex.rebuild(pow2AtLeast(cap * 2), this.used, this.hash, this.high);
  }
}
