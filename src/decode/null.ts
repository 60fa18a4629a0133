// BSD loopback encapsulation: a 4-byte address family before the IP packet.
// DLT_NULL (0) writes it in the capturing host's byte order, DLT_LOOP (108) in network order.
import { decodeIpv4 } from './ipv4.js';
import { decodeIpv6 } from './ipv6.js';
import { R_LINK_TRUNCATED, type DecodedPacket } from './packet.js';

const AF_INET = 2;
/** AF_INET6 differs per OS: NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30, Linux 10, Windows 23. */
function isInet6(family: number): boolean {
  return family === 24 || family === 28 || family === 30 || family === 10 || family === 23;
}

export function decodeNull(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  // Families are small numbers, so a value in the high half means the other byte order.
  let family = buf.readUInt32LE(off);
  if (family > 0xffff) family = buf.readUInt32BE(off);
  dispatchFamily(family, buf, off + 4, end, pkt);
}

export function decodeLoop(buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (end - off < 4) {
    pkt.fail(R_LINK_TRUNCATED);
    return;
  }
  dispatchFamily(buf.readUInt32BE(off), buf, off + 4, end, pkt);
}

function dispatchFamily(family: number, buf: Buffer, off: number, end: number, pkt: DecodedPacket): void {
  if (family === AF_INET) decodeIpv4(buf, off, end, pkt);
  else if (isInet6(family)) decodeIpv6(buf, off, end, pkt);
}
