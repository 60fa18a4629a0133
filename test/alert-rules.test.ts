// Rules and watchlists over the flows of a real import (a capture built byte by byte, decoded by
// the pipeline, its flow events on the in-memory bus), their files' errors and reloads.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AlertEngine } from '../src/alert/engine.js';
import { parseRules } from '../src/alert/rules.js';
import { parseWatchlist } from '../src/alert/watchlist.js';
import { MemoryBus } from '../src/bus/memory.js';
import { importFiles } from '../src/capture/import.js';
import type { LifecycleEvent } from '../src/detect/lifecycle.js';
import { emptySummary } from '../src/records/define.js';
import { FLOW } from '../src/records/flow.js';
import type { AnomalyRecord } from '../src/records/index.js';
import { BAD_NAME, DNS_CLIENT, FANOUT_SOURCE, LISTED_SERVER, writeAlertCapture } from './helpers/alert-capture.js';

let dir: string;
let capture: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-alert-'));
  capture = join(dir, 'alert.pcap');
  writeAlertCapture(capture, { t0: 1_700_000_000, fanout: 30 });
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Emitted {
  type: LifecycleEvent;
  record: AnomalyRecord;
}

/** Imports the capture with the engine on the bus, then lets the quiet period pass; returns what it emitted. */
async function run(engine: AlertEngine, emitted: Emitted[]): Promise<Emitted[]> {
  const start = emitted.length;
  const bus = new MemoryBus();
  bus.subscribe('flow', (e) => engine.flow(e));
  await importFiles([capture], { store: null, bus, detect: false });
  // The import is over: the wall-clock fallback ends the anomalies after their quiet period.
  engine.idle(Date.now() + 3_600_000);
  return emitted.slice(start);
}

function newEngine(files: { rulesFile?: string; watchlistFiles?: string[] }, reloads: [string, Error | null][] = []) {
  const emitted: Emitted[] = [];
  const engine = new AlertEngine({
    ...files,
    sink: (type, record) => emitted.push({ type, record: { ...record } }),
    pollMs: 50,
    onReload: (f, e) => reloads.push([f, e]),
  });
  return { engine, emitted };
}

