// Geneve (RFC 8926): version and option length (4-byte words), flags, the protocol type (an
// EtherType: 0x6558 for an Ethernet frame), the 24-bit network id, the options, then the packet.
import { decodeEthernet } from './ethernet.js';
import { decodeEthertype } from './ethertype.js';
import { R_TUNNEL_TRUNCATED, type DecodedPacket } from './packet.js';

const TRANSPARENT_ETHERNET = 0x6558;

export function decodeGeneve(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  const header = 8 + (buf[off] & 0x3f) * 4;
  if (end - off < header) {
    pkt.fail(R_TUNNEL_TRUNCATED);
    return;
  }
  const protocol = (buf[off + 2] << 8) | buf[off + 3];
  if (protocol === TRANSPARENT_ETHERNET) decodeEthernet(buf, off + header, end, pkt);
  else decodeEthertype(protocol, buf, off + header, end, pkt);
}
