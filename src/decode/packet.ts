// The decoder's output: one mutable struct reused for every packet, so that decoding allocates
// nothing. Decoders fill it in layer by layer; the flow table reads it and copies what it keeps.

/** Why a packet could not be decoded (fully). 0 = fine. Names are what summaries print. */
export const MALFORMED_REASONS = [
  '',
  'link.truncated',
  'link.unsupported',
  'ipv4.truncated',
  'ipv4.bad-header',
  'ipv4.bad-length',
  'ipv6.truncated',
  'ipv6.bad-extension',
  'ip.bad-version',
  'tcp.truncated',
  'tcp.bad-offset',
  'udp.truncated',
  'udp.bad-length',
  'sctp.truncated',
  'icmp.truncated',
  'tunnel.too-deep',
  'gre.truncated',
  'pcap.truncated-record',
  'ipv6.bad-length',
  'pcap.bad-timestamp',
  'arp.truncated',
] as const;
export type MalformedReason = (typeof MALFORMED_REASONS)[number];

export const R_LINK_TRUNCATED = 1;
export const R_LINK_UNSUPPORTED = 2;
export const R_IPV4_TRUNCATED = 3;
export const R_IPV4_BAD_HEADER = 4;
export const R_IPV4_BAD_LENGTH = 5;
export const R_IPV6_TRUNCATED = 6;
export const R_IPV6_BAD_EXTENSION = 7;
export const R_IP_BAD_VERSION = 8;
export const R_TCP_TRUNCATED = 9;
export const R_TCP_BAD_OFFSET = 10;
export const R_UDP_TRUNCATED = 11;
export const R_UDP_BAD_LENGTH = 12;
export const R_SCTP_TRUNCATED = 13;
export const R_ICMP_TRUNCATED = 14;
export const R_TUNNEL_TOO_DEEP = 15;
export const R_GRE_TRUNCATED = 16;
export const R_PCAP_TRUNCATED_RECORD = 17;
export const R_IPV6_BAD_LENGTH = 18;
/** A capture record whose time is outside what the store holds (see pcap-file.ts's MAX_TIMESTAMP_US). */
export const R_PCAP_BAD_TIMESTAMP = 19;
export const R_ARP_TRUNCATED = 20;

/** What the packet turned out to be. */
export const KIND_NON_IP = 0; // LLDP, STP...: counted as traffic, no flow
export const KIND_IP = 1; // addresses known; ports too when hasPorts
/** An IPv4-over-Ethernet ARP packet: arpOp, and the sender's and target's addresses in src[0] and dst[0] (ipVersion 4). Non-IP traffic, no flow. */
export const KIND_ARP = 2;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

export class DecodedPacket {
  kind = KIND_NON_IP;
  /** First problem met, 0 when none. A packet can be malformed and still carry a usable flow key. */
  malformed = 0;
  /** 4 or 6 (of the innermost IP header). */
  ipVersion = 0;
  ipProto = 0;
  /** Addresses: IPv4 in word 0 (words 1..3 zero), IPv6 as four big-endian words. */
  readonly src = new Uint32Array(4);
  readonly dst = new Uint32Array(4);
  srcPort = 0;
  dstPort = 0;
  /** Whether the transport header gave ports (TCP, UDP, SCTP). */
  hasPorts = false;
  tcpFlags = 0;
  /** ICMP/ICMPv6 type, -1 when not ICMP. */
  icmpType = -1;
  /** IPv4/IPv6 fragment: identification, and whether this is a non-first fragment (no transport header). */
  fragId = 0;
  isFragment = false;
  laterFragment = false;
  /** Where the transport payload starts and its captured length (for DPI). */
  payloadOffset = 0;
  payloadLength = 0;
  /** Outer 802.1Q VLAN id, 0 if none. */
  vlan = 0;
  /** Tunnel nesting depth used so far (IP-in-IP, GRE). */
  depth = 0;
  /** Offset just past the frame's original (wire) length: an IP length beyond it is malformed. */
  wireEnd = 0;
  /** Where the innermost IP header starts in the frame. */
  ipOffset = 0;
  /** ARP operation (1 request, 2 reply) when kind is KIND_ARP, else 0. */
  arpOp = 0;

  reset(): void {
    this.kind = KIND_NON_IP;
    this.malformed = 0;
    this.ipVersion = 0;
    this.ipProto = 0;
    this.srcPort = 0;
    this.dstPort = 0;
    this.hasPorts = false;
    this.tcpFlags = 0;
    this.icmpType = -1;
    this.fragId = 0;
    this.isFragment = false;
    this.laterFragment = false;
    this.payloadOffset = 0;
    this.payloadLength = 0;
    this.ipOffset = 0;
    this.arpOp = 0;
    this.vlan = 0;
    this.depth = 0;
  }

  /** Marks the first problem only: later layers do not overwrite the root cause. */
  fail(reason: number): void {
    if (this.malformed === 0) this.malformed = reason;
  }
}
