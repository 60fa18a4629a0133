// Memory bounded by design: a spoofed-source SYN flood of millions of packets, byte-built and fed in
// process, holds the heap under a bound set by the table caps while the flood is still detected;
// evicted flows are exported with endReason 'evicted' and counted. Also the parts: the eviction
// threshold (kthSmallest), the distinct-host counter (exact, then estimated, mergeable), and that
// the caps evict the oldest idle flows first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Aggregator } from '../src/flow/aggregator.js';
import { defaultMaxFlows, kthSmallest } from '../src/flow/caps.js';
import { DistinctAddresses, EXACT_MAX } from '../src/flow/distinct.js';
import type { AnomalyRecord, FlowRecord } from '../src/records/index.js';
import { ethernet, fragmentIpv4, LINKTYPE, payload, SYN_FRAME, synFrame, udp } from './helpers/frames.js';
import { heapMb } from './helpers/heap.js';
import { rngU32 } from './helpers/random.js';

const { SRC_IP_AT, SRC_PORT_AT, IP_ID_AT, IP_CHECKSUM_AT } = SYN_FRAME;

/** xorshift32: the same "random" sources on every run. */
const prng = rngU32;

describe('flow and host table caps', () => {
  it('a spoofed-source SYN flood of 3,000,000 packets stays under the heap bound and is detected', () => {
    const PACKETS = 3_000_000;
    const MAX_FLOWS = 100_000;
    const RATE = 100_000; // SYNs per second of packet time: 30 s, inside one 60 s interval
    const agg = new Aggregator({ maxFlows: MAX_FLOWS, node: 'n1', iface: 'flood' });
    const frame = synFrame();
    const next = prng(0x9e3779b9);
    const t0 = 1_700_000_000_000_000;
    const endReasons = new Map<string, number>();
    const anomalies = new Map<string, AnomalyRecord>();
    let flowRows = 0;
    const drain = () => {
      const batch = agg.takeBatch();
      for (const f of batch.flows as FlowRecord[]) endReasons.set(f.endReason, (endReasons.get(f.endReason) ?? 0) + 1);
      flowRows += batch.flows.length;
      for (const a of batch.anomalies ?? []) anomalies.set(a.anomalyId, a);
    };

    // Baseline once the tables have reached their cap (the arrays are then as large as they get).
    let baseline = 0;
    let peakGrowth = 0;
    for (let i = 0; i < PACKETS; i++) {
      frame.writeUInt32BE((next() | 0x01000000) >>> 0, SRC_IP_AT); // never 0.x.x.x
      frame.writeUInt16BE(1024 + (i & 0x7fff), SRC_PORT_AT);
      agg.packet(LINKTYPE.ETHERNET, t0 + Math.floor((i * 1e6) / RATE), frame, 0, frame.length, frame.length);
      if ((i & 0x3fff) === 0) drain();
      if (i === 2 * MAX_FLOWS) baseline = heapMb();
      else if (i > 2 * MAX_FLOWS && i % 500_000 === 0) peakGrowth = Math.max(peakGrowth, heapMb() - baseline);
    }
    drain();
    const atEnd = heapMb() - baseline;
    peakGrowth = Math.max(peakGrowth, atEnd);
    const stats = agg.stats();
    agg.finish();
    drain();

    // Without caps the table held every flow (228 MB for 3 M SYNs before this change): here it
    // stays at its cap and the heap does not grow with the flood.
    assert.ok(agg.liveFlows() === 0, 'finish() ends every flow');
    assert.ok(peakGrowth < 24, `heap grew ${peakGrowth.toFixed(1)} MB over the flood past the cap (bound 24 MB)`);
    assert.ok(baseline < 160, `heap at the cap ${baseline.toFixed(1)} MB (bound 160 MB for 100,000 flows)`);
    assert.equal(stats.flows, PACKETS, 'every SYN from a new source is a new flow');
    assert.ok(stats.evictedFlows >= PACKETS - MAX_FLOWS, `evicted ${stats.evictedFlows}`);
    assert.equal(endReasons.get('evicted'), stats.evictedFlows, 'each evicted flow is exported once with endReason evicted');
    assert.equal(flowRows, PACKETS, 'every flow exported exactly once');
    assert.ok(stats.evictedHosts > 0, 'hosts of evicted flows are freed before the interval ends');
    // Distinct hosts: the sources (xorshift repeats none in 3 M draws) and the target, estimated.
    assert.ok(Math.abs(stats.hosts - (PACKETS + 1)) / (PACKETS + 1) < 0.05, `distinct hosts ${stats.hosts}`);

    const floods = [...anomalies.values()].filter((a) => a.kind === 'SYN_FLOOD');
    assert.equal(floods.length, 1, `one SYN flood: ${[...anomalies.values()].map((a) => a.kind).join(', ')}`);
    assert.equal(floods[0].targetIp, '10.9.9.9');
    assert.equal(floods[0].targetPort, 80);
    assert.equal(floods[0].source, 'distributed');
    console.log(
      `# ${PACKETS} SYNs, cap ${MAX_FLOWS} flows: heap growth past the cap ${peakGrowth.toFixed(1)} MB (baseline ${baseline.toFixed(1)} MB), evicted ${stats.evictedFlows} flows and ${stats.evictedHosts} hosts`,
    );
  });

  it('evicts the flows idle longest and exports them with endReason evicted', () => {
    const agg = new Aggregator({ maxFlows: 32, maxHosts: 1000, detect: false, node: 'n1' });
    const frame = synFrame();
    const t0 = 1_700_000_000_000_000;
    // 32 flows from 1.0.0.1 .. 1.0.0.32; then the even ones send again, later.
    const send = (src: number, ts: number) => {
      frame.writeUInt32BE(0x01000000 + src, SRC_IP_AT);
      agg.packet(LINKTYPE.ETHERNET, ts, frame, 0, frame.length, frame.length);
    };
    for (let s = 1; s <= 32; s++) send(s, t0 + s);
    for (let s = 2; s <= 32; s += 2) send(s, t0 + 1000 + s);
    // The 33rd flow finds the table full: a sixteenth (2) of the flows go, the two idle longest.
    send(33, t0 + 2000);
    const evicted = (agg.takeBatch().flows as FlowRecord[]).filter((f) => f.endReason === 'evicted').map((f) => f.clientIp);
    assert.deepEqual(evicted.sort(), ['1.0.0.1', '1.0.0.3']);
    assert.equal(agg.liveFlows(), 31);
    assert.equal(agg.stats().evictedFlows, 2);
  });

  it('a host cap below twice the flow cap evicts flows to free hosts', () => {
    const agg = new Aggregator({ maxFlows: 1000, maxHosts: 17, detect: false, node: 'n1' });
    const frame = synFrame();
    const t0 = 1_700_000_000_000_000;
    for (let s = 1; s <= 100; s++) {
      frame.writeUInt32BE(0x01000000 + s, SRC_IP_AT);
      agg.packet(LINKTYPE.ETHERNET, t0 + s, frame, 0, frame.length, frame.length);
    }
    const st = agg.stats();
    assert.ok(st.evictedFlows > 0 && st.evictedHosts > 0, `evicted ${st.evictedFlows} flows, ${st.evictedHosts} hosts`);
    assert.ok(agg.liveFlows() <= 16, `${agg.liveFlows()} live flows with 17 hosts`);
    agg.finish();
    const hosts = agg.takeBatch().hosts;
    // Every source's packets are in a host record, emitted early or at the interval's end.
    const sent = hosts.filter((h) => h.ip !== '10.9.9.9').reduce((n, h) => n + h.packetsSent, 0);
    const received = hosts.filter((h) => h.ip === '10.9.9.9').reduce((n, h) => n + h.packetsReceived, 0);
    assert.equal(sent, 100);
    assert.equal(received, 100);
  });

  it('remembers at most 65,536 first fragments, forgetting the oldest', () => {
    const agg = new Aggregator({ detect: false, dpi: false, node: 'n1' });
    const [first, later] = fragmentIpv4({ src: '10.1.0.1', dst: '10.1.0.2', id: 0, l4: udp({ srcPort: 4000, dstPort: 5000, payload: payload(64) }) }, [32]).map(
      (ip) => Buffer.from(ethernet({ etherType: 0x0800, payload: ip })),
    );
    const t0 = 1_700_000_000_000_000;
    let ts = t0;
    const send = (frame: Buffer, src: number, id: number) => {
      frame.writeUInt32BE(src, SRC_IP_AT);
      frame.writeUInt16BE(id, IP_ID_AT);
      frame.writeUInt16BE(0, IP_CHECKSUM_AT); // zero: not checked
      agg.packet(LINKTYPE.ETHERNET, ts++, frame, 0, frame.length, frame.length);
    };
    const A = 0x0a010001;
    const B = 0x0a010003;
    // Every IP id of A, then 1000 of B: the 1000 oldest of A are forgotten.
    for (let id = 0; id < 65_536; id++) send(first, A, id);
    for (let id = 0; id < 1000; id++) send(first, B, id);
    // A later fragment of A's id 999 finds no flow (a port-less flow of its own); A's id 1000 (the
    // oldest kept) and B's newest join their UDP flows.
    send(later, A, 999);
    send(later, A, 1000);
    send(later, B, 999);
    agg.finish();
    const flows = agg.takeBatch().flows as FlowRecord[];
    const packetsOf = (ip: string, port: number) => flows.filter((f) => f.clientIp === ip && f.clientPort === port).map((f) => f.clientPackets);
    assert.deepEqual(packetsOf('10.1.0.1', 4000), [65_537]);
    assert.deepEqual(packetsOf('10.1.0.3', 4000), [1001]);
    assert.deepEqual(packetsOf('10.1.0.1', 0), [1], 'the forgotten fragment forms a flow without ports');
    assert.equal(agg.stats().fragments, 3);
  });

  it('kthSmallest finds the k-th smallest value', () => {
    const next = prng(7);
    for (const n of [1, 2, 3, 10, 1000]) {
      const values = Float64Array.from({ length: n }, () => next() % 50);
      const sorted = [...values].sort((a, b) => a - b);
      for (const k of [0, n >> 1, n - 1]) assert.equal(kthSmallest(values.slice(), n, k), sorted[k], `n ${n} k ${k}`);
    }
  });

  it('the default flow cap follows the machine memory, within its bounds', () => {
    assert.equal(defaultMaxFlows(16 * 2 ** 30), 1_048_576);
    assert.equal(defaultMaxFlows(2 ** 30), 65_536);
    assert.equal(defaultMaxFlows(2 ** 40), 4_000_000);
  });
});

