// Named networks: a JSON file of CIDR prefixes, each with a name, a role (inside, dmz, guest...)
// and tags, so that flows and hosts carry the names of their ends. The longest prefix that holds
// an address wins. Lookups go by prefix length (one Map probe per length the file uses, longest
// first), and are cached per address by the caller (src/enrich/enricher.ts).
//
//   [{ "prefix": "10.1.0.0/16", "name": "office", "role": "inside", "tags": ["hq"] }, ...]
import { readFileSync } from 'node:fs';
import { addressBits, parsePrefix } from './special-ranges.js';

export interface NamedNetwork {
  prefix: string;
  name: string;
  role: string;
  tags: string[];
}

interface Family {
  /** Prefix lengths the file uses, longest first. */
  lengths: number[];
  byLength: Map<number, Map<bigint, NamedNetwork>>;
}

export class NamedNetworks {
  private readonly v4: Family = { lengths: [], byLength: new Map() };
  private readonly v6: Family = { lengths: [], byLength: new Map() };
  readonly list: NamedNetwork[];

  constructor(networks: NamedNetwork[]) {
    this.list = networks;
    for (const n of networks) {
      const p = parsePrefix(n.prefix);
      const fam = p.v6 ? this.v6 : this.v4;
      let m = fam.byLength.get(p.len);
      if (!m) {
        m = new Map();
        fam.byLength.set(p.len, m);
        fam.lengths.push(p.len);
      }
      if (m.has(p.bits)) throw new Error(`named networks: ${n.prefix} is given twice`);
      m.set(p.bits, n);
    }
    this.v4.lengths.sort((a, b) => b - a);
    this.v6.lengths.sort((a, b) => b - a);
  }

  /** Reads a networks file; one clear error naming the file and what is wrong. */
  static load(path: string): NamedNetworks {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new Error(`cannot read the networks file ${path}: ${(err as Error).message}`);
    }
    try {
      return new NamedNetworks(NamedNetworks.parse(doc));
    } catch (err) {
      throw new Error(`networks file ${path}: ${(err as Error).message}`);
    }
  }

  /** The networks of a parsed file: an array of {prefix, name, role?, tags?}. */
  static parse(doc: unknown): NamedNetwork[] {
    if (!Array.isArray(doc)) throw new Error('expected a JSON array of {"prefix", "name", "role", "tags"}');
    return doc.map((e, i) => {
      const at = `entry ${i + 1}`;
      if (typeof e !== 'object' || e === null) throw new Error(`${at}: not an object`);
      const { prefix, name, role = '', tags = [], ...rest } = e as Record<string, unknown>;
      const unknown = Object.keys(rest);
      if (unknown.length) throw new Error(`${at}: unknown key ${JSON.stringify(unknown[0])} (prefix, name, role, tags)`);
      if (typeof prefix !== 'string') throw new Error(`${at}: "prefix" must be a CIDR prefix such as "10.1.0.0/16"`);
      parsePrefix(prefix);
      if (typeof name !== 'string' || name === '') throw new Error(`${at} (${prefix}): "name" must be a non-empty string`);
      if (typeof role !== 'string') throw new Error(`${at} (${prefix}): "role" must be a string`);
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new Error(`${at} (${prefix}): "tags" must be an array of strings`);
      return { prefix, name, role, tags: tags as string[] };
    });
  }

  /** The named network holding `ip` with the longest prefix, or null. */
  lookup(ip: string): NamedNetwork | null {
    const a = addressBits(ip);
    if (!a) return null;
    const fam = a.v6 ? this.v6 : this.v4;
    const width = a.v6 ? 128 : 32;
    for (const len of fam.lengths) {
      const shift = BigInt(width - len);
      const hit = fam.byLength.get(len)?.get((a.bits >> shift) << shift);
      if (hit) return hit;
    }
    return null;
  }
}
