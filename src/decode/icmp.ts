// ICMP (RFC 792) and ICMPv6 (RFC 4443). Flows are keyed by the two addresses only (ports 0),
// as nDPI does, so that echo requests and replies and the errors between two hosts form one flow.
import { R_ICMP_TRUNCATED, type DecodedPacket } from './packet.js';

export function decodeIcmp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_ICMP_TRUNCATED);
    return;
  }
  pkt.icmpType = buf[off];
  pkt.payloadOffset = off + 4;
  pkt.payloadLength = end - off - 4;
}
