// The one small interface every detector implements. Detectors see every IP packet (floods) and,
// when they care, connection attempts and their outcomes (scans: see attempts.ts). They report
// through the shared AnomalyEmitter (lifecycle.ts), which owns start, update and end.
import type { PacketFacts } from './facts.js';

/** What a connection attempt was. */
export const PROBE_SYN = 0;
/** A TCP segment with none of SYN, ACK, RST starting a flow: FIN, NULL and Xmas scans. */
export const PROBE_STEALTH = 1;
export const PROBE_UDP = 2;
export const PROBE_ECHO = 3;
/** An ARP request for an IPv4 address (answered by an ARP reply). */
export const PROBE_ARP = 4;
/** An IPv6 neighbour solicitation for an address (answered by a neighbour advertisement). */
export const PROBE_ND = 5;
export const PROBE_NAMES = ['syn', 'fin/null/xmas', 'udp', 'icmp-echo', 'arp', 'nd'] as const;

/**
 * Attempt.proto of the neighbour probes, which no IP protocol number (0..255) can be: ARP's
 * EtherType, and ICMPv6's number above 255 (an ICMPv6 echo sweep and an ND sweep of the same
 * source are two classes).
 */
export const PROTO_ARP = 0x0806;
export const PROTO_ND = 0x100 | 58;

/** A first packet from a flow's initiator, waiting for the other end's answer. */
export interface Attempt {
  srcKey: number;
  dstKey: number;
  proto: number;
  /** Destination port; 0 for ICMP echo. */
  port: number;
  probe: number;
  ts: number;
  bytes: number;
  /** The attempt's flow id (0/0: none, an ARP request). */
  flowHi: number;
  flowLo: number;
}

export interface Detector {
  /** Every IP packet. Must not allocate on the common path. */
  packet(p: PacketFacts): void;
  /** A new connection attempt (the packet that made it is `p`). */
  attempt?(a: Attempt, p: PacketFacts): void;
  /** The attempt's answer: success (any answer but a reset or an ICMP error), or failure (reset, ICMP unreachable, or none within the timeout). */
  outcome?(a: Attempt, success: boolean, now: number): void;
  /** About once a second of packet time: expire and evict. */
  tick(now: number): void;
  /** Forget everything (end of input; another capture's clock). Its anomalies are ended by the emitter. */
  reset(): void;
}
