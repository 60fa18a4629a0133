// Dispatch from an IP header to what it carries: transports, and IP-in-IP / GRE tunnels whose
// inner packet then defines the flow (as tshark and nDPI attribute it).
import { decodeGre } from './gre.js';
import { decodeIcmp } from './icmp.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { R_IP_BAD_VERSION, R_TUNNEL_TOO_DEEP, type DecodedPacket } from './packet.js';
import { decodeSctp } from './sctp.js';
import { decodeTcp } from './tcp.js';
import { decodeUdp } from './udp.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;

/** Deepest tunnel nesting followed; deeper packets are flows of the last header decoded. */
const MAX_TUNNEL_DEPTH = 4;

export function decodeIpPayload(proto: number, buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  switch (proto) {
    case IPPROTO_TCP:
      decodeTcp(buf, off, end, pkt);
      return;
    case IPPROTO_UDP:
      decodeUdp(buf, off, end, pkt);
      return;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      decodeIcmp(buf, off, end, pkt);
      return;
    case IPPROTO_SCTP:
      decodeSctp(buf, off, end, pkt);
      return;
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
    case IPPROTO_GRE:
      if (pkt.depth >= MAX_TUNNEL_DEPTH) {
        pkt.fail(R_TUNNEL_TOO_DEEP);
        return;
      }
      pkt.depth++;
      pkt.enterIpTunnel();
      if (proto === IPPROTO_GRE) decodeGre(buf, off, end, pkt);
      else if (end - off >= 1 && buf[off] >> 4 === (proto === IPPROTO_IPIP ? 4 : 6)) decodeIp(buf, off, end, pkt);
      return;
    default:
      pkt.payloadOffset = off;
      pkt.payloadLength = end - off;
  }
}

/** An IP header whose version is given by its first nibble (raw IP links, MPLS, tunnels). */
export function decodeIp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 1) {
    pkt.fail(R_IP_BAD_VERSION);
    return;
  }
  const version = buf[off] >> 4;
  if (version === 4) decodeIpv4(buf, off, end, pkt);
  else if (version === 6) decodeIpv6(buf, off, end, pkt);
  else pkt.fail(R_IP_BAD_VERSION);
}
