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
  'tunnel.truncated',
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
/** A tunnel over UDP (VXLAN, Geneve, GTP-U, Teredo, GRE-in-UDP) whose inner packet is cut short: the carrier's flow still counts it. */
export const R_TUNNEL_TRUNCATED = 21;

/** What the packet turned out to be. */
export const KIND_NON_IP = 0; // LLDP, STP...: counted as traffic, no flow
export const KIND_IP = 1; // addresses known; ports too when hasPorts
/** An IPv4-over-Ethernet ARP packet: arpOp, and the sender's and target's addresses in src[0] and dst[0] (ipVersion 4). Non-IP traffic, no flow. */
export const KIND_ARP = 2;

/** DecodedPacket.tunnelKind. */
export const TUNNEL_NONE = 0;
export const TUNNEL_UDP = 1;
export const TUNNEL_IP = 2;

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
  /**
   * Whether the packet came through a tunnel over UDP (VXLAN, Geneve, GTP-U, Teredo, GRE-in-UDP):
   * then `carrier` holds the carrying UDP packet as decoded (a flow of its own, as Zeek logs it),
   * and this struct the inner packet. Only the outermost such tunnel is one: a tunnel over UDP
   * inside another is left as the inner UDP packet.
   */
  hasCarrier = false;
  /**
   * The innermost tunnel the packet came through: TUNNEL_NONE, TUNNEL_UDP (its carrier is
   * `carrier`) or TUNNEL_IP (IP-in-IP, GRE, ERSPAN, GRE-in-UDP: no flow of its own; Zeek names it
   * by its outer address pair, kept in tunnelSrc/tunnelDst with the outer header at tunnelIpOffset).
   */
  tunnelKind = TUNNEL_NONE;
  tunnelVersion = 0;
  tunnelIpOffset = -1;
  readonly tunnelSrc = new Uint32Array(4);
  readonly tunnelDst = new Uint32Array(4);
  /** The carrier's decode (see hasCarrier); null in a carrier itself. Reused: no allocation per packet. */
  readonly carrier: DecodedPacket | null;

  constructor(isCarrier = false) {
    this.carrier = isCarrier ? null : new DecodedPacket(true);
  }

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
    this.hasCarrier = false;
    this.tunnelKind = TUNNEL_NONE;
    this.tunnelIpOffset = -1;
  }

  /** Notes that what follows is carried by an IP-level tunnel whose outer header is the current one. */
  enterIpTunnel(): void {
    this.tunnelKind = TUNNEL_IP;
    this.tunnelVersion = this.ipVersion;
    this.tunnelIpOffset = this.ipOffset;
    this.tunnelSrc.set(this.src);
    this.tunnelDst.set(this.dst);
  }

  /** Whether the packet is the inner packet of an IP-level tunnel (not the outer one left when the inner was no IP). */
  inIpTunnel(): boolean {
    return this.tunnelKind === TUNNEL_IP && this.ipOffset !== this.tunnelIpOffset;
  }

  /** Copies another decode's result (not its carrier): a tunnel's outer view kept or restored. */
  copyFrom(o: DecodedPacket): void {
    this.kind = o.kind;
    this.malformed = o.malformed;
    this.ipVersion = o.ipVersion;
    this.ipProto = o.ipProto;
    this.src.set(o.src);
    this.dst.set(o.dst);
    this.srcPort = o.srcPort;
    this.dstPort = o.dstPort;
    this.hasPorts = o.hasPorts;
    this.tcpFlags = o.tcpFlags;
    this.icmpType = o.icmpType;
    this.fragId = o.fragId;
    this.isFragment = o.isFragment;
    this.laterFragment = o.laterFragment;
    this.payloadOffset = o.payloadOffset;
    this.payloadLength = o.payloadLength;
    this.vlan = o.vlan;
    this.depth = o.depth;
    this.wireEnd = o.wireEnd;
    this.ipOffset = o.ipOffset;
    this.arpOp = o.arpOp;
    this.tunnelKind = o.tunnelKind;
    this.tunnelVersion = o.tunnelVersion;
    this.tunnelIpOffset = o.tunnelIpOffset;
    this.tunnelSrc.set(o.tunnelSrc);
    this.tunnelDst.set(o.tunnelDst);
  }

  /** Marks the first problem only: later layers do not overwrite the root cause. */
  fail(reason: number): void {
    if (this.malformed === 0) this.malformed = reason;
  }
}
