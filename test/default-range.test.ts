/**
 * The data's own range (issue 21): a query without from/to shows the data's most recent range, not
 * the hour before now, so an old capture is in view at once; a live capture keeps now; `dataRange`
 * says which range and why. The rule itself (src/api/default-range.ts) case by case, then a real
 * server over DuckDB with an old capture imported; and the import summary's span (earliest to
 * latest packet, not first to last read) and its anomaly count.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importFiles } from '../src/capture/import.js';
import { DEFAULT_RANGE_US, defaultRange } from '../src/api/default-range.js';
import { BASE, gqlData, sampleCapture, startTestServer, type SampleFlow, type TestServer } from './api-helpers.js';
import { ETHERTYPE, LINKTYPE, TCP_FLAGS, ethernet, ip, tcp, ts } from './helpers/frames.js';
import { pcap, type PcapFrame } from './helpers/pcap-writer.js';

const US = 1_000_000;
const MIN = 60 * US;
const HOUR = DEFAULT_RANGE_US;

describe('default range: the rule', () => {
  const now = 1_800_000_000 * US;
  const old = 1_500_000_000 * US; // on a minute boundary

  it('an empty store, a live capture and data newer than an hour keep the last hour before now', () => {
    for (const [extent, live] of [
      [null, false],
      [{ first: old, last: old + 5 * MIN, runFirst: old }, true],
      [{ first: old, last: now - 10 * MIN, runFirst: old }, false],
    ] as const) {
      const r = defaultRange(extent, now, live, MIN);
      assert.deepEqual([r.from, r.to, r.basis], [now - HOUR, now, 'now'], JSON.stringify({ extent, live }));
    }
  });

  it('old data: the last hour of data held, ending at the end of the newest row’s interval', () => {
    const r = defaultRange({ first: old - 50 * HOUR, last: old + 3 * HOUR + 30 * US, runFirst: old - 50 * HOUR }, now, false, MIN);
    assert.equal(r.basis, 'latest-data');
    assert.equal(r.to, old + 3 * HOUR + MIN, 'the newest row’s interval is in the range');
    assert.equal(r.from, r.to - HOUR);
    assert.deepEqual(r.data, { from: old - 50 * HOUR, to: r.to });
    assert.match(r.reason, /last hour of data/);
  });

  it('a latest run shorter than an hour: its whole span, not data of an earlier run', () => {
    const r = defaultRange({ first: old - 10 * HOUR, last: old + 12 * MIN + 5, runFirst: old + 2 * MIN + 7 }, now, false, MIN);
    assert.deepEqual([r.from, r.to, r.basis], [old + 2 * MIN, old + 13 * MIN, 'latest-data']);
    assert.match(r.reason, /whole span of the latest import/);
  });
});

/** A port scan in one second (one source, SYNs to `ports` ports answered by RST) from `t0` seconds. */
function portScanFrames(t0: number, ports: number): PcapFrame[] {
  const frames: PcapFrame[] = [];
  for (let i = 0; i < ports; i++) {
    const sec = t0 + i / ports;
    const at = ts(Math.floor(sec), Math.round((sec % 1) * 1e6));
    const syn = tcp({ srcPort: 41000, dstPort: 1000 + i, flags: TCP_FLAGS.SYN });
    const rst = tcp({ srcPort: 1000 + i, dstPort: 41000, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK });
    frames.push({ ts: at, data: ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src: '10.9.0.1', dst: '10.9.0.2', l4: syn }) }) });
    frames.push({
      ts: at + 500_000n /* ns: 500 µs */,
      data: ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src: '10.9.0.2', dst: '10.9.0.1', l4: rst }) }),
    });
  }
  return frames;
}

