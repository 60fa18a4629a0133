/**
 * The scan detectors' tables (src/detect/lru-slots.ts, first-contacts.ts), checked against plain
 * Maps and Sets under random operations, and a full port-scan table at the detector: ordinary
 * pairs are evicted stalest first, a pair in an anomaly never is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBus } from '../src/bus/memory.js';
import type { AnomalyEvent } from '../src/bus/types.js';
import { FirstContacts } from '../src/detect/first-contacts.js';
import { LruSlots } from '../src/detect/lru-slots.js';
import { Aggregator } from '../src/flow/aggregator.js';
import { TCP_FLAGS, ipv4, tcp } from './helpers/frames.js';
import { rng } from './helpers/random.js';

test('LruSlots: 200,000 random inserts, lookups, touches and removals agree with a Map in order of use', () => {
  const random = rng(0x5eed);
  let grownTo = 0;
  const table = new LruSlots(16, (n) => (grownTo = n));
  // The model: key -> slot, in order of use (a Map keeps insertion order; touch = delete + set).
  const model = new Map<number, number>();
  const key = () => Math.floor(random() * 5000) * 2 ** 30 + 7; // 53-bit keys, as key3 makes them
  for (let op = 0; op < 200_000; op++) {
    const k = key();
    const slot = table.get(k);
    assert.equal(slot, model.get(k) ?? -1, `op ${op}: get`);
    const r = random();
    if (slot < 0) {
      if (r < 0.7) model.set(k, table.insert(k));
    } else if (r < 0.4) {
      table.touch(slot);
      model.delete(k);
      model.set(k, slot);
    } else if (r < 0.6) {
      table.remove(slot);
      model.delete(k);
    }
    assert.equal(table.size, model.size);
  }
  assert.ok(grownTo >= 2048, `grew past its initial 16 slots (to ${grownTo})`);
  const live = new Set(model.values());
  assert.equal(live.size, model.size, 'no slot is handed out twice');
  // sweep walks in order of use: drop the stalest 100, keeping every third.
  const order = [...model.values()];
  const stale = new Set(order.slice(0, 100));
  const dropped: number[] = [];
  table.sweep(
    (s) => stale.has(s),
    (s) => order.indexOf(s) % 3 === 0,
    (s) => {
      dropped.push(s);
      table.remove(s);
    },
  );
  assert.deepEqual(
    dropped,
    order.slice(0, 100).filter((_, i) => i % 3 !== 0),
  );
  table.clear();
  assert.equal(table.size, 0);
  assert.equal(table.get(order[0]), -1);
});

test('LruSlots.makeRoom: evicts the stalest slot not kept, or refuses when the first 64 are all kept', () => {
  const table = new LruSlots(4, () => undefined);
  const slots = Array.from({ length: 100 }, (_, i) => table.insert(1000 + i));
  const kept = new Set(slots.slice(0, 70));
  const evicted: number[] = [];
  const drop = (s: number) => {
    evicted.push(s);
    table.remove(s);
  };
  assert.equal(
    table.makeRoom(1000, () => true, drop),
    true,
    'room under max',
  );
  assert.equal(
    table.makeRoom(100, (s) => kept.has(s), drop),
    false,
    'the first 64 are all kept',
  );
  kept.delete(slots[10]);
  assert.equal(
    table.makeRoom(100, (s) => kept.has(s), drop),
    true,
  );
  assert.deepEqual(evicted, [slots[10]]);
});

test('FirstContacts: agrees with a capped Set per slot', () => {
  const random = rng(42);
  const contacts = new FirstContacts(50);
  contacts.grow(8);
  const model = Array.from({ length: 8 }, () => new Set<number>());
  for (let op = 0; op < 50_000; op++) {
    const s = Math.floor(random() * 8);
    if (random() < 0.001) {
      contacts.clear(s);
      model[s].clear();
      continue;
    }
    const x = Math.floor(random() * (s === 0 ? 3 : 80));
    const isNew = !model[s].has(x);
    if (isNew && model[s].size < 50) model[s].add(x);
    assert.equal(contacts.add(s, x), isNew, `op ${op}`);
    assert.equal(contacts.size(s), model[s].size);
  }
});

test('a full port-scan table evicts the stalest ordinary pair and never the one in an anomaly', () => {
  const bus = new MemoryBus();
  const events: AnomalyEvent[] = [];
  bus.subscribe('anomaly', (e) => events.push(e));
  const agg = new Aggregator({ bus, detect: { portScan: { maxTracked: 8 }, hostScan: { maxTracked: 8 } }, node: 'n1' });
  const T0 = 1_700_000_000_000_000;
  let t = T0;
  const send = (frame: Uint8Array) => {
    const buf = Buffer.from(frame);
    agg.packet(228, (t += 1000), buf, 0, buf.length, buf.length);
  };
  const probe = (src: string, dst: string, port: number, answer: number) => {
    send(ipv4({ src, dst, l4: tcp({ srcPort: 40000 + port, dstPort: port, flags: TCP_FLAGS.SYN }) }));
    send(ipv4({ src: dst, dst: src, l4: tcp({ srcPort: port, dstPort: 40000 + port, flags: answer }) }));
  };
  const RST = TCP_FLAGS.RST | TCP_FLAGS.ACK;
  // The scanner's 9 failures make an anomaly; then 50 ordinary clients churn through the table.
  for (let i = 0; i < 9; i++) probe('10.9.9.9', '10.0.0.2', 100 + i, RST);
  assert.equal(events.filter((e) => e.type === 'start').length, 1);
  for (let c = 0; c < 50; c++) probe(`10.1.0.${c + 1}`, '10.0.0.80', 80, TCP_FLAGS.SYN | TCP_FLAGS.ACK);
  // The scan goes on: its pair, kept, still counts the new closed ports.
  for (let i = 0; i < 5; i++) probe('10.9.9.9', '10.0.0.2', 200 + i, RST);
  agg.finish();
  const scan = events.filter((e) => e.anomaly.kind === 'PORT_SCAN');
  assert.equal(new Set(scan.map((e) => e.anomaly.anomalyId)).size, 1);
  const last = JSON.parse(scan.at(-1)!.anomaly.evidence) as { distinctPorts: number; failures: number };
  assert.equal(last.distinctPorts, 14);
  assert.equal(last.failures, 14);
  // An ordinary pair evicted early comes back as a new pair: one fresh attempt, no anomaly.
  assert.equal(events.filter((e) => e.type === 'start').length, 1);
});
