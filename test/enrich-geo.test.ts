/**
 * Enrichment (src/enrich): country and AS from MaxMind-format databases (built here by a small
 * writer, read by the real reader; and the default database npm installs), special ranges named
 * instead of looked up, a replaced database file reloaded (a broken one ignored), named networks
 * by longest prefix with clear errors for bad files, and the fields on flows through an import,
 * `flowlens export flows` and the --geo-db / --asn-db / --networks flags.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Reader, type Response } from 'maxmind';
import { Enricher } from '../src/enrich/enricher.js';
import { defaultCountryDb, GeoLookup } from '../src/enrich/geo.js';
import { NamedNetworks } from '../src/enrich/networks.js';
import { HostTable } from '../src/flow/host-table.js';
import { importFiles as importIntoStore } from '../src/capture/import.js';
import { gqlData, startTestServer, waitFor } from './api-helpers.js';
import { exportFlows, importFiles, runCli, withTempDir } from './helpers/cli.js';
import { byTime, LINKTYPE, toFrames, ts, udpExchange } from './helpers/frames.js';
import { buildMmdb } from './helpers/mmdb-writer.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';
import { rngU32 } from './helpers/random.js';

const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;

const country = (code: string) => ({ country: { iso_code: code, names: { en: code } } });
const asn = (n: number, org: string) => ({ autonomous_system_number: n, autonomous_system_organization: org });

function writeDbs(dir: string): { countryDb: string; asnDb: string } {
  const countryDb = join(dir, 'country.mmdb');
  const asnDb = join(dir, 'asn.mmdb');
  writeFileSync(
    countryDb,
    buildMmdb('GeoLite2-Country', [
      ['8.8.8.0/24', country('US')],
      ['193.0.0.0/16', country('NL')],
      ['2001:4860::/32', country('US')],
    ]),
  );
  writeFileSync(
    asnDb,
    buildMmdb('GeoLite2-ASN', [
      ['8.8.8.0/24', asn(15169, 'GOOGLE')],
      ['2001:4860::/32', asn(15169, 'GOOGLE')],
    ]),
  );
  return { countryDb, asnDb };
}

describe('geo lookups', () => {
  it("the user's country and ASN databases answer; special ranges are named, not looked up", async () => {
    await withTempDir(async (dir) => {
      const geo = new GeoLookup(writeDbs(dir));
      try {
        assert.deepEqual(geo.lookup('8.8.8.8'), { country: 'US', asn: 15169, asOrg: 'GOOGLE', special: '' });
        assert.deepEqual(geo.lookup('2001:4860::8888'), { country: 'US', asn: 15169, asOrg: 'GOOGLE', special: '' });
        assert.deepEqual(geo.lookup('193.0.6.139'), { country: 'NL', asn: 0, asOrg: '', special: '' });
        assert.deepEqual(geo.lookup('9.9.9.9'), { country: '', asn: 0, asOrg: '', special: '' });
        assert.equal(geo.lookup('10.1.2.3').special, 'private');
        assert.equal(geo.lookup('127.0.0.1').special, 'loopback');
        assert.equal(geo.lookup('fe80::1').special, 'link-local');
        assert.equal(geo.lookup('100.64.1.1').special, 'shared address space (CGN)');
        geo.lookup('8.8.8.8');
        assert.equal(geo.hits >= 1, true, 'a second lookup of an address comes from the cache');
      } finally {
        geo.close();
      }
    });
  });

  it('the default database (installed from npm) knows public addresses', () => {
    const geo = new GeoLookup();
    try {
      assert.equal(geo.lookup('8.8.8.8').country, 'US');
      assert.match(geo.lookup('2a00:1450:4001:80b::200e').country, /^[A-Z]{2}$/);
      assert.equal(geo.lookup('192.168.1.1').special, 'private');
    } finally {
      geo.close();
    }
  });

  it('IPv4 lookups (the tree walked here) answer what the MaxMind reader answers, for 24-, 28- and 32-bit records', async () => {
    const next = rngU32(0x5eed); // the same addresses on every run
    const codes = ['US', 'NL', 'DE', 'JP', 'BR', 'ZA', 'IN', 'FR'];
    // 3,000 /24s and /20s at random (kept apart: the writer takes prefixes that do not overlap),
    // some sharing a record, and addresses inside them and anywhere else.
    const prefixes = new Map<number, [string, ReturnType<typeof country>]>();
    while (prefixes.size < 3000) {
      const block = next() >>> 12; // a /20's number
      if (prefixes.has(block) || block >>> 12 === 10 || block >>> 12 === 127) continue;
      const base = block << 12;
      const len = next() % 2 === 0 ? 20 : 24;
      prefixes.set(block, [`${dotted(base)}/${len}`, country(codes[next() % codes.length])]);
    }
    const inside = [...prefixes.keys()].map((block) => dotted(((block << 12) | (next() & 0xff)) >>> 0));
    const anywhere = Array.from({ length: 3000 }, () => dotted(next()));
    await withTempDir(async (dir) => {
      for (const size of [24, 28, 32] as const) {
        const path = join(dir, `country-${size}.mmdb`);
        // Past 2^24 bytes of data, pointers use the high nibbles of 28-bit records and 32-bit ones whole.
        writeFileSync(path, buildMmdb('GeoLite2-Country', [...prefixes.values()], size, size === 24 ? 0 : 1 << 24));
        const reference = new Reader<Response>(readFileSync(path));
        const geo = new GeoLookup({ countryDb: path, cacheSize: 0 });
        try {
          let found = 0;
          for (const ip of [...inside, ...anywhere]) {
            const expected = geo.lookup(ip).special !== '' ? '' : ((reference.get(ip) as { country?: { iso_code?: string } } | null)?.country?.iso_code ?? '');
            assert.equal(geo.lookup(ip).country, expected, `${ip} in the ${size}-bit database`);
            if (expected !== '') found++;
          }
          // Every address inside a prefix is found, but those in special ranges (named, not looked up).
          const insidePublic = inside.filter((ip) => geo.lookup(ip).special === '').length;
          assert.ok(found >= insidePublic && insidePublic > 2500, `${found} addresses found in the ${size}-bit database (${insidePublic} inside its prefixes)`);
          // Once a record was decoded, its addresses are answered by the walk alone, not the reader.
          const before = geo.readerLookups;
          for (const ip of inside) geo.lookup(ip);
          assert.equal(geo.readerLookups, before, `the ${size}-bit tree walk reached the records the reader had decoded`);
        } finally {
          geo.close();
        }
      }
    });
    // The default database (an IPv6 tree with IPv4 under ::/96), as the reader reads it.
    const geo = new GeoLookup({ cacheSize: 0 });
    const reference = new Reader<Response>(readFileSync(defaultCountryDb()));
    try {
      let found = 0;
      for (const ip of Array.from({ length: 20_000 }, () => dotted(next()))) {
        if (geo.lookup(ip).special !== '') continue;
        const expected = (reference.get(ip) as { country_code?: string } | null)?.country_code ?? '';
        assert.equal(geo.lookup(ip).country, expected, ip);
        if (expected !== '') found++;
      }
      assert.ok(found > 10_000, `${found} of 20,000 random addresses found in the default database`);
    } finally {
      geo.close();
    }
  });

  it('a replaced database file is reloaded; a broken replacement leaves the loaded one', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'country.mmdb');
      writeFileSync(path, buildMmdb('GeoLite2-Country', [['8.8.8.0/24', country('US')]]));
      const warnings: string[] = [];
      const logger = { info() {}, warn: (_o: unknown, m: string) => warnings.push(m), debug() {} } as never;
      const geo = new GeoLookup({ countryDb: path, watchIntervalMs: 20, logger });
      try {
        assert.equal(geo.lookup('8.8.8.8').country, 'US');
        // The watcher's first poll takes the file as it is then: replace it only after that.
        await new Promise((r) => setTimeout(r, 200));
        // Written aside and renamed in, as database updaters do.
        writeFileSync(`${path}.new`, buildMmdb('GeoLite2-Country', [['8.8.0.0/16', country('DE')]]));
        renameSync(`${path}.new`, path);
        await waitFor(() => geo.lookup('8.8.8.8').country === 'DE', 'the reloaded database', 10_000);
        writeFileSync(path, 'not a database, but longer than the first one was');
        await waitFor(() => warnings.length > 0, 'a warning about the broken file', 10_000);
        assert.equal(geo.lookup('8.8.8.8').country, 'DE');
        assert.match(warnings[0], /cannot be read/);
      } finally {
        geo.close();
      }
    });
  });

  it("a host the flow table holds is asked again after a reload (the table keeps each host's answer)", async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'country.mmdb');
      writeFileSync(path, buildMmdb('GeoLite2-Country', [['8.8.8.0/24', country('US')]]));
      let enricher: Enricher | null = null;
      const geo = new GeoLookup({ countryDb: path, watchIntervalMs: 20, onReload: () => enricher?.clearCache() });
      enricher = new Enricher({ geo, networks: null });
      const hosts = new HostTable();
      hosts.enrich = enricher;
      try {
        const slot = hosts.lookupOrInsert(4, Uint32Array.of(0x08080808), 0);
        assert.equal(hosts.endOf(slot).country, 'US');
        await new Promise((r) => setTimeout(r, 200));
        writeFileSync(`${path}.new`, buildMmdb('GeoLite2-Country', [['8.8.0.0/16', country('DE')]]));
        renameSync(`${path}.new`, path);
        await waitFor(() => hosts.endOf(slot).country === 'DE', "the held host's answer from the reloaded database", 10_000);
      } finally {
        geo.close();
      }
    });
  });

  it('a file that is not a MaxMind database is one clear error', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'bad.mmdb');
      writeFileSync(path, 'hello');
      assert.throws(() => new GeoLookup({ countryDb: path }), /bad\.mmdb is not a MaxMind-format database/);
      assert.throws(() => new GeoLookup({ countryDb: join(dir, 'missing.mmdb') }), /cannot read the geo database .*missing\.mmdb/);
    });
  });
});

describe('named networks', () => {
  const nets = new NamedNetworks(
    NamedNetworks.parse([
      { prefix: '10.0.0.0/8', name: 'corp', role: 'inside' },
      { prefix: '10.1.0.0/16', name: 'office', role: 'inside', tags: ['hq'] },
      { prefix: '10.1.9.0/24', name: 'guest-wifi', role: 'guest' },
      { prefix: '2001:db8:1::/48', name: 'v6-lab', role: 'dmz' },
      { prefix: '0.0.0.0/0', name: 'internet', role: 'outside' },
    ]),
  );

  it('the longest prefix wins', () => {
    assert.equal(nets.lookup('10.1.9.7')?.name, 'guest-wifi');
    assert.equal(nets.lookup('10.1.2.3')?.name, 'office');
    assert.deepEqual(nets.lookup('10.1.2.3')?.tags, ['hq']);
    assert.equal(nets.lookup('10.200.0.1')?.name, 'corp');
    assert.equal(nets.lookup('8.8.8.8')?.name, 'internet');
    assert.equal(nets.lookup('2001:db8:1:2::1')?.role, 'dmz');
    assert.equal(nets.lookup('2001:db8:2::1'), null);
  });

  it('a bad file is one clear error naming what is wrong', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'nets.json');
      const bad: [unknown, RegExp][] = [
        [{ prefix: '10.0.0.0/8' }, /expected a JSON array/],
        [[{ prefix: '10.0.0.0/33', name: 'x' }], /not a CIDR prefix: "10.0.0.0\/33"/],
        [[{ prefix: '10.0.0.0/8' }], /entry 1 \(10.0.0.0\/8\): "name" must be a non-empty string/],
        [[{ prefix: '10.0.0.0/8', name: 'a', colour: 'red' }], /entry 1: unknown key "colour"/],
        [
          [
            { prefix: '10.0.0.0/8', name: 'a' },
            { prefix: '10.0.0.0/8', name: 'b' },
          ],
          /10.0.0.0\/8 is given twice/,
        ],
      ];
      for (const [doc, message] of bad) {
        writeFileSync(path, JSON.stringify(doc));
        assert.throws(() => NamedNetworks.load(path), message);
      }
      writeFileSync(path, '[{');
      assert.throws(() => NamedNetworks.load(path), /cannot read the networks file .*nets\.json/);
    });
  });

  it('the enricher names an end by its named network, else its special range', async () => {
    await withTempDir(async (dir) => {
      const { countryDb, asnDb } = writeDbs(dir);
      const netsPath = join(dir, 'nets.json');
      writeFileSync(netsPath, JSON.stringify([{ prefix: '10.1.0.0/16', name: 'office', role: 'inside' }]));
      const e = Enricher.open({ countryDb, asnDb, networks: netsPath });
      try {
        assert.deepEqual(e.lookup('10.1.2.3'), { country: '', asn: 0, asOrg: '', network: 'office', role: 'inside' });
        assert.equal(e.lookup('10.2.0.1').network, 'private');
        assert.deepEqual(e.lookup('8.8.8.8'), { country: 'US', asn: 15169, asOrg: 'GOOGLE', network: '', role: '' });
      } finally {
        e.close();
      }
    });
  });
});

/** A DNS exchange from a named network to 8.8.8.8 and an NTP query from a private address to 193.0.6.139. */
const capture = () =>
  toFrames(LINKTYPE.ETHERNET, [
    ...udpExchange({
      client: { ip: '10.1.2.3', port: 40000 },
      server: { ip: '8.8.8.8', port: 53 },
      start: ts(1_700_000_000),
      messages: [
        { from: 'client', bytes: 40 },
        { from: 'server', bytes: 120 },
      ],
    }),
    ...udpExchange({
      client: { ip: '192.168.7.7', port: 40001 },
      server: { ip: '193.0.6.139', port: 123 },
      start: ts(1_700_000_001),
      messages: [{ from: 'client', bytes: 48 }],
    }),
  ]);

