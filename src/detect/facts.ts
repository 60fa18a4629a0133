// What the detectors get per packet: the decoded packet, a few numbers from the flow table, and
// numeric keys of the two addresses. One PacketFacts object is reused for every packet, so the
// hook allocates nothing; address strings are built only when a detector needs one (a new
// tracked source or target).
import { addressToString } from '../flow/address.js';
import { finish, mix } from '../flow/hash.js';
import type { DecodedPacket } from '../decode/packet.js';

/** The packet started a new flow. */
export const F_NEW_FLOW = 1;
/** The packet went from the flow's client (initiator) to its server. */
export const F_FROM_CLIENT = 2;
/** The packet is the first the server sent on this flow (the answer to the attempt). */
export const F_FIRST_REPLY = 4;
/** The packet completed a TCP handshake (the client's ACK after the server's SYN-ACK). */
export const F_ESTABLISHED = 8;
/** DPI found the flow to be a peer-to-peer protocol: peer discovery, not a probe. */
export const F_PEER_TO_PEER = 16;

const TWO32 = 4294967296;
const TWO52 = 4503599627370496;

/**
 * A number that stands for an address: the IPv4 address itself (below 2^32), or for IPv6 a 52-bit
 * hash above 2^52 (collisions among the few thousand tracked hosts are vanishingly unlikely).
 */
export function addressKey(version: number, w: Uint32Array): number {
  if (version === 4) return w[0];
  const h1 = finish(mix(mix(mix(mix(0x1b873593, w[0]), w[1]), w[2]), w[3]));
  const h2 = finish(mix(mix(mix(mix(0x6a09e667, w[3]), w[2]), w[1]), w[0]));
  return TWO52 + h1 * 1048576 + (h2 & 0xfffff);
}

/** A 53-bit key of up to three numbers (address keys below 2^53, ports, protocol numbers). */
export function key3(a: number, b: number, c: number): number {
  const aLo = a % TWO32;
  const aHi = Math.floor(a / TWO32);
  const bLo = b % TWO32;
  const bHi = Math.floor(b / TWO32);
  let h1 = mix(mix(mix(mix(mix(0x85ebca6b, aLo), aHi), bLo), bHi), c);
  let h2 = mix(mix(mix(mix(mix(0xc2b2ae35, c), bHi), bLo), aHi), aLo);
  h1 = finish(h1);
  h2 = finish(h2);
  return h1 * 2097152 + (h2 & 0x1fffff);
}

export class PacketFacts {
  pkt!: DecodedPacket;
  /** The frame's buffer (ICMP errors quote the packet they answer). */
  buf!: Buffer;
  /** Packet time (µs) and wire bytes. */
  ts = 0;
  bytes = 0;
  /** F_* bits. */
  flags = 0;
  /** The packet's flow id (two words, as the flow table holds it); 0/0: no flow (ARP). */
  flowHi = 0;
  flowLo = 0;
  srcKey = 0;
  dstKey = 0;
  /** The address an attempt probes when it is not the packet's destination (an IPv6 neighbour solicitation's target, sent to a multicast group); set by the attempt tracker. */
  readonly probed = new Uint32Array(4);
  probedSet = false;

  set(pkt: DecodedPacket, buf: Buffer, ts: number, bytes: number, flags: number, flowHi = 0, flowLo = 0): void {
    this.pkt = pkt;
    this.flowHi = flowHi;
    this.flowLo = flowLo;
    this.buf = buf;
    this.ts = ts;
    this.bytes = bytes;
    this.flags = flags;
    this.srcKey = addressKey(pkt.ipVersion, pkt.src);
    this.dstKey = addressKey(pkt.ipVersion, pkt.dst);
    this.probedSet = false;
  }

  srcIp(): string {
    return addressToString(this.pkt.ipVersion, this.pkt.src, 0);
  }

  dstIp(): string {
    return addressToString(this.pkt.ipVersion, this.pkt.dst, 0);
  }

  /** The probed address's text: `probed` when set, else the destination. */
  targetIp(): string {
    return this.probedSet ? addressToString(this.pkt.ipVersion, this.probed, 0) : this.dstIp();
  }
}

/** Keeps an address (version and words) without allocating: for a flood's current majority source. */
export class AddressSlot {
  version = 0;
  readonly words = new Uint32Array(4);

  copy(version: number, w: Uint32Array): void {
    this.version = version;
    this.words[0] = w[0];
    this.words[1] = w[1];
    this.words[2] = w[2];
    this.words[3] = w[3];
  }

  toString(): string {
    return addressToString(this.version, this.words, 0);
  }
}
