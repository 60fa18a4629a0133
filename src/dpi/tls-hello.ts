// The TLS ClientHello parser shared by TLS over TCP, DTLS and QUIC (whose CRYPTO frames carry the
// same handshake message): server name, ALPN, offered version and the JA4 client fingerprint
// (FoxIO JA4: https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md).
// Works on a complete handshake message; any inconsistency returns null instead of throwing.
import { createHash } from 'node:crypto';

export interface ClientHello {
  serverName: string;
  alpn: string[];
  /** Highest offered version (supported_versions, else the hello's own), e.g. 0x0304. */
  version: number;
  ja4: string;
}

/** GREASE values (RFC 8701): 0x?a?a with both bytes equal. Ignored everywhere by JA4. */
export function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

const VERSION_CODES: Record<number, string> = {
  0x0304: '13', 0x0303: '12', 0x0302: '11', 0x0301: '10', 0x0300: 's3', 0x0002: 's2',
  0xfeff: 'd1', 0xfefd: 'd2', 0xfefc: 'd3',
};

function hex4(v: number): string {
  return v.toString(16).padStart(4, '0');
}

function sha12(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/**
 * Parses a ClientHello handshake message at buf[off, off+len) (starting at the handshake type
 * byte, 1). `kind` is JA4's first character: 't' TLS over TCP, 'q' QUIC, 'd' DTLS.
 */
export function parseClientHello(buf: Buffer, off: number, len: number, kind: 't' | 'q' | 'd'): ClientHello | null {
  const end = off + len;
  if (len < 4 || buf[off] !== 1) return null;
  const bodyLen = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
  let p = off + 4;
  // DTLS handshake header: message_seq(2), fragment_offset(3), fragment_length(3).
  if (kind === 'd') p += 8;
  const bodyEnd = Math.min(end, p + bodyLen);
  if (bodyEnd - p < 38) return null;
  const helloVersion = (buf[p] << 8) | buf[p + 1];
  p += 2 + 32; // version, random
  const sidLen = buf[p];
  p += 1 + sidLen;
  if (kind === 'd') {
    if (p >= bodyEnd) return null;
    p += 1 + buf[p]; // cookie
  }
  if (p + 2 > bodyEnd) return null;
  const csLen = (buf[p] << 8) | buf[p + 1];
  p += 2;
  if (p + csLen > bodyEnd) return null;
  const ciphers: string[] = [];
  for (let i = 0; i + 1 < csLen; i += 2) {
    const c = (buf[p + i] << 8) | buf[p + i + 1];
    if (!isGrease(c)) ciphers.push(hex4(c));
  }
  p += csLen;
  if (p >= bodyEnd) return null;
  p += 1 + buf[p]; // compression methods
  let serverName = '';
  const alpn: string[] = [];
  let version = helloVersion;
  let maxSupported = -1;
  let hasSni = false;
  const exts: string[] = [];
  let extCount = 0;
  let sigAlgs = '';
  if (p + 2 <= bodyEnd) {
    const extTotal = (buf[p] << 8) | buf[p + 1];
    p += 2;
    const extEnd = Math.min(bodyEnd, p + extTotal);
    while (p + 4 <= extEnd) {
      const type = (buf[p] << 8) | buf[p + 1];
      const elen = (buf[p + 2] << 8) | buf[p + 3];
      const d = p + 4;
      const dEnd = d + elen;
      if (dEnd > extEnd) break; // truncated extension: keep what was read
      p = dEnd;
      if (isGrease(type)) continue;
      extCount++;
      if (type === 0x0000) {
        hasSni = true;
        // server_name_list: list length(2), then entries type(1) length(2) name.
        if (elen >= 5 && buf[d + 2] === 0) {
          const nlen = (buf[d + 3] << 8) | buf[d + 4];
          if (d + 5 + nlen <= dEnd) serverName = buf.toString('latin1', d + 5, d + 5 + nlen);
        }
        continue;
      }
      if (type === 0x0010) {
        // ALPN: list length(2), then length-prefixed protocol names.
        let q = d + 2;
        while (q < dEnd) {
          const l = buf[q];
          if (l === 0 || q + 1 + l > dEnd) break;
          alpn.push(buf.toString('latin1', q + 1, q + 1 + l));
          q += 1 + l;
        }
        continue;
      }
      exts.push(hex4(type));
      if (type === 0x002b) {
        // supported_versions: length(1) then versions.
        for (let q = d + 1; q + 1 < dEnd && q < d + 1 + buf[d]; q += 2) {
          const v = (buf[q] << 8) | buf[q + 1];
          if (isGrease(v) || VERSION_CODES[v] === undefined) continue;
          // DTLS versions count down (0xfefd is 1.2), so there the newest is the lowest number.
          if (maxSupported < 0 || (kind === 'd' ? v < maxSupported : v > maxSupported)) maxSupported = v;
        }
      } else if (type === 0x000d) {
        const algs: string[] = [];
        const l = (buf[d] << 8) | buf[d + 1];
        for (let q = d + 2; q + 1 < dEnd && q < d + 2 + l; q += 2) {
          const v = (buf[q] << 8) | buf[q + 1];
          if (!isGrease(v)) algs.push(hex4(v));
        }
        sigAlgs = algs.join(',');
      }
    }
  }
  if (maxSupported >= 0) version = maxSupported;

  const first = alpn.length > 0 ? alpn[0] : '';
  let alpnCode = '00';
  if (first.length > 0) {
    const a = first.charCodeAt(0);
    const z = first.charCodeAt(first.length - 1);
    if (isAlnum(a) && isAlnum(z)) alpnCode = first[0] + first[first.length - 1];
    else alpnCode = a.toString(16).padStart(2, '0')[0] + z.toString(16).padStart(2, '0')[1];
  }
  const two = (n: number) => String(Math.min(n, 99)).padStart(2, '0');
  const jaA = `${kind}${VERSION_CODES[version] ?? '00'}${hasSni ? 'd' : 'i'}${two(ciphers.length)}${two(extCount)}${alpnCode}`;
  const jaB = ciphers.length === 0 ? '000000000000' : sha12(ciphers.sort().join(','));
  exts.sort();
  const jaC = exts.length === 0 ? '000000000000' : sha12(sigAlgs === '' ? exts.join(',') : `${exts.join(',')}_${sigAlgs}`);
  return { serverName, alpn, version, ja4: `${jaA}_${jaB}_${jaC}` };
}

export const TLS_VERSION_NAMES: Record<number, string> = {
  0x0304: 'TLSv1.3', 0x0303: 'TLSv1.2', 0x0302: 'TLSv1.1', 0x0301: 'TLSv1', 0x0300: 'SSLv3',
  0xfeff: 'DTLSv1.0', 0xfefd: 'DTLSv1.2', 0xfefc: 'DTLSv1.3',
};
