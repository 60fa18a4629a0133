// One filter language for flows (issue 21), the same wherever flows are filtered: the API's
// FlowFilter (History's pages, Explore's filters, subscriptions), `flowlens export --filter` and
// `flowlens pcap --filter` (its text form), Live flows in the web client (which imports this
// module: it must stay free of Node's modules), and the stores' SQL (src/store/flow-filter.ts turns
// the patterns made here into DuckDB's and QuestDB's conditions).
//
// - host: an address (either end of the flow), or a CIDR prefix: 10.0.0.0/8, 2001:db8::/32.
//   Addresses are compared in their canonical text (RFC 5952 for IPv6, as flows hold them), so
//   2001:DB8:0::1 finds 2001:db8::1. A prefix becomes an anchored regular expression over that
//   text, which DuckDB (RE2), QuestDB (java.util.regex) and JavaScript read alike.
// - serverName: the whole name in any case, or a glob: `*.example.com` (a suffix), `*video*` (a
//   substring); `*` is any run of characters. The empty name finds flows without one.
// - app: the whole name in any case (`dns` finds DNS).
// - port, transport, node, communityId, country, asn, network, risk, minBytes: as they are.
// A value that can never match is an error that says why, never an empty answer.
import { ipv4ToString, ipv6ToString } from '../flow/address.js';

export interface FlowFilter {
  /** Either end of the flow: an address or a CIDR prefix. */
  host?: string;
  /** Either port. */
  port?: number;
  /** tcp, udp, icmp, icmpv6, sctp or ip-N. */
  transport?: string;
  /** The application, in any case. */
  app?: string;
  /** The server name in any case, or a glob with `*`. */
  serverName?: string;
  /** Minimum total bytes (both directions, within the range). */
  minBytes?: number;
  node?: string;
  /** The flow's Community ID (v1, seed 0, base64): one flow as Zeek, Suricata or Arkime log it. */
  communityId?: string;
  /** Either end's country (ISO 3166 alpha-2, from the geo database). */
  country?: string;
  /** Either end's AS number. */
  asn?: number;
  /** Either end's network name (named network, else special range such as 'private'). */
  network?: string;
  /** A flow risk (src/dpi/risks.ts RISK_NAMES): flows whose risks, as of their latest segment that has any, include it. */
  risk?: string;
}

export type FlowFilterKey = keyof FlowFilter;

/** The filter's keys, in the order help texts list them. */
export const FLOW_FILTER_KEYS: readonly FlowFilterKey[] = [
  'host',
  'port',
  'transport',
  'app',
  'serverName',
  'minBytes',
  'node',
  'communityId',
  'country',
  'asn',
  'network',
  'risk',
];

/** A filter value that can never match, or a key that is none of the filter's: the message says why. */
export class FlowFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlowFilterError';
  }
}

/** Transports as flows name them: what a filter on anything else would never match. */
const TRANSPORT = /^(tcp|udp|icmp|icmpv6|sctp|ip-\d{1,3})$/;

// ---------------------------------------------------------------------------------------------
// Addresses and prefixes

/** Dotted-quad IPv4 text to its 32-bit value; -1 when it is not one (leading zeros refused: 010 is not 10 everywhere). */
function parseIPv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) return -1;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return -1;
    v = v * 256 + Number(p);
  }
  return v;
}

