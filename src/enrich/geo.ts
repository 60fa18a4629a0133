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
import { specialRangeOf } from './special-ranges.js';

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
  /** Addresses whose answers are cached; default 65,536. */
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

/** One database file, read into memory, read again when it changes. */
class WatchedDb {
  reader: Reader<Response>;
  private readonly onChange: (cur: Stats, prev: Stats) => void;

  constructor(
    readonly path: string,
    intervalMs: number,
    changed: () => void,
    private readonly logger?: Logger,
  ) {
    this.reader = WatchedDb.read(path);
    this.onChange = (cur, prev) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return;
      if (cur.nlink === 0 && cur.size === 0) return; // removed: keep what is loaded until a new file comes
      try {
        this.reader = WatchedDb.read(path);
        changed();
        this.logger?.info({ path, type: this.reader.metadata.databaseType }, 'geo database reloaded');
      } catch (err) {
        this.logger?.warn({ path, err: (err as Error).message }, 'geo database changed but cannot be read; keeping the one loaded');
      }
    };
    // The watcher's first poll is its baseline: a file replaced before it (within one interval of
    // the start) is not noticed until it changes again.
    watchFile(path, { interval: intervalMs, persistent: false }, this.onChange);
  }

  /** A reader of the file; one clear error when it is not a MaxMind database. */
  static read(path: string): Reader<Response> {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read the geo database ${path}: ${(err as Error).message}`);
    }
    try {
      return new Reader<Response>(data);
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
    this.cacheSize = Math.max(1, opts.cacheSize ?? 65_536);
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

  /** The database files in use. */
  get paths(): string[] {
    return this.dbs.map((d) => d.path);
  }

  /** Country, AS and special range of `ip` (text form); NOTHING-like values for what is unknown. */
  lookup(ip: string): GeoInfo {
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
    const special = specialRangeOf(ip);
    if (special !== '') return { country: '', asn: 0, asOrg: '', special };
    let country = '';
    let asn = 0;
    let asOrg = '';
    for (const db of this.dbs) {
      let rec: MmdbRecord | null;
      try {
        rec = db.reader.get(ip) as MmdbRecord | null;
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