describe('distinct host addresses', () => {
  const words = new Uint32Array(4);
  const add = (d: DistinctAddresses, v4: number) => {
    words[0] = v4;
    d.add(4, words, 0);
  };

  it('counts exactly up to EXACT_MAX, IPv4 and IPv6 apart', () => {
    const d = new DistinctAddresses();
    for (let i = 0; i < 1000; i++) add(d, i % 300);
    assert.equal(d.count(), 300);
    words.set([0, 0, 0, 1]);
    d.add(6, words, 0); // ::1 is not 0.0.0.0
    words.fill(0);
    assert.equal(d.count(), 301);
  });

  it('estimates past EXACT_MAX within 5%', () => {
    const d = new DistinctAddresses();
    const n = EXACT_MAX * 10;
    for (let i = 0; i < n; i++) add(d, i * 2654435761);
    assert.ok(Math.abs(d.count() - n) / n < 0.05, `${d.count()} for ${n}`);
  });

  it('merged counters give what one counter over all the addresses gives', () => {
    for (const n of [500, EXACT_MAX + 500]) {
      const whole = new DistinctAddresses();
      const parts = [new DistinctAddresses(), new DistinctAddresses(), new DistinctAddresses()];
      for (let i = 0; i < n; i++) {
        add(whole, i);
        add(parts[i % 3], i);
        add(parts[(i + 1) % 3], i); // overlapping shares, as hosts seen by two workers
      }
      const merged = new DistinctAddresses();
      for (const p of parts) merged.merge(p.state());
      assert.equal(merged.count(), whole.count(), `n ${n}`);
      if (n < EXACT_MAX) assert.equal(merged.count(), n);
    }
  });
});
