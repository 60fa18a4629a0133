// Records as columns between threads (src/records/columns.ts, src/store/batch-transfer.ts): what a
// decode worker posts must come back field for field, whatever the values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { decodeBatch, encodeBatch } from '../src/store/batch-transfer.js';
import { FLOW, HOST, TRAFFIC, decodeRecords, encodeRecords, type AnyRecordDef } from '../src/records/index.js';
import type { FlowRecord, HostRecord, TrafficRecord } from '../src/store/types.js';
import { rng } from './helpers/random.js';

const STRINGS = ['', 'tcp', '10.0.0.1', '2001:db8::1', 'ünïcödé ✓', 'a\u0000b', 'x'.repeat(5000), '"quoted",comma'];

/** A record of `def` with random values of every column's type, strings drawn from STRINGS. */
function randomRecord(def: AnyRecordDef, next: () => number): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const c of def.list) {
    const pick = next();
    switch (c.type) {
      case 'str':
        r[c.field] = STRINGS[Math.floor(pick * STRINGS.length)];
        break;
      case 'bool':
        r[c.field] = pick < 0.5;
        break;
      case 'u8':
        r[c.field] = Math.floor(pick * 256);
        break;
      case 'u16':
        r[c.field] = Math.floor(pick * 65536);
        break;
      case 'time':
        // µs around now, and before 1970 now and then
        r[c.field] = Math.floor((pick - 0.1) * 2e15);
        break;
      default:
        r[c.field] = pick < 0.1 ? Number.MAX_SAFE_INTEGER : Math.floor(pick * 1e12);
    }
  }
  return r;
}

test('records of every definition come back from columns field for field, in table order', () => {
  const next = rng(7);
  for (const def of [FLOW, HOST, TRAFFIC]) {
    for (const n of [0, 1, 3, 1000]) {
      const records = Array.from({ length: n }, () => randomRecord(def, next));
      const back = decodeRecords<Record<string, unknown>>(def, encodeRecords(def, records));
      assert.deepEqual(back, records, `${def.table}, ${n} rows`);
      for (const r of back)
        assert.deepEqual(
          Object.keys(r),
          def.list.map((c) => c.field),
        );
    }
  }
});

test('a column of distinct strings (flow ids) comes back too, past the rows that tell it apart', () => {
  const next = rng(3);
  const records = Array.from({ length: 3000 }, (_, i) => ({
    ...randomRecord(FLOW, next),
    flowId: i.toString(16).padStart(16, '0'),
    communityId: i % 7 === 0 ? '' : `1:${i}`,
  }));
  const encoded = encodeRecords(FLOW, records);
  assert.deepEqual(decodeRecords(FLOW, encoded), records);
  assert.ok(encoded.strings.length >= 3000, `${encoded.strings.length} strings`);
});

test('a batch crosses a MessagePort with its column buffers moved, not copied', () => {
  const next = rng(11);
  const batch = {
    flows: Array.from({ length: 500 }, () => randomRecord(FLOW, next)) as unknown as FlowRecord[],
    hosts: Array.from({ length: 200 }, () => randomRecord(HOST, next)) as unknown as HostRecord[],
    traffic: Array.from({ length: 3 }, () => randomRecord(TRAFFIC, next)) as unknown as TrafficRecord[],
  };
  const { encoded, transfer } = encodeBatch(batch);
  // Strings that repeat are sent once.
  assert.ok(encoded.flows.strings.length <= STRINGS.length, `${encoded.flows.strings.length} distinct strings`);
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(encoded, transfer);
  assert.equal(encoded.flows.numbers.byteLength, 0, 'the sender no longer holds the numbers');
  const received = receiveMessageOnPort(port2)?.message;
  assert.deepEqual(decodeBatch(received), batch);
  port1.close();
});
