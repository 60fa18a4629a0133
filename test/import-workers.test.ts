// An import through N decode workers gives what one worker gives: the same flows with the same
// counts, the same host and traffic records, the same anomalies and the same summary, on attacks
// whose packets spread over every worker (a host scan, a distributed SYN flood) and on the corpus
// (every nDPI capture as one import: files from many times, so the clock jumps back and forth).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type ImportOptions, type ImportSummary, importFiles } from '../src/capture/import.js';
import { importSource } from '../src/capture/source.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import type { AnomalyRecord, FlowRecord, HostRecord, RecordBatch, StoreWriter, TrafficRecord } from '../src/store/types.js';
import { ethernet, ipv4, tcp, udp } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const CORPUS = join(import.meta.dirname, '../../shared/corpus/ndpi/pcap');

interface Collected {
  flows: FlowRecord[];
  hosts: HostRecord[];
  traffic: TrafficRecord[];
  anomalies: AnomalyRecord[];
  summary: Omit<ImportSummary, 'seconds' | 'packetsPerSecond'>;
}

/** The packet index's files (name and bytes) written under `dir`. */
function indexFiles(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir).sort()) out[name] = readFileSync(join(dir, name)).toString('base64');
  return out;
}

async function importWith(
  paths: string[],
  workers: number,
  packetsDir?: string,
  workerRingBytes?: number,
  caps: Pick<ImportOptions, 'maxFlows' | 'maxHosts' | 'readChunkBytes'> = {},
): Promise<Collected> {
  const c: Omit<Collected, 'summary'> = { flows: [], hosts: [], traffic: [], anomalies: [] };
  let begun = 0;
  const store: StoreWriter = {
    backend: 'collect',
    init: async () => {},
    close: async () => {},
    health: async () => ({ backend: 'collect', ok: true }),
    beginRun: async () => {
      begun++;
    },
    write: async (b: RecordBatch) => {
      c.flows.push(...b.flows);
      c.hosts.push(...b.hosts);
      c.traffic.push(...b.traffic);
      c.anomalies.push(...(b.anomalies ?? []));
    },
    flush: async () => {},
  };
  const source = await importSource(paths);
  const packetIndex = packetsDir === undefined ? undefined : new PacketIndexWriter(packetsDir, { source, node: 'n1' });
  const {
    seconds: _s,
    packetsPerSecond: _p,
    ...summary
  } = await importFiles(paths, { store, workers, node: 'n1', batchRows: 512, source, packetIndex, workerRingBytes, ...caps });
  assert.equal(begun, 1);
  const byJson = <T>(rows: T[]) => rows.map((r) => JSON.stringify(r)).sort();
  // The latest version of each anomaly; every version carries the packet time it was written at.
  const anomalies = [...new Map(c.anomalies.map((a) => [a.anomalyId, a])).values()];
  return {
    flows: byJson(c.flows).map((s) => JSON.parse(s)),
    hosts: byJson(c.hosts).map((s) => JSON.parse(s)),
    traffic: byJson(c.traffic).map((s) => JSON.parse(s)),
    anomalies: byJson(anomalies).map((s) => JSON.parse(s)),
    summary,
  };
}

function assertSame(one: Collected, many: Collected, label: string): void {
  assert.equal(many.flows.length, one.flows.length, `${label}: flow rows`);
  assert.deepEqual(many.flows, one.flows, `${label}: flows`);
  assert.deepEqual(many.hosts, one.hosts, `${label}: hosts`);
  assert.deepEqual(many.traffic, one.traffic, `${label}: traffic`);
  assert.deepEqual(many.anomalies, one.anomalies, `${label}: anomalies`);
  assert.deepEqual(many.summary, one.summary, `${label}: summary`);
}

