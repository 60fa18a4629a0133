// ARP (RFC 826) for IPv4 over Ethernet-sized hardware addresses: the operation and the sender's
// and target's protocol addresses, which neighbour-sweep detection reads (an ARP request from one
// sender to many addresses is a host sweep: `nmap -sn` on its own subnet sends nothing else).
// ARP forms no flow: a KIND_ARP packet is counted as non-IP traffic. ARP for other hardware or
// protocol types is plain non-IP.
import { KIND_ARP, R_ARP_TRUNCATED, type DecodedPacket } from './packet.js';

const HTYPE_ETHERNET = 1;
const PTYPE_IPV4 = 0x0800;
/** Fixed header (8) + two 6-byte hardware and two 4-byte protocol addresses. */
const ARP_IPV4_LENGTH = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export function decodeArp(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 8) {
    pkt.fail(R_ARP_TRUNCATED);
    return;
  }
  const htype = (buf[off] << 8) | buf[off + 1];
  const ptype = (buf[off + 2] << 8) | buf[off + 3];
  if (htype !== HTYPE_ETHERNET || ptype !== PTYPE_IPV4 || buf[off + 4] !== 6 || buf[off + 5] !== 4) return;
  if (end - off < ARP_IPV4_LENGTH) {
    pkt.fail(R_ARP_TRUNCATED);
    return;
  }
  pkt.kind = KIND_ARP;
  pkt.ipVersion = 4;
  pkt.arpOp = (buf[off + 6] << 8) | buf[off + 7];
  pkt.src[0] = buf.readUInt32BE(off + 14);
  pkt.dst[0] = buf.readUInt32BE(off + 24);
  pkt.src[1] = pkt.src[2] = pkt.src[3] = 0;
  pkt.dst[1] = pkt.dst[2] = pkt.dst[3] = 0;
}
