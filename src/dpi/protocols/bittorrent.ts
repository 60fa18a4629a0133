// BitTorrent: the peer wire handshake "\x13BitTorrent protocol" over TCP; over UDP the DHT's
// bencoded KRPC messages ("d1:ad2:id20:...", "d1:rd2:id20:...") and uTP with an embedded handshake.
import { startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_BOTH, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const HANDSHAKE = '\x13BitTorrent protocol';

function findHandshake(buf: Buffer, off: number, len: number): boolean {
  const stop = Math.min(len, 64) - HANDSHAKE.length;
  for (let i = 0; i <= stop; i++) if (buf[off + i] === 0x13 && startsWith(buf, off + i, len - i, HANDSHAKE)) return true;
  return false;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.transport === TRANSPORT_TCP) {
    if (startsWith(buf, off, len, HANDSHAKE)) return MATCH;
    // A tracker announce over HTTP counts as BitTorrent, as in nDPI.
    if (startsWith(buf, off, len, 'GET /announce?') || startsWith(buf, off, len, 'GET /scrape?')) return MATCH;
    return ctx.dirPackets >= 2 ? NO : MORE;
  }
  // DHT KRPC: a bencoded dictionary with a one-letter key; "d1:a" query args, "d1:r" response, "d1:e" error, "d1:t"...
  if (startsWith(buf, off, len, 'd1:') && len >= 12) {
    const k = buf[off + 3];
    if ((k === 0x61 || k === 0x72 || k === 0x65 || k === 0x74 || k === 0x79 || k === 0x76) && buf[off + 4] === 0x64) return MATCH;
    if (startsWith(buf, off, len, 'd1:ad2:id20:') || startsWith(buf, off, len, 'd1:rd2:id20:')) return MATCH;
  }
  // uTP (BEP 29): version 1 and a type 0..4 in the first byte, extension 0..2; with a handshake inside.
  if (len >= 20 && (buf[off] & 0x0f) === 1 && buf[off] >> 4 <= 4 && buf[off + 1] <= 2 && findHandshake(buf, off + 20, len - 20)) return MATCH;
  if (findHandshake(buf, off, len)) return MATCH;
  return NO;
}

export const bittorrent: Dissector = {
  app: 'BitTorrent',
  transports: TRANSPORT_BOTH,
  ports: [6881, 6882, 6883, 6884, 6885, 6886, 6887, 6888, 6889, 51413],
  peerToPeer: true,
  inspect,
};
