// GRE (RFC 2784, RFC 2890 keys and sequence numbers, RFC 2637 enhanced GRE for PPTP, Cisco ERSPAN):
// the carried packet defines the flow when it is IP; otherwise the GRE packet itself does.
import { decodeEthernet } from './ethernet.js';
import { decodeEthertype } from './ethertype.js';
import { R_GRE_TRUNCATED, type DecodedPacket } from './packet.js';
import { decodePppProtocol } from './ppp.js';

const TRANSPARENT_ETHERNET = 0x6558;
const PPP = 0x880b;
/** Cisco ERSPAN type I and II (II has GRE's sequence number and an 8-byte header), and type III. */
const ERSPAN_II = 0x88be;
const ERSPAN_III = 0x22eb;

export function decodeGre(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_GRE_TRUNCATED);
    return;
  }
  const flags = (buf[off] << 8) | buf[off + 1];
  const protocol = (buf[off + 2] << 8) | buf[off + 3];
  const version = flags & 0x7;
  let p = off + 4;
  if (flags & 0x8000) p += 4; // checksum + reserved
  if (flags & 0x2000) p += 4; // key (in version 1: payload length + call id)
  if (flags & 0x1000) p += 4; // sequence number
  if (version === 1 && flags & 0x0080) p += 4; // acknowledgment number
  if (p > end) {
    pkt.fail(R_GRE_TRUNCATED);
    return;
  }
  if (protocol === TRANSPARENT_ETHERNET) decodeEthernet(buf, p, end, pkt);
  else if (protocol === ERSPAN_II || protocol === ERSPAN_III) {
    // The mirrored Ethernet frame follows the ERSPAN header: none (type I), 8 bytes (II), or
    // 12 bytes and an 8-byte platform subheader when its O bit is set (III).
    let header = protocol === ERSPAN_II ? (flags & 0x1000 ? 8 : 0) : 12;
    if (protocol === ERSPAN_III && end - p >= 12 && buf[p + 11] & 1) header += 8;
    if (end - p < header) {
      pkt.fail(R_GRE_TRUNCATED);
      return;
    }
    decodeEthernet(buf, p + header, end, pkt);
  } else if (protocol === PPP) {
    // PPTP carries PPP in HDLC-like framing: optional 0xff 0x03, then the protocol.
    if (end - p >= 2 && buf[p] === 0xff && buf[p + 1] === 0x03) p += 2;
    if (end - p < 1) return;
    if (buf[p] & 1) decodePppProtocol(buf[p], buf, p + 1, end, pkt);
    else if (end - p >= 2) decodePppProtocol((buf[p] << 8) | buf[p + 1], buf, p + 2, end, pkt);
  } else decodeEthertype(protocol, buf, p, end, pkt);
}
