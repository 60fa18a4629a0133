// The TLS ClientHello parser shared by TLS over TCP, DTLS and QUIC (whose CRYPTO frames carry the
// same handshake message): server name, ALPN, offered version and the JA4 client fingerprint
// (FoxIO JA4: https://github.com/FoxIO-LLC/ja4/blob/main/technical_details/JA4.md).
// Works on a complete handshake message; any inconsistency returns null instead of throwing.
import { sha256 } from './sha256.js';

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
  0x0304: '13',
  0x0303: '12',
  0x0302: '11',
  0x0301: '10',
  0x0300: 's3',
  0x0002: 's2',
  0xfeff: 'd1',
  0xfefd: 'd2',
  0xfefc: 'd3',
};

// JA4 is built without a string per value: the values go to reused typed arrays, are sorted as
// numbers (the same order as JA4's sort of zero-padded lowercase hex), written as hex bytes and
// hashed by ./sha256.ts, so a ClientHello costs its few result strings and nothing else.
const HEX = Buffer.from('0123456789abcdef', 'latin1');
let cipherValues = new Uint16Array(64);
let extValues = new Uint16Array(32);
/** The text JA4 hashes ("1301,1302,..."), written as bytes; grown when a ClientHello needs more. */
let text = new Uint8Array(1024);
const ja4Text = Buffer.alloc(36);
const digest = new Int32Array(8);

function textRoom(n: number): void {
  if (text.length < n) text = new Uint8Array(Math.max(n, text.length * 2));
}

/** Writes v as 4 lowercase hex digits at text[o]. */
function putHex4(o: number, v: number): void {
  text[o] = HEX[v >> 12];
  text[o + 1] = HEX[(v >> 8) & 15];
  text[o + 2] = HEX[(v >> 4) & 15];
  text[o + 3] = HEX[v & 15];
}

/** Writes a[0, n) as comma-separated hex at text[o]; returns the end. */
function putList(a: Uint16Array, n: number, o: number): number {
  for (let i = 0; i < n; i++) {
    if (i > 0) text[o++] = 0x2c;
    putHex4(o, a[i]);
    o += 4;
  }
  return o;
}

