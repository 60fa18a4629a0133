// Index compaction (src/packets/compact.ts): a corpus capture indexed in many small runs gives every
// flow the same packets (time, file, offset, length, in the same order) before and after its runs
// are merged, tiered and whole; a reader looking flows up while the runs are merged never misses a
// packet nor sees one twice; what a crash leaves (a merged run beside the runs it replaces, a merged
// .bin without its .json) is hidden from readers and removed by the next compaction.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compactIndex, FAN_IN } from '../src/packets/compact.js';
import { DIR_ENTRY, flowIdHex, type RunMeta } from '../src/packets/format.js';
import { PacketIndexReader } from '../src/packets/index-reader.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import { parseCapture } from './bench/packets.js';

const NDPI = join(import.meta.dirname, '..', '..', 'shared', 'corpus', 'ndpi', 'pcap');
const skip = existsSync(NDPI) ? false : `corpus absent (${NDPI})`;
const work = mkdtempSync(join(tmpdir(), 'flowlens-compact-'));
const dir = join(work, 'packets');
const KXUN = join(work, '1kxun.pcap');
/** Packets per run: the capture becomes dozens of runs. */
const RUN_PACKETS = 25;

let ids: string[] = [];
let expected = new Map<string, string>();

const runNames = () =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .sort();

/** Every flow id of the complete runs, from their directories. */
function flowIds(): string[] {
  const out = new Set<string>();
  for (const name of runNames()) {
    const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as RunMeta;
    const bin = readFileSync(join(dir, `${name}.bin`));
    for (let i = 0; i < meta.flows; i++) out.add(flowIdHex(bin.readUInt32LE(i * DIR_ENTRY), bin.readUInt32LE(i * DIR_ENTRY + 4)));
  }
  return [...out].sort();
}

/** A flow's packets as a fresh reader finds them, one line each. */
async function packetsOf(reader: PacketIndexReader, id: string): Promise<string> {
  return (await reader.lookup(id)).map((r) => `${r.ts} ${r.file.path} ${r.offset} ${r.length}`).join('\n');
}

async function allFlows(reader = new PacketIndexReader(dir)): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of ids) out.set(id, await packetsOf(reader, id));
  return out;
}

before(async () => {
  if (skip) return;
  copyFileSync(join(NDPI, '1kxun.pcap'), KXUN);
  // Indexed as an import indexes it, a run every RUN_PACKETS packets (flows as the bench tells them apart).
  const p = parseCapture(KXUN);
  const writer = new PacketIndexWriter(dir, { source: 'kxun', maxRunPackets: RUN_PACKETS });
  await writer.begin();
  await writer.beginFile(KXUN, 'pcap', []);
  for (let i = 0; i < p.offsets.length; i++) {
    writer.add(p.slot[i], p.idHi[i], p.idLo[i], p.ts[i], p.offsets[i], 16 + p.data.readUInt32LE(p.offsets[i] + 8));
    if (writer.full) await writer.flush();
  }
  await writer.flush();
  ids = flowIds();
  expected = await allFlows();
});

after(() => rmSync(work, { recursive: true, force: true }));

test('compaction: the same packets for every flow, tiered then whole, with a reader looking up meanwhile', { skip }, async () => {
  const before = runNames().length;
  assert.ok(before >= 3 * FAN_IN, `many runs to merge (${before})`);
  assert.ok(ids.length > 100, `flows (${ids.length})`);
  assert.ok(
    [...expected.values()].every((p) => p.length > 0),
    'every flow has packets',
  );

  // A reader that keeps looking flows up while the runs are merged under it.
  const reader = new PacketIndexReader(dir);
  let compacting = true;
  let lookups = 0;
  const lookingUp = (async () => {
    while (compacting) {
      for (const id of ids.slice(0, 40)) {
        assert.equal(await packetsOf(reader, id), expected.get(id), `flow ${id} while compacting`);
        lookups++;
      }
    }
  })();
  const merged = await compactIndex(dir);
  compacting = false;
  await lookingUp;
  assert.ok(merged >= 2, `merged runs written (${merged})`);
  assert.ok(lookups > 0);
  const tiered = runNames();
  assert.ok(tiered.length < FAN_IN * 2, `runs after tiered compaction: ${tiered.length} (from ${before})`);
  assert.deepEqual(await allFlows(), expected);

  assert.equal(await compactIndex(dir, { full: true }), 1);
  assert.equal(runNames().length, 1);
  assert.deepEqual(await allFlows(), expected);
  assert.deepEqual(flowIds(), ids);
});

test('compaction: a crash leaves runs a merged run replaces, or a merged .bin alone: hidden, then removed', { skip }, async () => {
  const [merged] = runNames();
  const meta = JSON.parse(readFileSync(join(dir, `${merged}.json`), 'utf8')) as RunMeta;
  // As if the merge had written its run and crashed before deleting its sources: one of them back.
  const stale = meta.replaces![0];
  writeFileSync(join(dir, `${stale}.json`), JSON.stringify({ ...meta, replaces: undefined, level: 0 }));
  copyFileSync(join(dir, `${merged}.bin`), join(dir, `${stale}.bin`));
  // As if a merge had crashed before its .json.
  writeFileSync(join(dir, 'orphan+c1.bin'), Buffer.alloc(64));
  assert.deepEqual(await allFlows(), expected, 'a replaced run still there is hidden: no packet twice');
  await compactIndex(dir);
  assert.ok(!existsSync(join(dir, `${stale}.json`)) && !existsSync(join(dir, `${stale}.bin`)), 'the replaced run removed');
  assert.ok(!existsSync(join(dir, 'orphan+c1.bin')), 'the orphan .bin removed');
  assert.deepEqual(await allFlows(), expected);
});