/** IPv6 text (any case, compressed or not, an IPv4 tail allowed) to its 8 groups; null when it is not IPv6. */
function parseIPv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (s: string, last: boolean): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const g = items[i]!;
      if (last && i === items.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (v4 < 0) return null;
        out.push(Math.floor(v4 / 65536), v4 % 65536);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) {
        out.push(Number.parseInt(g, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? groupsOf(halves[1]!, true) : [];
  if (!head || !tail) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const zeros = 8 - head.length - tail.length;
  if (zeros < 1) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

function ipv6Text(groups: readonly number[]): string {
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0;
  return ipv6ToString(words, 0);
}

/** What a host filter asks for: one address (compared as text) or the addresses of a prefix (a regular expression over their text). */
export type HostSpec =
  | { kind: 'address'; text: string }
  | {
      kind: 'prefix';
      /** The prefix as given, masked: 10.0.0.0/8. */
      text: string;
      /** An anchored regular expression that exactly the canonical texts of the prefix's addresses match. */
      regex: string;
    };

const HOST_EXAMPLES = 'e.g. 10.0.0.1, 192.168.1.0/24, 2001:db8::/32';

/** A host filter's value: an address or a CIDR prefix; throws FlowFilterError saying why it is neither. */
export function parseHostSpec(value: string): HostSpec {
  const text = value.trim();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const v4 = parseIPv4(addr);
  const v6 = v4 < 0 ? parseIPv6(addr) : null;
  if (v4 < 0 && !v6) {
    throw new FlowFilterError(`host: ${JSON.stringify(value)} is not an IP address or CIDR prefix (${HOST_EXAMPLES})`);
  }
  const max = v6 ? 128 : 32;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      throw new FlowFilterError(`host: ${JSON.stringify(value)}: a prefix length is 0..${max} (${HOST_EXAMPLES})`);
    }
    len = Number(lenText);
  }
  if (v6) {
    const groups = v6.map((g, i) => maskBits(g, 16, len - 16 * i));
    if (len === 128) return { kind: 'address', text: ipv6Text(groups) };
    return { kind: 'prefix', text: `${ipv6Text(groups)}/${len}`, regex: ipv6PrefixRegex(groups, len) };
  }
  const octets = [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].map((o, i) => maskBits(o, 8, len - 8 * i));
  const masked = octets.reduce((a, o) => a * 256 + o, 0);
  if (len === 32) return { kind: 'address', text: ipv4ToString(masked) };
  return { kind: 'prefix', text: `${ipv4ToString(masked)}/${len}`, regex: `^${ipv4PrefixBody(octets, len)}$` };
}

/** `value` (a field of `width` bits) with only its first `bits` bits kept (all of them from `width` on, none from 0 down). */
function maskBits(value: number, width: number, bits: number): number {
  if (bits >= width) return value;
  if (bits <= 0) return 0;
  return value & (((1 << bits) - 1) << (width - bits));
}

/** The values lo..hi as alternatives of `digits` (decimal or hex text, no leading zeros). */
function rangeAlternatives(lo: number, hi: number, base: 10 | 16): string {
  if (lo === hi) return lo.toString(base);
  return `(${numberRangeRegex(lo, hi, base)})`;
}

/**
 * A regular expression (no anchors) that the texts of lo..hi match, written in `base` without
 * leading zeros, and no other number. Split by text length, then each fixed-length range by
 * its leading digit, the classic way.
 */
export function numberRangeRegex(lo: number, hi: number, base: 10 | 16): string {
  const parts: string[] = [];
  for (let digits = 1; ; digits++) {
    const min = digits === 1 ? 0 : base ** (digits - 1);
    const max = base ** digits - 1;
    if (min > hi) break;
    const a = Math.max(lo, min);
    const b = Math.min(hi, max);
    if (a <= b) parts.push(...fixedLengthRange(a.toString(base), b.toString(base), base));
  }
  return parts.join('|');
}

const DIGITS = '0123456789abcdef';

/** A character class of the digits from..to (listed: 0-9 and a-f are not one range). */
function digitClass(from: number, to: number): string {
  if (from === to) return DIGITS[from]!;
  return `[${DIGITS.slice(from, to + 1)}]`;
}

/** Alternatives that the texts from a to b (equal lengths) match. */
function fixedLengthRange(a: string, b: string, base: number): string[] {
  if (a.length === 0) return [''];
  const da = DIGITS.indexOf(a[0]!);
  const db = DIGITS.indexOf(b[0]!);
  const rest = a.length - 1;
  const any = rest === 0 ? '' : `${digitClass(0, base - 1)}${rest > 1 ? `{${rest}}` : ''}`;
  const lowest = '0'.repeat(rest);
  const highest = DIGITS[base - 1]!.repeat(rest);
  if (da === db) return fixedLengthRange(a.slice(1), b.slice(1), base).map((s) => DIGITS[da] + s);
  // The whole span of digits when a's rest is all lowest and b's all highest.
  if (a.slice(1) === lowest && b.slice(1) === highest) return [`${digitClass(da, db)}${any}`];
  const out: string[] = [];
  let from = da;
  let to = db;
  if (a.slice(1) !== lowest) {
    out.push(...fixedLengthRange(a.slice(1), highest, base).map((s) => DIGITS[da] + s));
    from++;
  }
  const tailFull = b.slice(1) === highest;
  if (!tailFull) to--;
  if (from <= to) out.push(`${digitClass(from, to)}${any}`);
  if (!tailFull) out.push(...fixedLengthRange(lowest, b.slice(1), base).map((s) => DIGITS[db] + s));
  return out;
}

/** The regex body (no anchors) of the dotted-quad texts in octets/len. */
function ipv4PrefixBody(octets: readonly number[], len: number): string {
  const parts: string[] = [];
  for (let i = 0; i < 4; i++) {
    const bits = len - 8 * i;
    if (bits >= 8) parts.push(String(octets[i]));
    else if (bits <= 0) parts.push('(0|[1-9][0-9]{0,2})');
    else parts.push(rangeAlternatives(octets[i]!, octets[i]! + (1 << (8 - bits)) - 1, 10));
  }
  return parts.join('\\.');
}

/**
 * The regex (anchored) of the RFC 5952 texts of the addresses in groups/len. A text is the groups
 * before a run of zero groups written `::`, then the groups after it (or all eight, with no run);
 * the count of groups on either side tells where the run is, so each placement of the run is one
 * alternative whose explicit groups must lie in the prefix and whose run must be zero in it. The
 * IPv4-mapped form (::ffff:a.b.c.d, as ipv6ToString writes those) is one more.
 */
function ipv6PrefixRegex(groups: readonly number[], len: number): string {
  /** The group's values inside the prefix, as a regex, or null when zero is needed but is outside. */
  const span = (i: number): { lo: number; hi: number } => {
    const bits = len - 16 * i;
    if (bits >= 16) return { lo: groups[i]!, hi: groups[i]! };
    if (bits <= 0) return { lo: 0, hi: 0xffff };
    return { lo: groups[i]!, hi: groups[i]! + (1 << (16 - bits)) - 1 };
  };
  const groupRegex = (i: number) => {
    const { lo, hi } = span(i);
    if (lo === 0 && hi === 0xffff) return '[0-9a-f]{1,4}';
    return rangeAlternatives(lo, hi, 16);
  };
  const zeroAllowed = (i: number) => span(i).lo === 0;
  const alternatives: string[] = [];
  // No run: eight explicit groups.
  alternatives.push(Array.from({ length: 8 }, (_, i) => groupRegex(i)).join(':'));
  for (let start = 0; start < 8; start++) {
    for (let n = 2; start + n <= 8; n++) {
      let possible = true;
      for (let i = start; i < start + n; i++) if (!zeroAllowed(i)) possible = false;
      if (!possible) continue;
      const before = Array.from({ length: start }, (_, i) => groupRegex(i)).join(':');
      const after = Array.from({ length: 8 - start - n }, (_, i) => groupRegex(start + n + i)).join(':');
      alternatives.push(`${before}::${after}`);
    }
  }
  // ::ffff:a.b.c.d: groups 0-4 zero, group 5 ffff, 6-7 the IPv4 address.
  let mapped = true;
  for (let i = 0; i < 5; i++) if (!zeroAllowed(i)) mapped = false;
  const g5 = span(5);
  if (mapped && g5.lo <= 0xffff && 0xffff <= g5.hi) {
    const v4 = [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255];
    alternatives.push(`::ffff:${ipv4PrefixBody(v4, Math.max(0, len - 96))}`);
  }
  return `^(${alternatives.join('|')})$`;
}

/** A test of an address's text against a host filter. */
export function hostPredicate(spec: HostSpec): (ip: string | null | undefined) => boolean {
  if (spec.kind === 'address') return (ip) => ip === spec.text;
  const re = new RegExp(spec.regex);
  return (ip) => ip != null && re.test(ip);
}

// ---------------------------------------------------------------------------------------------
// Server names

/** What a server-name filter asks for: the name in any case, or a glob (a regular expression, matched in any case). */
export type ServerNameSpec = { kind: 'name'; text: string } | { kind: 'glob'; text: string; regex: string };

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/-]/g;

