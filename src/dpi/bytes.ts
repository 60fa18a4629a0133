// Small byte helpers shared by the dissectors. All bounds-checked by their callers' lengths;
// none throws, none allocates except the explicit string readers.

/** Whether buf[off..] starts with the ASCII string s (case-sensitive). */
export function startsWith(buf: Buffer, off: number, len: number, s: string): boolean {
  if (len < s.length) return false;
  for (let i = 0; i < s.length; i++) if (buf[off + i] !== s.charCodeAt(i)) return false;
  return true;
}

/** Same, ignoring ASCII case of the payload (s must be upper case). */
export function startsWithUpper(buf: Buffer, off: number, len: number, s: string): boolean {
  if (len < s.length) return false;
  for (let i = 0; i < s.length; i++) {
    let c = buf[off + i];
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== s.charCodeAt(i)) return false;
  }
  return true;
}

/** Index of the first CRLF (or bare LF) at or after `from` and before `end`, -1 if none. */
export function lineEnd(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === 0x0a) return i > from && buf[i - 1] === 0x0d ? i - 1 : i;
  return -1;
}

/** Whether every byte in [off, end) is printable ASCII (space to tilde) or a tab. */
export function isPrintable(buf: Buffer, off: number, end: number): boolean {
  for (let i = off; i < end; i++) {
    const c = buf[i];
    if ((c < 0x20 || c > 0x7e) && c !== 0x09) return false;
  }
  return true;
}

/** Latin-1 text of buf[off, end), capped so one header cannot blow up a record. */
export function ascii(buf: Buffer, off: number, end: number, max = 256): string {
  if (end - off > max) end = off + max;
  if (end <= off) return '';
  return buf.toString('latin1', off, end);
}

export function u16(buf: Buffer, off: number): number {
  return (buf[off] << 8) | buf[off + 1];
}

export function u24(buf: Buffer, off: number): number {
  return (buf[off] << 16) | (buf[off + 1] << 8) | buf[off + 2];
}

/** Big-endian 32-bit read: the decoders' (src/decode/bytes.ts), one implementation for both. */
export { u32be as u32 } from '../decode/bytes.js';

/**
 * The value of an HTTP-style header ("Host: x") in the header block buf[off, end), or '' when
 * absent. `name` is lower case with its colon ("host:"). Scans at most the given block.
 */
export function headerValue(buf: Buffer, off: number, end: number, name: string): string {
  let p = off;
  while (p < end) {
    let e = p;
    while (e < end && buf[e] !== 0x0a) e++;
    let le = e;
    if (le > p && buf[le - 1] === 0x0d) le--;
    if (le === p) return ''; // blank line: end of headers
    if (le - p > name.length && matchLower(buf, p, name)) {
      let v = p + name.length;
      while (v < le && (buf[v] === 0x20 || buf[v] === 0x09)) v++;
      let ve = le;
      while (ve > v && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
      return ascii(buf, v, ve);
    }
    p = e + 1;
  }
  return '';
}

function matchLower(buf: Buffer, off: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    let c = buf[off + i];
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** The value of the last length berLength read: one shared slot, so that reading one allocates nothing. */
export const ber = { length: 0 };

/**
 * Reads an ASN.1 BER/DER definite length at buf[p] (the short form, or the long form of 1 to 4
 * bytes) that must end before `end`: the position after it, with the length in ber.length, or -1.
 */
export function berLength(buf: Buffer, p: number, end: number): number {
  if (p >= end) return -1;
  const b = buf[p];
  if (b < 0x80) {
    ber.length = b;
    return p + 1;
  }
  const n = b & 0x7f;
  if (n === 0 || n > 4 || p + 1 + n > end) return -1;
  let v = 0;
  for (let i = 1; i <= n; i++) v = v * 256 + buf[p + i];
  ber.length = v;
  return p + 1 + n;
}
