// Connection attempts and their outcomes, for the scan detectors' random walks.
//
// An attempt is the first packet of a flow from its initiator: a TCP SYN (or a FIN, NULL or Xmas
// probe), a UDP datagram, an ICMP echo request. Its outcome is known from the other end's first
// packet on the flow (the flow table marks it): a SYN-ACK or any UDP or echo answer is a success,
// a TCP reset a failure. An ICMP destination unreachable quoting the attempt is a failure; an ICMP
// time exceeded (traceroute) withdraws it. With no answer within the timeout it is a failure.
//
// Neighbour probes are attempts too, on the link: an ARP request for an address, answered by an
// ARP reply, and an IPv6 neighbour solicitation for a target address, answered by a solicited
// neighbour advertisement to its source. `nmap -sn` on its own subnet sends nothing else, and
// ntopng and Zeek report such sweeps too. Not attempts: ARP probes and announcements (RFC 5227:
// sender 0.0.0.0, or asking for its own address) and duplicate address detection (source ::),
// which ask nobody in particular.
//
// Not attempts: a first packet whose IPv4 header checksum is wrong while most packets' are right
// (no host accepts it; fuzzed and corrupted captures are full of them, to addresses nobody owns;
// where most are wrong, the capture was anonymised without fixing them and they say nothing), and
// a flow that DPI recognised on its first payload as a peer-to-peer protocol (Gnutella,
// BitTorrent): such a peer tries cached peers one after another and most are gone, which looks
// like a sweep and is not one (Jung et al. 2004 report the same false positives of P2P hosts).
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../decode/ip.js';
import { ARP_REPLY, ARP_REQUEST } from '../decode/arp.js';
import { TCP_ACK, TCP_RST, TCP_SYN } from '../decode/packet.js';
import { ipv4ChecksumBroken } from '../decode/ipv4.js';
import { F_FIRST_REPLY, F_FROM_CLIENT, F_NEW_FLOW, F_PEER_TO_PEER, addressKey, key3, type PacketFacts } from './facts.js';
import { PROBE_ARP, PROBE_ECHO, PROBE_ND, PROBE_STEALTH, PROBE_SYN, PROBE_UDP, PROTO_ARP, PROTO_ND, type Attempt } from './types.js';
import { growFloat64, growInt32, growUint32 } from '../flow/open-index.js';
import { LruSlots } from './lru-slots.js';

/** The attempt passed to a listener is reused for the next call: read it, do not keep it. */
export type AttemptListener = (a: Attempt, p: PacketFacts) => void;
export type OutcomeListener = (a: Attempt, success: boolean, now: number) => void;

const INITIAL_SLOTS = 1024;
const ICMPV6_NEIGHBOUR_SOLICITATION = 135;
const ICMPV6_NEIGHBOUR_ADVERTISEMENT = 136;

/**
 * Pending attempts live in typed arrays, one slot each of an LruSlots table (lru-slots.ts) that is
 * never touched, so that its order of use is the order of the attempts: the head is the oldest
 * pending one, for timeouts and for eviction. Tracking the ~180,000 attempts of the benchmark
 * capture allocates nothing per attempt: as objects in a Map, each outlived a young-generation
 * collection (it waits for its answer or its timeout), and copying them was a good part of the
 * detectors' cost.
 */
