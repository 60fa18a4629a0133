// TLS over TCP. The client's first record carries the ClientHello (server name, ALPN, offered
// versions: the JA4 fingerprint); when it spans several segments it is reassembled, bounded.
// A server speaking first (capture started late, or one-sided) is still TLS, without a name.
// TLS on the implicit-TLS mail ports is named as nDPI does (IMAPS, POPS, SMTPS).
// Once named, the flow is followed for the server's handshake: the version it chose (TLS 1.1 or
// older is a risk) and, up to TLS 1.2, its certificate in clear (certificate.ts), with the risks
// nDPI reports of it (self-signed, not covering the server name, weak; validity is judged against
// the flow's time by the engine).
import { readCertificate } from '../certificate.js';
import { appendSegment } from '../reassembly.js';
import { RISK_TLS_CERT_MISMATCH, RISK_TLS_OBSOLETE_VERSION, RISK_TLS_SELF_SIGNED, RISK_TLS_WEAK_CERT } from '../risks.js';
import { TLS_VERSION_NAMES, hello, helloAlpn, readClientHello } from '../tls-hello.js';
import { FOLLOW, LIKELY, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type FlowExtra, type Verdict } from '../types.js';

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
  // A client that offers nothing newer than TLS 1.1 (or DTLS 1.0, or OpenSSL's pre-standard 0x0100) gets an obsolete version
  // whatever the server answers (nDPI flags it from either hello).
  if (kind === 'd' ? hello.version === 0xfeff || hello.version === 0x0100 : hello.version >= 0x0300 && hello.version < 0x0303)
    e.risks |= RISK_TLS_OBSOLETE_VERSION;
  const alpn = helloAlpn();
  if (alpn !== '') info.alpn = alpn;
  e.info = e.info === null ? info : { ...e.info, ...info };
  return true;
}

/** The dissector's state while it follows the server's handshake. */
const SERVER_HANDSHAKE = 'tls-server-handshake';
const HS_SERVER_HELLO = 2;
const HS_CERTIFICATE = 11;
const HS_SERVER_HELLO_DONE = 14;
const EXT_SUPPORTED_VERSIONS = 43;

/** From a ClientHello (or a ServerHello first): follow the server's handshake for its version and certificate. */
function followServer(ctx: DpiContext): Verdict {
  ctx.setState(SERVER_HANDSHAKE);
  return FOLLOW;
}

/**
 * The server's handshake so far (its stream reassembled in order): MATCH once its certificate,
 * ServerHelloDone or anything but handshake records was read, or when it cannot be followed;
 * MORE while it goes on. The client's packets meanwhile say nothing more.
 */
function inspectServerHandshake(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.fromClient) return MORE;
  const have = appendSegment(ctx, buf, off, len);
  const e = ctx.extra();
  if (have < 0) return MATCH;
  const done = readServerRecords(e, e.buf[1]!, have);
  if (done) {
    e.buf[1] = null;
    e.bufLen[1] = -1;
  }
  return done ? MATCH : MORE;
}

/**
 * Reads the handshake messages at stream[0, have); true once nothing more is to be learnt. The
 * server's own certificate is read as soon as its bytes are in, without waiting for the rest of
 * its record (a chain fills a record of up to 16 KB, the reassembly cap).
 */