export function parseServerNameSpec(value: string): ServerNameSpec {
  if (!value.includes('*')) return { kind: 'name', text: value };
  const body = value
    .split('*')
    .map((part) => part.replace(REGEX_SPECIAL, '\\$&'))
    .join('.*');
  return { kind: 'glob', text: value, regex: `^${body}$` };
}

/** A test of a flow's server name against the filter (a glob never finds a flow without a name). */
export function serverNamePredicate(spec: ServerNameSpec): (name: string | null | undefined) => boolean {
  if (spec.kind === 'name') {
    const want = spec.text.toLowerCase();
    return (name) => (name ?? '').toLowerCase() === want;
  }
  const re = new RegExp(spec.regex, 'i');
  return (name) => name != null && name !== '' && re.test(name);
}

/** Whether a flow's application `value` is the filter's `want` (any case; an empty `want` finds flows with no application). */
export function appMatches(value: string | null | undefined, want: string): boolean {
  return (value ?? '').toLowerCase() === want.toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// Checking a filter, and its text form

const INTEGER_KEYS = { port: 65535, minBytes: Number.MAX_SAFE_INTEGER, asn: 4294967295 } as const;

/**
 * A filter as given (the API's input, a parsed text form, a web form) checked and made canonical:
 * host as its canonical text, transport in lower case. Unknown keys, wrong types and values that
 * can never match are a FlowFilterError naming the key and why. null and undefined values are left out.
 */
export function checkFlowFilter(input: Readonly<Record<string, unknown>> | null | undefined): FlowFilter {
  const out: FlowFilter = {};
  if (!input) return out;
  for (const [key, raw] of Object.entries(input)) {
    if (raw === null || raw === undefined) continue;
    if (!(FLOW_FILTER_KEYS as readonly string[]).includes(key)) {
      throw new FlowFilterError(`unknown filter key ${JSON.stringify(key)}: one of ${FLOW_FILTER_KEYS.join(', ')}`);
    }
    const k = key as FlowFilterKey;
    if (k === 'port' || k === 'minBytes' || k === 'asn') {
      const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > INTEGER_KEYS[k]) {
        throw new FlowFilterError(`${k} must be a whole number from 0 to ${INTEGER_KEYS[k]}; got ${JSON.stringify(raw)}`);
      }
      out[k] = n;
      continue;
    }
    if (typeof raw !== 'string') throw new FlowFilterError(`${k} must be text; got ${JSON.stringify(raw)}`);
    switch (k) {
      case 'host':
        out.host = parseHostSpec(raw).text;
        break;
      case 'transport': {
        const t = raw.toLowerCase();
        if (!TRANSPORT.test(t)) throw new FlowFilterError(`transport must be tcp, udp, icmp, icmpv6, sctp or ip-N; got ${JSON.stringify(raw)}`);
        out.transport = t;
        break;
      }
      default:
        out[k] = raw;
    }
  }
  return out;
}

