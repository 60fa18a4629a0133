// TLS over TCP. The client's first record carries the ClientHello (server name, ALPN, offered
// versions: the JA4 fingerprint); when it spans several segments it is reassembled, bounded.
// A server speaking first (capture started late, or one-sided) is still TLS, without a name.
// TLS on the implicit-TLS mail ports is named as nDPI does (IMAPS, POPS, SMTPS).
import { appendSegment } from '../reassembly.js';
import { TLS_VERSION_NAMES, hello, helloAlpn, readClientHello } from '../tls-hello.js';
import { LIKELY, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const IMPLICIT_TLS_APPS: Record<number, string> = { 993: 'IMAPS', 995: 'POPS', 465: 'SMTPS', 990: 'FTPS' };

/** Whether buf[off..] starts with a TLS record header (content type 20..23, version 3.0..3.4). */
export function isTlsRecord(buf: Buffer, off: number, len: number): boolean {
  if (len < 5) return false;
  const type = buf[off];
  return type >= 0x14 && type <= 0x17 && buf[off + 1] === 3 && buf[off + 2] <= 4 && ((buf[off + 3] << 8) | buf[off + 4]) <= 18432;
}

/**
 * The handshake message carried by the TLS records at stream[0, have), copied out of its records,
 * or null while incomplete. Returns 'bad' when the records cannot be a handshake.
 */
function handshakeFromRecords(stream: Buffer, have: number): Buffer | null | 'bad' {
  let p = 0;
  let out: Buffer | null = null;
  let got = 0;
  let need = -1;
  while (p + 5 <= have) {
    if (stream[p] !== 0x16 || stream[p + 1] !== 3) return got > 0 || p > 0 ? 'bad' : 'bad';
    const rlen = (stream[p + 3] << 8) | stream[p + 4];
    const avail = Math.min(rlen, have - p - 5);
    if (out === null) {
      if (avail < 4) return null;
      need = 4 + ((stream[p + 6] << 16) | (stream[p + 7] << 8) | stream[p + 8]);
      if (need > 16384) return 'bad';
      out = Buffer.allocUnsafe(need);
    }
    const take = Math.min(avail, need - got);
    stream.copy(out, got, p + 5, p + 5 + take);
    got += take;
    if (got >= need) return out;
    if (avail < rlen) return null; // this record continues in a later segment
    p += 5 + rlen;
  }
  return null;
}

/**
 * Length of the ClientHello handshake message (header included) when the TLS record at buf[off..]
 * holds it whole within this segment, else -1.
 */
export function helloInRecord(buf: Buffer, off: number, len: number): number {
  if (len < 9 || buf[off] !== 0x16 || buf[off + 5] !== 1) return -1;
  const recLen = (buf[off + 3] << 8) | buf[off + 4];
  const hsLen = (buf[off + 6] << 16) | (buf[off + 7] << 8) | buf[off + 8];
  return recLen >= hsLen + 4 && len >= 9 + hsLen ? hsLen + 4 : -1;
}

export function describeHello(ctx: DpiContext, buf: Buffer, off: number, len: number, kind: 't' | 'q' | 'd'): boolean {
  if (!readClientHello(buf, off, len, kind)) return false;
  const e = ctx.extra();
  // No SNI after STARTTLS keeps the name the mail server greeted with.
  if (hello.serverName !== '' || e.serverName === '') e.serverName = hello.serverName.toLowerCase();
  const info: Record<string, string | number> = { ja4: hello.ja4 };
  const v = TLS_VERSION_NAMES[hello.version];
  if (v !== undefined) info.version = v;
  const alpn = helloAlpn();
  if (alpn !== '') info.alpn = alpn;
  e.info = e.info === null ? info : { ...e.info, ...info };
  return true;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const e = ctx.hasExtra() ? ctx.extra() : null;
  const dir = ctx.fromClient ? 0 : 1;
  const reassembling = e !== null && e.buf[dir] !== null && e.bufLen[dir] > 0;
  if (!reassembling) {
    if (len >= 3 && (buf[off] & 0x80) !== 0 && buf[off + 2] === 1 && (buf[off + 3] === 3 || buf[off + 3] === 0)) {
      return ctx.dirPackets === 1 ? LIKELY : MORE; // SSLv2-framed ClientHello (old clients)
    }
    if (!isTlsRecord(buf, off, len)) return ctx.dirPackets === 1 ? NO : MORE;
    const app = IMPLICIT_TLS_APPS[ctx.serverPort];
    if (app !== undefined) ctx.extra().app = app;
    if (buf[off] !== 0x16) return LIKELY; // mid-session: application data or alerts
    if (len < 6) return LIKELY;
    const hsType = buf[off + 5];
    // ServerHello (or a later handshake message) from the server: TLS, name unknown.
    if (hsType !== 1) return hsType === 2 && !ctx.fromClient ? MATCH : LIKELY;
    const helloLen = helloInRecord(buf, off, len);
    if (helloLen > 0) return describeHello(ctx, buf, off + 5, helloLen, 't') ? MATCH : LIKELY;
  }
  // The ClientHello continues in later segments (or records): follow the stream.
  const have = appendSegment(ctx, buf, off, len);
  const x = ctx.extra();
  if (have < 0) return LIKELY;
  const hs = handshakeFromRecords(x.buf[dir]!, have);
  if (hs === 'bad') {
    x.buf[dir] = null;
    x.bufLen[dir] = -1;
    return LIKELY;
  }
  if (hs === null) return LIKELY;
  x.buf[dir] = null;
  x.bufLen[dir] = -1;
  const app = IMPLICIT_TLS_APPS[ctx.serverPort];
  if (app !== undefined) x.app = app;
  return describeHello(ctx, hs, 0, hs.length, 't') ? MATCH : LIKELY;
}

export const tls: Dissector = {
  app: 'TLS',
  transports: TRANSPORT_TCP,
  // Not 5061 (SIP over TLS): as a port guess nDPI calls it SIP, and the SIP dissector lists it;
  // TLS on it is still found from its ClientHello.
  ports: [443, 8443, 993, 995, 465, 990, 853, 5223, 636],
  portApps: IMPLICIT_TLS_APPS,
  inspect,
};
