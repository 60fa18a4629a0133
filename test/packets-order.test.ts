// The order of the packets `flowlens pcap` and /pcap write (src/packets/select.ts). The live packet
// store writes packets in its socket's order, which across a flow's two directions can be a few µs
// off time order: a CI run found a 64 KB data frame stamped 360 µs stored before the other side's
// ACK stamped 358 µs. Such a flow comes out in time order. An imported capture's flow keeps the
// file's own order (what `tshark -Y ... -w` writes), and several flows are merged by time with each
// flow's own order kept.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CaptureFileReader, type PcapngSection } from '../src/capture/pcap-file.js';
import { extractPackets } from '../src/packets/extract.js';
import { flowIdHex } from '../src/packets/format.js';
import { PacketIndexReader } from '../src/packets/index-reader.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import { packetsOfFlows } from '../src/packets/select.js';
import { payload } from './helpers/frames.js';
import { pcapng, writeCapture } from './helpers/pcap-writer.js';

const work = mkdtempSync(join(tmpdir(), 'flowlens-order-'));
after(() => rmSync(work, { recursive: true, force: true }));

const BASE_US = 1_700_000_000_000_000;
const FLOW_X = { hi: 0x0a0b0c0d, lo: 0x01020304 };
const FLOW_Y = { hi: 0x0a0b0c0d, lo: 0x05060708 };

/** A packet of the capture: its flow, its time (µs after BASE_US) and a length that tells it apart. */
interface Sent {
  flow: { hi: number; lo: number };
  us: number;
  length: number;
}

/**
 * Writes `packets` (in the order given) as a pcapng of one Ethernet interface and indexes them,
 * as the live packet store does (`live`) or as an import of the file does.
 */
async function indexed(name: string, packets: Sent[], live: boolean): Promise<PacketIndexReader> {
  const options = { interfaces: [{ linktype: 1 }] };
  const frames = packets.map((p) => ({ ts: BigInt(BASE_US + p.us) * 1000n, data: payload(p.length) }));
  const path = writeCapture(join(work, `${name}.pcapng`), pcapng({ options, frames }));
  // Where the blocks are: the section header and the interface block, then one packet block each
  // (32 bytes and the data padded to 4).
  const head = pcapng({ options, frames: [] }).length;
  const shb = 28;
  const sections: PcapngSection[] = [{ offset: 0, length: shb, interfaces: [{ offset: shb, length: head - shb }] }];
  const dir = join(work, `${name}-index`);
  const index = new PacketIndexWriter(dir, { source: `i${name}` });
  await index.begin();
  if (live) index.beginLiveFile(path, sections);
  else await index.beginFile(path, 'pcapng', sections);
  let offset = head;
  for (const p of packets) {
    const block = 32 + ((p.length + 3) & ~3);
    index.add(p.flow === FLOW_X ? 0 : 1, p.flow.hi, p.flow.lo, BASE_US + p.us, offset, block);
    offset += block;
  }
  index.endFile();
  await index.flush();
  return new PacketIndexReader(dir);
}

/** The packets of an extraction, read back: their times (µs after BASE_US) and lengths. */
async function extracted(reader: PacketIndexReader, flows: { hi: number; lo: number }[]): Promise<{ us: number; length: number }[]> {
  const { refs, missing } = await packetsOfFlows(
    reader,
    flows.map((f) => flowIdHex(f.hi, f.lo)),
  );
  assert.deepEqual(missing, []);
  const chunks: Buffer[] = [];
  await extractPackets(refs, (c) => {
    chunks.push(c);
  });
  const out = join(work, `out-${Math.random().toString(36).slice(2)}.pcapng`);
  writeCapture(out, Buffer.concat(chunks));
  const file = new CaptureFileReader(out);
  const got: { us: number; length: number }[] = [];
  await file.open();
  try {
    while (await file.readChunk((_l, ts, _d, _o, caplen) => got.push({ us: ts - BASE_US, length: caplen })));
  } finally {
    await file.close();
  }
  return got;
}

// A data frame and the other side's ACK, stored in the order the socket had them.
const ACK_LAST: Sent[] = [
  { flow: FLOW_X, us: 100, length: 74 },
  { flow: FLOW_X, us: 360, length: 1514 },
  { flow: FLOW_X, us: 358, length: 66 },
  { flow: FLOW_X, us: 900, length: 60 },
];

test("a live store's flow comes out in time order, whatever order its socket had", async () => {
  const reader = await indexed('live', ACK_LAST, true);
  assert.deepEqual(await extracted(reader, [FLOW_X]), [
    { us: 100, length: 74 },
    { us: 358, length: 66 },
    { us: 360, length: 1514 },
    { us: 900, length: 60 },
  ]);
});

test("an imported capture's flow keeps the file's order, as tshark -Y -w writes it", async () => {
  const reader = await indexed('import', ACK_LAST, false);
  assert.deepEqual(
    await extracted(reader, [FLOW_X]),
    ACK_LAST.map(({ us, length }) => ({ us, length })),
  );
});

test('several flows are merged by time, each keeping its own order', async () => {
  const packets: Sent[] = [...ACK_LAST.slice(0, 3), { flow: FLOW_Y, us: 200, length: 80 }, { flow: FLOW_Y, us: 359, length: 81 }, ACK_LAST[3]];
  const imported = await indexed('merge-import', packets, false);
  // Flow X's 358 µs packet stays after its 360 µs one; Y's 359 µs packet goes before both.
  assert.deepEqual(await extracted(imported, [FLOW_X, FLOW_Y]), [
    { us: 100, length: 74 },
    { us: 200, length: 80 },
    { us: 359, length: 81 },
    { us: 360, length: 1514 },
    { us: 358, length: 66 },
    { us: 900, length: 60 },
  ]);
  const live = await indexed('merge-live', packets, true);
  assert.deepEqual(await extracted(live, [FLOW_Y, FLOW_X]), [
    { us: 100, length: 74 },
    { us: 200, length: 80 },
    { us: 358, length: 66 },
    { us: 359, length: 81 },
    { us: 360, length: 1514 },
    { us: 900, length: 60 },
  ]);
});
