// Ethernet II and IEEE 802.3 with LLC/SNAP (DLT_EN10MB = 1).
import { decodeEthertype } from './ethertype.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';

export function decodeEthernet(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 14) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  const type = (buf[off + 12] << 8) | buf[off + 13];
  if (type >= 0x0600) {
    decodeEthertype(type, buf, off + 14, end, pkt);
    return;
  }
  // 802.3 length field: only LLC with a SNAP header (AA AA 03) carries an EtherType.
  const llc = off + 14;
  if (end - llc >= 8 && buf[llc] === 0xaa && buf[llc + 1] === 0xaa && buf[llc + 2] === 0x03) {
    decodeEthertype((buf[llc + 6] << 8) | buf[llc + 7], buf, llc + 8, end, pkt);
  }
}