describe('default range: an old capture through the API', () => {
  let t: TestServer;
  let flows: SampleFlow[];

  before(async () => {
    t = await startTestServer();
    const sample = sampleCapture(join(t.dir, 'old.pcap'));
    flows = sample.flows;
    await importFiles([sample.path], { store: t.store, intervalSec: 60, activeTimeoutSec: 60 });
  });
  after(() => t?.stop());

  it('queries without a range find the capture’s flows, hosts, traffic; dataRange says which range', async () => {
    const d = await gqlData(
      t.url,
      `{ dataRange { from to basis reason dataFrom dataTo }
         flows { totalCount } hosts(limit: 50) { ip bytes } traffic { bytes } }`,
    );
    assert.equal(d.flows.totalCount, flows.length, 'every flow of the capture, months old, in the default range');
    const total = flows.reduce((n, f) => n + f.clientBytes + f.serverBytes, 0);
    assert.equal(
      d.traffic.reduce((n: number, p: { bytes: number }) => n + p.bytes, 0),
      total,
      'the traffic series of the default range holds all the bytes',
    );
    assert.ok(d.hosts.some((h: { ip: string }) => h.ip === '10.0.0.1'));
    // The capture lasts about 4 minutes from BASE (a whole hour): the range is its whole span.
    const last = Math.max(...flows.map((f) => f.start));
    assert.equal(d.dataRange.basis, 'LATEST_DATA');
    assert.equal(Date.parse(d.dataRange.from), BASE * 1000, 'from the capture’s first interval');
    const to = Date.parse(d.dataRange.to);
    assert.ok(to > (BASE + last) * 1000 && to <= (BASE + last + 5 * 60) * 1000, `to ${d.dataRange.to} just after the last flow`);
    assert.equal(to % 60_000, 0, 'on an interval boundary');
    assert.deepEqual([d.dataRange.dataFrom, d.dataRange.dataTo], [d.dataRange.from, d.dataRange.to]);
    assert.match(d.dataRange.reason, /latest import/);
  });

  it('an explicit range still wins: the hour before now holds none of it', async () => {
    const now = Date.now();
    const d = await gqlData(t.url, 'query($from: DateTime, $to: DateTime) { flows(from: $from, to: $to) { totalCount } }', {
      from: new Date(now - 3600_000).toISOString(),
      to: new Date(now).toISOString(),
    });
    assert.equal(d.flows.totalCount, 0);
  });

  it('a live capture keeps now', async () => {
    const live = await startTestServer({ status: { interfaces: () => [{ name: 'lo', node: '', packets: 1, drops: 0 }], workers: () => [] } });
    try {
      const sample = sampleCapture(join(live.dir, 'old.pcap'));
      await importFiles([sample.path], { store: live.store, intervalSec: 60, activeTimeoutSec: 60 });
      const before = Date.now() * 1000;
      const d = await gqlData(live.url, '{ dataRange { from to basis reason dataFrom } flows { totalCount } }');
      assert.equal(d.dataRange.basis, 'NOW');
      assert.match(d.dataRange.reason, /live capture/);
      const to = Date.parse(d.dataRange.to) * 1000;
      assert.ok(to >= before - US && to <= Date.now() * 1000 + US, 'ends now');
      assert.equal(d.flows.totalCount, 0, 'the old capture is outside the last hour');
      assert.equal(Date.parse(d.dataRange.dataFrom), BASE * 1000, 'the whole data range is still given');
    } finally {
      await live.stop();
    }
  });
});

describe('import summary: time span and anomalies', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t?.stop());

  it('spans the earliest to the latest packet, whatever their order in the file, and counts anomalies', async () => {
    const t0 = 1_200_000_000;
    // A late packet first, then a port scan 10 minutes earlier: the span starts at the scan.
    const late = portScanFrames(t0 + 600, 1);
    const scan = portScanFrames(t0, 200);
    const path = join(t.dir, 'unordered.pcap');
    writeFileSync(path, pcap({ linktype: LINKTYPE.ETHERNET }, [...late, ...scan]));
    const s = await importFiles([path], { store: t.store, intervalSec: 60, activeTimeoutSec: 60 });
    assert.equal(s.firstPacket, new Date(t0 * 1000).toISOString().replace('.000Z', '.000000Z'));
    assert.equal(s.lastPacket, new Date((t0 + 600) * 1000).toISOString().replace('.000Z', '.000500Z'), 'the late packet’s RST, 500 µs after its SYN');
    const stored = await gqlData(t.url, '{ anomalies { kind evidence } }');
    assert.ok(s.anomalies >= 1, `anomalies counted: ${s.anomalies}`);
    assert.equal(s.anomalies, stored.anomalies.length, 'as many as the store holds (in the default range)');
    const portScan = stored.anomalies.find((a: { kind: string }) => a.kind === 'PORT_SCAN');
    assert.ok(portScan);
    // The walk's log-likelihood ratio beside its threshold on the same scale (ln(β/α)), and above it.
    const ev = JSON.parse(portScan.evidence);
    assert.equal(ev.threshold, undefined);
    assert.equal(ev.logLikelihoodThreshold, Math.round(Math.log(ev.beta / ev.alpha) * 100) / 100);
    assert.ok(ev.logLikelihoodRatio >= ev.logLikelihoodThreshold, JSON.stringify(ev));
  });
});
