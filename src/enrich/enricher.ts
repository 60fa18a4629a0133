// What the flow meter puts beside an address: country, AS number and organisation
// (src/enrich/geo.ts) and the name of its network: the user's named network
// (src/enrich/networks.ts), else the special range it lies in ('private', 'loopback'...), else ''.
// The host table asks once per host it holds (HostTable.endOf) and the flows take their ends'
// answers from it; answers are also cached here per address (bounded: cleared when full), for a
// host that comes back after its slot was freed.
import type { Logger } from 'pino';
import { GeoLookup } from './geo.js';
import { NamedNetworks } from './networks.js';
import { specialRangeOf } from './special-ranges.js';

export interface EndInfo {
  country: string;
  asn: number;
  asOrg: string;
  /** The named network's name, else the special range's, else ''. */
  network: string;
  /** The named network's role ('' when none). */
  role: string;
}

export const NO_END: EndInfo = Object.freeze({ country: '', asn: 0, asOrg: '', network: '', role: '' });

export interface EnricherOptions {
  /** Country, AS and organisation lookups; null: none (special ranges and named networks only). */
  geo: GeoLookup | null;
  networks: NamedNetworks | null;
  /** Addresses whose answers are cached; default 65,536. */
  cacheSize?: number;
}

export class Enricher {
  readonly geo: GeoLookup | null;
  readonly networks: NamedNetworks | null;
  /** The settings it was opened from (Enricher.open): what a worker thread needs to open its own. */
  settings: EnrichSettings | null = null;
  private readonly cache = new Map<string, EndInfo>();
  private readonly cacheSize: number;

  constructor(opts: EnricherOptions) {
    this.geo = opts.geo;
    this.networks = opts.networks;
    this.cacheSize = Math.max(1, opts.cacheSize ?? 65_536);
  }

  /**
   * From the settings: `geo` false for none, `countryDb` / `asnDb` the user's databases (else the
   * default country database), `networks` a named-networks file. One clear error for a bad file.
   */
  static open(o: { geo?: boolean; countryDb?: string; asnDb?: string; networks?: string; logger?: Logger }): Enricher {
    const networks = o.networks ? NamedNetworks.load(o.networks) : null;
    let enricher: Enricher | null = null;
    const onReload = () => enricher?.clearCache();
    // No cache in the GeoLookup: this one's holds the same addresses, so the other would only miss.
    const geo = o.geo === false ? null : new GeoLookup({ countryDb: o.countryDb, asnDb: o.asnDb, logger: o.logger, onReload, cacheSize: 0 });
    o.logger?.debug({ geo: geo?.paths ?? null, networks: networks?.list.length ?? 0 }, 'enrichment');
    enricher = new Enricher({ geo, networks });
    enricher.settings = { geo: o.geo !== false, countryDb: o.countryDb, asnDb: o.asnDb, networks: o.networks };
    return enricher;
  }

  lookup(ip: string): EndInfo {
    const hit = this.cache.get(ip);
    if (hit !== undefined) return hit;
    const info = this.resolve(ip);
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(ip, info);
    return info;
  }

  private resolve(ip: string): EndInfo {
    const named = this.networks?.lookup(ip) ?? null;
    const g = this.geo?.lookup(ip) ?? null;
    const network = named?.name ?? (g ? g.special : specialRangeOf(ip));
    if (!g && !named && network === '') return NO_END;
    return { country: g?.country ?? '', asn: g?.asn ?? 0, asOrg: g?.asOrg ?? '', network, role: named?.role ?? '' };
  }

  /** Bumped by clearCache: answers kept elsewhere (the host table's, per host) are stale when it moved. */
  generation = 0;

  /** Forgets cached answers (after a database reload the geo cache is fresh, but this one is not). */
  clearCache(): void {
    this.cache.clear();
    this.generation++;
  }

  close(): void {
    this.geo?.close();
  }
}

/** Enrichment settings as flags and variables give them (plain data: they cross to capture workers). */
export interface EnrichSettings {
  /** false: no geo lookups (--no-geo); special ranges and named networks still apply. */
  geo: boolean;
  /** --geo-db: a country or city database; default the one npm installs. */
  countryDb?: string;
  /** --asn-db: an ASN database. */
  asnDb?: string;
  /** --networks: a named-networks file. */
  networks?: string;
}

const shared = new Map<string, Enricher>();

/** One Enricher per distinct settings in a process (the databases are read once, however many aggregators). */
export function sharedEnricher(s: EnrichSettings, logger?: Logger): Enricher {
  const key = JSON.stringify([s.geo, s.countryDb ?? '', s.asnDb ?? '', s.networks ?? '']);
  let e = shared.get(key);
  if (!e) {
    e = Enricher.open({ ...s, logger });
    shared.set(key, e);
  }
  return e;
}

/** The Enricher an option names: itself, the shared one of its settings, or none. */
export function enricherOf(e: Enricher | EnrichSettings | null | undefined): Enricher | null {
  return e == null ? null : e instanceof Enricher ? e : sharedEnricher(e);
}
