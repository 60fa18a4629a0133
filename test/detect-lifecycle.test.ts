/**
 * Anomaly lifecycle and detector settings on synthetic packets fed to the Aggregator on their own
 * clock: a SYN flood starts, is updated while it lasts (rate-limited), ends after the quiet period,
 * with the same deterministic id throughout and on a second run; a slow scan spread over minutes is
 * caught by the random walk; thresholds from a config override the defaults; bad configs are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBus } from '../src/bus/memory.js';
import type { AnomalyEvent } from '../src/bus/types.js';
import { resolveDetectConfig, type DetectConfigInput } from '../src/detect/index.js';
import { Aggregator } from '../src/flow/aggregator.js';
import type { AnomalyRecord } from '../src/store/types.js';
import { TCP_FLAGS, ipv4, tcp, udp } from './helpers/frames.js';

const LINKTYPE_IPV4 = 228;
const T0 = 1_700_000_000_000_000; // µs

interface Run {
  events: AnomalyEvent[];
  records: AnomalyRecord[];
}

function run(feed: (send: (ts: number, frame: Uint8Array) => void) => void, detect: DetectConfigInput | false = {}): Run {
  const bus = new MemoryBus();
  const events: AnomalyEvent[] = [];
  bus.subscribe('anomaly', (e) => events.push(e));
  const agg = new Aggregator({ bus, detect, node: 'n1' });
  const records: AnomalyRecord[] = [];
  feed((ts, frame) => {
    const buf = Buffer.from(frame);
    agg.packet(LINKTYPE_IPV4, ts, buf, 0, buf.length, buf.length);
    for (const a of agg.takeBatch().anomalies ?? []) records.push(a);
  });
  agg.finish();
  for (const a of agg.takeBatch().anomalies ?? []) records.push(a);
  return { events, records };
}

/** 400 SYN/s from 10.0.0.1 to 10.0.0.2:80 for `seconds`, then a DNS query a second for 40 s (the clock goes on). */
function synFlood(seconds: number) {
  return (send: (ts: number, frame: Uint8Array) => void) => {
    let t = T0;
    for (let i = 0; i < seconds * 400; i++) {
      t = T0 + i * 2500;
      send(t, ipv4({ src: '10.0.0.1', dst: '10.0.0.2', l4: tcp({ srcPort: 1024 + (i % 60000), dstPort: 80, flags: TCP_FLAGS.SYN }) }));
    }
    for (let s = 1; s <= 40; s++) {
      send(t + s * 1e6, ipv4({ src: '10.0.0.3', dst: '10.0.0.4', l4: udp({ srcPort: 40000 + s, dstPort: 53 }) }));
    }
  };
}

test('a SYN flood starts, is updated while it lasts, and ends after the quiet period', () => {
  const { events, records } = run(synFlood(12));
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'start');
  assert.equal(types.at(-1), 'end');
  const updates = types.filter((t) => t === 'update').length;
  // 12 s of flood, updates at most every 5 s of packet time and only after a change: at 5 s and
  // 10 s, and at 15 s for the flood's last two seconds.
  assert.equal(updates, 3, `events: ${types.join(',')}`);
  assert.equal(new Set(events.map((e) => e.anomaly.anomalyId)).size, 1, 'one anomaly, one id');
  const start = events[0].anomaly;
  const end = events.at(-1)!.anomaly;
  assert.equal(start.kind, 'SYN_FLOOD');
  assert.equal(start.source, '10.0.0.1');
  assert.equal(start.targetIp, '10.0.0.2');
  assert.equal(start.targetPort, 80);
  // A target is tracked once it draws an eighth of the threshold in a second (the admission sketch):
  // 25 SYNs, 60 ms at this rate.
  assert.ok(start.startedAt >= T0 && start.startedAt <= T0 + 125_000, `startedAt ${start.startedAt - T0} µs after the first SYN`);
  assert.equal(start.state, 'active');
  assert.equal(end.state, 'ended');
  // Ended by the quiet period (30 s after the last flood packet), not by the end of input.
  const floodEnd = T0 + (12 * 400 - 1) * 2500;
  assert.equal(end.lastSeen, floodEnd);
  assert.ok(end.packets >= 12 * 400 - 50 && end.packets <= 12 * 400, `packets ${end.packets}`);
  assert.equal(end.bytes, end.packets * 40);
  const evidence = JSON.parse(end.evidence) as Record<string, number>;
  assert.ok(evidence.synRate >= 390, JSON.stringify(evidence));
  assert.equal(evidence.incompleteShare, 1);
  // The store gets the latest version of each anomaly in a batch; the last one written is the end.
  assert.equal(records.at(-1)!.state, 'ended');
  // Deterministic: the same packets give the same id.
  assert.equal(run(synFlood(12)).events[0].anomaly.anomalyId, start.anomalyId);
});

