// TCP (RFC 9293): ports, flags, header length.
import { R_TCP_BAD_OFFSET, R_TCP_TRUNCATED, type DecodedPacket } from './packet.js';

export function decodeTcp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_TCP_TRUNCATED);
    return;
  }
  pkt.srcPort = (buf[off] << 8) | buf[off + 1];
  pkt.dstPort = (buf[off + 2] << 8) | buf[off + 3];
  pkt.hasPorts = true; // ports are enough to place the packet in its flow, as tshark does
  if (end - off < 14) {
    pkt.fail(R_TCP_TRUNCATED);
    return;
  }
  pkt.tcpFlags = buf[off + 13];
  const headerLen = (buf[off + 12] >> 4) * 4;
  if (headerLen < 20) {
    pkt.fail(R_TCP_BAD_OFFSET);
    return;
  }
  if (end - off < headerLen) {
    pkt.fail(R_TCP_TRUNCATED);
    return;
  }
  pkt.payloadOffset = off + headerLen;
  pkt.payloadLength = end - off - headerLen;
}
