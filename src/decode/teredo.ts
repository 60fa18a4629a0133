// Teredo (RFC 4380): IPv6 over UDP, optionally preceded by an authentication indicator (0x0001,
// client id and authentication value lengths, then those, an 8-byte nonce and a confirmation
// byte) and an origin indication (0x0000, 6 bytes more). There is no port to go by (relays use any),
// so as Zeek does, a payload is Teredo when an IPv6 header follows whose payload length accounts
// for exactly the rest of the datagram.
import { decodeIpv6 } from './ipv6.js';
import type { DecodedPacket } from './packet.js';

const IPV6_HEADER = 40;

/** Where the IPv6 header of a Teredo payload starts, or -1 when the payload is not Teredo. */
function teredoIpv6At(buf: Buffer, off: number, end: number): number {
  let p = off;
  if (end - p >= 4 && buf[p] === 0 && buf[p + 1] === 1) {
    // Authentication indicator: 4 bytes, the client id and authentication value, nonce (8), confirmation (1).
    p += 4 + buf[p + 2] + buf[p + 3] + 9;
  }
  if (end - p >= 8 && buf[p] === 0 && buf[p + 1] === 0) p += 8; // origin indication
  if (end - p < IPV6_HEADER || buf[p] >> 4 !== 6) return -1;
  const payload = (buf[p + 4] << 8) | buf[p + 5];
  if (payload !== end - p - IPV6_HEADER) return -1;
  // The two checks above are all Zeek asks, and a 41-byte DNS query whose id starts with 6 and that asks
  // one question passes them (telegram.pcap). A packet with a hop limit of 0 was never forwarded, and a
  // payload too short for its first header is no IPv6 packet: neither is Teredo.
  if (buf[p + 7] === 0 || payload < minimumPayload(buf[p + 6])) return -1;
  return p;
}

/** The fewest payload bytes an IPv6 packet whose first header is `next` can have. */
function minimumPayload(next: number): number {
  switch (next) {
    case 6: // TCP
      return 20;
    case 17: // UDP
      return 8;
    case 58: // ICMPv6
      return 4;
    case 59: // no next header (Teredo's bubbles)
      return 0;
    default: // extension headers (hop-by-hop, routing, fragment, options...) and other protocols
      return 8;
  }
}

export function isTeredo(buf: Buffer, off: number, end: number): boolean {
  return teredoIpv6At(buf, off, end) >= 0;
}

export function decodeTeredo(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  const p = teredoIpv6At(buf, off, end);
  if (p >= 0) decodeIpv6(buf, p, end, pkt);
}
