/**
 * Explore (issue 21): the `explore` query over a real server and DuckDB store holding an imported
 * capture. Top-N by one dimension and by a pair, in bytes, packets and flows, checked against the
 * capture's own flows; each item's series adds up to the item; drill-down filters; the default
 * range; and one clear error for each kind of bad request.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { importFiles } from '../src/capture/import.js';
import { BASE, gql, gqlData, sampleCapture, startTestServer, type SampleFlow, type TestServer } from './api-helpers.js';

const QUERY = `query($from: DateTime, $to: DateTime, $dimensions: [ExploreDimension!]!, $metric: ExploreMetric, $limit: Int, $filters: [ExploreFilter!], $step: Int) {
  explore(from: $from, to: $to, dimensions: $dimensions, metric: $metric, limit: $limit, filters: $filters, step: $step) {
    from to step items { keys bytes packets flows series { ts bytes packets flows } }
  }
}`;

interface Item {
  keys: string[];
  bytes: number;
  packets: number;
  flows: number;
  series: { ts: string; bytes: number; packets: number; flows: number }[];
}

const RANGE = { from: new Date(BASE * 1000).toISOString(), to: new Date((BASE + 3600) * 1000).toISOString() };

/** Expected totals per key from the capture's flows, largest first (ties by key), as explore ranks them. */
function expected(flows: SampleFlow[], keysOf: (f: SampleFlow) => string[][], metric: 'bytes' | 'packets' | 'flows'): { keys: string[]; value: number }[] {
  const sums = new Map<string, number>();
  for (const f of flows) {
    const value = metric === 'bytes' ? f.clientBytes + f.serverBytes : metric === 'packets' ? f.clientPackets + f.serverPackets : 1;
    for (const keys of keysOf(f)) sums.set(JSON.stringify(keys), (sums.get(JSON.stringify(keys)) ?? 0) + value);
  }
  return [...sums]
    .map(([k, value]) => ({ keys: JSON.parse(k) as string[], value }))
    .sort((a, b) => b.value - a.value || (JSON.stringify(a.keys) < JSON.stringify(b.keys) ? -1 : 1));
}