test('thresholds come from the config; detection can be turned off', () => {
  assert.equal(run(synFlood(3), { synFlood: { minRate: 1000 } }).events.length, 0);
  assert.equal(run(synFlood(3), false).events.length, 0);
  assert.equal(run(synFlood(3), { synFlood: { minRate: 100 } }).events[0]?.anomaly.kind, 'SYN_FLOOD');
  assert.throws(() => resolveDetectConfig({ synFlood: { minRat: 3 } } as unknown as DetectConfigInput), /unknown setting 'synFlood.minRat'/);
  assert.throws(() => resolveDetectConfig({ nope: {} } as unknown as DetectConfigInput), /unknown section/);
  assert.throws(() => new Aggregator({ detect: { portScan: { theta1: 0.9 } } }), /θ1 < θ0/);
});

test('a slow scan, one closed port every 20 s, is caught by the random walk after 9 failures', () => {
  const { events } = run((send) => {
    for (let i = 0; i < 15; i++) {
      const t = T0 + i * 20e6;
      send(t, ipv4({ src: '10.0.0.9', dst: '10.0.0.2', l4: tcp({ srcPort: 50000, dstPort: 100 + i, flags: TCP_FLAGS.SYN }) }));
      send(t + 300, ipv4({ src: '10.0.0.2', dst: '10.0.0.9', l4: tcp({ srcPort: 100 + i, dstPort: 50000, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK }) }));
    }
  });
  const scans = events.filter((e) => e.type === 'start');
  assert.equal(scans.length, 1, JSON.stringify(events.map((e) => e.anomaly.summary)));
  const a = scans[0].anomaly;
  assert.equal(a.kind, 'PORT_SCAN');
  assert.equal(a.source, '10.0.0.9');
  assert.equal(a.targetIp, '10.0.0.2');
  assert.equal(a.startedAt, T0);
  // θ0 = 0.8, θ1 = 0.2, α = 1e-5, β = 0.99: ln(99000)/ln 4 = 8.3, so the 9th failure flags.
  assert.equal(a.lastSeen, T0 + 8 * 20e6 + 300);
});

test('answered connections to many ports do not make a scan', () => {
  const { events } = run((send) => {
    for (let i = 0; i < 40; i++) {
      const t = T0 + i * 1e5;
      send(t, ipv4({ src: '10.0.0.9', dst: '10.0.0.2', l4: tcp({ srcPort: 40000 + i, dstPort: 1000 + i, flags: TCP_FLAGS.SYN }) }));
      send(t + 300, ipv4({ src: '10.0.0.2', dst: '10.0.0.9', l4: tcp({ srcPort: 1000 + i, dstPort: 40000 + i, flags: TCP_FLAGS.SYN | TCP_FLAGS.ACK }) }));
      send(t + 600, ipv4({ src: '10.0.0.9', dst: '10.0.0.2', l4: tcp({ srcPort: 40000 + i, dstPort: 1000 + i, flags: TCP_FLAGS.ACK }) }));
    }
  });
  assert.deepEqual(
    events.map((e) => e.anomaly.summary),
    [],
  );
});

test('a scan walk idle for longer than idleSec is forgotten; one probed meanwhile is kept', () => {
  const probe = (send: (ts: number, frame: Uint8Array) => void, t: number, src: string, port: number) => {
    send(t, ipv4({ src, dst: '10.0.0.2', l4: tcp({ srcPort: 50000, dstPort: port, flags: TCP_FLAGS.SYN }) }));
    send(t + 300, ipv4({ src: '10.0.0.2', dst: src, l4: tcp({ srcPort: port, dstPort: 50000, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK }) }));
  };
  const { events } = run(
    (send) => {
      // Two sources each fail 5 times (the walk flags at 9), .8 then .9.
      for (let i = 0; i < 5; i++) probe(send, T0 + i * 1e6, '10.0.0.8', 100 + i);
      for (let i = 0; i < 5; i++) probe(send, T0 + 5e6 + i * 1e6, '10.0.0.9', 100 + i);
      // .8 fails once more at +50 s: its walk is now the most recent, .9's the oldest.
      probe(send, T0 + 50e6, '10.0.0.8', 200);
      // Other traffic moves the clock to +95 s (idle walks are swept every 30 s of packet time):
      // .9 has been idle for 91 s > 60 s, .8 for 45 s.
      send(T0 + 95e6, ipv4({ src: '10.0.0.3', dst: '10.0.0.4', l4: udp({ srcPort: 40000, dstPort: 53 }) }));
      // Both fail 5 more times: .8 reaches 11 failures, .9 starts over at 5.
      for (let i = 0; i < 5; i++) probe(send, T0 + 96e6 + i * 1e6, '10.0.0.9', 300 + i);
      for (let i = 0; i < 5; i++) probe(send, T0 + 101e6 + i * 1e6, '10.0.0.8', 300 + i);
    },
    { portScan: { idleSec: 60 } },
  );
  const scans = events.filter((e) => e.type === 'start').map((e) => `${e.anomaly.kind} ${e.anomaly.source}`);
  assert.deepEqual(scans, ['PORT_SCAN 10.0.0.8']);
});
