// The DNS message header and first question (RFC 1035), shared by DNS, mDNS and LLMNR, which use
// the same format. Names are read with compression pointers followed a bounded number of times.
import { isUtf8 } from 'node:buffer';

export interface DnsMessage {
  id: number;
  response: boolean;
  opcode: number;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
  /** First question's name ('' for the root or when there is no question), type and class. */
  qname: string;
  qtype: number;
  qclass: number;
  /** A message without a question (an mDNS announcement): its first answer's name, else ''. */
  aname: string;
}

/**
 * One label's text. mDNS names are UTF-8 (RFC 6762 §16; "Luca’s iMac"), classic DNS names are
 * bytes: a label that is valid UTF-8 is read as such, any other byte by byte (latin1).
 */
function label(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (buf[i] > 0x7f) return isUtf8(buf.subarray(start, end)) ? buf.toString('utf8', start, end) : buf.toString('latin1', start, end);
  }
  return buf.toString('latin1', start, end);
}

/** Where the name readName read last ends: the offset past it, or past its first pointer. */
let nameEnd = 0;
/**
 * ASCII labels (nearly all) are gathered here with their dots and decoded once at the end: one
 * string per name instead of two per label. 256 bytes: a name is cut at 255 characters, plus a dot.
 */
const nameBytes = Buffer.alloc(256);

/** Reads a (possibly compressed) name at buf[p] within [base, end) and sets nameEnd; null when malformed. */
export function readName(buf: Buffer, base: number, p: number, end: number): string | null {
  let name = ''; // the text before nameBytes[0, n), when a label was not ASCII
  let n = 0;
  let next = -1;
  let jumps = 0;
  for (let labels = 0; labels < 128; labels++) {
    if (p >= end) return null;
    const l = buf[p];
    if (l === 0) {
      nameEnd = next >= 0 ? next : p + 1;
      return n === 0 ? name : name + nameBytes.toString('latin1', 0, n);
    }
    if ((l & 0xc0) === 0xc0) {
      if (p + 1 >= end || ++jumps > 16) return null;
      if (next < 0) next = p + 2;
      p = base + (((l & 0x3f) << 8) | buf[p + 1]);
      continue;
    }
    if ((l & 0xc0) !== 0 || p + 1 + l > end) return null;
    const length = name.length + n;
    if (length + l > 255) return null;
    if (length > 0) nameBytes[n++] = 0x2e;
    let high = 0;
    for (let i = 0; i < l; i++) {
      const c = buf[p + 1 + i];
      nameBytes[n + i] = c;
      high |= c;
    }
    if (high < 0x80) n += l;
    else {
      name += nameBytes.toString('latin1', 0, n) + label(buf, p + 1, p + 1 + l);
      n = 0;
    }
    p += 1 + l;
  }
  return null;
}

/** parseDns's result: one object, refilled by every call, as its callers read it at once. */
const msg: DnsMessage = {
  id: 0,
  response: false,
  opcode: 0,
  rcode: 0,
  qdcount: 0,
  ancount: 0,
  nscount: 0,
  arcount: 0,
  qname: '',
  qtype: 0,
  qclass: 0,
  aname: '',
};

/**
 * Parses a DNS message at buf[off, off+len), or null when it is not plausibly one. The result is
 * valid until the next call.
 *
 * `onDnsPort`: the message is on DNS's own port 53, where nDPI's looser rule applies so that a
 * damaged or crafted message (tunnelling tools, fuzzers) still yields the name it carries: a
 * query is one whose flags are a standard, inverse or update query's or that has no answer and
 * authority records, whatever its other counts; a response is always one; the name is read at
 * the question's place whatever the question count says. Elsewhere (mDNS, LLMNR, NetBIOS, and
 * the DNS look-alikes of other ports) the header must be sane: huge counts or an unknown opcode
 * mean the payload is not DNS.
 */
export function parseDns(buf: Buffer, off: number, len: number, onDnsPort = false): DnsMessage | null {
  if (len < 12) return null;
  const end = off + len;
  const flags = (buf[off + 2] << 8) | buf[off + 3];
  const opcode = (flags >> 11) & 0xf;
  const qdcount = (buf[off + 4] << 8) | buf[off + 5];
  const ancount = (buf[off + 6] << 8) | buf[off + 7];
  const nscount = (buf[off + 8] << 8) | buf[off + 9];
  const arcount = (buf[off + 10] << 8) | buf[off + 11];
  const response = (flags & 0x8000) !== 0;
  if (onDnsPort) {
    const query = qdcount <= 16 && ((flags & 0x2800) === 0x2800 || (flags & 0xfcf0) === 0 || (flags & 0xfcff) === 0x0800 || (ancount === 0 && nscount === 0));
    if (!response && !query) return null;
  } else {
    if (opcode > 6 || opcode === 3) return null;
    // Real messages have a handful of records; huge counts mean this is not DNS.
    if (qdcount > 16 || ancount > 512 || nscount > 512 || arcount > 512) return null;
    // No question: only updates (5) and the obsolete inverse queries (1) ask without one.
    if (qdcount === 0 && !response && opcode !== 5 && opcode !== 1) return null;
  }
  msg.id = (buf[off] << 8) | buf[off + 1];
  msg.response = response;
  msg.opcode = opcode;
  msg.rcode = flags & 0xf;
  msg.qdcount = qdcount;
  msg.ancount = ancount;
  msg.nscount = nscount;
  msg.arcount = arcount;
  msg.qname = msg.aname = '';
  msg.qtype = msg.qclass = 0;
  if (onDnsPort) {
    // A name that cannot be read leaves the message's name empty: the flow is DNS all the same.
    const name = readName(buf, off, off + 12, end);
    if (name !== null) {
      msg.qname = name;
      if (nameEnd + 4 <= end) {
        msg.qtype = (buf[nameEnd] << 8) | buf[nameEnd + 1];
        msg.qclass = (buf[nameEnd + 2] << 8) | buf[nameEnd + 3];
      }
    }
  } else if (qdcount > 0) {
    const name = readName(buf, off, off + 12, end);
    if (name === null || nameEnd + 4 > end) return null;
    msg.qname = name;
    msg.qtype = (buf[nameEnd] << 8) | buf[nameEnd + 1];
    msg.qclass = (buf[nameEnd + 2] << 8) | buf[nameEnd + 3];
  } else if (ancount + nscount + arcount === 0) return null;
  else if (ancount > 0) {
    const name = readName(buf, off, off + 12, end);
    if (name !== null) msg.aname = name;
  }
  return msg;
}

const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  43: 'DS',
  46: 'RRSIG',
  47: 'NSEC',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  99: 'SPF',
  252: 'AXFR',
  255: 'ANY',
  10: 'NULL',
  13: 'HINFO',
  32: 'NB',
  41: 'OPT',
  257: 'CAA',
};
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'YXDOMAIN', 'YXRRSET', 'NXRRSET', 'NOTAUTH', 'NOTZONE'];

export function dnsTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `TYPE${t}`;
}

export function dnsRcodeName(r: number): string {
  return RCODE_NAMES[r] ?? `RCODE${r}`;
}
