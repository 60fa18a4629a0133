// QUIC (RFC 9000/9001, v2 RFC 9369, late drafts, and Google QUIC). The client's Initial packets
// are protected with keys anyone can derive from the destination connection ID (RFC 9001 §5.2):
// we remove header protection (AES-128-ECB), decrypt the payload (AES-128-GCM), gather the CRYPTO
// frames of the first Initials, and read the ClientHello in them: SNI, ALPN, JA4 ('q').
// Google QUIC before TLS (Q043, Q046) sends its CHLO in clear, with the SNI as a tag; Q050, T050
// and T051 protect their Initials as IETF QUIC does (with salts of their own) and carry, in one
// frame of type 0x08, a CHLO (Q050) or a TLS ClientHello (T050, T051). A server's version
// negotiation packet naming QUIC versions, and a client's Initial with a version reserved to force
// one (0x?a?a?a?a), are QUIC too (no name: nothing to read).
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { u32 } from '../bytes.js';
import { describeHello } from './tls.js';
import { LIKELY, MATCH, MORE, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const SALT_V1 = Buffer.from('38762cf7f55934b34d179ae6a4c80cadccbb7f0a', 'hex');
const SALT_V2 = Buffer.from('0dede3def700a6db819381be6e269dcbf9bd2ed9', 'hex');
const SALT_D29 = Buffer.from('afbfec289993d24c9e9786f19c6111e04390a899', 'hex');
const SALT_D23 = Buffer.from('c3eef712c72ebb5a11a7d2432bb46365bef9f502', 'hex');
const SALT_D22 = Buffer.from('7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a', 'hex');
const SALT_Q050 = Buffer.from('504574efd066fe2f9d945cfcdbd3a7f0d3b56b45', 'hex');
const SALT_T050 = Buffer.from('7ff579e5acd072915580304c43a2367c60488310', 'hex');
const SALT_T051 = Buffer.from('7a4edef4e7ccee5fa4506c19124fc8ccda6e033d', 'hex');
const V2 = 0x6b3343cf;
const Q050 = 0x51303530;
const T050 = 0x54303530;
const T051 = 0x54303531;
const CRYPTO_MAX = 16384;
/** First size of the CRYPTO reassembly buffer (grown up to CRYPTO_MAX for large ClientHellos). */
const CRYPTO_START = 4096;

/** The salts a version's Initial keys may use, most likely first (mvfst versions vary). */
function saltsOf(version: number): Buffer[] | null {
  if (version === 1) return [SALT_V1];
  if (version === V2) return [SALT_V2];
  if (version >>> 8 === 0xff0000) {
    const d = version & 0xff;
    if (d >= 33) return [SALT_V1];
    if (d >= 29) return [SALT_D29];
    if (d >= 23) return [SALT_D23];
    return [SALT_D22];
  }
  if (version >>> 4 === 0xfaceb00) return [SALT_D23, SALT_V1, SALT_D29, SALT_D22];
  if (version === Q050) return [SALT_Q050];
  if (version === T050) return [SALT_T050];
  if (version === T051) return [SALT_T051];
  // Forcing version negotiation: no version of its own; clients use their latest keys.
  if (isNegotiationForcing(version)) return [SALT_V1, SALT_D29];
  return null;
}

/** Versions 0x?a?a?a?a are reserved to exercise version negotiation (RFC 9000 §15). */
function isNegotiationForcing(v: number): boolean {
  return (v & 0x0f0f0f0f) === 0x0a0a0a0a;
}

/** Google QUIC with IETF-style protected Initials (and a 0x08 frame for the handshake). */
function isGquicProtected(v: number): boolean {
  return v === Q050 || v === T050 || v === T051;
}

export function versionName(v: number): string {
  if (v === 1) return 'v1';
  if (v === V2) return 'v2';
  if (v >>> 8 === 0xff0000) return `draft-${v & 0xff}`;
  if (isNegotiationForcing(v)) return 'negotiation';
  const hi = v >>> 24;
  if (hi === 0x51 || hi === 0x54) return String.fromCharCode(hi, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  return `0x${v.toString(16).padStart(8, '0')}`;
}

function isKnownVersion(v: number): boolean {
  const hi = v >>> 24;
  // Google QUIC "Q0xx"/"T0xx": the digits are ASCII.
  if ((hi === 0x51 || hi === 0x54) && ((v >> 16) & 0xff) === 0x30) return true;
  return v === 1 || v === V2 || v >>> 8 === 0xff0000 || v >>> 4 === 0xfaceb00 || isNegotiationForcing(v);
}

interface Keys {
  key: Buffer;
  iv: Buffer;
  hp: Buffer;
}

interface QuicState {
  keys: Keys | null;
  crypto: Buffer;
  /** Filled byte ranges of `crypto`, as [start, end) pairs. */
  ranges: number[];
  version: number;
}

/** HKDF-Expand-Label's info for a label and output length (RFC 8446 §7.1), with HKDF-Expand's block counter. */
function labelInfo(label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.alloc(2 + 1 + full.length + 1 + 1);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = 0; // empty context
  info[4 + full.length] = 1; // HKDF-Expand's block counter: one SHA-256 block covers every length here
  return info;
}

// The labels are fixed: their infos are built once, not on every Initial.
const CLIENT_IN = labelInfo('client in', 32);
const V1_LABELS = { key: labelInfo('quic key', 16), iv: labelInfo('quic iv', 12), hp: labelInfo('quic hp', 16) };
const V2_LABELS = { key: labelInfo('quicv2 key', 16), iv: labelInfo('quicv2 iv', 12), hp: labelInfo('quicv2 hp', 16) };

function hkdfExpandLabel(secret: Buffer, info: Buffer): Buffer {
  const length = info.readUInt16BE(0);
  const out = createHmac('sha256', secret).update(info).digest();
  return length === out.length ? out : out.subarray(0, length);
}

export function initialKeys(dcid: Buffer, salt: Buffer, v2: boolean): Keys {
  const initial = createHmac('sha256', salt).update(dcid).digest(); // HKDF-Extract
  const client = hkdfExpandLabel(initial, CLIENT_IN);
  const l = v2 ? V2_LABELS : V1_LABELS;
  return { key: hkdfExpandLabel(client, l.key), iv: hkdfExpandLabel(client, l.iv), hp: hkdfExpandLabel(client, l.hp) };
}

/** A QUIC variable-length integer at buf[p]: [value, next] or null past end. */
function varint(buf: Buffer, p: number, end: number): [number, number] | null {
  if (p >= end) return null;
  const n = 1 << (buf[p] >> 6);
  if (p + n > end) return null;
  let v = buf[p] & 0x3f;
  for (let i = 1; i < n; i++) v = v * 256 + buf[p + i];
  return [v, p + n];
}

/** Decrypts one Initial packet at buf[off, end); returns [plaintext, packet end] or null. */
function decryptInitial(buf: Buffer, off: number, end: number, pnOffset: number, pktEnd: number, keys: Keys): Buffer | null {
  if (pnOffset + 4 + 16 > pktEnd) return null;
  const sample = buf.subarray(pnOffset + 4, pnOffset + 20);
  const ecb = createCipheriv('aes-128-ecb', keys.hp, null);
  const mask = ecb.update(sample);
  const first = buf[off] ^ (mask[0] & 0x0f);
  const pnLen = (first & 3) + 1;
  const header = Buffer.from(buf.subarray(off, pnOffset + pnLen));
  header[0] = first;
  let pn = 0;
  for (let i = 0; i < pnLen; i++) {
    header[pnOffset - off + i] ^= mask[1 + i];
    pn = pn * 256 + header[pnOffset - off + i];
  }
  const nonce = Buffer.from(keys.iv);
  for (let i = 0; i < 4; i++) nonce[11 - i] ^= (pn >>> (8 * i)) & 0xff;
  const ctStart = pnOffset + pnLen;
  if (pktEnd - ctStart < 16 || pktEnd > end) return null;
  try {
    const d = createDecipheriv('aes-128-gcm', keys.key, nonce);
    d.setAAD(header);
    d.setAuthTag(buf.subarray(pktEnd - 16, pktEnd));
    const out = d.update(buf.subarray(ctStart, pktEnd - 16));
    d.final();
    return out;
  } catch {
    return null; // not this key (another salt), or not an Initial we can read
  }
}

/**
 * Q050/T050/T051: after padding and perhaps an ACK (0x40: 6 bytes, 0x60: 9), one frame 0x08 with a
 * stream id, a length and the handshake message, which is copied to the state at offset 0.
 */
function gatherGquicHandshake(st: QuicState, pt: Buffer): void {
  let p = 0;
  const end = pt.length;
  while (p < end && pt[p] === 0) p++;
  if (p < end && (pt[p] === 0x40 || pt[p] === 0x60)) p += pt[p] === 0x40 ? 6 : 9;
  while (p < end && pt[p] === 0) p++;
  if (p >= end || pt[p] !== 0x08) return;
  const id = varint(pt, p + 1, end);
  const l = id && varint(pt, id[1], end);
  if (!l || l[1] + l[0] > end) return;
  const n = Math.min(l[0], CRYPTO_MAX);
  if (n > st.crypto.length) st.crypto = Buffer.alloc(n);
  pt.copy(st.crypto, 0, l[1], l[1] + n);
  st.ranges.push(0, n);
}

/** Walks the frames of a decrypted Initial, copying CRYPTO data into the state. */
function gatherCrypto(st: QuicState, pt: Buffer): void {
  if (isGquicProtected(st.version)) {
    gatherGquicHandshake(st, pt);
    return;
  }
  let p = 0;
  const end = pt.length;
  for (let frames = 0; p < end && frames < 256; frames++) {
    const t = pt[p];
    if (t === 0x00 || t === 0x01) {
      // PADDING and PING: one byte each. A run of padding counts as one frame: some clients pad
      // between CRYPTO frames, and hundreds of padding bytes must not use up the frame bound.
      p++;
      while (p < end && pt[p] === 0x00) p++;
      continue;
    }
    if (t === 0x02 || t === 0x03) {
      let r = varint(pt, p + 1, end); // largest acknowledged
      if (r) r = varint(pt, r[1], end); // delay
      if (!r) return;
      const count = varint(pt, r[1], end);
      if (!count || count[0] > 64) return;
      r = varint(pt, count[1], end); // first range
      for (let i = 0; r && i < count[0]; i++) {
        r = varint(pt, r[1], end);
        if (r) r = varint(pt, r[1], end);
      }
      if (r && t === 0x03) for (let i = 0; r && i < 3; i++) r = varint(pt, r[1], end);
      if (!r) return;
      p = r[1];
      continue;
    }
    if (t === 0x06) {
      const o = varint(pt, p + 1, end);
      const l = o && varint(pt, o[1], end);
      if (!o || !l || l[1] + l[0] > end) return;
      const at = o[0];
      const n = Math.min(l[0], CRYPTO_MAX - at);
      if (n > 0 && at + n > st.crypto.length) {
        const grown = Buffer.alloc(Math.min(CRYPTO_MAX, Math.max(st.crypto.length * 2, at + n)));
        st.crypto.copy(grown);
        st.crypto = grown;
      }
      if (n > 0) {
        pt.copy(st.crypto, at, l[1], l[1] + n);
        st.ranges.push(at, at + n);
      }
      p = l[1] + l[0];
      continue;
    }
    if (t === 0x1c || t === 0x1d) return;
    return; // other frames do not appear in a client's Initial
  }
}

/** Bytes available from offset 0 without a hole. */
function contiguous(ranges: number[]): number {
  let have = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i < ranges.length; i += 2) {
      if (ranges[i] <= have && ranges[i + 1] > have) {
        have = ranges[i + 1];
        changed = true;
      }
    }
  }
  return have;
}

