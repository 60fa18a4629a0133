// Country, AS number and AS organisation of an address, from MaxMind-format databases (.mmdb):
// the user's own (GeoLite2 Country/City/ASN, DB-IP lite, ip-location-db...) or, when none is
// given, the country database that npm installs with flowlens (@ip-location-db/geo-whois-asn-country-mmdb),
// so a fresh machine has one with no download step. Private and special ranges are named
// (src/enrich/special-ranges.ts), not looked up.
//
// A lookup is done once per address and then cached (bounded; cleared when full), so a flow
// meter that asks once per new flow end pays a Map lookup for the addresses it has seen. The
// database files are watched: a replaced file is read again and the cache cleared; a file that
// is not a MaxMind database leaves the one loaded before in place (with a warning).
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { Reader, type Response } from 'maxmind';
import type { Logger } from 'pino';
import { u32be } from '../decode/bytes.js';
import { ipv4Number, specialRangeOf, specialRangeOfV4 } from './special-ranges.js';

export interface GeoInfo {
  /** ISO 3166 alpha-2 country code; '' when unknown or special. */
  country: string;
  /** AS number; 0 when unknown. */
  asn: number;
  /** AS organisation; '' when unknown. */
  asOrg: string;
  /** The special range's name ('private', 'loopback'...), or '' for a public address. */
  special: string;
}

export interface GeoOptions {
  /** A country or city database (GeoLite2-Country/City, DB-IP country/city lite...); default: the one npm installs. */
  countryDb?: string;
  /** An ASN database (GeoLite2-ASN, DB-IP asn lite...); none by default. */
  asnDb?: string;
  /** How often the files are checked for a change (ms); default 10 s. */
  watchIntervalMs?: number;
  /** Addresses whose answers are cached; default 65,536; 0 for none (an Enricher caches its own answers). */
  cacheSize?: number;
  logger?: Logger;
  /** Called after a database file was reloaded (callers that cache answers clear them). */
  onReload?: () => void;
}

/** The country database npm installs with flowlens (CC BY 4.0 data of the RIRs, via ip-location-db). */
export function defaultCountryDb(): string {
  return createRequire(import.meta.url).resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb');
}

const NOTHING: GeoInfo = Object.freeze({ country: '', asn: 0, asOrg: '', special: '' });

/** The fields of a MaxMind-format record that this reads, in the layouts of GeoLite2, DB-IP and ip-location-db. */
interface MmdbRecord {
  country?: { iso_code?: string };
  registered_country?: { iso_code?: string };
  country_code?: string;
  autonomous_system_number?: number;
  autonomous_system_organization?: string;
}

/** Data records kept decoded, per database (an ASN database has ~100,000; a country one a few hundred). */
const MAX_DECODED = 200_000;

/**
 * One database file's reader, and its search tree walked here for IPv4 addresses given as numbers
 * (MaxMind DB format 2.0, "Search Tree Section"): the reader parses the address text, reads the
 * tree through Buffer methods and decodes the record again for every address, ~2 us an address,
 * and an import meets each address of the capture once (70,000 on the benchmark capture). The
 * records the reader decodes are kept by their offset (its cache option), so an address whose
 * record was seen takes one walk of the tree; others go through the reader, which keeps theirs.
 */
class MmdbFile {
  readonly reader: Reader<Response>;
  /** The reader's decoded values by offset in the file ({ value, offset } cursors). */
  private readonly decoded = new Map<number, unknown>();
  private readonly db: Buffer;
  private readonly nodeCount: number;
  private readonly recordSize: number;
  private readonly nodeBytes: number;
  private readonly treeBytes: number;
  /** The node IPv4 addresses start from (an IPv6 tree holds them under ::/96). */
  private readonly ipv4Start: number;

  constructor(data: Buffer) {
    const decoded = this.decoded;
    this.reader = new Reader<Response>(data, {
      cache: {
        get: (offset) => decoded.get(offset as number),
        set: (offset, value) => {
          if (decoded.size >= MAX_DECODED) decoded.clear();
          decoded.set(offset as number, value);
        },
      },
    });
    const m = this.reader.metadata;
    this.db = data;
    this.nodeCount = m.nodeCount;
    this.recordSize = m.recordSize;
    this.nodeBytes = m.nodeByteSize;
    this.treeBytes = m.searchTreeSize;
    let node = 0;
    if (m.ipVersion === 6) for (let i = 0; i < 96 && node < this.nodeCount; i++) node = this.record(node, 0);
    this.ipv4Start = node;
  }

  /** Lookups that went through the reader (IPv6, and IPv4 addresses whose record was not decoded yet). */
  readerLookups = 0;

  /** The record of an IPv4 address (`ip` its text, `v4` its value), or null when the database has none. */
  getV4(ip: string, v4: number): unknown {
    let node = this.ipv4Start;
    for (let depth = 0; depth < 32 && node < this.nodeCount; depth++) node = this.record(node, (v4 >>> (31 - depth)) & 1);
    if (node <= this.nodeCount) return null; // == nodeCount: no data for this address
    const cursor = this.decoded.get(node - this.nodeCount + this.treeBytes) as { value?: unknown } | undefined;
    return cursor !== undefined && 'value' in cursor ? cursor.value : this.get(ip);
  }

