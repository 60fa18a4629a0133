// Gnutella (0.6 and Gnutella2): over TCP the handshake lines "GNUTELLA CONNECT/0.6" and
// "GNUTELLA/0.6 200 OK"; over UDP Gnutella2 packets ("GND", flags, sequence, part, count) and
// Gnutella 0.6 descriptors (16-byte GUID, type, TTL, hops, little-endian payload length that
// accounts for the rest of the datagram). A peer-to-peer protocol: its peer discovery (cached
// peers tried one after another, most of them gone) is not a host scan (see src/detect).
import { startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Gnutella 0.6 descriptor types: ping, pong, bye, QRP, vendor (0x31, 0x32), push, query, query hit. */
function descriptorType(t: number): boolean {
  return t === 0x00 || t === 0x01 || t === 0x02 || t === 0x30 || t === 0x31 || t === 0x32 || t === 0x40 || t === 0x80 || t === 0x81;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.transport === TRANSPORT_TCP) {
    if (startsWith(buf, off, len, 'GNUTELLA CONNECT/') || startsWith(buf, off, len, 'GNUTELLA/0.') || startsWith(buf, off, len, 'GNUTELLA OK')) return MATCH;
    return ctx.dirPackets >= 2 ? NO : MORE;
  }
  // Gnutella2: "GND", flags, sequence, part number from 1, part count.
  if (len >= 8 && startsWith(buf, off, len, 'GND') && buf[off + 6] >= 1 && buf[off + 6] <= buf[off + 7]) return MATCH;
  // Gnutella 0.6 over UDP: a descriptor header whose payload length is exactly the rest.
  if (len >= 23 && descriptorType(buf[off + 16]) && buf[off + 17] <= 16 && buf[off + 18] <= 16 && buf.readUInt32LE(off + 19) === len - 23) return MATCH;
  return NO;
}

export const gnutella: Dissector = { app: 'Gnutella', transports: TRANSPORT_BOTH, ports: [6346, 6347], peerToPeer: true, inspect };
