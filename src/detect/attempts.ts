// Connection attempts and their outcomes, for the scan detectors' random walks.
//
// An attempt is the first packet of a flow from its initiator: a TCP SYN (or a FIN, NULL or Xmas
// probe), a UDP datagram, an ICMP echo request. Its outcome is known from the other end's first
// packet on the flow (the flow table marks it): a SYN-ACK or any UDP or echo answer is a success,
// a TCP reset a failure. An ICMP destination unreachable quoting the attempt is a failure; an ICMP
// time exceeded (traceroute) withdraws it. With no answer within the timeout it is a failure.
//
// Not attempts: a first packet whose IPv4 header checksum is wrong while most packets' are right
// (no host accepts it; fuzzed and corrupted captures are full of them, to addresses nobody owns;
// where most are wrong, the capture was anonymised without fixing them and they say nothing), and
// a flow that DPI recognised on its first payload as a peer-to-peer protocol (Gnutella,
// BitTorrent): such a peer tries cached peers one after another and most are gone, which looks
// like a sweep and is not one (Jung et al. 2004 report the same false positives of P2P hosts).
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../decode/ip.js';
import { TCP_ACK, TCP_RST, TCP_SYN } from '../decode/packet.js';
import { ipv4ChecksumBroken } from '../decode/ipv4.js';
import { F_FIRST_REPLY, F_FROM_CLIENT, F_NEW_FLOW, F_PEER_TO_PEER, addressKey, key3, type PacketFacts } from './facts.js';
import { PROBE_ECHO, PROBE_STEALTH, PROBE_SYN, PROBE_UDP, type Attempt } from './types.js';
import { finish, mix } from '../flow/hash.js';
import { OpenIndex, growFloat64, growInt32, growUint32, growUint8 } from '../flow/open-index.js';

const TWO32 = 4294967296;

/** The attempt passed to a listener is reused for the next call: read it, do not keep it. */
export type AttemptListener = (a: Attempt, p: PacketFacts) => void;
export type OutcomeListener = (a: Attempt, success: boolean, now: number) => void;

const INITIAL_SLOTS = 1024;
const INITIAL_QUEUE = 4096;

/**
 * Pending attempts live in typed arrays (one slot each, found through an open-addressing index on
 * their key) and a ring of (slot, attempt number, time) in order of time, so that tracking the
 * ~180,000 attempts of the benchmark capture allocates nothing per attempt: as objects in a Map,
 * each outlived a young-generation collection (it waits for its answer or its timeout), and
 * copying them was a good part of the detectors' cost.
 */
export class AttemptTracker {
  // Per slot.
  private keyOf = new Float64Array(INITIAL_SLOTS);
  private hashOf = new Uint32Array(INITIAL_SLOTS);
  private srcKeyOf = new Float64Array(INITIAL_SLOTS);
  private dstKeyOf = new Float64Array(INITIAL_SLOTS);
  private tsOf = new Float64Array(INITIAL_SLOTS);
  private bytesOf = new Float64Array(INITIAL_SLOTS);
  /** The attempt number in the slot: a queue entry whose number differs is an answered attempt's. */
  private numberOf = new Float64Array(INITIAL_SLOTS);
  private protoOf = new Int32Array(INITIAL_SLOTS);
  private portOf = new Int32Array(INITIAL_SLOTS);
  private probeOf = new Int32Array(INITIAL_SLOTS);
  private used = new Uint8Array(INITIAL_SLOTS);
  private free = new Int32Array(INITIAL_SLOTS);
  private freeCount = 0;
  /** Slots ever handed out (the next new one). */
  private highWater = 0;
  private index = new OpenIndex(INITIAL_SLOTS * 2);
  private pending = 0;
  private nextNumber = 1;
  // The queue: a ring, oldest at head.
  private qSlot = new Int32Array(INITIAL_QUEUE);
  private qNumber = new Float64Array(INITIAL_QUEUE);
  private qTs = new Float64Array(INITIAL_QUEUE);
  private qHead = 0;
  private qLength = 0;
  /** What listeners get (see AttemptListener). */
  private readonly view: Attempt = { srcKey: 0, dstKey: 0, proto: 0, port: 0, probe: 0, ts: 0, bytes: 0 };
  private readonly timeoutUs: number;
  private readonly inner = new Uint32Array(4);
  private readonly inner2 = new Uint32Array(4);
  /** IPv4 header checksums: right (or left to the NIC) and wrong so far. */
  private checksumsRight = 0;
  private checksumsWrong = 0;