  /** The record of an address in text form, through the reader. */
  get(ip: string): unknown {
    this.readerLookups++;
    return this.reader.get(ip);
  }

  /** The left (bit 0) or right (bit 1) record of a node: 24, 28 or 32 bits (the metadata's record_size). */
  private record(node: number, bit: number): number {
    const db = this.db;
    const at = node * this.nodeBytes;
    switch (this.recordSize) {
      case 24: {
        const o = at + bit * 3;
        return (db[o] << 16) | (db[o + 1] << 8) | db[o + 2];
      }
      case 28:
        return bit === 0
          ? (((db[at + 3] & 0xf0) << 20) | (db[at] << 16) | (db[at + 1] << 8) | db[at + 2]) >>> 0
          : (((db[at + 3] & 0x0f) << 24) | (db[at + 4] << 16) | (db[at + 5] << 8) | db[at + 6]) >>> 0;
      default:
        return u32be(db, at + bit * 4);
    }
  }
}

/** One database file, read into memory, read again when it changes. */
class WatchedDb {
  file: MmdbFile;
  private readonly onChange: (cur: Stats, prev: Stats) => void;

  constructor(
    readonly path: string,
    intervalMs: number,
    changed: () => void,
    private readonly logger?: Logger,
  ) {
    this.file = WatchedDb.read(path);
    this.onChange = (cur, prev) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
      if (cur.nlink === 0 && cur.size === 0) return; // removed: keep what is loaded until a new file comes
      try {
        this.file = WatchedDb.read(path);
        changed();
        this.logger?.info({ path, type: this.file.reader.metadata.databaseType }, 'geo database reloaded');
      } catch (err) {
        this.logger?.warn({ path, err: (err as Error).message }, 'geo database changed but cannot be read; keeping the one loaded');
      }
    };
    // The watcher's first poll is its baseline: a file replaced before it (within one interval of
    // the start) is not noticed until it changes again.
    watchFile(path, { interval: intervalMs, persistent: false }, this.onChange);
  }

  /** A reader of the file; one clear error when it is not a MaxMind database. */
  static read(path: string): MmdbFile {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the geo database ${path}: ${(err as Error).message}`);
    }
    try {
      return new MmdbFile(data);
    } catch (err) {
      throw new Error(`${path} is not a MaxMind-format database (.mmdb): ${(err as Error).message}`);
    }
  }

  close(): void {
    unwatchFile(this.path, this.onChange);
  }
}

export class GeoLookup {
  private readonly dbs: WatchedDb[] = [];
  private readonly cache = new Map<string, GeoInfo>();
  private readonly cacheSize: number;
  /** Lookups answered from the cache and from the databases (for the bench and tests). */
  hits = 0;
  misses = 0;

  constructor(opts: GeoOptions = {}) {
    this.cacheSize = Math.max(0, opts.cacheSize ?? 65_536);
    const interval = opts.watchIntervalMs ?? 10_000;
    const clear = () => {
      this.cache.clear();
      opts.onReload?.();
    };
    const paths = [opts.countryDb ?? defaultCountryDb(), ...(opts.asnDb ? [opts.asnDb] : [])];
    try {
      for (const path of paths) this.dbs.push(new WatchedDb(path, interval, clear, opts.logger));
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Lookups the databases' readers answered (the rest: a walk of the tree to a record decoded before). */
  get readerLookups(): number {
    return this.dbs.reduce((n, d) => n + d.file.readerLookups, 0);
  }

  /** The database files in use. */
  get paths(): string[] {
    return this.dbs.map((d) => d.path);
  }

  /** Country, AS and special range of `ip` (text form); NOTHING-like values for what is unknown. */
  lookup(ip: string): GeoInfo {
    if (this.cacheSize === 0) {
      this.misses++;
      return this.resolve(ip);
    }
    const cached = this.cache.get(ip);
    if (cached !== undefined) {
      this.hits++;
      return cached;
    }
    this.misses++;
    const info = this.resolve(ip);
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(ip, info);
    return info;
  }

  private resolve(ip: string): GeoInfo {
    const v4 = ipv4Number(ip);
    const special = v4 >= 0 ? specialRangeOfV4(v4) : specialRangeOf(ip);
    if (special !== '') return { country: '', asn: 0, asOrg: '', special };
    let country = '';
    let asn = 0;
    let asOrg = '';
    for (const db of this.dbs) {
      let rec: MmdbRecord | null;
      try {
        rec = (v4 >= 0 ? db.file.getV4(ip, v4) : db.file.get(ip)) as MmdbRecord | null;
      } catch {
        return NOTHING; // not an address
      }
      if (!rec) continue;
      country ||= rec.country?.iso_code ?? rec.country_code ?? rec.registered_country?.iso_code ?? '';
      asn ||= rec.autonomous_system_number ?? 0;
      asOrg ||= rec.autonomous_system_organization ?? '';
    }
    return country === '' && asn === 0 ? NOTHING : { country, asn, asOrg, special: '' };
  }

  /** Stops watching the files. */
  close(): void {
    for (const db of this.dbs) db.close();
  }
}
