// IEEE 802.11 data frames (DLT 105) and the capture headers in front of them: radiotap (127)
// and PPI (192). Only unencrypted data frames carry a visible IP packet (after LLC/SNAP).
import { decodeEthertype } from './ethertype.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';

const TYPE_DATA = 2;

export function decodeIeee80211(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 24) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  const fc0 = buf[off];
  const fc1 = buf[off + 1];
  if (((fc0 >> 2) & 3) !== TYPE_DATA) return; // management and control frames: non-IP
  if (fc1 & 0x40) return; // protected: the payload is encrypted
  const subtype = fc0 >> 4;
  if (subtype & 0x4) return; // null-data subtypes carry nothing
  let header = 24;
  if ((fc1 & 0x03) === 0x03) header += 6; // to-DS and from-DS: a fourth address
  if (subtype & 0x8) {
    header += 2; // QoS control
    if (fc1 & 0x80) header += 4; // HT control when the order bit is set on QoS frames
  }
  const llc = off + header;
  if (end - llc >= 8 && buf[llc] === 0xaa && buf[llc + 1] === 0xaa && buf[llc + 2] === 0x03) {
    decodeEthertype((buf[llc + 6] << 8) | buf[llc + 7], buf, llc + 8, end, pkt);
  }
}

/** Radiotap: version(1) pad(1) length(2, little-endian) ... then the 802.11 frame. */
export function decodeRadiotap(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  const len = buf.readUInt16LE(off + 2);
  if (len < 4 || end - off < len) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  // The FCS flag (bit 4 of the flags field) would put 4 bytes at the end; IP lengths ignore them.
  decodeIeee80211(buf, off + len, end, pkt);
}
