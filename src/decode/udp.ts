// UDP (RFC 768).
import { R_UDP_BAD_LENGTH, R_UDP_TRUNCATED, type DecodedPacket } from './packet.js';

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
}
