// splitBatch (src/store/batch-transfer.ts) cuts a decode worker's record batch into the pieces it
// posts to the main thread: every row once, in order, at most maxRows a piece, the anomalies with
// the last piece, and a batch within the bound left whole.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitBatch } from '../src/store/batch-transfer.js';
import type { AnomalyRecord, FlowRecord, HostRecord, RecordBatch, TrafficRecord } from '../src/store/types.js';

function batch(flows: number, hosts: number, traffic: number, anomalies?: number): RecordBatch {
  const b: RecordBatch = {
    flows: Array.from({ length: flows }, (_, i) => ({ flowId: `f${i}` }) as unknown as FlowRecord),
    hosts: Array.from({ length: hosts }, (_, i) => ({ ip: `h${i}` }) as unknown as HostRecord),
    traffic: Array.from({ length: traffic }, (_, i) => ({ ts: i }) as unknown as TrafficRecord),
  };
  if (anomalies !== undefined) b.anomalies = Array.from({ length: anomalies }, (_, i) => ({ anomalyId: `a${i}` }) as unknown as AnomalyRecord);
  return b;
}

test('pieces hold every row once, in order, at most maxRows each, the anomalies with the last', () => {
  const cases: [number, number, number, number | undefined, number][] = [
    [10, 0, 0, undefined, 3],
    [7, 5, 2, 4, 7],
    [0, 0, 9, 1, 2],
    [5000, 3000, 1, 2, 4096],
    [1, 1, 1, undefined, 1],
    [6, 6, 6, 0, 5],
  ];
  for (const [f, h, t, a, max] of cases) {
    const whole = batch(f, h, t, a);
    const pieces = splitBatch(whole, max);
    const rows = (b: RecordBatch) => b.flows.length + b.hosts.length + b.traffic.length;
    const label = `${f} flows, ${h} hosts, ${t} traffic, by ${max}`;
    assert.equal(pieces.length, Math.max(1, Math.ceil((f + h + t) / max)), label);
    for (const p of pieces) assert.ok(rows(p) <= max && rows(p) > 0, `${label}: a piece of ${rows(p)} rows`);
    assert.deepEqual(
      pieces.flatMap((p) => p.flows),
      whole.flows,
      label,
    );
    assert.deepEqual(
      pieces.flatMap((p) => p.hosts),
      whole.hosts,
      label,
    );
    assert.deepEqual(
      pieces.flatMap((p) => p.traffic),
      whole.traffic,
      label,
    );
    assert.deepEqual(pieces.at(-1)?.anomalies, whole.anomalies, label);
    for (const p of pieces.slice(0, -1)) assert.equal(p.anomalies, undefined, `${label}: anomalies before the last piece`);
  }
});

test('a batch within the bound is posted whole, the same object', () => {
  const whole = batch(3, 2, 1, 1);
  const pieces = splitBatch(whole, 6);
  assert.equal(pieces.length, 1);
  assert.equal(pieces[0], whole);
  assert.equal(splitBatch(batch(0, 0, 0), 5).length, 1, 'an empty batch is one (empty) piece: it still carries the interval closing');
});
