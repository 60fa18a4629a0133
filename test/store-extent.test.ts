// dataExtent on every store back end (test/store-backends.ts): where the stored rows lie in time,
// and where the run holding the newest row began; the API's default range is built on it.
//
// A QuestDB server may keep rows of earlier runs, so the rows here are written far in the future
// (2190 plus a random offset) under a fresh source: the newest rows of the store, whatever it holds.
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { FLOW, HOST, TRAFFIC } from '../src/records/index.js';
import type { FlowRecord, FlowStore, HostRecord, TrafficRecord } from '../src/store/types.js';
import { emptyRecord } from './helpers/records.js';
import { storeBackends } from './store-backends.js';

const SECOND = 1_000_000;
const MINUTE = 60 * SECOND;

const flow = (ts: number, source: string, flowId: string) =>
  emptyRecord<FlowRecord>(FLOW, {
    ts,
    flowId,
    source,
    node: 'extent',
    firstSeen: ts,
    lastSeen: ts + SECOND,
    transport: 'udp',
    ipProto: 17,
    clientIp: '10.77.0.1',
    serverIp: '10.77.0.2',
    clientPackets: 1,
    clientBytes: 80,
  });
const traffic = (ts: number, source: string) => emptyRecord<TrafficRecord>(TRAFFIC, { ts, node: 'extent', bytes: 200, packets: 2, flows: 1, source });
const host = (ts: number, source: string) => emptyRecord<HostRecord>(HOST, { ts, node: 'extent', ip: '10.77.0.1', bytesSent: 80, packetsSent: 1, source });

for (const backend of storeBackends()) {
  describe(`dataExtent: ${backend.name}`, { skip: backend.skip }, () => {
    let store: FlowStore;
    before(async () => {
      store = await backend.open();
    });
    after(() => store?.close());

    it('spans every table’s rows; runFirst is where the run holding the newest row began', async () => {
      const fresh = backend.name === 'DuckDB';
      if (fresh) assert.equal(await store.dataExtent(), null, 'an empty store has no extent');
      const base = Date.UTC(2190, 0, 1) * 1000 + randomInt(0, 1_000_000) * MINUTE;
      const older = `extent-old-${randomBytes(4).toString('hex')}`;
      const newer = `extent-new-${randomBytes(4).toString('hex')}`;
      // The older run spans base .. base+30 min; the newer one starts 10 min in and ends last,
      // its latest row a host record (the newest row may be in any table).
      await store.write({
        flows: [flow(base, older, randomBytes(8).toString('hex')), flow(base + 10 * MINUTE + 5, newer, randomBytes(8).toString('hex'))],
        hosts: [host(base + 30 * MINUTE, older), host(base + 45 * MINUTE, newer)],
        traffic: [traffic(base, older), traffic(base + 30 * MINUTE, older), traffic(base + 40 * MINUTE, newer)],
      });
      await store.flush();
      const extent = await store.dataExtent();
      assert.ok(extent);
      assert.equal(extent.last, base + 45 * MINUTE, 'the newest row, a host record');
      assert.equal(extent.runFirst, base + 10 * MINUTE + 5, 'the newer run’s first row, a flow segment');
      if (fresh) assert.equal(extent.first, base, 'the earliest row');
      else assert.ok(extent.first <= base);
    });
  });
}
