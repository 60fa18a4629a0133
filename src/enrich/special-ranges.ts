// Private and special-purpose address ranges (IANA's special-purpose registries, RFC 6890 and
// successors), by name. They are named rather than looked up in a geography database, and they
// are what Zeek's Site::private_address_space holds, which its conn.log's local_orig/local_resp
// count as local by default (src/store/export-zeek.ts).
import { isIP } from 'node:net';

/** A prefix of one address family: the address as a 32- or 128-bit integer and its length. */
interface Prefix {
  v6: boolean;
  bits: bigint;
  len: number;
  name: string;
}

/** The ranges, IPv4 then IPv6; the 6to4 (2002::/16) forms of the IPv4 ones are added below. */
const RANGES: [string, string][] = [
  ['0.0.0.0/8', 'this network'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared address space (CGN)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/24', 'local multicast'],
  ['239.0.0.0/8', 'administratively scoped multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['255.255.255.255/32', 'broadcast'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'local-use IPv4/IPv6 translation'],
  ['100::/64', 'discard-only'],
  ['2001::/23', 'IETF protocol assignments'],
  ['2001:db8::/32', 'documentation'],
  ['fc00::/7', 'unique local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (deprecated)'],
];

/** An address as an integer (IPv4: 32 bits; IPv6: 128 bits), or null when the text is none. */
export function addressBits(ip: string): { v6: boolean; bits: bigint } | null {
  const version = isIP(ip);
  if (version === 4) return { v6: false, bits: ip.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n) };
  if (version !== 6) return null;
  let text = ip.replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const w = Number(addressBits(dotted[1])!.bits);
    text = `${text.slice(0, dotted.index)}${(w >>> 16).toString(16)}:${(w & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return { v6: true, bits: groups.reduce((n, g) => (n << 16n) | BigInt(Number.parseInt(g, 16)), 0n) };
}

/** A CIDR prefix; one clear error when it is not one. */
export function parsePrefix(cidr: string, name = ''): Prefix {
  const [ip, lenText, extra] = cidr.trim().split('/');
  const a = addressBits(ip);
  const max = a?.v6 ? 128 : 32;
  const len = lenText === undefined ? max : Number(lenText);
  if (!a || extra !== undefined || !Number.isInteger(len) || len < 0 || len > max || (lenText !== undefined && !/^\d+$/.test(lenText))) {
    throw new Error(`not a CIDR prefix: ${JSON.stringify(cidr)}`);
  }
  const shift = BigInt(max - len);
  return { v6: a.v6, bits: (a.bits >> shift) << shift, len, name };
}

export function prefixContains(p: Prefix, a: { v6: boolean; bits: bigint }): boolean {
  if (p.v6 !== a.v6) return false;
  const shift = BigInt((p.v6 ? 128 : 32) - p.len);
  return a.bits >> shift === p.bits >> shift;
}

const PREFIXES: Prefix[] = RANGES.map(([cidr, name]) => parsePrefix(cidr, name));
// 6to4 (2002::/16): the IPv4 address in the next 32 bits, so each IPv4 range has a 6to4 form.
for (const p of PREFIXES.filter((x) => !x.v6)) PREFIXES.push({ v6: true, bits: (0x2002n << 112n) | (p.bits << 80n), len: 16 + p.len, name: `6to4 ${p.name}` });

/** The IPv4 ranges as 32-bit network and mask, longest first: the first that holds an address is its range. */
const V4_LONGEST_FIRST = PREFIXES.filter((p) => !p.v6)
  .map((p) => ({ net: Number(p.bits), mask: p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0, len: p.len, name: p.name }))
  .sort((a, b) => b.len - a.len);

/** Dotted-quad text to its 32-bit value; -1 for anything else (IPv6 included). */
export function ipv4Number(ip: string): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

/** The special range an address lies in ('private', 'loopback', 'documentation'...), or '' for a public address. */
export function specialRangeOf(ip: string): string {
  // IPv4, most addresses: 32-bit numbers, no BigInt (this runs once per new address a flow meets).
  const v4 = ipv4Number(ip);
  if (v4 >= 0) return specialRangeOfV4(v4);
  const a = addressBits(ip);
  if (!a) return '';
  let best: Prefix | null = null;
  for (const p of PREFIXES) if (prefixContains(p, a) && (!best || p.len > best.len)) best = p;
  return best?.name ?? '';
}

/** The special range of an IPv4 address given as its 32-bit value (ipv4Number), or ''. */
export function specialRangeOfV4(v4: number): string {
  for (const p of V4_LONGEST_FIRST) if ((v4 & p.mask) >>> 0 === p.net) return p.name;
  return '';
}

/** Whether Zeek's default Site::local_nets (its private address space) holds the address. */
export function isLocalAddress(ip: string): boolean {
  return specialRangeOf(ip) !== '';
}
