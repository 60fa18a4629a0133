// SCTP (RFC 9260): the common header carries the ports.
import { R_SCTP_TRUNCATED, type DecodedPacket } from './packet.js';

export function decodeSctp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 12) {
    if (end - off >= 4) {
      pkt.srcPort = (buf[off] << 8) | buf[off + 1];
      pkt.dstPort = (buf[off + 2] << 8) | buf[off + 3];
      pkt.hasPorts = true;
    }
    pkt.fail(R_SCTP_TRUNCATED);
    return;
  }
  pkt.srcPort = (buf[off] << 8) | buf[off + 1];
  pkt.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  pkt.hasPorts = true;
  pkt.payloadOffset = off + 12;
  pkt.payloadLength = end - off - 12;
}