describe('rule files', () => {
  test('parse every construct', () => {
    const set = parseRules(
      'r.rules',
      [
        '# comment',
        'set quiet=30s update=5s',
        'telnet high transport=tcp serverPort=23  # inline comment',
        'fanout critical serverPort=445,139 clientIp!=192.168.0.0/16 when peers >= 20 per source in 1m',
        'names low serverName=*.example.com app=TLS,QUIC',
      ].join('\n'),
    );
    assert.equal(set.quietSec, 30);
    assert.equal(set.updateSec, 5);
    assert.deepEqual(
      set.rules.map((r) => [r.name, r.severity, r.line, r.threshold?.metric ?? null, r.threshold?.windowUs ?? null]),
      [
        ['telnet', 'high', 3, null, null],
        ['fanout', 'critical', 4, 'peers', 60e6],
        ['names', 'low', 5, null, null],
      ],
    );
    const flow = {
      clientIp: '10.1.2.3',
      serverIp: '10.9.9.9',
      clientPort: 5000,
      serverPort: 139,
      transport: 'tcp',
      app: 'tls',
      serverName: 'a.b.EXAMPLE.com',
      ja4: '',
      node: '',
      iface: '',
      risks: '',
    };
    assert.equal(set.rules[1].matches(flow), true);
    assert.equal(set.rules[1].matches({ ...flow, clientIp: '192.168.4.4' }), false, '!= excludes');
    assert.equal(set.rules[2].matches(flow), true, 'glob and case-insensitive app');
    assert.equal(set.rules[2].matches({ ...flow, serverName: 'example.com' }), false, '*. needs a label');
    assert.equal(set.rules[0].matches(flow), false);
  });

  test('a bad line gives one error naming the file, the line and the reason', () => {
    const cases: [string, RegExp][] = [
      ['ok low port=1\nbad medium colour=blue', /x\.rules:2: unknown field 'colour'/],
      ['r1 urgent port=1', /x\.rules:1: severity 'urgent' must be one of low, medium, high, critical/],
      ['\n\nr1 low serverIp=10.0.0.0/33', /x\.rules:3: '10\.0\.0\.0\/33': prefix length must be 0 to 32/],
      ['r1 low port=70000', /x\.rules:1: '70000' is not a port/],
      ['r1 low port=1 when peers > 3 per source in 1m', /x\.rules:1: expected 'when METRIC >= N per source\|target in DURATION'/],
      ['r1 low port=1 when bits >= 3 per source in 1m', /x\.rules:1: unknown metric 'bits'/],
      ['r1 low port=1\nr1 high port=2', /x\.rules:2: rule 'r1' is defined twice/],
      ['r1 low', /x\.rules:1: rule 'r1' has no condition and no threshold/],
      ['set quiet=soon', /x\.rules:1: 'set quiet=soon'/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseRules('x.rules', text), re, text);
  });
});

describe('watchlist files', () => {
  test('addresses, prefixes, domains, JA4, CSV and hosts-file lines; hash lookups', () => {
    const list = parseWatchlist(
      '/lists/feodo.csv',
      [
        'indicator,first_seen,malware',
        '# a comment',
        '203.0.113.5,2024-01-01,x',
        '"198.51.100.0/24",2024-01-02,y',
        '2001:db8:bad::/48 ; IPv6 prefix',
        '2001:db8::1',
        '0.0.0.0 tracker.example.net',
        '*.evil.example',
        'bad.example.',
        't13d1516h2_8daaf6152771_b186095e22b6',
        '',
      ].join('\n'),
    );
    assert.equal(list.name, 'feodo');
    assert.equal(list.size, 8);
    assert.equal(list.matchAddress('203.0.113.5')?.entry, '203.0.113.5');
    assert.equal(list.matchAddress('203.0.113.6'), undefined);
    assert.equal(list.matchAddress('198.51.100.77')?.entry, '"198.51.100.0/24"'.slice(1, -1));
    assert.equal(list.matchAddress('2001:db8:bad:1::9')?.entry, '2001:db8:bad::/48');
    assert.equal(list.matchAddress('2001:db8:0:0::1')?.entry, '2001:db8::1', 'IPv6 written another way');
    assert.equal(list.matchAddress('2001:db8:bae::1'), undefined);
    assert.equal(list.matchServerName('WWW.Bad.Example')?.entry, 'bad.example', 'subdomain, any case');
    assert.equal(list.matchServerName('notbad.example'), undefined, 'a suffix is not a parent domain');
    assert.equal(list.matchServerName('a.evil.example')?.entry, 'evil.example');
    assert.equal(list.matchServerName('tracker.example.net')?.type, 'domain');
    assert.equal(list.matchJa4('t13d1516h2_8daaf6152771_b186095e22b6')?.type, 'ja4');
  });

  test('a bad line names the file, line and reason', () => {
    assert.throws(
      () => parseWatchlist('l.txt', '10.0.0.1\nnot_a_domain\n'),
      /l\.txt:2: 'not_a_domain' is not an IP address, CIDR prefix, domain name or JA4 fingerprint$/,
    );
    assert.throws(() => parseWatchlist('l.txt', '10.0.0.1/40'), /l\.txt:1: '10\.0\.0\.1\/40': prefix length must be 0 to 32$/);
    assert.throws(() => parseWatchlist('l.txt', '10.0.0.1 10.0.0.2'), /l\.txt:1: '10\.0\.0\.1 10\.0\.0\.2' holds more than one entry$/);
    // Only a CSV file's first line may be a header.
    assert.throws(() => parseWatchlist('l.csv', 'ip,x\n10.0.0.1,a\nhost,b'), /l\.csv:3: 'host' is not/);
  });
});

describe('alert engine over an import', () => {
  test('a threshold rule raises one RULE anomaly with the lifecycle; a list hit raises WATCHLIST anomalies', async () => {
    const rules = join(dir, 'a.rules');
    writeFileSync(
      rules,
      [
        'set quiet=30s update=1s',
        'smb-fanout critical transport=tcp serverPort=445 when peers >= 20 per source in 60s',
        'telnet high serverPort=23',
        'web low serverPort=80',
      ].join('\n'),
    );
    const list = join(dir, 'intel.txt');
    writeFileSync(list, `# test feed\n${LISTED_SERVER.split('.').slice(0, 3).join('.')}.0/24\nbad.example\n`);
    const { engine, emitted } = newEngine({ rulesFile: rules, watchlistFiles: [list] });
    const events = await run(engine, emitted);
    engine.close();

    const byId = new Map<string, Emitted[]>();
    for (const e of events) byId.set(e.record.anomalyId, [...(byId.get(e.record.anomalyId) ?? []), e]);
    const summaries = [...byId.values()].map((es) => `${es[0].record.kind} ${es[0].record.summary}: ${es.map((e) => e.type).join(',')}`);

    const fanout = [...byId.values()].filter((es) => JSON.parse(es[0].record.evidence).rule === 'smb-fanout');
    assert.equal(fanout.length, 1, summaries.join('\n'));
    const [first, ...rest] = fanout[0];
    assert.equal(first.type, 'start');
    assert.equal(rest.at(-1)?.type, 'end');
    const last = rest.at(-1)?.record as AnomalyRecord;
    assert.equal(last.kind, 'RULE');
    assert.equal(last.severity, 'critical');
    assert.equal(last.source, FANOUT_SOURCE);
    assert.equal(last.state, 'ended');
    const ev = JSON.parse(last.evidence);
    assert.equal(ev.peers, 30, 'every peer of the fan-out counted once the rule fired');
    assert.equal(ev.flows.length, 10, 'evidence names the first matching flows');
    assert.equal(JSON.parse(first.record.evidence).peers, 20, 'fired on the 20th peer');
    assert.ok(last.packets >= 60 && last.bytes > 0, `packets ${last.packets}`);

    // Per-flow rules: three HTTP flows between the same pair and port are one anomaly; telnet never matched.
    const web = [...byId.values()].filter((es) => JSON.parse(es[0].record.evidence).rule === 'web');
    assert.equal(web.length, 1, summaries.join('\n'));
    assert.equal(JSON.parse(web[0].at(-1)?.record.evidence as string).flows.length, 3);
    assert.equal([...byId.values()].filter((es) => JSON.parse(es[0].record.evidence).rule === 'telnet').length, 0);

    const listed = [...byId.values()].filter((es) => es[0].record.kind === 'WATCHLIST').map((es) => es.at(-1)?.record as AnomalyRecord);
    assert.deepEqual(listed.map((r) => [r.source, r.targetIp, JSON.parse(r.evidence).entry, JSON.parse(r.evidence).list, r.state]).sort(), [
      [DNS_CLIENT, '10.0.0.53', 'bad.example', 'intel', 'ended'],
      [DNS_CLIENT, LISTED_SERVER, '198.51.100.0/24', 'intel', 'ended'],
    ]);
    assert.match(listed.find((r) => r.targetIp !== LISTED_SERVER)?.summary ?? '', /matched domain bad\.example of watchlist intel/);
    assert.ok(BAD_NAME.endsWith('bad.example'));
  });

  test('a bad edit is refused with file and line, the previous version stays; a good one takes over', async () => {
    const rules = join(dir, 'reload.rules');
    writeFileSync(rules, 'web low serverPort=80\n');
    const reloads: [string, Error | null][] = [];
    const { engine, emitted } = newEngine({ rulesFile: rules }, reloads);
    const waitReload = async (n: number) => {
      for (let i = 0; i < 800 && reloads.length < n; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(reloads.length, n, 'the change was picked up');
    };
    try {
      writeFileSync(rules, 'web low serverPort=80\nsmb critical serverPort=445 when peerz >= 3 per source in 1m\n');
      await waitReload(1);
      assert.match(reloads[0][1]?.message ?? '', new RegExp(`^${rules.replace(/[.]/g, '\\.')}:2: unknown metric 'peerz'`));
      assert.equal(engine.files()[0].error, reloads[0][1]?.message);
      const old = await run(engine, emitted);
      assert.deepEqual([...new Set(old.map((e) => JSON.parse(e.record.evidence).rule))], ['web'], 'the previous rules are in force');

      writeFileSync(rules, 'smb critical serverPort=445 when peers >= 3 per source in 1m\n');
      await waitReload(2);
      assert.equal(reloads[1][1], null);
      assert.equal(engine.files()[0].error, null);
      const now = await run(engine, emitted);
      assert.deepEqual([...new Set(now.map((e) => JSON.parse(e.record.evidence).rule))], ['smb'], 'the new rules are in force');
    } finally {
      engine.close();
    }
  });

  test('a file that does not parse at start-up is refused at once', () => {
    const rules = join(dir, 'bad.rules');
    writeFileSync(rules, 'x low port=1-0\n');
    assert.throws(() => newEngine({ rulesFile: rules }), new RegExp(`${rules.replace(/[.]/g, '\\.')}:1: '1-0' is not a port`));
    assert.throws(() => newEngine({ watchlistFiles: [join(dir, 'missing.txt')] }), /missing\.txt: no such file/);
  });
});

describe('late flow events', () => {
  test("a matched flow's end event with no new packets does not start the rule's anomaly again", () => {
    const rules = join(dir, 'late.rules');
    writeFileSync(rules, 'set quiet=2s update=1s\nweb low serverPort=80\n');
    const { engine, emitted } = newEngine({ rulesFile: rules });
    const t0 = 1_700_000_000_000_000;
    const flow = {
      ...emptySummary(FLOW),
      flowId: 'f1',
      transport: 'tcp',
      clientIp: '10.0.0.9',
      serverIp: '10.0.0.80',
      clientPort: 40000,
      serverPort: 80,
      firstSeen: t0,
      lastSeen: t0 + 100_000,
      clientPackets: 3,
      serverPackets: 2,
      clientBytes: 300,
      serverBytes: 200,
    };
    engine.flow({ type: 'start', flow });
    // Another flow moves the clock past the quiet period: the anomaly ends.
    engine.flow({ type: 'start', flow: { ...flow, flowId: 'other', serverPort: 443, firstSeen: t0 + 5_000_000, lastSeen: t0 + 5_000_000 } });
    assert.deepEqual(
      emitted.map((e) => e.type),
      ['start', 'end'],
    );
    // The first flow's end event, late and with nothing new: no second anomaly.
    engine.flow({ type: 'end', flow });
    engine.idle(Date.now() + 3_600_000);
    engine.close();
    assert.deepEqual(
      emitted.map((e) => e.type),
      ['start', 'end'],
    );
  });
});