const dir = mkdtempSync(join(tmpdir(), 'flowlens-workers-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A SYN from src:sport to dst:dport at `us` µs (Ethernet frame). */
function syn(src: string, sport: number, dst: string, dport: number, us: number) {
  const data = ethernet({ etherType: 0x0800, payload: ipv4({ src, dst, l4: tcp({ srcPort: sport, dstPort: dport, flags: 0x02 }) }) });
  return { ts: BigInt(us) * 1000n, data };
}

describe('import through decode workers', () => {
  it('a host scan and a distributed SYN flood spread over the workers are found as with one', async () => {
    const t0 = 1_700_000_000_000_000;
    const frames = [];
    // 10.0.0.5 probes port 22 on 300 hosts, one every 20 ms: 300 address pairs, over every worker.
    for (let h = 0; h < 300; h++) frames.push(syn('10.0.0.5', 40000 + h, `10.1.${Math.floor(h / 250)}.${(h % 250) + 1}`, 22, t0 + h * 20_000));
    // 20,000 SYNs from as many sources to 10.9.9.9:80 within 2 s, 70 s later (another interval).
    for (let i = 0; i < 20_000; i++)
      frames.push(syn(`172.${16 + (i >> 16)}.${(i >> 8) & 0xff}.${i & 0xff}`, 1024 + (i % 50000), '10.9.9.9', 80, t0 + 70e6 + i * 100));
    const path = writeCapture(join(dir, 'attacks.pcap'), pcap({ linktype: 1 }, frames));

    const one = await importWith([path], 1);
    const kinds = one.anomalies.map((a) => `${a.kind} ${a.source} ${a.targetIp}`).sort();
    assert.ok(
      kinds.some((k) => k.startsWith('HOST_SCAN 10.0.0.5')),
      `one worker: ${kinds.join('; ')}`,
    );
    assert.ok(
      kinds.some((k) => k.startsWith('SYN_FLOOD distributed 10.9.9.9')),
      `one worker: ${kinds.join('; ')}`,
    );
    for (const n of [2, 3]) assertSame(one, await importWith([path], n), `${n} workers`);
    // Rings of 64 KiB: the reader and the workers wait on each other all along (each waiting side
    // must keep taking back what the other has done, or they would wait forever).
    assertSame(one, await importWith([path], 2, join(dir, 'index-small-rings'), 1 << 16), '2 workers, 64 KiB rings');
    // Reads of 16 KiB: the workers' shared read buffers (six) are reused all along, and the reader
    // waits for the workers to read past a buffer's frames before it reads into it again.
    assertSame(one, await importWith([path], 2, undefined, 1 << 16, { readChunkBytes: 16 << 10 }), '2 workers, 16 KiB reads');
  });

  it('records longer than a worker ring (10 MiB) and than a read go through as with one worker', { timeout: 60_000 }, async () => {
    const t0 = 1_700_000_000_000_000;
    // A frame's bytes go to its worker through that worker's 8 MiB packet ring, or by reference
    // into a 4 MiB read buffer; a 10 MiB record (pcap allows 64 MiB) fits neither.
    const huge = (src: string, us: number, size: number) => {
      const data = new Uint8Array(size);
      data.set(
        ethernet({ etherType: 0x0800, payload: ipv4({ src, dst: '10.0.0.9', l4: udp({ srcPort: 5000, dstPort: 6000, payload: new Uint8Array(64) }) }) }),
      );
      return { ts: BigInt(us) * 1000n, data };
    };
    const frames = [syn('10.0.0.1', 1000, '10.0.0.9', 80, t0), huge('10.0.0.2', t0 + 1000, 10 << 20), syn('10.0.0.3', 1001, '10.0.0.9', 80, t0 + 2000)];
    frames.push(huge('10.0.0.4', t0 + 3000, 5 << 20), syn('10.0.0.5', 1002, '10.0.0.9', 80, t0 + 4000));
    const path = writeCapture(join(dir, 'huge-records.pcap'), pcap({ linktype: 1, snaplen: 64 << 20 }, frames));
    const one = await importWith([path], 1);
    assert.equal(one.summary.packets, 5);
    assert.equal(one.flows.length, 5);
    for (const n of [2, 3]) assertSame(one, await importWith([path], n), `${n} workers`);
    // Rings of 64 KiB and reads of 16 KiB: frames of 20-100 KiB are longer than a quarter of a ring
    // and than a read, both ways (to the workers and back to detection).
    const mid = [syn('10.0.0.1', 1000, '10.0.0.9', 80, t0)];
    for (let i = 0; i < 40; i++)
      mid.push(huge(`10.0.1.${i + 1}`, t0 + 1000 * (i + 1), 20_000 + i * 2000), syn('10.0.0.3', 2000 + i, '10.0.0.9', 80, t0 + 1000 * (i + 1) + 500));
    const midPath = writeCapture(join(dir, 'long-records.pcap'), pcap({ linktype: 1, snaplen: 1 << 20 }, mid));
    const oneMid = await importWith([midPath], 1);
    assert.equal(oneMid.summary.packets, 81);
    assertSame(oneMid, await importWith([midPath], 2, undefined, 1 << 16, { readChunkBytes: 16 << 10 }), '2 workers, 64 KiB rings, 16 KiB reads');
  });

  it('the caps are one budget over the workers: nothing evicted under them however the flows spread; past them each flow once', async () => {
    const t0 = 1_700_000_000_000_000;
    /** `skewed` flows between one host pair (all in one worker whatever N is) and `others` from as many hosts, 1 ms apart. */
    const capture = (name: string, skewed: number, others: number) => {
      const frames = [];
      for (let i = 0; i < skewed; i++) frames.push(syn('10.0.0.1', 10000 + i, '10.0.0.2', 80, t0 + i * 1000));
      for (let i = 0; i < others; i++) frames.push(syn(`10.2.${i >> 7}.${(i & 0x7f) + 1}`, 5555, '10.0.0.2', 443, t0 + (skewed + i) * 1000));
      return writeCapture(join(dir, name), pcap({ linktype: 1 }, frames));
    };
    const caps = { maxFlows: 1000 };
    // 990 flows under a cap of 1,000: a cap split per worker (500 with 2) evicted from the busy worker.
    const under = capture('under-cap.pcap', 900, 90);
    const one = await importWith([under], 1, undefined, undefined, caps);
    assert.equal(one.summary.evictedFlows, 0);
    for (const n of [2, 3]) assertSame(one, await importWith([under], n, undefined, undefined, caps), `${n} workers under the cap`);

    // 3,000 flows past a cap of 1,000: the summary counts what was evicted, every flow is written once.
    const over = capture('over-cap.pcap', 2400, 600);
    for (const n of [1, 2, 3]) {
      const r = await importWith([over], n, undefined, undefined, caps);
      const evicted = r.flows.filter((f) => f.endReason === 'evicted').length;
      assert.equal(r.summary.evictedFlows, evicted, `${n} workers: evictedFlows is the flows ended 'evicted'`);
      assert.ok(evicted >= 3000 - 2 * caps.maxFlows, `${n} workers: ${evicted} evicted`);
      assert.equal(r.flows.length, 3000, `${n} workers: each flow written once`);
      assert.equal(
        r.flows.reduce((sum, f) => sum + f.clientPackets + f.serverPackets, 0),
        3000,
        `${n} workers: every packet in a flow`,
      );
    }
  });

  it('every nDPI capture as one import: the same records, summary and packet index with 1 and 2 workers (64 KiB reads)', { timeout: 120_000 }, async (t) => {
    let files: string[];
    try {
      files = readdirSync(CORPUS)
        .filter((f) => /\.pcapn?g?$/.test(f))
        .sort()
        .map((f) => join(CORPUS, f));
    } catch {
      t.skip(`no corpus at ${CORPUS}`);
      return;
    }
    const one = await importWith(files, 1, join(dir, 'index-1'));
    // Through reads of 64 KiB: the workers' shared read buffers are reused many times over each
    // file, and the pcapng blocks longer than a read come in buffers of the reader's own.
    const two = await importWith(files, 2, join(dir, 'index-2'), undefined, { readChunkBytes: 64 << 10 });
    assertSame(one, two, 'nDPI corpus');
    const index = indexFiles(join(dir, 'index-1'));
    assert.ok(Object.keys(index).length >= 2, `packet index files: ${Object.keys(index).join(', ')}`);
    assert.deepEqual(indexFiles(join(dir, 'index-2')), index, 'the packet index, byte for byte');
    assert.ok(one.flows.length > 6000 && one.summary.packets > 60_000 && one.anomalies.length > 0, `${one.flows.length} flows, ${one.summary.packets} packets`);
    console.log(
      `# ${files.length} files, ${one.summary.packets} packets: ${one.flows.length} flow rows, ${one.hosts.length} host rows, ${one.traffic.length} traffic rows, ${one.anomalies.length} anomalies, identical with 2 workers, packet index too`,
    );
  });
});