describe('explore', () => {
  let t: TestServer;
  let flows: SampleFlow[];

  before(async () => {
    t = await startTestServer();
    const sample = sampleCapture(join(t.dir, 'sample.pcap'));
    flows = sample.flows;
    await importFiles([sample.path], { store: t.store, intervalSec: 60, activeTimeoutSec: 60 });
  });
  after(() => t?.stop());

  const explore = async (vars: Record<string, unknown>): Promise<{ from: string; to: string; step: number; items: Item[] }> =>
    (await gqlData(t.url, QUERY, { ...RANGE, ...vars })).explore;

  it('top hosts by bytes count each flow at both ends, with the capture’s totals', async () => {
    const r = await explore({ dimensions: ['HOST'], limit: 5 });
    const want = expected(flows, (f) => [[f.clientIp], [f.serverIp]], 'bytes').slice(0, 5);
    assert.deepEqual(
      r.items.map((i) => ({ keys: i.keys, value: i.bytes })),
      want,
    );
    assert.equal(r.items[0].keys[0], '10.0.0.1');
    assert.equal(r.items[0].flows, 13, '12 HTTPS flows and the ping');
  });

  it('top server ports by packets and transports by flows', async () => {
    const ports = await explore({ dimensions: ['TRANSPORT', 'PORT'], metric: 'PACKETS', limit: 10 });
    assert.deepEqual(
      ports.items.map((i) => ({ keys: i.keys, value: i.packets })),
      expected(flows, (f) => [[f.transport, String(f.serverPort)]], 'packets'),
    );
    const transports = await explore({ dimensions: ['TRANSPORT'], metric: 'FLOWS' });
    assert.deepEqual(
      transports.items.map((i) => [i.keys[0], i.flows]),
      [
        ['tcp', 12],
        ['udp', 3],
        ['icmp', 1],
      ],
    );
  });

  it('a host and its peers as a pair; each series adds up to its item over every bucket', async () => {
    const r = await explore({ dimensions: ['HOST', 'PEER'], limit: 80, step: 60 });
    const want = expected(
      flows,
      (f) => [
        [f.clientIp, f.serverIp],
        [f.serverIp, f.clientIp],
      ],
      'bytes',
    );
    assert.deepEqual(
      r.items.map((i) => ({ keys: i.keys, value: i.bytes })),
      want,
    );
    assert.equal(r.step, 60);
    for (const item of r.items) {
      assert.equal(item.series.length, 60, 'an hour in minutes, every bucket present');
      const sum = item.series.reduce((a, p) => ({ bytes: a.bytes + p.bytes, packets: a.packets + p.packets }), { bytes: 0, packets: 0 });
      assert.deepEqual(sum, { bytes: item.bytes, packets: item.packets }, item.keys.join(' '));
    }
    assert.equal(Date.parse(r.items[0].series[0].ts), BASE * 1000);
  });

  it('drill-down: filters narrow to the items clicked', async () => {
    const r = await explore({ dimensions: ['SERVER'], metric: 'FLOWS', filters: [{ dimension: 'HOST', value: '10.0.0.2' }] });
    assert.deepEqual(
      r.items.map((i) => [i.keys[0], i.flows]),
      [['10.0.2.1', 3]],
    );
    const both = await explore({
      dimensions: ['APP'],
      filters: [
        { dimension: 'TRANSPORT', value: 'tcp' },
        { dimension: 'PORT', value: '443' },
      ],
    });
    assert.equal(both.items.length, 1);
    assert.equal(
      both.items[0].bytes,
      flows.filter((f) => f.serverPort === 443).reduce((n, f) => n + f.clientBytes + f.serverBytes, 0),
    );
    const none = await explore({ dimensions: ['HOST'], filters: [{ dimension: 'CLIENT', value: '192.0.2.1' }] });
    assert.deepEqual(none.items, []);
  });

  it('with no range, the default range (the capture’s own span)', async () => {
    const d = await gqlData(t.url, '{ dataRange { from to } explore(dimensions: [APP], limit: 3) { from to items { keys flows } } }');
    assert.deepEqual([d.explore.from, d.explore.to], [d.dataRange.from, d.dataRange.to]);
    assert.deepEqual(
      d.explore.items.map((i: Item) => i.flows).reduce((a: number, b: number) => a + b, 0),
      flows.length,
    );
  });

  it('flows: a filter that can never match is an error saying why, not zero rows', async () => {
    const q = 'query($filter: FlowFilter) { flows(filter: $filter) { totalCount } }';
    for (const [filter, message] of [
      [{ host: 'not-an-ip' }, /host: "not-an-ip" is not an IP address or CIDR prefix/],
      [{ host: '10.0.0.0/33' }, /a prefix length is 0\.\.32/],
      [{ port: 70000 }, /port must be a whole number from 0 to 65535/],
      [{ transport: 'TCP ' }, /transport must be tcp, udp/],
    ] as [Record<string, unknown>, RegExp][]) {
      const r = await gql(t.url, q, { filter });
      assert.equal(r.errors?.length, 1, JSON.stringify(filter));
      assert.match(r.errors![0].message, message);
    }
    assert.equal((await gqlData(t.url, q, { filter: { host: '10.0.0.2', transport: 'udp' } })).flows.totalCount, 3);
    assert.equal((await gqlData(t.url, q, { filter: { host: '::1' } })).flows.totalCount, 0, 'an IPv6 address is fine');
  });

  it('flows: hosts by CIDR prefix, as the capture has them (issue 21)', async () => {
    const q = 'query($filter: FlowFilter) { flows(filter: $filter, first: 1000) { totalCount } }';
    const octets = (ip: string) => ip.split('.').map(Number);
    const inPrefix = (ip: string, net: string, len: number) => {
      const a = octets(ip).reduce((n, o) => n * 256 + o, 0);
      const b = octets(net).reduce((n, o) => n * 256 + o, 0);
      return Math.floor(a / 2 ** (32 - len)) === Math.floor(b / 2 ** (32 - len));
    };
    for (const [net, len] of [
      ['10.0.0.0', 24],
      ['10.0.0.0', 16],
      ['10.0.2.0', 23],
      ['10.0.0.0', 30],
      ['0.0.0.0', 0],
      ['192.168.0.0', 16],
    ] as [string, number][]) {
      const want = flows.filter((f) => inPrefix(f.clientIp, net, len) || inPrefix(f.serverIp, net, len)).length;
      const got = (await gqlData(t.url, q, { filter: { host: `${net}/${len}` } })).flows.totalCount;
      assert.equal(got, want, `${net}/${len}`);
    }
    // Server names by glob: the store contract suite (the sample has none).
  });

  it('bad requests: one clear error each', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ dimensions: ['PEER'] }, /peer is the other end of a host: pair it with host/],
      [{ dimensions: [] }, /one dimension or a pair/],
      [{ dimensions: ['HOST', 'APP', 'PORT'] }, /one dimension or a pair/],
      [{ dimensions: ['APP', 'APP'] }, /two different dimensions/],
      [{ dimensions: ['APP'], limit: 0 }, /limit must be 1\.\.100/],
      [{ dimensions: ['APP'], filters: [{ dimension: 'PORT', value: 'https' }] }, /not a port number/],
      [{ dimensions: ['APP'], step: 7 }, /multiple of the aggregation interval/],
      [{ dimensions: ['APP'], limit: 100, step: 60 }, /step too small/],
      [{ dimensions: ['NOPE'] }, /ExploreDimension/],
    ];
    for (const [vars, message] of cases) {
      const r = await gql(t.url, QUERY, { ...RANGE, ...vars });
      assert.equal(r.errors?.length, 1, JSON.stringify(vars));
      assert.match(r.errors![0].message, message, JSON.stringify(vars));
    }
  });
});