describe('enriched flows through an import', () => {
  it('flowlens import --geo-db --asn-db --networks, then export flows: each end has its country, AS and network', async () => {
    await withTempDir(async (dir) => {
      const { countryDb, asnDb } = writeDbs(dir);
      const netsPath = join(dir, 'nets.json');
      writeFileSync(netsPath, JSON.stringify([{ prefix: '10.1.0.0/16', name: 'office', role: 'inside' }]));
      const file = writeCapture(join(dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(capture())));
      const db = join(dir, 'flows.duckdb');
      await importFiles(db, [file], { extra: ['--geo-db', countryDb, '--asn-db', asnDb, '--networks', netsPath] });
      const flows = (await exportFlows(db)) as unknown as Record<string, unknown>[];
      const dns = flows.find((f) => f.serverIp === '8.8.8.8');
      assert.deepEqual(
        dns && { c: dns.clientNetwork, cc: dns.clientCountry, sc: dns.serverCountry, asn: dns.serverAsn, org: dns.serverAsOrg, sn: dns.serverNetwork },
        { c: 'office', cc: '', sc: 'US', asn: 15169, org: 'GOOGLE', sn: '' },
      );
      const ntp = flows.find((f) => f.serverIp === '193.0.6.139');
      assert.deepEqual(ntp && { c: ntp.clientNetwork, sc: ntp.serverCountry, asn: ntp.serverAsn }, { c: 'private', sc: 'NL', asn: 0 });

      // --no-geo: no lookups, but the special range and named networks still apply.
      const db2 = join(dir, 'nogeo.duckdb');
      await importFiles(db2, [file], { extra: ['--no-geo', '--networks', netsPath] });
      const plain = (await exportFlows(db2)) as unknown as Record<string, unknown>[];
      const dns2 = plain.find((f) => f.serverIp === '8.8.8.8');
      assert.deepEqual(dns2 && [dns2.clientNetwork, dns2.serverCountry, dns2.serverAsn], ['office', '', 0]);

      const bad = await runCli(['import', file, '--db', join(dir, 'x.duckdb'), '--networks', countryDb]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /cannot read the networks file/);
      const badDb = await runCli(['import', file, '--db', join(dir, 'x.duckdb'), '--geo-db', netsPath]);
      assert.equal(badDb.code, 2, badDb.stderr);
      assert.match(badDb.stderr, /is not a MaxMind-format database/);
    });
  });
});

