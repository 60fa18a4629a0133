// Addresses and CIDR prefixes as hash keys, so that matching an address against any number of
// prefixes costs one Map lookup per distinct prefix length in use (a feed of /32s and /24s: two),
// never a scan of the entries. IPv4 keys are the masked address as a number; IPv6 keys are the
// masked address as 32 hex digits cut to the prefix's nibbles.
import { isIPv4, isIPv6 } from 'node:net';

export interface ParsedPrefix {
  v6: boolean;
  len: number;
  key: number | string;
}

/** IPv4 text to its 32-bit value; -1 when it is not dotted-quad IPv4. */
export function ipv4Value(text: string): number {
  if (!isIPv4(text)) return -1;
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** IPv6 text to 32 lower-case hex digits; '' when it is not IPv6. */
export function ipv6Hex(text: string): string {
  if (!isIPv6(text)) return '';
  let s = text.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const dot = s.lastIndexOf('.');
  if (dot >= 0) {
    const colon = s.lastIndexOf(':');
    const v4 = ipv4Value(s.slice(colon + 1));
    s = `${s.slice(0, colon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].map((g) => g.padStart(4, '0')).join('');
}

function v4Mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function v6Key(hex: string, len: number): string {
  const nibbles = Math.ceil(len / 4);
  const partial = len % 4;
  if (partial === 0) return hex.slice(0, nibbles);
  const last = Number.parseInt(hex[nibbles - 1], 16) & ((0xf << (4 - partial)) & 0xf);
  return hex.slice(0, nibbles - 1) + last.toString(16);
}

/** An address (a /32 or /128) or a CIDR prefix; throws with the reason when it is neither. */
export function parsePrefix(text: string): ParsedPrefix {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = ipv4Value(addr);
  const hex = v4 < 0 ? ipv6Hex(addr) : '';
  if (v4 < 0 && hex === '') throw new Error(`'${text}' is not an IP address or CIDR prefix`);
  const max = v4 >= 0 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : -1;
    if (len < 0 || len > max) throw new Error(`'${text}': prefix length must be 0 to ${max}`);
  }
  return v4 >= 0 ? { v6: false, len, key: (v4 & v4Mask(len)) >>> 0 } : { v6: true, len, key: v6Key(hex, len) };
}

/** A set of prefixes with a value each, matched by the longest prefix holding an address. */
export class PrefixIndex<V> {
  private readonly v4 = new Map<number, Map<number, V>>();
  private readonly v6 = new Map<number, Map<string, V>>();
  /** Prefix lengths in use, longest first (a lookup stops at the most specific match). */
  private v4Lens: number[] = [];
  private v6Lens: number[] = [];
  size = 0;

  add(p: ParsedPrefix, value: V): void {
    const byLen = (p.v6 ? this.v6 : this.v4) as Map<number, Map<number | string, V>>;
    let m = byLen.get(p.len);
    if (m === undefined) {
      m = new Map();
      byLen.set(p.len, m);
      const lens = [...byLen.keys()].sort((a, b) => b - a);
      if (p.v6) this.v6Lens = lens;
      else this.v4Lens = lens;
    }
    if (!m.has(p.key)) this.size++;
    m.set(p.key, value);
  }

  /** The value of the most specific prefix holding `ip` (an address as text), or undefined. */
  lookup(ip: string): V | undefined {
    if (this.size === 0 || ip === '') return undefined;
    const v4 = this.v4Lens.length > 0 ? ipv4Value(ip) : -1;
    if (v4 >= 0) {
      for (const len of this.v4Lens) {
        const hit = this.v4.get(len)?.get((v4 & v4Mask(len)) >>> 0);
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    if (this.v6Lens.length === 0) return undefined;
    const hex = ipv6Hex(ip);
    if (hex === '') return undefined;
    for (const len of this.v6Lens) {
      const hit = this.v6.get(len)?.get(v6Key(hex, len));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}