/**
 * The text form, for the command line and URLs: `key=value` terms separated by spaces or commas,
 * for example `host=10.0.0.0/8 port=443 serverName=*.example.com`; a value with spaces or commas
 * goes in double quotes. Keys as in the API's FlowFilter.
 */
export function parseFlowFilterText(text: string): FlowFilter {
  const input: Record<string, string> = {};
  const expected = `expected key=value with key one of ${FLOW_FILTER_KEYS.join(', ')}`;
  const separator = (c: string | undefined) => c === undefined || c === ',' || /\s/.test(c);
  let i = 0;
  while (i < text.length) {
    if (separator(text[i])) {
      i++;
      continue;
    }
    const start = i;
    while (i < text.length && text[i] !== '=' && !separator(text[i])) i++;
    const key = text.slice(start, i);
    if (text[i] !== '=') throw new FlowFilterError(`bad filter term '${key}': ${expected}`);
    i++;
    let value: string;
    if (text[i] === '"') {
      const close = text.indexOf('"', i + 1);
      if (close < 0) throw new FlowFilterError(`bad filter term '${text.slice(start)}': a quoted value needs its closing quote`);
      value = text.slice(i + 1, close);
      i = close + 1;
      if (!separator(text[i])) throw new FlowFilterError(`bad filter term '${text.slice(start, i + 1)}': a space or comma goes after a quoted value`);
    } else {
      const from = i;
      while (!separator(text[i])) i++;
      value = text.slice(from, i);
      if (value === '') throw new FlowFilterError(`bad filter term '${key}=': ${expected} (an empty value is written "")`);
    }
    if (!(FLOW_FILTER_KEYS as readonly string[]).includes(key)) throw new FlowFilterError(`bad filter term '${text.slice(start, i)}': ${expected}`);
    if (key in input) throw new FlowFilterError(`filter key ${key} given twice`);
    input[key] = value;
  }
  return checkFlowFilter(input);
}