function readServerRecords(e: FlowExtra, stream: Buffer, have: number): boolean {
  let p = 0;
  while (p + 5 <= have) {
    if (stream[p] !== 0x16) return true; // ChangeCipherSpec, alert or data: the clear part is over
    const end = p + 5 + ((stream[p + 3] << 8) | stream[p + 4]);
    let m = p + 5;
    while (m + 4 <= Math.min(end, have)) {
      const type = stream[m];
      const mlen = (stream[m + 1] << 16) | (stream[m + 2] << 8) | stream[m + 3];
      if (type === HS_CERTIFICATE) {
        // certificate_list length (3), then the first certificate's length (3) and its DER.
        if (m + 10 > have) return false;
        const certLen = (stream[m + 7] << 16) | (stream[m + 8] << 8) | stream[m + 9];
        if (m + 10 + certLen > end) return true; // it goes on into another record: not followed
        if (m + 10 + certLen > have) return false;
        certificate(e, stream, m + 10, certLen);
        return true;
      }
      if (m + 4 + mlen > end) return true; // a message over several records: not followed
      if (m + 4 + mlen > have) return false;
      if (type === HS_SERVER_HELLO && serverHello(e, stream, m + 4, mlen)) return true;
      if (type === HS_SERVER_HELLO_DONE) return true;
      m += 4 + mlen;
    }
    if (end > have) return false; // the record goes on in a later segment
    p = end;
  }
  return false;
}

/** Records the version the server chose; true for TLS 1.3, whose certificate is encrypted. */
function serverHello(e: FlowExtra, b: Buffer, at: number, len: number): boolean {
  const end = at + len;
  if (len < 38) return true;
  let version = (b[at] << 8) | b[at + 1];
  let p = at + 34;
  p += 1 + b[p]; // session id
  p += 3; // cipher suite, compression
  if (p + 2 <= end) {
    const extEnd = Math.min(end, p + 2 + ((b[p] << 8) | b[p + 1]));
    p += 2;
    while (p + 4 <= extEnd) {
      const type = (b[p] << 8) | b[p + 1];
      const elen = (b[p + 2] << 8) | b[p + 3];
      if (type === EXT_SUPPORTED_VERSIONS && elen === 2 && p + 6 <= extEnd) version = (b[p + 4] << 8) | b[p + 5];
      p += 4 + elen;
    }
  }
  const name = TLS_VERSION_NAMES[version];
  if (name !== undefined) e.info = { ...(e.info ?? {}), serverVersion: name };
  if (version >= 0x0300 && version < 0x0303) e.risks |= RISK_TLS_OBSOLETE_VERSION;
  return version >= 0x0304;
}

/** The server's own certificate (the first of the Certificate message's list): stream[at, at + len). */
function certificate(e: FlowExtra, b: Buffer, at: number, len: number): void {
  if (len === 0) return;
  const cert = readCertificate(b.subarray(at, at + len), e.serverName);
  if (cert === null) return;
  const info: Record<string, string | number> = {
    certSubject: cert.subject,
    certIssuer: cert.issuer,
    certNotBefore: new Date(cert.notBefore).toISOString(),
    certNotAfter: new Date(cert.notAfter).toISOString(),
    certKey: cert.key,
    certSignature: cert.signature,
  };
  if (cert.san !== '') info.certSan = cert.san;
  if (cert.weak !== '') info.certWeak = cert.weak;
  e.info = { ...(e.info ?? {}), ...info };
  e.certNotBefore = cert.notBefore;
  e.certNotAfter = cert.notAfter;
  if (cert.selfSigned) e.risks |= RISK_TLS_SELF_SIGNED;
  if (!cert.nameCovered) e.risks |= RISK_TLS_CERT_MISMATCH;
  if (cert.weak !== '') e.risks |= RISK_TLS_WEAK_CERT;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.state() === SERVER_HANDSHAKE) return inspectServerHandshake(ctx, buf, off, len);
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
    if (hsType !== 1) {
      if (hsType !== 2 || ctx.fromClient) return LIKELY;
      followServer(ctx);
      return inspectServerHandshake(ctx, buf, off, len) === MATCH ? MATCH : FOLLOW;
    }
    const helloLen = helloInRecord(buf, off, len);
    if (helloLen > 0) return describeHello(ctx, buf, off + 5, helloLen, 't') ? followServer(ctx) : LIKELY;
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
  return describeHello(ctx, hs, 0, hs.length, 't') ? followServer(ctx) : LIKELY;
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
