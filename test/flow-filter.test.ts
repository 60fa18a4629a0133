/**
 * One filter language (issue 21): an application filter finds its flows in any case everywhere: the
 * flows that come from the bus (Live flows, subscriptions: matchesFlow) as the stores do (the
 * store contract suite checks History's pages and Explore on each back end; explore-memory checks
 * Explore's in-memory answer against its SQL).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchesFlow } from '../src/api/schema/flows.js';
import { emptySummary, FLOW } from '../src/records/index.js';
import { ipv4ToString, ipv6ToString } from '../src/flow/address.js';
import {
  checkFlowFilter,
  FlowFilterError,
  formatFlowFilterText,
  hostPredicate,
  numberRangeRegex,
  parseFlowFilterText,
  parseHostSpec,
} from '../src/records/flow-filter.js';
import { appMatches } from '../src/store/flow-filter.js';
import type { FlowSummary } from '../src/store/types.js';
import { rng } from './helpers/random.js';

describe('flow filter: applications', () => {
  const flow = (app: string): FlowSummary => ({ ...(emptySummary(FLOW) as FlowSummary), flowId: 'f1', app, clientIp: '10.0.0.1', serverIp: '10.0.0.53' });

  it('dns finds DNS, and DNS finds dns, on flows from the bus', () => {
    assert.equal(matchesFlow(flow('DNS'), { app: 'dns' }), true);
    assert.equal(matchesFlow(flow('dns'), { app: 'DNS' }), true);
    assert.equal(matchesFlow(flow('DNS'), { app: 'TLS' }), false);
    assert.equal(matchesFlow(flow('DNS.Google'), { app: 'dns' }), false, 'the whole name, not a prefix');
  });

  it('the empty application finds flows with none', () => {
    assert.equal(appMatches('', ''), true);
    assert.equal(appMatches(null, ''), true);
    assert.equal(appMatches('DNS', ''), false);
  });
});

// ---------------------------------------------------------------------------------------------
// Hosts by CIDR prefix: the regular expression made of a prefix takes exactly the canonical texts
// of the prefix's addresses, in JavaScript and in DuckDB's RE2 alike.

/** An address as 8 groups of 16 bits (IPv4: groups 6 and 7), and its canonical text as flows hold it. */
function addressText(v6: boolean, groups: number[]): string {
  const words = Uint32Array.from([0, 1, 2, 3].map((i) => ((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0));
  return v6 ? ipv6ToString(words, 0) : ipv4ToString(words[3]!);
}

/** Whether the first `len` bits of a and b agree (a reference written bit by bit). */
function samePrefix(a: number[], b: number[], len: number, v6: boolean): boolean {
  const bits = (g: number[]) => (v6 ? g : g.slice(6)).map((x) => x.toString(2).padStart(16, '0')).join('');
  return bits(a).slice(0, len) === bits(b).slice(0, len);
}

/** Random groups biased towards zeros, 0xffff and values near `near`, so that runs of zeros and mapped forms are common. */
function randomGroups(next: () => number, v6: boolean, near?: number[]): number[] {
  const g = Array.from({ length: 8 }, (_, i) => {
    if (!v6 && i < 6) return 0;
    const r = next();
    if (near && r < 0.5) return near[i]! ^ (next() < 0.5 ? 0 : 1 << Math.floor(next() * 16));
    if (r < 0.75) return 0;
    if (r < 0.8) return 0xffff;
    return Math.floor(next() * 65536);
  });
  if (v6 && next() < 0.1) return [0, 0, 0, 0, 0, 0xffff, g[6]!, g[7]!];
  return g;
}

describe('flow filter: hosts by address or CIDR prefix', () => {
  it('a prefix takes exactly its addresses (IPv4 and IPv6, every length, runs of zeros, mapped forms)', () => {
    const next = rng(21);
    let checked = 0;
    for (let round = 0; round < 400; round++) {
      const v6 = round % 2 === 1;
      const net = randomGroups(next, v6);
      const len = Math.floor(next() * ((v6 ? 128 : 32) + 1));
      const spec = parseHostSpec(`${addressText(v6, net)}/${len}`);
      const test = hostPredicate(spec);
      for (let k = 0; k < 60; k++) {
        const a = randomGroups(next, v6, net);
        const want = samePrefix(a, net, len, v6);
        assert.equal(test(addressText(v6, a)), want, `${spec.text} ${addressText(v6, a)}`);
        checked++;
      }
      // The other family never matches.
      assert.equal(test(addressText(!v6, randomGroups(next, !v6))), false);
    }
    assert.equal(checked, 24_000);
  });

  it('addresses compare in their canonical text, and a full-length prefix is an address', () => {
    assert.deepEqual(parseHostSpec('2001:DB8:0:0::1'), { kind: 'address', text: '2001:db8::1' });
    assert.deepEqual(parseHostSpec('10.1.2.3/32'), { kind: 'address', text: '10.1.2.3' });
    assert.deepEqual(parseHostSpec('::ffff:10.0.0.1'), { kind: 'address', text: '::ffff:10.0.0.1' });
    assert.equal(parseHostSpec('192.168.1.77/24').text, '192.168.1.0/24', 'host bits are masked');
  });

  it('what is no address or prefix is an error saying why', () => {
    for (const [bad, why] of [
      ['not-an-ip', /not an IP address or CIDR prefix/],
      ['10.0.0.256', /not an IP address/],
      ['010.0.0.1', /not an IP address/],
      ['10.0.0.0/33', /prefix length is 0\.\.32/],
      ['2001:db8::/129', /prefix length is 0\.\.128/],
      ['10.0.0.0/', /prefix length/],
      ['1::2::3', /not an IP address/],
      ['fe80::1%eth0', /not an IP address/],
      ['', /not an IP address/],
    ] as [string, RegExp][]) {
      assert.throws(
        () => parseHostSpec(bad),
        (e: Error) => e instanceof FlowFilterError && why.test(e.message),
        bad,
      );
    }
  });

  it('DuckDB reads the prefixes as JavaScript does (regexp_full_match, RE2)', async () => {
    const { DuckDBInstance, listValue } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const next = rng(7);
    const prefixes: string[] = [];
    const addresses: string[] = [];
    for (let i = 0; i < 60; i++) {
      const v6 = i % 2 === 0;
      const net = randomGroups(next, v6);
      prefixes.push(`${addressText(v6, net)}/${Math.floor(next() * (v6 ? 129 : 33))}`);
      for (let k = 0; k < 20; k++) addresses.push(addressText(v6, randomGroups(next, v6, net)));
    }
    let agreed = 0;
    for (const p of prefixes) {
      const spec = parseHostSpec(p);
      const regex = spec.kind === 'prefix' ? spec.regex : `^${spec.text.replace(/[.]/g, '\\.')}$`;
      const stmt = await conn.prepare('SELECT list_filter($a::VARCHAR[], x -> regexp_full_match(x, $re)) AS hit');
      stmt.bind({ a: listValue(addresses), re: regex });
      const rows = (await stmt.runAndReadAll()).getRowObjects();
      const sql = new Set((rows[0]!.hit as { items: string[] }).items);
      const test = hostPredicate(spec);
      for (const a of addresses) {
        assert.equal(sql.has(a), test(a), `${p} ${a}`);
        agreed++;
      }
    }
    assert.equal(agreed, 60 * 1200);
    conn.closeSync();
  });
});

describe('flow filter: server names, the text form, and flows from the bus', () => {
  const base = {
    ...(emptySummary(FLOW) as FlowSummary),
    flowId: 'f1',
    clientIp: '10.0.0.1',
    serverIp: '192.168.7.9',
    clientPort: 40000,
    serverPort: 443,
    transport: 'tcp',
  };

  it('server names: the whole name in any case, or a glob; a glob never finds a flow without a name', () => {
    const name = (serverName: string, filter: string) => matchesFlow({ ...base, serverName }, { serverName: filter });
    assert.equal(name('www.Example.com', 'WWW.example.COM'), true);
    assert.equal(name('www.example.com', 'example.com'), false, 'the whole name');
    assert.equal(name('www.example.com', '*.example.com'), true);
    assert.equal(name('example.com', '*.example.com'), false, 'a suffix after the dot');
    assert.equal(name('badexample.com', '*.example.com'), false);
    assert.equal(name('r3---sn-video.googlevideo.com', '*VIDEO*'), true);
    assert.equal(name('a.b', 'a?b'), false, 'only * is special');
    assert.equal(name('a+b(c)', 'a+b(*'), true, 'regular expression characters are literal');
    assert.equal(name('', '*'), false);
    assert.equal(name('', ''), true, 'the empty name finds flows without one');
  });

  it('hosts on flows from the bus: address or prefix at either end', () => {
    assert.equal(matchesFlow(base, { host: '192.168.0.0/16' }), true);
    assert.equal(matchesFlow(base, { host: '10.0.0.0/8' }), true);
    assert.equal(matchesFlow(base, { host: '172.16.0.0/12' }), false);
    assert.equal(matchesFlow(base, { host: '192.168.7.9' }), true);
  });

  it('the text form reads every key, quoted values, and says what is wrong', () => {
    assert.deepEqual(parseFlowFilterText('host=10.0.0.0/8, port=443 transport=TCP serverName=*.example.com app=dns minBytes=100 asn=3320'), {
      host: '10.0.0.0/8',
      port: 443,
      transport: 'tcp',
      serverName: '*.example.com',
      app: 'dns',
      minBytes: 100,
      asn: 3320,
    });
    assert.deepEqual(parseFlowFilterText('serverName="SSH-2.0-OpenSSH_9.6 Ubuntu" node=n1'), { serverName: 'SSH-2.0-OpenSSH_9.6 Ubuntu', node: 'n1' });
    assert.deepEqual(parseFlowFilterText('serverName=""'), { serverName: '' });
    const f = { host: '2001:db8::/32', serverName: 'a b', risk: 'Self-signed Cert', port: 22 };
    assert.deepEqual(parseFlowFilterText(formatFlowFilterText(f)), f, 'the text form reads back');
    for (const [bad, why] of [
      ['hots=10.0.0.1', /bad filter term 'hots=10.0.0.1': expected key=value with key one of host, port/],
      ['host', /bad filter term 'host'/],
      ['port=', /an empty value is written ""/],
      ['port=https', /port must be a whole number/],
      ['host=1.2.3.4 host=1.2.3.5', /given twice/],
      ['serverName="open', /closing quote/],
      ['host=10.0.0.0/40', /prefix length/],
    ] as [string, RegExp][]) {
      assert.throws(
        () => parseFlowFilterText(bad),
        (e: Error) => e instanceof FlowFilterError && why.test(e.message),
        bad,
      );
    }
  });

  it('the API input is checked the same way', () => {
    assert.deepEqual(checkFlowFilter({ host: '2001:DB8::1', port: null, transport: 'UDP' }), { host: '2001:db8::1', transport: 'udp' });
    assert.throws(() => checkFlowFilter({ port: -1 }), /port must be a whole number from 0 to 65535/);
    assert.throws(() => checkFlowFilter({ colour: 'red' }), /unknown filter key "colour"/);
  });
});

describe('flow filter: numeric ranges as regular expressions', () => {
  it('takes exactly the numbers of the range, decimal and hex, without leading zeros', () => {
    const next = rng(3);
    for (let i = 0; i < 300; i++) {
      const base = i % 2 ? 16 : 10;
      const max = base === 16 ? 0xffff : 255;
      const lo = Math.floor(next() * (max + 1));
      const hi = lo + Math.floor(next() * (max + 1 - lo));
      const re = new RegExp(`^(${numberRangeRegex(lo, hi, base)})$`);
      for (let k = 0; k < 50; k++) {
        const v = k < 4 ? [lo, hi, lo - 1, hi + 1][k]! : Math.floor(next() * (max + 1));
        if (v < 0 || v > max) continue;
        assert.equal(re.test(v.toString(base)), v >= lo && v <= hi, `${lo}..${hi} (${base}) ${v}`);
      }
    }
  });
});