/** The text form of a filter (parseFlowFilterText reads it back). */
export function formatFlowFilterText(f: FlowFilter): string {
  const terms: string[] = [];
  for (const k of FLOW_FILTER_KEYS) {
    const v = f[k];
    if (v === undefined) continue;
    const s = String(v);
    terms.push(`${k}=${s === '' || /[\s,"]/.test(s) ? `"${s}"` : s}`);
  }
  return terms.join(' ');
}

// ---------------------------------------------------------------------------------------------
// Matching flows held in memory

/** The fields of a flow that a filter reads (FlowSummary's and the API's Flow's names). */
export interface FilterableFlow {
  clientIp: string;
  serverIp: string;
  clientPort: number;
  serverPort: number;
  transport: string;
  app?: string | null;
  serverName?: string | null;
  clientBytes: number;
  serverBytes: number;
  node?: string | null;
  communityId?: string | null;
  clientCountry?: string | null;
  serverCountry?: string | null;
  clientAsn?: number | null;
  serverAsn?: number | null;
  clientNetwork?: string | null;
  serverNetwork?: string | null;
  risks?: string | null;
}

/** The filter as one test of a flow, as the stores' SQL decides it (a checked filter: see checkFlowFilter). */
export function flowPredicate(q: FlowFilter): (f: FilterableFlow) => boolean {
  const tests: ((f: FilterableFlow) => boolean)[] = [];
  if (q.host !== undefined) {
    const host = hostPredicate(parseHostSpec(q.host));
    tests.push((f) => host(f.clientIp) || host(f.serverIp));
  }
  if (q.port !== undefined) tests.push((f) => f.clientPort === q.port || f.serverPort === q.port);
  if (q.transport !== undefined) tests.push((f) => f.transport === q.transport);
  if (q.app !== undefined) {
    const app = q.app;
    tests.push((f) => appMatches(f.app, app));
  }
  if (q.serverName !== undefined) {
    const name = serverNamePredicate(parseServerNameSpec(q.serverName));
    tests.push((f) => name(f.serverName));
  }
  if (q.minBytes !== undefined) tests.push((f) => f.clientBytes + f.serverBytes >= (q.minBytes as number));
  if (q.node !== undefined) tests.push((f) => f.node === q.node);
  if (q.communityId !== undefined) tests.push((f) => f.communityId === q.communityId);
  if (q.country !== undefined) tests.push((f) => f.clientCountry === q.country || f.serverCountry === q.country);
  if (q.asn !== undefined) tests.push((f) => f.clientAsn === q.asn || f.serverAsn === q.asn);
  if (q.network !== undefined) tests.push((f) => f.clientNetwork === q.network || f.serverNetwork === q.network);
  if (q.risk !== undefined) {
    const risk = q.risk;
    tests.push((f) => !!f.risks && f.risks.split(',').includes(risk));
  }
  return (f) => tests.every((t) => t(f));
}