export class AttemptTracker {
  private readonly table = new LruSlots(INITIAL_SLOTS, (n) => this.grow(n));
  private srcKeyOf = new Float64Array(0);
  private dstKeyOf = new Float64Array(0);
  private tsOf = new Float64Array(0);
  private bytesOf = new Float64Array(0);
  private protoOf = new Int32Array(0);
  private portOf = new Int32Array(0);
  private probeOf = new Int32Array(0);
  private flowHiOf = new Uint32Array(0);
  private flowLoOf = new Uint32Array(0);
  /** What listeners get (see AttemptListener). */
  private readonly view: Attempt = { srcKey: 0, dstKey: 0, proto: 0, port: 0, probe: 0, ts: 0, bytes: 0, flowHi: 0, flowLo: 0 };
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
    this.grow(this.table.capacity);
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.laterFragment) return;
    const proto = pkt.ipProto;
    const flags = p.flags;
    if (proto === IPPROTO_ICMPV6 && (pkt.icmpType === ICMPV6_NEIGHBOUR_SOLICITATION || pkt.icmpType === ICMPV6_NEIGHBOUR_ADVERTISEMENT)) {
      this.neighbourDiscovery(p);
      return;
    }
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
      if (probe >= 0) this.start(p, p.dstKey, proto, port, probe);
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

  /** An ARP packet (the decoder's KIND_ARP): a request is an attempt on its target address, a reply answers it. */
  arp(p: PacketFacts): void {
    const op = p.pkt.arpOp;
    if (op === ARP_REQUEST) {
      if (p.srcKey === 0 || p.srcKey === p.dstKey) return; // probe or announcement
      this.start(p, p.dstKey, PROTO_ARP, 0, PROBE_ARP);
    } else if (op === ARP_REPLY) {
      // The reply's sender is the address asked for; its target is the asker.
      this.resolve(key3(p.dstKey, p.srcKey, PROTO_ARP << 16), true, p.ts);
    }
  }

  /** Attempts with no answer by now fail. */
  tick(now: number): void {
    const table = this.table;
    while (table.size > 0 && now - this.tsOf[table.head] >= this.timeoutUs) this.finishAttempt(table.head, false, now);
  }

  /** End of input: what got no answer failed. */
  flush(now: number): void {
    while (this.table.size > 0) this.finishAttempt(this.table.head, false, now);
  }

  clear(): void {
    this.table.clear();
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * A neighbour solicitation is sent to the target's solicited-node multicast group and names the
   * target in its body, after 4 reserved bytes; a solicited advertisement goes back to the
   * solicitation's source and names the same target after 4 bytes of flags.
   */
  private neighbourDiscovery(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.payloadLength < 20) return;
    const at = pkt.payloadOffset + 4;
    const target = p.probed;
    for (let i = 0; i < 4; i++) target[i] = p.buf.readUInt32BE(at + i * 4);
    const targetKey = addressKey(6, target);
    if (pkt.icmpType === ICMPV6_NEIGHBOUR_SOLICITATION) {
      const src = pkt.src;
      if ((src[0] | src[1] | src[2] | src[3]) === 0) return; // duplicate address detection
      p.probedSet = true;
      this.start(p, targetKey, PROTO_ND, 0, PROBE_ND);
    } else this.resolve(key3(p.dstKey, targetKey, PROTO_ND << 16), true, p.ts);
  }

  private start(p: PacketFacts, dstKey: number, proto: number, port: number, probe: number): void {
    const key = key3(p.srcKey, dstKey, (proto << 16) | port);
    const table = this.table;
    if (table.get(key) >= 0) return; // a retry of a pending attempt (another source port)
    // Full: the oldest pending attempt is given up as failed.
    if (table.size >= this.maxPending) this.finishAttempt(table.head, false, p.ts);
    const slot = table.insert(key);
    this.srcKeyOf[slot] = p.srcKey;
    this.dstKeyOf[slot] = dstKey;
    this.tsOf[slot] = p.ts;
    this.bytesOf[slot] = p.bytes;
    this.protoOf[slot] = proto;
    this.portOf[slot] = port;
    this.probeOf[slot] = probe;
    this.flowHiOf[slot] = p.flowHi;
    this.flowLoOf[slot] = p.flowLo;
    this.onAttempt(this.fill(slot), p);
  }

  private resolve(key: number, success: boolean, now: number): void {
    const slot = this.table.get(key);
    if (slot >= 0) this.finishAttempt(slot, success, now);
  }

  private finishAttempt(slot: number, success: boolean, now: number): void {
    const a = this.fill(slot);
    this.table.remove(slot);
    this.onOutcome(a, success, now);
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
    a.flowHi = this.flowHiOf[slot];
    a.flowLo = this.flowLoOf[slot];
    return a;
  }

  private grow(n: number): void {
    this.srcKeyOf = growFloat64(this.srcKeyOf, n);
    this.dstKeyOf = growFloat64(this.dstKeyOf, n);
    this.tsOf = growFloat64(this.tsOf, n);
    this.bytesOf = growFloat64(this.bytesOf, n);
    this.protoOf = growInt32(this.protoOf, n);
    this.portOf = growInt32(this.portOf, n);
    this.probeOf = growInt32(this.probeOf, n);
    this.flowHiOf = growUint32(this.flowHiOf, n);
    this.flowLoOf = growUint32(this.flowLoOf, n);
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
    const slot = this.table.get(key);
    if (slot < 0) return;
    // Time exceeded: the probe died on the way (traceroute); it says nothing about the target.
    if (unreachable) this.finishAttempt(slot, false, p.ts);
    else this.table.remove(slot);
  }
}

/** Multicast and limited broadcast: nobody in particular is asked, so no answer means nothing. */
function isGroupAddress(version: number, w: Uint32Array): boolean {
  if (version === 4) return w[0] >>> 28 === 14 || w[0] === 0xffffffff;
  return w[0] >>> 24 === 0xff;
}