/** Sorts a[0, n) ascending: insertion sort for the usual few dozen values, the native sort (on a view) beyond. */
function sortValues(a: Uint16Array, n: number): void {
  if (n > 64) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

/** JA4's hash part at ja4Text[o]: the first 12 hex digits of SHA-256(text[0, n)). */
function putSha12(n: number, o: number): void {
  sha256(text, n, digest);
  for (let k = 28; k >= 0; k -= 4) ja4Text[o++] = HEX[(digest[0] >>> k) & 15];
  for (let k = 28; k >= 16; k -= 4) ja4Text[o++] = HEX[(digest[1] >>> k) & 15];
}

/** Two decimal digits of min(n, 99) at ja4Text[o]. */
function putCount(n: number, o: number): void {
  const m = Math.min(n, 99);
  ja4Text[o] = 0x30 + Math.floor(m / 10);
  ja4Text[o + 1] = 0x30 + (m % 10);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** The ClientHello readClientHello read last; one object, refilled by every call. */
export const hello: Omit<ClientHello, 'alpn'> = { serverName: '', version: 0, ja4: '' };
// Its ALPN values, joined by commas as the details show them (one string, not an array and a
// string per value), and where the first ends (JA4 takes its first and last characters).
let alpnText = Buffer.alloc(64);
let alpnCount = 0;
let alpnLength = 0;
let alpnFirstEnd = 0;

/** Makes room for the values of an ALPN extension of elen bytes: each takes at most its bytes there (a comma for its length byte). */
function alpnRoom(elen: number): void {
  if (alpnText.length < alpnLength + elen) {
    const t = Buffer.alloc(2 * (alpnLength + elen));
    alpnText.copy(t, 0, 0, alpnLength);
    alpnText = t;
  }
}

/**
 * Parses a ClientHello handshake message at buf[off, off+len) (starting at the handshake type
 * byte, 1). `kind` is JA4's first character: 't' TLS over TCP, 'q' QUIC, 'd' DTLS.
 */
export function parseClientHello(buf: Buffer, off: number, len: number, kind: 't' | 'q' | 'd'): ClientHello | null {
  if (!readClientHello(buf, off, len, kind)) return null;
  // (A value with a comma in it would come back as two: the dissectors use the joined text only.)
  const alpn = alpnCount === 0 ? [] : helloAlpn().split(',');
  return { serverName: hello.serverName, alpn, version: hello.version, ja4: hello.ja4 };
}

/** The last ClientHello's ALPN values joined by commas, '' for none. */
export function helloAlpn(): string {
  return alpnCount === 0 ? '' : alpnText.toString('latin1', 0, alpnLength);
}

/** parseClientHello without a result object: fills `hello` and the ALPN state; false where that returns null. */
export function readClientHello(buf: Buffer, off: number, len: number, kind: 't' | 'q' | 'd'): boolean {
  const end = off + len;
  alpnCount = alpnLength = 0;
  if (len < 4 || buf[off] !== 1) return false;
  const bodyLen = (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3];
  let p = off + 4;
  // DTLS handshake header: message_seq(2), fragment_offset(3), fragment_length(3).
  if (kind === 'd') p += 8;
  const bodyEnd = Math.min(end, p + bodyLen);
  if (bodyEnd - p < 38) return false;
  const helloVersion = (buf[p] << 8) | buf[p + 1];
  p += 2 + 32; // version, random
  const sidLen = buf[p];
  p += 1 + sidLen;
  if (kind === 'd') {
    if (p >= bodyEnd) return false;
    p += 1 + buf[p]; // cookie
  }
  if (p + 2 > bodyEnd) return false;
  const csLen = (buf[p] << 8) | buf[p + 1];
  p += 2;
  if (p + csLen > bodyEnd) return false;
  const csStart = p;
  p += csLen;
  if (p >= bodyEnd) return false;
  p += 1 + buf[p]; // compression methods
  let serverName = '';
  let version = helloVersion;
  let maxSupported = -1;
  let hasSni = false;
  let extCount = 0;
  let exts = 0;
  let sigAlgsAt = -1; // the last signature_algorithms extension's data, read at the end
  let sigAlgsEnd = 0;
  if (p + 2 <= bodyEnd) {
    const extTotal = (buf[p] << 8) | buf[p + 1];
    p += 2;
    const extEnd = Math.min(bodyEnd, p + extTotal);
    // Each extension takes at least 4 bytes.
    if (extValues.length < (extEnd - p) >> 2) extValues = new Uint16Array((extEnd - p) >> 2);
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
        alpnRoom(elen);
        let q = d + 2;
        while (q < dEnd) {
          const l = buf[q];
          if (l === 0 || q + 1 + l > dEnd) break;
          if (alpnCount > 0) alpnText[alpnLength++] = 0x2c;
          for (let i = q + 1; i <= q + l; i++) alpnText[alpnLength++] = buf[i];
          if (alpnCount++ === 0) alpnFirstEnd = alpnLength;
          q += 1 + l;
        }
        continue;
      }
      extValues[exts++] = type;
      if (type === 0x002b) {
        // supported_versions: length(1) then versions.
        for (let q = d + 1; q + 1 < dEnd && q < d + 1 + buf[d]; q += 2) {
          const v = (buf[q] << 8) | buf[q + 1];
          if (isGrease(v) || VERSION_CODES[v] === undefined) continue;
          // DTLS versions count down (0xfefd is 1.2), so there the newest is the lowest number.
          if (maxSupported < 0 || (kind === 'd' ? v < maxSupported : v > maxSupported)) maxSupported = v;
        }
      } else if (type === 0x000d) {
        sigAlgsAt = d;
        sigAlgsEnd = dEnd;
      }
    }
  }
  if (maxSupported >= 0) version = maxSupported;

  // JA4_b: the ciphers (no GREASE), sorted.
  if (cipherValues.length < csLen >> 1) cipherValues = new Uint16Array(csLen >> 1);
  let ciphers = 0;
  for (let i = 0; i + 1 < csLen; i += 2) {
    const c = (buf[csStart + i] << 8) | buf[csStart + i + 1];
    if (!isGrease(c)) cipherValues[ciphers++] = c;
  }
  if (ciphers === 0) ja4Text.fill(0x30, 11, 23);
  else {
    sortValues(cipherValues, ciphers);
    textRoom(ciphers * 5);
    putSha12(putList(cipherValues, ciphers, 0), 11);
  }
  // JA4_c: the other extensions, sorted, then "_" and the signature algorithms in their order.
  if (exts === 0) ja4Text.fill(0x30, 24, 36);
  else {
    sortValues(extValues, exts);
    // 5 bytes of text per 2-byte value ("_" or "," and 4 hex digits).
    textRoom(exts * 5 + (sigAlgsAt >= 0 ? (sigAlgsEnd - sigAlgsAt) * 3 : 0));
    let n = putList(extValues, exts, 0);
    if (sigAlgsAt >= 0) {
      const l = (buf[sigAlgsAt] << 8) | buf[sigAlgsAt + 1];
      let algs = 0;
      for (let q = sigAlgsAt + 2; q + 1 < sigAlgsEnd && q < sigAlgsAt + 2 + l; q += 2) {
        const v = (buf[q] << 8) | buf[q + 1];
        if (isGrease(v)) continue;
        text[n] = algs++ === 0 ? 0x5f : 0x2c;
        putHex4(n + 1, v);
        n += 5;
      }
    }
    putSha12(n, 24);
  }
  // JA4_a: transport, version, SNI or not, counts, ALPN's first and last character.
  const vc = VERSION_CODES[version] ?? '00';
  ja4Text[0] = kind.charCodeAt(0);
  ja4Text[1] = vc.charCodeAt(0);
  ja4Text[2] = vc.charCodeAt(1);
  ja4Text[3] = hasSni ? 0x64 : 0x69;
  putCount(ciphers, 4);
  putCount(extCount, 6);
  if (alpnCount === 0) ja4Text[8] = ja4Text[9] = 0x30;
  else {
    const a = alpnText[0]; // the first value's first and last characters
    const z = alpnText[alpnFirstEnd - 1];
    const plain = isAlnum(a) && isAlnum(z);
    ja4Text[8] = plain ? a : HEX[a >> 4];
    ja4Text[9] = plain ? z : HEX[z & 15];
  }
  ja4Text[10] = ja4Text[23] = 0x5f;
  hello.serverName = serverName;
  hello.version = version;
  hello.ja4 = ja4Text.toString('latin1');
  return true;
}

export const TLS_VERSION_NAMES: Record<number, string> = {
  0x0304: 'TLSv1.3',
  0x0303: 'TLSv1.2',
  0x0302: 'TLSv1.1',
  0x0301: 'TLSv1',
  0x0300: 'SSLv3',
  0xfeff: 'DTLSv1.0',
  0xfefd: 'DTLSv1.2',
  0xfefc: 'DTLSv1.3',
};
