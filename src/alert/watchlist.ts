// Watchlists: files of addresses, CIDR prefixes, domain names and JA4 fingerprints, in the plain
// formats threat-intel feeds ship: one entry a line, `#` or `;` comments, CSV (the first column is
// the entry; a header line is skipped), and hosts-file lines (`0.0.0.0 bad.example`). Each entry's
// type is recognised from its text. Matching is hash lookups only: an address one per prefix
// length in use, a server name one per label (bad.example matches www.bad.example too).
import { basename, extname } from 'node:path';
import { PrefixIndex, parsePrefix } from './ip-prefix.js';

/** JA4 TLS client fingerprints: t13d1516h2_8daaf6152771_b186095e22b6 (protocol, version, SNI, counts, ALPN; two hashes). */
const JA4 = /^[tqd][0-9a-z]{2}[di]\d{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/;
/** A DNS name of at least two labels (a single word in a feed is more likely a CSV header or a typo). */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTS_FILE_SINK = new Set(['0.0.0.0', '127.0.0.1', '::', '::1']);

export type WatchEntryType = 'ip' | 'domain' | 'ja4';

export interface WatchHit {
  list: string;
  /** The entry as the file wrote it (a prefix, the parent domain that matched, the fingerprint). */
  entry: string;
  type: WatchEntryType;
}

/** A bad line: the message names the file, the line and the reason. */
export class ListFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

export class Watchlist {
  readonly addresses = new PrefixIndex<string>();
  /** Domain -> itself (the key is the entry). */
  readonly domains = new Set<string>();
  readonly ja4 = new Set<string>();

  constructor(
    readonly name: string,
    readonly file: string,
  ) {}

  get size(): number {
    return this.addresses.size + this.domains.size + this.ja4.size;
  }

  matchAddress(ip: string): WatchHit | undefined {
    const entry = this.addresses.lookup(ip);
    return entry === undefined ? undefined : { list: this.name, entry, type: 'ip' };
  }

  /** The name itself, then each parent: www.bad.example, bad.example, example. */
  matchServerName(name: string): WatchHit | undefined {
    if (this.domains.size === 0 || name === '') return undefined;
    let n = name.toLowerCase();
    if (n.endsWith('.')) n = n.slice(0, -1);
    for (;;) {
      if (this.domains.has(n)) return { list: this.name, entry: n, type: 'domain' };
      const dot = n.indexOf('.');
      if (dot < 0) return undefined;
      n = n.slice(dot + 1);
    }
  }

  matchJa4(ja4: string): WatchHit | undefined {
    return ja4 !== '' && this.ja4.has(ja4) ? { list: this.name, entry: ja4, type: 'ja4' } : undefined;
  }
}

/** The entry of one line, or '' for a blank or comment line. */
function entryOf(line: string): string {
  let s = line;
  const hash = s.indexOf('#');
  if (hash >= 0) s = s.slice(0, hash);
  const semi = s.indexOf(';');
  if (semi >= 0) s = s.slice(0, semi);
  const comma = s.indexOf(',');
  if (comma >= 0) s = s.slice(0, comma);
  s = s.trim();
  if (s.length > 1 && (s[0] === '"' || s[0] === "'") && s.endsWith(s[0])) s = s.slice(1, -1).trim();
  const space = s.search(/\s/);
  if (space >= 0) {
    // hosts-file format: the sink address, then the name.
    const first = s.slice(0, space);
    if (!HOSTS_FILE_SINK.has(first)) throw new Error(`'${s}' holds more than one entry`);
    s = s.slice(space).trim();
  }
  return s;
}

/** Adds one entry to the list; throws with the reason when it is none of the types. */
function addEntry(list: Watchlist, text: string): void {
  const lower = text.toLowerCase();
  if (JA4.test(lower)) {
    list.ja4.add(lower);
    return;
  }
  if (/^[0-9a-f:.]+(\/\d+)?$/i.test(text) && (text.includes(':') || /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(text))) {
    list.addresses.add(parsePrefix(text), text);
    return;
  }
  const domain = lower.startsWith('*.') ? lower.slice(2) : lower.endsWith('.') ? lower.slice(0, -1) : lower;
  if (DOMAIN.test(domain)) {
    list.domains.add(domain);
    return;
  }
  throw new Error(`'${text}' is not an IP address, CIDR prefix, domain name or JA4 fingerprint`);
}

/** The list's name: its file's name without the extension (feodo.txt -> feodo). */
export function listName(file: string): string {
  return basename(file, extname(file));
}

/** Parses a list file's text; throws a ListFileError at the first bad line. */
export function parseWatchlist(file: string, text: string): Watchlist {
  const list = new Watchlist(listName(file), file);
  let lineNo = 0;
  let start = 0;
  let firstEntry = true;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    lineNo++;
    let entry: string;
    try {
      entry = entryOf(line);
      if (entry === '') continue;
      addEntry(list, entry);
    } catch (err) {
      // A CSV file's header (its first line with content) names columns rather than entries.
      if (firstEntry && line.includes(',')) {
        firstEntry = false;
        continue;
      }
      throw new ListFileError(file, lineNo, (err as Error).message);
    }
    firstEntry = false;
  }
  return list;
}
