// Live capture's merge of its workers' per-interval host and traffic records (src/capture/live.ts):
// every counter column of the definitions is summed, whichever columns they hold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mergeIntervalRecords } from '../src/capture/live.js';
import { col, defineRecord, HOST, sumCounters, TRAFFIC, type AnyRecordDef, type HostRecord, type TrafficRecord } from '../src/records/index.js';

const TS = 1_714_521_600_000_000;

/** A record of `def` whose counter columns hold distinct values (base + 1, base + 2, ...). */
function record<R>(def: AnyRecordDef, fixed: Record<string, unknown>, base: number): R {
  const r: Record<string, unknown> = { ...fixed };
  def.list.forEach((c, i) => {
    if (c.type === 'counter') r[c.field] = base + i;
  });
  return r as R;
}

const counters = (def: AnyRecordDef) => def.list.filter((c) => c.type === 'counter').map((c) => c.field);

describe('live capture: merging the workers’ interval records', () => {
  it('sums every counter column of HOST and TRAFFIC (peers included) and keeps the rest', () => {
    assert.ok(counters(HOST).includes('peers'));
    const traffic = new Map<number, TrafficRecord>();
    const hosts = new Map<number, Map<string, HostRecord>>();
    const t = (base: number) => record<TrafficRecord>(TRAFFIC, { ts: TS, node: 'n1', source: 's' }, base);
    const h = (ip: string, base: number) => record<HostRecord>(HOST, { ts: TS, node: 'n1', ip, source: 's' }, base);
    const first = { traffic: [t(100)], hosts: [h('10.0.0.1', 100), h('10.0.0.2', 500)] };
    // Each worker's records are its own: the merge must not change them.
    const firstCopy = structuredClone(first);
    mergeIntervalRecords(traffic, hosts, first);
    mergeIntervalRecords(traffic, hosts, { traffic: [t(1000)], hosts: [h('10.0.0.1', 1000)] });
    mergeIntervalRecords(traffic, hosts, { traffic: [t(10_000)], hosts: [h('10.0.0.1', 10_000)] });
    assert.deepEqual(first, firstCopy);

    // Counter i of the merged record: (100 + i) + (1000 + i) + (10 000 + i).
    const merged = (def: AnyRecordDef, fixed: Record<string, unknown>) => {
      const r: Record<string, unknown> = { ...fixed };
      def.list.forEach((c, i) => {
        if (c.type === 'counter') r[c.field] = 100 + 1000 + 10_000 + 3 * i;
      });
      return r;
    };
    assert.deepEqual([...traffic.values()], [merged(TRAFFIC, { ts: TS, node: 'n1', source: 's' })]);
    assert.deepEqual(hosts.get(TS)?.get('10.0.0.1'), merged(HOST, { ts: TS, node: 'n1', ip: '10.0.0.1', source: 's' }));
    assert.deepEqual(hosts.get(TS)?.get('10.0.0.2'), h('10.0.0.2', 500), 'a host one worker saw is as it sent it');
  });

  it('keeps intervals apart', () => {
    const traffic = new Map<number, TrafficRecord>();
    const hosts = new Map<number, Map<string, HostRecord>>();
    const t = (ts: number) => record<TrafficRecord>(TRAFFIC, { ts, node: 'n1', source: 's' }, 1);
    mergeIntervalRecords(traffic, hosts, { traffic: [t(TS)], hosts: [] });
    mergeIntervalRecords(traffic, hosts, { traffic: [t(TS + 60_000_000)], hosts: [] });
    assert.deepEqual([...traffic.keys()], [TS, TS + 60_000_000]);
    assert.deepEqual(traffic.get(TS), t(TS));
  });

  it('a counter column added to a definition is summed without naming it', () => {
    const def = defineRecord(
      'widened',
      { ts: col.time({ designated: true }), node: col.str(), bytes: col.counter(), retransmits: col.counter() },
      {
        questdbDedupKeys: ['ts', 'node'],
      },
    );
    const into = { ts: TS, node: 'n1', bytes: 1, retransmits: 2 };
    sumCounters<typeof into>(def)(into, { ts: TS + 1, node: 'n2', bytes: 10, retransmits: 20 });
    assert.deepEqual(into, { ts: TS, node: 'n1', bytes: 11, retransmits: 22 });
  });
});