  constructor(
    timeoutSec: number,
    private readonly maxPending: number,
    private readonly onAttempt: AttemptListener,
    private readonly onOutcome: OutcomeListener,
  ) {
    this.timeoutUs = timeoutSec * 1e6;
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.laterFragment) return;
    const proto = pkt.ipProto;
    const flags = p.flags;
    // Every IPv4 packet whose header was captured whole (its transport header was decoded) counts
    // towards the capture's share of right checksums.
    const checksumWrong = pkt.ipVersion === 4 && (pkt.hasPorts || pkt.icmpType >= 0) && ipv4ChecksumBroken(p.buf, pkt.ipOffset);
    if (checksumWrong) this.checksumsWrong++;
    else this.checksumsRight++;
    if ((flags & (F_NEW_FLOW | F_FROM_CLIENT)) === (F_NEW_FLOW | F_FROM_CLIENT)) {
      if ((flags & F_PEER_TO_PEER) !== 0 || (checksumWrong && this.checksumsRight > this.checksumsWrong)) return;
      let probe = -1;
      let port = 0;
      if (proto === IPPROTO_TCP && pkt.hasPorts) {
        const tf = pkt.tcpFlags;
        if ((tf & (TCP_SYN | TCP_ACK)) === TCP_SYN) probe = PROBE_SYN;
        // A flow picked up mid-stream always carries ACK; none of SYN, ACK, RST is a probe.
        else if ((tf & (TCP_SYN | TCP_ACK | TCP_RST)) === 0) probe = PROBE_STEALTH;
        port = pkt.dstPort;
      } else if (proto === IPPROTO_UDP && pkt.hasPorts) {
        if (!isGroupAddress(pkt.ipVersion, pkt.dst)) probe = PROBE_UDP;
        port = pkt.dstPort;
      } else if ((proto === IPPROTO_ICMP && pkt.icmpType === 8) || (proto === IPPROTO_ICMPV6 && pkt.icmpType === 128)) {
        if (!isGroupAddress(pkt.ipVersion, pkt.dst)) probe = PROBE_ECHO;
      }
      if (probe >= 0) this.start(p, proto, port, probe);
      return;
    }
    if (flags & F_FIRST_REPLY) {
      // The answer travels from the attempt's destination back to its source.
      if (proto === IPPROTO_TCP && pkt.hasPorts) {
        this.resolve(key3(p.dstKey, p.srcKey, (proto << 16) | pkt.srcPort), (pkt.tcpFlags & TCP_RST) === 0, p.ts);
      } else if (proto === IPPROTO_UDP && pkt.hasPorts) {
        this.resolve(key3(p.dstKey, p.srcKey, (proto << 16) | pkt.srcPort), true, p.ts);
      } else if ((proto === IPPROTO_ICMP && pkt.icmpType === 0) || (proto === IPPROTO_ICMPV6 && pkt.icmpType === 129)) {
        this.resolve(key3(p.dstKey, p.srcKey, proto << 16), true, p.ts);
      }
    }
    if (proto === IPPROTO_ICMP && (pkt.icmpType === 3 || pkt.icmpType === 11)) this.icmpError(p, 4, pkt.icmpType === 3);
    else if (proto === IPPROTO_ICMPV6 && (pkt.icmpType === 1 || pkt.icmpType === 3)) this.icmpError(p, 6, pkt.icmpType === 1);
  }

  /** Attempts with no answer by now fail. */
  tick(now: number): void {
    while (this.qLength > 0 && now - this.qTs[this.qHead] >= this.timeoutUs) {
      const slot = this.popLive();
      if (slot >= 0) this.finishAttempt(slot, false, now);
    }
  }

  /** End of input: what got no answer failed. */
  flush(now: number): void {
    while (this.qLength > 0) {
      const slot = this.popLive();
      if (slot >= 0) this.finishAttempt(slot, false, now);
    }
    this.clear();
  }

  clear(): void {
    this.index.slots.fill(-1);
    this.used.fill(0);
    this.freeCount = 0;
    this.highWater = 0;
    this.pending = 0;
    this.qHead = 0;
    this.qLength = 0;
  }

  get size(): number {
    return this.pending;
  }

  private start(p: PacketFacts, proto: number, port: number, probe: number): void {
    const key = key3(p.srcKey, p.dstKey, (proto << 16) | port);
    const hash = finish(mix(key % TWO32, Math.floor(key / TWO32)));
    if (this.find(key, hash) >= 0) return; // a retry of a pending attempt (another source port)
    if (this.pending >= this.maxPending) {
      // Full: the oldest pending attempt is given up as failed.
      while (this.qLength > 0) {
        const old = this.popLive();
        if (old >= 0) {
          this.finishAttempt(old, false, p.ts);
          break;
        }
      }
    }
    const slot = this.allocate();
    const number = this.nextNumber++;
    this.keyOf[slot] = key;
    this.hashOf[slot] = hash;
    this.srcKeyOf[slot] = p.srcKey;
    this.dstKeyOf[slot] = p.dstKey;
    this.tsOf[slot] = p.ts;
    this.bytesOf[slot] = p.bytes;
    this.numberOf[slot] = number;
    this.protoOf[slot] = proto;
    this.portOf[slot] = port;
    this.probeOf[slot] = probe;
    this.used[slot] = 1;
    this.pending++;
    if (this.pending * 2 > this.index.slots.length) this.index = OpenIndex.rebuild(this.index.slots.length * 2, this.used, this.hashOf, this.highWater);
    else this.index.place(slot, hash);
    this.enqueue(slot, number, p.ts);
    this.onAttempt(this.fill(slot), p);
  }

  private resolve(key: number, success: boolean, now: number): void {
    const slot = this.find(key, finish(mix(key % TWO32, Math.floor(key / TWO32))));
    if (slot >= 0) this.finishAttempt(slot, success, now);
  }

  private finishAttempt(slot: number, success: boolean, now: number): void {
    const a = this.fill(slot);
    this.release(slot);
    this.onOutcome(a, success, now);
  }

  /** The pending attempt's slot under `key`, or -1. */
  private find(key: number, hash: number): number {
    const { slots, mask } = this.index;
    let i = hash & mask;
    for (;;) {
      const slot = slots[i];
      if (slot < 0) return -1;
      if (this.keyOf[slot] === key) return slot;
      i = (i + 1) & mask;
    }
  }

  private fill(slot: number): Attempt {
    const a = this.view;
    a.srcKey = this.srcKeyOf[slot];
    a.dstKey = this.dstKeyOf[slot];
    a.proto = this.protoOf[slot];
    a.port = this.portOf[slot];
    a.probe = this.probeOf[slot];
    a.ts = this.tsOf[slot];
    a.bytes = this.bytesOf[slot];
    return a;
  }

  private allocate(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount];
    if (this.highWater === this.keyOf.length) this.grow(this.keyOf.length * 2);
    return this.highWater++;
  }

  /** Takes a slot's attempt out of the index; its queue entry goes stale. */
  private release(slot: number): void {
    this.index.remove(slot, this.hashOf[slot], this.hashOf);
    this.used[slot] = 0;
    this.numberOf[slot] = 0;
    this.free[this.freeCount++] = slot;
    this.pending--;
  }

  private grow(n: number): void {
    this.keyOf = growFloat64(this.keyOf, n);
    this.hashOf = growUint32(this.hashOf, n);
    this.srcKeyOf = growFloat64(this.srcKeyOf, n);
    this.dstKeyOf = growFloat64(this.dstKeyOf, n);
    this.tsOf = growFloat64(this.tsOf, n);
    this.bytesOf = growFloat64(this.bytesOf, n);
    this.numberOf = growFloat64(this.numberOf, n);
    this.protoOf = growInt32(this.protoOf, n);
    this.portOf = growInt32(this.portOf, n);
    this.probeOf = growInt32(this.probeOf, n);
    this.used = growUint8(this.used, n);
    this.free = growInt32(this.free, n);
  }

  private enqueue(slot: number, number: number, ts: number): void {
    const cap = this.qSlot.length;
    if (this.qLength === cap) {
      // Full ring: unroll it into one twice the size.
      const slots = new Int32Array(cap * 2);
      const numbers = new Float64Array(cap * 2);
      const times = new Float64Array(cap * 2);
      for (let k = 0; k < cap; k++) {
        const i = (this.qHead + k) % cap;
        slots[k] = this.qSlot[i];
        numbers[k] = this.qNumber[i];
        times[k] = this.qTs[i];
      }
      this.qSlot = slots;
      this.qNumber = numbers;
      this.qTs = times;
      this.qHead = 0;
    }
    const at = (this.qHead + this.qLength) % this.qSlot.length;
    this.qSlot[at] = slot;
    this.qNumber[at] = number;
    this.qTs[at] = ts;
    this.qLength++;
  }

  /** Pops the oldest queue entry: its slot if that attempt is still pending, else -1. */
  private popLive(): number {
    const head = this.qHead;
    const slot = this.qSlot[head];
    const live = this.numberOf[slot] === this.qNumber[head];
    this.qHead = (head + 1) % this.qSlot.length;
    this.qLength--;
    return live ? slot : -1;
  }

  /** An ICMP error quotes the IP header and first 8 bytes of the packet it answers. */
  private icmpError(p: PacketFacts, version: number, unreachable: boolean): void {
    const buf = p.buf;
    const at = p.pkt.payloadOffset + 4; // after type, code, checksum and the 4 unused/MTU bytes
    const end = p.pkt.payloadOffset + p.pkt.payloadLength;
    let proto: number;
    let transport: number;
    if (version === 4) {
      if (end - at < 20 || buf[at] >> 4 !== 4) return;
      const ihl = (buf[at] & 15) * 4;
      proto = buf[at + 9];
      this.inner[0] = buf.readUInt32BE(at + 12);
      this.inner2[0] = buf.readUInt32BE(at + 16);
      transport = at + ihl;
    } else {
      if (end - at < 40 || buf[at] >> 4 !== 6) return;
      proto = buf[at + 6];
      for (let i = 0; i < 4; i++) {
        this.inner[i] = buf.readUInt32BE(at + 8 + i * 4);
        this.inner2[i] = buf.readUInt32BE(at + 24 + i * 4);
      }
      transport = at + 40;
    }
    let port = 0;
    if (proto === IPPROTO_TCP || proto === IPPROTO_UDP) {
      if (end - transport < 4) return;
      port = buf.readUInt16BE(transport + 2);
    } else if (proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6) return;
    const key = key3(addressKey(version, this.inner), addressKey(version, this.inner2), (proto << 16) | port);
    const slot = this.find(key, finish(mix(key % TWO32, Math.floor(key / TWO32))));
    if (slot < 0) return;
    // Time exceeded: the probe died on the way (traceroute); it says nothing about the target.
    if (unreachable) this.finishAttempt(slot, false, p.ts);
    else this.release(slot);
  }
}

/** Multicast and limited broadcast: nobody in particular is asked, so no answer means nothing. */
function isGroupAddress(version: number, w: Uint32Array): boolean {
  if (version === 4) return w[0] >>> 28 === 14 || w[0] === 0xffffffff;
  return w[0] >>> 24 === 0xff;
}