describe('enrichment in the API', () => {
  it('GraphQL returns the fields, filters flows by country, AS and network, and explores by them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-enrich-api-'));
    const { countryDb, asnDb } = writeDbs(dir);
    const netsPath = join(dir, 'nets.json');
    writeFileSync(netsPath, JSON.stringify([{ prefix: '10.1.0.0/16', name: 'office', role: 'inside' }]));
    const enrich = Enricher.open({ countryDb, asnDb, networks: netsPath });
    // The server's own enrichment (serve's flags) answers the Host fields.
    const t = await startTestServer({ flow: { enrich } });
    try {
      const file = writeCapture(join(t.dir, 'in.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, byTime(capture())));
      await importIntoStore([file], { store: t.store, detect: false, enrich });
      await t.store.flush();
      type Node = { serverIp: string; clientNetwork: string | null; serverCountry: string | null; serverAsn: number | null; serverAsOrg: string | null };
      const query = `query($filter: FlowFilter) { flows(from: "2023-01-01T00:00:00Z", to: "2024-01-01T00:00:00Z", first: 100, filter: $filter) {
        edges { node { serverIp clientNetwork serverCountry serverAsn serverAsOrg } } } }`;
      const ips = async (filter: Record<string, unknown>) =>
        (await gqlData<{ flows: { edges: { node: Node }[] } }>(t.url, query, { filter })).flows.edges.map((e) => e.node.serverIp).sort();
      const all = await gqlData<{ flows: { edges: { node: Node }[] } }>(t.url, query, {});
      assert.deepEqual(all.flows.edges.find((e) => e.node.serverIp === '8.8.8.8')?.node, {
        serverIp: '8.8.8.8',
        clientNetwork: 'office',
        serverCountry: 'US',
        serverAsn: 15169,
        serverAsOrg: 'GOOGLE',
      });
      assert.deepEqual(await ips({ country: 'US' }), ['8.8.8.8']);
      assert.deepEqual(await ips({ country: 'NL' }), ['193.0.6.139']);
      assert.deepEqual(await ips({ asn: 15169 }), ['8.8.8.8']);
      assert.deepEqual(await ips({ network: 'private' }), ['193.0.6.139']);
      assert.deepEqual(await ips({ network: 'office' }), ['8.8.8.8']);
      assert.deepEqual(await ips({ country: 'FR' }), []);

      const explore = await gqlData<{ explore: { items: { keys: string[]; flows: number }[] } }>(
        t.url,
        `{ explore(from: "2023-11-14T00:00:00Z", to: "2023-11-15T00:00:00Z", dimensions: [SERVER_COUNTRY, CLIENT_NETWORK], metric: FLOWS, step: 3600) { items { keys flows } } }`,
      );
      assert.deepEqual(explore.explore.items.map((i) => [...i.keys, i.flows]).sort(), [
        ['NL', 'private', 1],
        ['US', 'office', 1],
      ]);
      const byAs = await gqlData<{ explore: { items: { keys: string[]; bytes: number }[] } }>(
        t.url,
        `{ explore(from: "2023-11-14T00:00:00Z", to: "2023-11-15T00:00:00Z", dimensions: [SERVER_ASN], step: 3600, filters: [{ dimension: SERVER_ASN, value: "15169" }]) { items { keys bytes } } }`,
      );
      assert.deepEqual(
        byAs.explore.items.map((i) => i.keys),
        [['15169']],
      );

      type Host = { ip: string; country: string | null; asn: number | null; asOrg: string | null; network: string | null; networkRole: string | null };
      const host = async (ip: string) =>
        (
          await gqlData<{ host: Host }>(
            t.url,
            `query($ip: String!) { host(ip: $ip, from: "2023-11-14T00:00:00Z", to: "2023-11-15T00:00:00Z") { ip country asn asOrg network networkRole } }`,
            { ip },
          )
        ).host;
      assert.deepEqual(await host('8.8.8.8'), { ip: '8.8.8.8', country: 'US', asn: 15169, asOrg: 'GOOGLE', network: null, networkRole: null });
      assert.deepEqual(await host('10.1.2.3'), { ip: '10.1.2.3', country: null, asn: null, asOrg: null, network: 'office', networkRole: 'inside' });
      assert.equal((await host('192.168.7.7')).network, 'private');

      // The host records carry what the import's enrichment found, so the host list filters on it.
      const hostIps = async (args: string) =>
        (
          await gqlData<{ hosts: { ip: string; country: string | null }[] }>(
            t.url,
            `{ hosts(from: "2023-11-14T00:00:00Z", to: "2023-11-15T00:00:00Z", limit: 100${args}) { ip country } }`,
          )
        ).hosts
          .map((h) => h.ip)
          .sort();
      assert.deepEqual(await hostIps(', country: "US"'), ['8.8.8.8']);
      assert.deepEqual(await hostIps(', asn: 15169'), ['8.8.8.8']);
      assert.deepEqual(await hostIps(', country: "NL"'), ['193.0.6.139']);
      assert.deepEqual(await hostIps(', network: "office"'), ['10.1.2.3']);
      assert.deepEqual(await hostIps(', country: "FR"'), []);
      const stored = await t.store.topHosts({ from: Date.UTC(2023, 10, 14) * 1000, to: Date.UTC(2023, 10, 15) * 1000, limit: 100, country: 'US' });
      assert.deepEqual(
        stored.map((h) => [h.ip, h.country, h.asn, h.asOrg]),
        [['8.8.8.8', 'US', 15169, 'GOOGLE']],
      );
    } finally {
      enrich.close();
      await t.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
