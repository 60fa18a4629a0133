// PPP (DLT_PPP = 9, DLT_PPP_SERIAL = 50, DLT_PPP_ETHER = 51 for PPPoE without Ethernet) and
// Cisco HDLC (DLT_C_HDLC = 104), whose protocol field is an EtherType.
import { decodeEthertype } from './ethertype.js';
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';

const PPP_IPV4 = 0x0021;
const PPP_IPV6 = 0x0057;

export function decodePppProtocol(protocol: number, buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (protocol === PPP_IPV4) decodeIpv4(buf, off, end, pkt);
  else if (protocol === PPP_IPV6) decodeIpv6(buf, off, end, pkt);
  // LCP, IPCP, CHAP...: link control, non-IP traffic.
}

/** PPP frame, with or without the HDLC address/control bytes, with a 1- or 2-byte protocol field. */
export function decodePpp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  // Cisco HDLC frames (address 0x0f unicast or 0x8f broadcast) are captured with the PPP link
  // type by some routers; tshark tells them apart the same way.
  if (end - off >= 4 && (buf[off] === 0x0f || buf[off] === 0x8f) && buf[off + 1] === 0x00) {
    decodeCiscoHdlc(buf, off, end, pkt);
    return;
  }
  if (end - off >= 2 && buf[off] === 0xff && buf[off + 1] === 0x03) off += 2;
  if (end - off < 1) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  // Protocol-field compression (RFC 1661): an odd first byte is a 1-byte protocol.
  if (buf[off] & 1) {
    decodePppProtocol(buf[off], buf, off + 1, end, pkt);
    return;
  }
  if (end - off < 2) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  decodePppProtocol((buf[off] << 8) | buf[off + 1], buf, off + 2, end, pkt);
}

/** PPPoE session header (6 bytes) then PPP protocol. */
export function decodePppEther(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 8) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  decodePppProtocol((buf[off + 6] << 8) | buf[off + 7], buf, off + 8, end, pkt);
}

/** Cisco HDLC: address(1) control(1) protocol(2, an EtherType). */
export function decodeCiscoHdlc(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  decodeEthertype((buf[off + 2] << 8) | buf[off + 3], buf, off + 4, end, pkt);
}
