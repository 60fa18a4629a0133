/**
 * Counts stay exact on the way into every store, whatever a user does: importing the same capture
 * twice equals importing it once, and a capture split at a packet inside an interval and imported
 * in two runs equals one run of the whole, flow by flow, host by host and interval by interval.
 * Runs against every back end of test/store-backends.ts (QuestDB when configured).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { importFiles } from '../src/capture/import.js';
import type { FlowStore, FlowSummary, HostSummary, TrafficPoint } from '../src/store/types.js';
import { BASE, sampleCapture } from './api-helpers.js';
import { LINKTYPE } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';
import { storeBackends, tempDir } from './store-backends.js';

const INTERVAL_SEC = 60;
const WHOLE = { from: 0, to: Number.MAX_SAFE_INTEGER };
/** The sample's traffic spans BASE .. BASE + 300 s; minutes start at BASE. */
const SPAN = { from: BASE * 1e6, to: (BASE + 300) * 1e6 };

interface Snapshot {
  flows: Omit<FlowSummary, 'tcpState' | 'endReason' | 'duration'>[];
  hosts: Record<string, Omit<HostSummary, 'peers'>>;
  /** Per interval: bytes, packets and flows of the whole store. */
  traffic: TrafficPoint[];
  /** Per interval and host: bytes sent and received. */
  hostIntervals: Record<string, number[]>;
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** What a user sees, without what depends on where a run stopped (end reason, state at the end, distinct peers). */
async function snapshot(store: FlowStore): Promise<Snapshot> {
  await store.flush();
  const flows = (await all(store.exportFlows())).map((f) => {
    const { tcpState: _s, ...rest } = f as FlowSummary & { endReason?: string; duration?: number };
    delete (rest as { endReason?: string }).endReason;
    delete (rest as { duration?: number }).duration;
    return rest;
  });
  const hosts: Snapshot['hosts'] = {};
  const hostIntervals: Snapshot['hostIntervals'] = {};
  for (const h of await all(store.exportHosts())) {
    const { peers: _p, ...rest } = h;
    hosts[h.ip] = rest;
    const series = await store.hostSeries({ ...SPAN, ip: h.ip, step: INTERVAL_SEC * 1e6 });
    hostIntervals[h.ip] = series.flatMap((p) => [p.bytesSent, p.bytesReceived, p.packetsSent, p.packetsReceived, p.flowsInitiated, p.flowsReceived]);
  }
  const traffic = await store.trafficSeries({ ...SPAN, step: INTERVAL_SEC * 1e6 });
  return { flows: flows.sort((a, b) => a.flowId.localeCompare(b.flowId)), hosts, traffic, hostIntervals };
}

async function importInto(store: FlowStore, paths: string[]): Promise<void> {
  const summary = await importFiles(paths, { store, intervalSec: INTERVAL_SEC, node: 'n1' });
  assert.equal(
    summary.files.find((f) => f.error),
    undefined,
    'the files import',
  );
}

for (const backend of storeBackends()) {
  describe(`exactly once: ${backend.name}`, { skip: backend.skip }, () => {
    const dir = tempDir('flowlens-once-');
    const sample = sampleCapture(join(dir, 'whole.pcap'));
    // Split at BASE + 95 s: inside the minute BASE+60..BASE+120, between flows (the TCP flow that
    // starts at +80 s has ended by +90 s; the next starts at +100 s).
    const split = BigInt(BASE + 95) * 1_000_000n;
    const first = writeCapture(
      join(dir, 'first.pcap'),
      pcap(
        { linktype: LINKTYPE.ETHERNET },
        sample.frames.filter((f) => f.ts < split).sort((a, b) => (a.ts < b.ts ? -1 : 1)),
      ),
    );
    const second = writeCapture(
      join(dir, 'second.pcap'),
      pcap(
        { linktype: LINKTYPE.ETHERNET },
        sample.frames.filter((f) => f.ts >= split).sort((a, b) => (a.ts < b.ts ? -1 : 1)),
      ),
    );

    it('importing the same capture twice leaves every count as it was', async () => {
      const store = await backend.open();
      try {
        await importInto(store, [sample.path]);
        const once = await snapshot(store);
        assert.equal(once.flows.length, 16);
        await importInto(store, [sample.path]);
        const twice = await snapshot(store);
        assert.deepEqual(twice, once);
        const page = await store.queryFlows({ ...WHOLE, first: 1 });
        assert.equal(page.totalCount, 16);
      } finally {
        await store.close();
      }
    });

    it('a capture split inside an interval and imported in two runs equals one run of the whole', async () => {
      const whole = await backend.open();
      const halves = await backend.open();
      try {
        await importInto(whole, [sample.path]);
        await importInto(halves, [first]);
        await importInto(halves, [second]);
        const a = await snapshot(whole);
        const b = await snapshot(halves);
        assert.deepEqual(b.traffic, a.traffic, 'interval by interval');
        assert.deepEqual(b.hostIntervals, a.hostIntervals, 'host by host, interval by interval');
        assert.deepEqual(b.hosts, a.hosts, 'host totals');
        assert.deepEqual(
          b.flows.map((f) => ({ ...f, iface: '' })),
          a.flows.map((f) => ({ ...f, iface: '' })),
          'flow by flow',
        );
        // And importing the second half again changes nothing.
        await importInto(halves, [second]);
        assert.deepEqual(await snapshot(halves), b);
      } finally {
        await whole.close();
        await halves.close();
      }
    });
  });
}
