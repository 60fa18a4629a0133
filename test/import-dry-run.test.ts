// An import holds few records at a time: a dry run (`flowlens import --dry-run`, store null) drops
// them batch by batch, as an import with a store writes them, and batches are taken at least every
// PACKETS_PER_CALL packets, however many packets a read holds. Before, the dry run never took its
// batches, so it held every record of the capture until it ended (on the benchmark capture, 209 MB
// of the base run's heap); and batches were taken once per 4 MiB read, ~50,000 minimum-size frames
// (a flood of new flows: ~60 MB of records).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { importFiles } from '../src/capture/import.js';
import { LINKTYPE, SYN_FRAME, synFrame } from './helpers/frames.js';
import { heapMb } from './helpers/heap.js';
import { pcapHeader } from './helpers/pcap-writer.js';

/**
 * A capture of `count` SYNs, each from a new source, `gapUs` apart: unanswered, each flow ends
 * 60 s after its SYN (tcpAttempted), so records come out all along the capture.
 */
function synCapture(path: string, count: number, gapUs: number): void {
  const frame = synFrame();
  const header = Buffer.from(pcapHeader({ linktype: LINKTYPE.ETHERNET }));
  const recordLength = 16 + frame.length;
  const out = Buffer.alloc(header.length + count * recordLength);
  header.copy(out, 0);
  const t0 = 1_700_000_000 * 1e6;
  for (let i = 0; i < count; i++) {
    const at = header.length + i * recordLength;
    const ts = t0 + i * gapUs;
    out.writeUInt32LE(Math.floor(ts / 1e6), at);
    out.writeUInt32LE(ts % 1e6, at + 4);
    out.writeUInt32LE(frame.length, at + 8);
    out.writeUInt32LE(frame.length, at + 12);
    frame.writeUInt32BE((0x0b000000 + i) >>> 0, SYN_FRAME.SRC_IP_AT);
    frame.copy(out, at + 16);
  }
  writeFileSync(path, out);
}

describe('import --dry-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-dry-run-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holds no records: the heap does not grow with the flows a flood of small packets ends', async () => {
    const PACKETS = 120_000;
    const path = join(dir, 'syns.pcap');
    synCapture(path, PACKETS, 10_000); // 1,200 s of packet time; ~6,000 flows live at any time
    // Baseline after a first small import: the modules and tables an import loads once are not records.
    const warmUp = join(dir, 'warm-up.pcap');
    synCapture(warmUp, 1000, 10_000);
    await importFiles([warmUp], { store: null, dpi: false, detect: false, enrich: null });
    const baseline = heapMb();
    let peakGrowth = 0;
    const summary = await importFiles([path], {
      store: null,
      dpi: false,
      detect: false,
      enrich: null,
      // A progress report (and a heap reading) after every readChunk: every PACKETS_PER_CALL packets.
      onProgress: () => {
        peakGrowth = Math.max(peakGrowth, heapMb() - baseline);
      },
    });
    assert.equal(summary.packets, PACKETS);
    assert.equal(summary.flows, PACKETS, 'every SYN from a new source is a new flow');
    // ~114,000 flows end during the capture: held until the end, or ~50,000 at a time, they took 60 MB and more.
    assert.ok(peakGrowth < 20, `heap grew ${peakGrowth.toFixed(1)} MB during a dry run of ${PACKETS} one-packet flows (bound 20 MB)`);
    console.log(`# dry run of ${PACKETS} one-packet flows: heap growth ${peakGrowth.toFixed(1)} MB`);
  });
});
