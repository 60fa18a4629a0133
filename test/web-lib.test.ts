/**
 * The web client's pure modules (web/src/lib/*.ts), in node: virtual list windowing, client-side
 * flow filtering, sorting and aggregates, the traffic chart's merge of live points, formatting
 * and routes.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { apiFilter, appLabel, EMPTY_FILTER, livePredicate, predictedName, predictedText, sortFlows, topApps, type Flow } from '../web/src/lib/flows.js';
import { formatBytes, formatDuration, formatNumber, formatPerSecond, parseTime, tcpFlags } from '../web/src/lib/format.js';
import { DOWNLOAD_FIELDS, downloadName, flowsCsv, flowsJson } from '../web/src/lib/download.js';
import { DIMENSIONS, exploreHref, parseExploreParams, validDims, withFilter, withoutFilter } from '../web/src/lib/explore.js';
import { importRange, parseRangeParam, rangeParam, rangeReason, rangeVariables, shownRange, type DataRangeInfo, type RangeSel } from '../web/src/lib/ranges.js';
import { hexRows, isoMicros, packetDirection, relativeTime } from '../web/src/lib/packets.js';
import { parseRoute } from '../web/src/lib/routes.js';
import { mergeLive, seriesStep, toRates } from '../web/src/lib/traffic.js';
import { scrollToRow, visibleRange } from '../web/src/lib/virtual.js';

function flow(o: Partial<Flow> & { id: string }): Flow {
  return {
    firstSeen: '2024-05-01T12:00:00.000000Z',
    lastSeen: '2024-05-01T12:00:01.500000Z',
    node: null,
    iface: null,
    transport: 'tcp',
    ipProto: 6,
    clientIp: '10.0.0.1',
    clientPort: 40000,
    serverIp: '10.0.1.1',
    serverPort: 443,
    clientPackets: 1,
    clientBytes: 100,
    serverPackets: 1,
    serverBytes: 100,
    bytes: 200,
    clientTcpFlags: 0x12,
    serverTcpFlags: 0x12,
    tcpState: 'established',
    app: null,
    serverName: null,
    confidence: null,
    appInfo: null,
    firstPackets: null,
    duration: 0,
    endReason: null,
    risks: null,
    ...o,
    // The fields these tests read; the rest of FlowFields (generated from the record) stays unset.
  } as Flow;
}

describe('virtual list', () => {
  it('renders a screenful plus overscan, offset to the first rendered row', () => {
    const r = visibleRange({ scrollTop: 3000, viewportHeight: 600, rowHeight: 30, count: 10_000, overscan: 5 });
    assert.deepEqual(r, { start: 95, end: 126, offsetTop: 95 * 30, totalHeight: 300_000 });
  });
  it('clamps at the top, the bottom and for empty or short lists', () => {
    assert.deepEqual(visibleRange({ scrollTop: -50, viewportHeight: 300, rowHeight: 30, count: 1000, overscan: 2 }), {
      start: 0,
      end: 13,
      offsetTop: 0,
      totalHeight: 30_000,
    });
    const bottom = visibleRange({ scrollTop: 1e9, viewportHeight: 300, rowHeight: 30, count: 1000, overscan: 2 });
    assert.equal(bottom.end, 1000);
    assert.equal(bottom.start, 1000 - 10 - 2);
    assert.deepEqual(visibleRange({ scrollTop: 0, viewportHeight: 300, rowHeight: 30, count: 0 }), { start: 0, end: 0, offsetTop: 0, totalHeight: 0 });
    assert.deepEqual(visibleRange({ scrollTop: 100, viewportHeight: 300, rowHeight: 30, count: 3 }), { start: 0, end: 3, offsetTop: 0, totalHeight: 90 });
  });
  it('keeps the rendered window small whatever the list length', () => {
    for (const count of [100, 10_000, 1_000_000]) {
      const r = visibleRange({ scrollTop: (count * 30) / 2, viewportHeight: 800, rowHeight: 30, count });
      assert.ok(r.end - r.start <= 800 / 30 + 2 + 16, `${count}: ${r.end - r.start} rows`);
    }
  });
  it('scrolls a row into view only when it is outside', () => {
    const o = { scrollTop: 300, viewportHeight: 300, rowHeight: 30 };
    assert.equal(scrollToRow(12, o), 300);
    assert.equal(scrollToRow(2, o), 60);
    assert.equal(scrollToRow(25, o), 26 * 30 - 300);
  });
});

describe('flows', () => {
  const flows = [
    flow({ id: 'a', clientIp: '10.0.0.1', serverIp: '10.0.1.1', serverPort: 443, app: 'TLS', serverName: 'www.example.com', bytes: 5000 }),
    flow({ id: 'b', clientIp: '10.0.0.2', serverIp: '10.0.2.1', serverPort: 53, transport: 'udp', app: 'DNS', serverName: 'example.org', bytes: 300 }),
    flow({ id: 'c', clientIp: '10.0.0.1', serverIp: '192.168.1.9', serverPort: 8080, bytes: 900 }),
    flow({ id: 'd', clientIp: '10.0.0.3', serverIp: '10.0.0.1', serverPort: 0, transport: 'icmp', bytes: 100 }),
  ];
  const ids = (fs: Flow[]) => fs.map((f) => f.id);
  const only = (o: Partial<typeof EMPTY_FILTER>) => ids(flows.filter(livePredicate({ ...EMPTY_FILTER, ...o }).match));

  it('labels unidentified applications by transport and server port', () => {
    assert.deepEqual(flows.map(appLabel), ['TLS', 'DNS', 'tcp/8080', 'icmp']);
  });
  it("shows the classifier's guess only where DPI named nothing, and says it is a guess", () => {
    const guess = { predictedCategory: 'vpn-tunnel', predictedApp: '', predictedConfidence: 87 };
    assert.equal(predictedName(flow({ id: 'e', serverPort: 51820, transport: 'udp', ...guess })), 'vpn-tunnel');
    assert.equal(predictedName(flow({ id: 'f', ...guess, predictedCategory: 'web', predictedApp: 'Google' })), 'Google');
    assert.equal(predictedName(flow({ id: 'g', app: 'TLS', ...guess })), '', 'beside a DPI answer: none');
    assert.equal(predictedName(flows[2]), '', 'no guess');
    assert.equal(appLabel(flow({ id: 'h', serverPort: 51820, transport: 'udp', ...guess })), 'udp/51820', 'the label stays the port');
    const text = predictedText(flow({ id: 'i', ...guess, predictedApp: 'WireGuard' }));
    assert.match(text, /^vpn-tunnel, WireGuard \(87% sure\)/);
    assert.match(text, /not identified by DPI/);
  });
  it('filters live flows in the API’s language: host address or CIDR prefix, either port, app in any case, server name or glob', () => {
    assert.deepEqual(only({}), ['a', 'b', 'c', 'd']);
    assert.deepEqual(only({ host: '10.0.0.1' }), ['a', 'c', 'd']);
    assert.deepEqual(only({ host: '10.0.2.0/24' }), ['b']);
    assert.deepEqual(only({ host: '10.0.0.0/23' }), ['a', 'b', 'c', 'd']);
    assert.deepEqual(only({ host: '192.168.0.0/16' }), ['c']);
    assert.deepEqual(only({ port: '53' }), ['b']);
    assert.deepEqual(only({ port: '40000' }), ['a', 'b', 'c', 'd']);
    assert.deepEqual(only({ app: 'dns' }), ['b']);
    assert.deepEqual(only({ serverName: 'WWW.example.com' }), ['a']);
    assert.deepEqual(only({ serverName: '*EXAMPLE*' }), ['a', 'b']);
    assert.deepEqual(only({ serverName: '*.org' }), ['b']);
    assert.deepEqual(only({ host: '10.0.0.1', serverName: 'www*' }), ['a']);
  });
  it('a filter that can never match is an error saying why, on Live flows as in History', () => {
    for (const [o, why] of [
      [{ port: 'x' }, /port must be a whole number/],
      [{ host: '10.0.' }, /not an IP address or CIDR prefix/],
      [{ host: '10.0.0.0/99' }, /prefix length/],
    ] as [Partial<typeof EMPTY_FILTER>, RegExp][]) {
      const p = livePredicate({ ...EMPTY_FILTER, ...o });
      assert.match(p.error ?? '', why);
      assert.deepEqual(flows.filter(p.match), []);
    }
  });
  it('turns the filter into the API input, refusing bad ports', () => {
    assert.deepEqual(apiFilter({ host: ' 10.0.0.1 ', port: '443', app: '', serverName: 'x' }), { filter: { host: '10.0.0.1', port: 443, serverName: 'x' } });
    assert.deepEqual(apiFilter({ ...EMPTY_FILTER, host: '2001:DB8::/32' }), { filter: { host: '2001:db8::/32' } });
    assert.ok('error' in apiFilter({ ...EMPTY_FILTER, port: '70000' }));
  });
  it('sorts by bytes, addresses numerically and duration, ties by id', () => {
    assert.deepEqual(ids(sortFlows(flows, 'bytes', 'desc')), ['a', 'c', 'b', 'd']);
    assert.deepEqual(ids(sortFlows(flows, 'server', 'asc')), ['d', 'a', 'b', 'c']);
    assert.deepEqual(ids(sortFlows(flows, 'firstSeen', 'asc')), ['a', 'b', 'c', 'd']);
    assert.deepEqual(ids(sortFlows([flow({ id: 'x', lastSeen: '2024-05-01T12:00:09.000000Z' }), flow({ id: 'y' })], 'duration', 'desc')), ['x', 'y']);
  });
  it('aggregates applications', () => {
    assert.deepEqual(
      topApps(flows).map((s) => [s.key, s.bytes]),
      [
        ['TLS', 5000],
        ['tcp/8080', 900],
        ['DNS', 300],
        ['icmp', 100],
      ],
    );
  });
});

describe('traffic chart', () => {
  const at = (min: number) => new Date(Date.UTC(2024, 4, 1, 12, min)).toISOString();
  const history = [0, 1, 2].map((m) => ({ ts: at(m), bytes: 600 * (m + 1), packets: 60, flows: 1 }));

  it('finds the step from the points', () => {
    assert.equal(seriesStep(history, 10), 60);
    assert.equal(seriesStep(history.slice(0, 1), 10), 10);
  });
  it('adds live points into their buckets, also when several sources report the same interval', () => {
    const merged = mergeLive(
      history,
      60,
      [
        { point: { ts: at(1), bytes: 1, packets: 1, flows: 0 } },
        { point: { ts: at(3), bytes: 60, packets: 6, flows: 0 } },
        { point: { ts: at(3), bytes: 40, packets: 4, flows: 1 } },
      ],
      parseTime(at(0)),
    );
    assert.deepEqual(
      [...merged.values()].map((p) => p.bytes),
      [600, 1201, 1800, 100],
    );
    const hourly = mergeLive([{ ts: at(0), bytes: 100, packets: 1, flows: 1 }], 3600, [{ point: { ts: at(3), bytes: 7, packets: 1, flows: 0 } }], 0);
    assert.equal(hourly.get(parseTime(at(0)))!.bytes, 107, 'rolled up into the hour');
    assert.equal(mergeLive([], 60, [{ point: { ts: at(0), bytes: 7, packets: 1, flows: 0 } }], parseTime(at(1))).size, 0, 'before the range');
  });
  it('gives per-second rates in time order', () => {
    const [x, bytes, packets] = toRates(mergeLive(history, 60, [], 0), 60);
    assert.deepEqual(
      x,
      [0, 1, 2].map((m) => Date.UTC(2024, 4, 1, 12, m) / 1000),
    );
    assert.deepEqual(bytes, [10, 20, 30]);
    assert.deepEqual(packets, [1, 1, 1]);
  });
});

describe('formatting and routes', () => {
  it('formats sizes, numbers, durations and TCP flags', () => {
    assert.equal(formatBytes(999), '999 B');
    assert.equal(formatBytes(1234567), '1.23 MB');
    assert.equal(formatNumber(0.8), '0.8');
    assert.equal(formatNumber(2e30), '2.000e+30');
    assert.equal(formatNumber(99000), '99,000');
    assert.equal(formatPerSecond(0.25), '0.25');
    assert.equal(formatDuration(0.004), '4 ms');
    assert.equal(formatDuration(75), '1m 15s');
    assert.equal(tcpFlags(0x12), 'SYN ACK');
    assert.equal(parseTime('2024-05-01T12:00:00.123456Z'), Date.UTC(2024, 4, 1, 12, 0, 0, 123));
  });
  it('parses hash routes', () => {
    assert.deepEqual(parseRoute(''), { page: 'overview' });
    assert.deepEqual(parseRoute('#/flows'), { page: 'flows' });
    assert.deepEqual(parseRoute('#/anomalies?id=a%2Fb'), { page: 'anomalies', id: 'a/b' });
    assert.deepEqual(parseRoute('#/host/fe80%3A%3A1'), { page: 'host', ip: 'fe80::1' });
    assert.deepEqual(parseRoute('#/nope'), { page: 'missing', path: '/nope' });
  });
});

describe('time ranges', () => {
  const old: DataRangeInfo = {
    from: '2023-11-14T21:00:00.000000Z',
    to: '2023-11-14T21:05:00.000000Z',
    basis: 'LATEST_DATA',
    reason: 'the whole span of the latest import or capture (shorter than an hour)',
    dataFrom: '2019-05-01T10:00:00.000000Z',
    dataTo: '2023-11-14T21:05:00.000000Z',
  };
  const now = Date.UTC(2026, 0, 1);

  it('the default sends no range (the server picks it) and shows what the server used', () => {
    const vars = rangeVariables({ kind: 'default' }, old, now);
    assert.deepEqual(vars, { from: null, to: null });
    assert.deepEqual(shownRange(vars, old), { from: Date.UTC(2023, 10, 14, 21), to: Date.UTC(2023, 10, 14, 21, 5) });
    assert.match(rangeReason({ kind: 'default' }, old), /^default: the whole span of the latest import/);
  });

  it('presets end where the default range ends: the data’s end when it is old, else now', () => {
    assert.deepEqual(rangeVariables({ kind: 'last', id: '1h' }, old, now), { from: '2023-11-14T20:05:00.000Z', to: '2023-11-14T21:05:00.000Z' });
    const live = { ...old, basis: 'NOW' as const };
    assert.deepEqual(rangeVariables({ kind: 'last', id: '15m' }, live, now), {
      from: new Date(now + 1000 - 900_000).toISOString(),
      to: new Date(now + 1000).toISOString(),
    });
    assert.equal(rangeReason({ kind: 'last', id: '6h' }, old), 'the last 6 hours of data held');
    assert.equal(rangeReason({ kind: 'last', id: '6h' }, live), 'the last 6 hours before now');
  });

  it('the whole data range spans every row; with an empty store it is the default', () => {
    assert.deepEqual(rangeVariables({ kind: 'all' }, old, now), { from: old.dataFrom, to: old.dataTo });
    assert.deepEqual(rangeVariables({ kind: 'all' }, { ...old, dataFrom: null, dataTo: null }, now), { from: null, to: null });
  });

  it('a choice round-trips through its URL parameter; anything else is the default', () => {
    const sels: RangeSel[] = [
      { kind: 'default' },
      { kind: 'all' },
      { kind: 'last', id: '24h' },
      { kind: 'custom', from: Date.UTC(2019, 4, 1), to: Date.UTC(2019, 4, 2) },
    ];
    for (const sel of sels) assert.deepEqual(parseRangeParam(rangeParam(sel)), sel);
    for (const bad of ['last:3y', '2019-05-02T00:00:00Z..2019-05-01T00:00:00Z', 'x..y', 'a..b..c', 'nonsense'])
      assert.deepEqual(parseRangeParam(bad), { kind: 'default' }, bad);
  });

  it('an import’s range covers the minutes of its first and last packets', () => {
    assert.deepEqual(importRange('2019-05-01T10:00:12.345678Z', '2019-05-01T10:01:30.000001Z'), {
      kind: 'custom',
      from: Date.UTC(2019, 4, 1, 10, 0),
      to: Date.UTC(2019, 4, 1, 10, 2),
    });
    assert.deepEqual(importRange('2019-05-01T10:00:00.000000Z', '2019-05-01T10:00:00.000000Z'), {
      kind: 'custom',
      from: Date.UTC(2019, 4, 1, 10, 0),
      to: Date.UTC(2019, 4, 1, 10, 1),
    });
    assert.equal(importRange('garbage', '2019-05-01T10:00:00Z'), null);
  });
});

describe('explore view in the URL', () => {
  it('round-trips every part of the view', () => {
    const v = {
      dims: ['HOST', 'PEER'] as const,
      metric: 'FLOWS' as const,
      limit: 20,
      filters: [
        { dimension: 'APP' as const, value: 'TLS' },
        { dimension: 'SERVER_NAME' as const, value: 'a:b.example' },
      ],
      view: 'area' as const,
      range: { kind: 'custom' as const, from: Date.UTC(2019, 4, 1), to: Date.UTC(2019, 4, 2) },
    };
    const href = exploreHref({ ...v, dims: [...v.dims] });
    assert.match(href, /^#\/explore\?/);
    assert.deepEqual(parseRoute(href), { page: 'explore', query: href.split('?')[1] });
    assert.deepEqual(parseExploreParams(href.split('?')[1]), { ...v, dims: [...v.dims] });
    assert.deepEqual(parseExploreParams('range=default').range, { kind: 'default' });
    assert.equal(parseExploreParams('').range, undefined, 'no range in the URL: the shared choice stays');
  });
  it("offers every dimension the API's explore query takes (country, AS and network too)", () => {
    const schema = readFileSync(new URL('../schema/schema.graphql', import.meta.url), 'utf8');
    const body = /enum ExploreDimension \{([^}]*)\}/.exec(schema)?.[1] ?? '';
    const api = [...body.matchAll(/^\s+([A-Z_]+)\s*$/gm)].map((m) => m[1]).sort();
    assert.ok(api.includes('CLIENT_COUNTRY'), body);
    assert.deepEqual(DIMENSIONS.map((d) => d.id).sort(), api);
    const v = parseExploreParams('dims=SERVER_COUNTRY,SERVER_ASN&f=CLIENT_NETWORK:inside');
    assert.deepEqual([v.dims, v.filters], [['SERVER_COUNTRY', 'SERVER_ASN'], [{ dimension: 'CLIENT_NETWORK', value: 'inside' }]]);
  });
  it('falls back to defaults for what it does not know, and keeps PEER with HOST', () => {
    assert.deepEqual(parseExploreParams('dims=NOPE&metric=x&limit=7&f=BAD:1&f=PORT:443'), {
      dims: ['APP'],
      metric: 'BYTES',
      limit: 10,
      filters: [{ dimension: 'PORT', value: '443' }],
      view: 'table',
      range: undefined,
    });
    assert.deepEqual(validDims(['PEER']), ['HOST', 'PEER']);
    assert.deepEqual(validDims(['APP', 'PEER']), ['HOST', 'PEER']);
    assert.deepEqual(validDims(['PEER', 'HOST']), ['PEER', 'HOST']);
    assert.deepEqual(validDims(['APP', 'APP', 'PORT']), ['APP', 'PORT']);
  });
  it('drill-down adds a filter once; a chip removes its own', () => {
    const v = parseExploreParams('dims=APP');
    const one = withFilter(v, { dimension: 'APP', value: 'DNS' });
    assert.equal(withFilter(one, { dimension: 'APP', value: 'DNS' }), one);
    const two = withFilter(one, { dimension: 'HOST', value: '10.0.0.1' });
    assert.deepEqual(withoutFilter(two, 0).filters, [{ dimension: 'HOST', value: '10.0.0.1' }]);
  });
});

describe('History downloads', () => {
  const rows = [
    { id: 'a1', firstSeen: '2023-11-14T22:00:00.000001Z', clientIp: '10.0.0.1', bytes: 1200, app: null, serverName: 'x,"y".example', extra: 1 },
    { id: 'b2', firstSeen: '2023-11-14T22:01:00.000000Z', clientIp: '10.0.0.2', bytes: 80, app: 'DNS', serverName: null },
  ];
  it('CSV: the API names as header, RFC 4180 quoting, nulls empty', () => {
    const lines = flowsCsv(rows).split('\r\n');
    assert.equal(lines[0], DOWNLOAD_FIELDS.join(','));
    assert.equal(lines.length, 4, 'header, two rows, final line break');
    const at = (line: string, field: string) => line.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)[DOWNLOAD_FIELDS.indexOf(field as never)];
    assert.equal(at(lines[1], 'serverName'), '"x,""y"".example"');
    assert.equal(at(lines[1], 'app'), '');
    assert.equal(at(lines[2], 'bytes'), '80');
  });
  it('JSON: every download field, nulls kept, nothing else', () => {
    const parsed = JSON.parse(flowsJson(rows));
    assert.deepEqual(Object.keys(parsed[0]), [...DOWNLOAD_FIELDS]);
    assert.equal(parsed[0].app, null);
    assert.equal(parsed[0].lastSeen, null);
    assert.equal(parsed[1].serverName, null);
    assert.equal('extra' in parsed[0], false);
  });
  it('names the file after its range', () => {
    assert.equal(
      downloadName({ from: Date.UTC(2023, 10, 14, 22), to: Date.UTC(2023, 10, 14, 22, 5) }, 'csv'),
      'flowlens-flows-20231114T2200Z-20231114T2205Z.csv',
    );
  });
});

describe("packets (the flow detail's packet list)", () => {
  const flow = { clientIp: '10.0.0.1', clientPort: 40000, serverIp: '10.0.0.2', serverPort: 80 };
  it('tells which way a packet went, by ports when both ends share an address', () => {
    assert.equal(packetDirection({ src: '10.0.0.1', srcPort: 40000, dst: '10.0.0.2', dstPort: 80 }, flow), 'toServer');
    assert.equal(packetDirection({ src: '10.0.0.2', srcPort: 80, dst: '10.0.0.1', dstPort: 40000 }, flow), 'toClient');
    assert.equal(packetDirection({ src: '10.0.0.2', srcPort: null, dst: '10.0.0.1', dstPort: null }, flow), 'toClient', 'a later fragment');
    assert.equal(packetDirection({ src: null, srcPort: null, dst: null, dstPort: null }, flow), null);
    const loop = { clientIp: '127.0.0.1', clientPort: 5000, serverIp: '127.0.0.1', serverPort: 8000 };
    assert.equal(packetDirection({ src: '127.0.0.1', srcPort: 8000, dst: '127.0.0.1', dstPort: 5000 }, loop), 'toClient');
    assert.equal(packetDirection({ src: '127.0.0.1', srcPort: 5000, dst: '127.0.0.1', dstPort: 8000 }, loop), 'toServer');
  });
  it('lays a payload out as 16-byte hex and ASCII rows', () => {
    const hex = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n').toString('hex');
    assert.deepEqual(hexRows(hex), [
      { offset: '0000', hex: '47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a', ascii: 'GET / HTTP/1.1..' },
      { offset: '0010', hex: '48 6f 73 74 3a 20 61 0d  0a 0d 0a', ascii: 'Host: a....' },
    ]);
    assert.deepEqual(hexRows(''), []);
    assert.deepEqual(hexRows('00ff7e'), [{ offset: '0000', hex: '00 ff 7e', ascii: '..~' }]);
  });
  it("reads the API's times to the microsecond", () => {
    assert.equal(isoMicros('2023-11-14T22:13:20.000001Z'), 1_700_000_000_000_001);
    assert.equal(isoMicros('2023-11-14T22:13:20Z'), 1_700_000_000_000_000);
    assert.equal(relativeTime('2023-11-14T22:13:21.5Z', '2023-11-14T22:13:20.000001Z'), '+1.499999 s');
  });
});
