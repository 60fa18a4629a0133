// Linux cooked capture v1 (DLT_LINUX_SLL = 113) and v2 (DLT_LINUX_SLL2 = 276), as libpcap
// writes for the "any" device: no MAC header, a protocol field holding an EtherType.
import { decodeEthertype } from './ethertype.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';

/** v1: packet type(2) ARPHRD(2) address length(2) address(8) protocol(2). */
export function decodeSll(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 16) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  decodeEthertype((buf[off + 14] << 8) | buf[off + 15], buf, off + 16, end, pkt);
}

/** v2: protocol(2) reserved(2) interface index(4) ARPHRD(2) packet type(1) address length(1) address(8). */
export function decodeSll2(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 20) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  decodeEthertype((buf[off] << 8) | buf[off + 1], buf, off + 20, end, pkt);
}