/** The SNI of a Google QUIC CHLO in clear, or '' (tag table: tag(4) + end offset(4) entries). */
function gquicSni(buf: Buffer, off: number, end: number): string {
  const stop = Math.min(end - 8, off + 1500);
  for (let p = off; p < stop; p++) {
    if (buf[p] !== 0x43 || buf[p + 1] !== 0x48 || buf[p + 2] !== 0x4c || buf[p + 3] !== 0x4f) continue; // "CHLO"
    const n = buf[p + 4] | (buf[p + 5] << 8);
    const table = p + 8;
    const values = table + n * 8;
    if (n > 64 || values > end) return '';
    let prev = 0;
    for (let i = 0; i < n; i++) {
      const e = table + i * 8;
      const endOff = buf.readUInt32LE(e + 4);
      if (buf[e] === 0x53 && buf[e + 1] === 0x4e && buf[e + 2] === 0x49 && buf[e + 3] === 0) {
        // "SNI\0"
        if (values + endOff > end || endOff < prev) return '';
        return buf.toString('latin1', values + prev, values + endOff);
      }
      prev = endOff;
    }
    return '';
  }
  return '';
}

/**
 * A version negotiation packet (version 0; RFC 9000 §17.2.1): the server's list of versions after
 * the connection IDs. QUIC when it names a QUIC version, from the server (it answers a client).
 */
