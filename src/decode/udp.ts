// UDP (RFC 768), and the tunnels it carries (udp-tunnel.ts).
import { R_UDP_BAD_LENGTH, R_UDP_TRUNCATED, type DecodedPacket } from './packet.js';
import { decodeUdpTunnel } from './udp-tunnel.js';

export function decodeUdp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_UDP_TRUNCATED);
    return;
  }
  pkt.srcPort = (buf[off] << 8) | buf[off + 1];
  pkt.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  pkt.hasPorts = true;
  if (end - off < 8) {
    pkt.fail(R_UDP_TRUNCATED);
    return;
  }
  const length = (buf[off + 4] << 8) | buf[off + 5];
  // Length 0 is legal for IPv6 jumbograms; below 8 it is not a UDP header.
  if (length !== 0 && length < 8) pkt.fail(R_UDP_BAD_LENGTH);
  pkt.payloadOffset = off + 8;
  pkt.payloadLength = end - off - 8;
  // A tunnel's inner packet replaces this one (which is kept as pkt.carrier); see udp-tunnel.ts.
  if (pkt.depth < MAX_UDP_TUNNEL_DEPTH) decodeUdpTunnel(buf, off + 8, end, pkt);
}

/** Tunnel nesting (IP-in-IP, GRE) beyond which a UDP payload is not looked into (ip.ts's limit). */
const MAX_UDP_TUNNEL_DEPTH = 4;
