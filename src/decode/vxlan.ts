// VXLAN (RFC 7348): an 8-byte header (flags, 24-bit network id), then an Ethernet frame.
import { decodeEthernet } from './ethernet.js';
import type { DecodedPacket } from './packet.js';

const VXLAN_HEADER = 8;

export function decodeVxlan(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  decodeEthernet(buf, off + VXLAN_HEADER, end, pkt);
}