function versionNegotiation(ctx: DpiContext, buf: Buffer, off: number, end: number): Verdict {
  if (ctx.fromClient) return NO;
  let p = off + 5;
  const dcil = buf[p];
  if (p + 1 + dcil >= end) return NO;
  p += 1 + dcil;
  const scil = buf[p];
  p += 1 + scil;
  if (p + 4 > end || (end - p) % 4 !== 0) return NO;
  for (; p + 4 <= end; p += 4) {
    const v = u32(buf, p);
    if (v !== 0 && !isNegotiationForcing(v) && isKnownVersion(v)) {
      const e = ctx.extra();
      e.info = { ...(e.info ?? {}), quicVersion: 'negotiation' };
      return MATCH;
    }
  }
  return NO;
}

function record(ctx: DpiContext, version: number): void {
  const e = ctx.extra();
  const info = e.info ?? {};
  info.quicVersion = versionName(version);
  e.info = info;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const end = off + len;
  const b0 = buf[off];
  if (len < 7) return ctx.dirPackets === 1 ? NO : MORE;
  if ((b0 & 0x80) === 0) {
    // Google QUIC's old public header: version flag 0x01, 8-byte connection ID, then "Q0xx".
    if ((b0 & 0x01) !== 0 && (b0 & 0x08) !== 0 && len >= 13 && buf[off + 9] === 0x51 && buf[off + 10] === 0x30 && ctx.fromClient) {
      const version = u32(buf, off + 9);
      record(ctx, version);
      const sni = gquicSni(buf, off + 13, end);
      if (sni !== '') ctx.extra().serverName = sni;
      return MATCH;
    }
    // A short header: QUIC mid-connection perhaps, but too little to tell.
    return ctx.state() !== null ? LIKELY : ctx.dirPackets === 1 ? NO : MORE;
  }
  const version = u32(buf, off + 1);
  if (version === 0) return versionNegotiation(ctx, buf, off, end);
  if (!isKnownVersion(version)) return NO;
  record(ctx, version);
  const hi = version >>> 24;
  if ((hi === 0x51 || hi === 0x54) && !isGquicProtected(version)) {
    const sni = gquicSni(buf, off, end);
    if (sni !== '') ctx.extra().serverName = sni;
    return ctx.fromClient ? MATCH : LIKELY;
  }
  if (!ctx.fromClient) return LIKELY; // the server's Initial: keys of the client side do not open it

  let st = ctx.state() as QuicState | null;
  // Coalesced packets: an Initial may be followed by 0-RTT or another Initial in one datagram.
  let p = off;
  for (let k = 0; k < 4 && p + 7 <= end; k++) {
    const first = buf[p];
    if ((first & 0x80) === 0) break;
    const v = u32(buf, p + 1);
    const type = (first >> 4) & 3;
    const initialType = v === V2 ? 1 : 0;
    let q = p + 5;
    const dcil = buf[q];
    if (dcil > 20 || q + 1 + dcil >= end) return LIKELY;
    const dcid = buf.subarray(q + 1, q + 1 + dcil);
    q += 1 + dcil;
    const scil = buf[q];
    if (scil > 20 || q + 1 + scil > end) return LIKELY;
    q += 1 + scil;
    if (type === initialType) {
      const tl = varint(buf, q, end);
      if (!tl) return LIKELY;
      q = tl[1] + tl[0];
    }
    const pl = varint(buf, q, end);
    if (!pl) return LIKELY;
    const pnOffset = pl[1];
    const pktEnd = pnOffset + pl[0];
    if (pktEnd > end) return LIKELY;
    if (type === initialType && v === version) {
      if (st === null) {
        st = { keys: null, crypto: Buffer.alloc(CRYPTO_START), ranges: [], version };
        ctx.setState(st);
      }
      let pt: Buffer | null = null;
      if (st.keys !== null) pt = decryptInitial(buf, p, end, pnOffset, pktEnd, st.keys);
      // Not the keys of the first Initial: some clients split the ClientHello over Initials with
      // different connection IDs, each protected with keys of its own.
      if (pt === null) {
        for (const salt of saltsOf(version) ?? []) {
          const keys = initialKeys(dcid, salt, version === V2);
          pt = decryptInitial(buf, p, end, pnOffset, pktEnd, keys);
          if (pt !== null) {
            st.keys = keys; // later Initials use the keys of the first DCID, whatever their DCID
            break;
          }
        }
      }
      if (pt !== null) gatherCrypto(st, pt);
    }
    p = pktEnd;
  }
  if (st === null || st.ranges.length === 0) return LIKELY;
  const have = contiguous(st.ranges);
  if (have < 4) return LIKELY;
  if (st.version === Q050) {
    // A CHLO: its SNI tag.
    const sni = gquicSni(st.crypto, 0, have);
    if (sni !== '') ctx.extra().serverName = sni;
    ctx.setState(null);
    return MATCH;
  }
  const need = 4 + ((st.crypto[1] << 16) | (st.crypto[2] << 8) | st.crypto[3]);
  if (st.crypto[0] !== 1) return MATCH; // not a ClientHello: QUIC all the same
  if (have < need && need <= CRYPTO_MAX) return LIKELY; // the rest comes in the next Initial
  describeHello(ctx, st.crypto, 0, Math.min(need, have), 'q');
  ctx.setState(null);
  return MATCH;
}

export const quic: Dissector = { app: 'QUIC', transports: TRANSPORT_UDP, ports: [443, 80, 784, 853, 8443], inspect };
