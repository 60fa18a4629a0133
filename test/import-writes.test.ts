// An import goes on decoding while its writes are on their way (src/capture/import-writes.ts) and
// while its packet index's last full run is written (src/packets/index-writer.ts): the rows in
// DuckDB and the packets each flow's index lists are the same as when every write is waited for;
// several writes really are on their way at once, never more rows than the bound allows; a write
// that fails fails the import with the store's own error.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { importFiles } from '../src/capture/import.js';
import { StoreWrites } from '../src/capture/import-writes.js';
import { flowIdHex } from '../src/packets/format.js';
import { PacketIndexReader } from '../src/packets/index-reader.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import { DuckDbStore } from '../src/store/duckdb.js';
import type { RecordBatch, StoreWriter } from '../src/store/types.js';
import { parseCapture } from './bench/packets.js';

const NDPI = join(import.meta.dirname, '..', '..', 'shared', 'corpus', 'ndpi', 'pcap');
const CAPTURES = ['1kxun.pcap', 'KakaoTalk_talk.pcap', 'youtube_quic.pcap'].map((n) => join(NDPI, n));
const skip = CAPTURES.every(existsSync) ? false : `corpus absent (${NDPI})`;
const work = mkdtempSync(join(tmpdir(), 'flowlens-writes-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A DuckDB store whose writes each take `delayMs` longer, counting the rows on their way at once. */
class SlowStore extends DuckDbStore {
  rowsOnTheirWay = 0;
  mostRowsOnTheirWay = 0;
  mostWritesOnTheirWay = 0;
  largestBatch = 0;
  private writesOnTheirWay = 0;
  constructor(
    path: string,
    private readonly delayMs: number,
  ) {
    super({ path });
  }
  override async write(batch: RecordBatch): Promise<void> {
    const rows = batch.flows.length + batch.hosts.length + batch.traffic.length;
    this.rowsOnTheirWay += rows;
    this.largestBatch = Math.max(this.largestBatch, rows);
    this.writesOnTheirWay++;
    this.mostRowsOnTheirWay = Math.max(this.mostRowsOnTheirWay, this.rowsOnTheirWay);
    this.mostWritesOnTheirWay = Math.max(this.mostWritesOnTheirWay, this.writesOnTheirWay);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      await super.write(batch);
    } finally {
      this.rowsOnTheirWay -= rows;
      this.writesOnTheirWay--;
    }
  }
}

/** A store that only writes, as `write` does. */
function storeWriting(write: StoreWriter['write']): StoreWriter {
  const nothing = async () => {};
  return { backend: 'test', init: nothing, close: nothing, health: async () => ({ backend: 'test', ok: true }), beginRun: nothing, write, flush: nothing };
}

async function rowsOf(path: string): Promise<string[]> {
  const db = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const conn = await db.connect();
  try {
    const out: string[] = [];
    for (const table of ['flows', 'hosts', 'traffic']) {
      const r = await conn.runAndReadAll(`SELECT * FROM ${table}`);
      for (const row of r.getRowObjectsJson()) out.push(`${table} ${JSON.stringify(row)}`);
    }
    return out.sort();
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function importInto(name: string, delayMs: number, rowsInFlight: number): Promise<{ rows: string[]; store: SlowStore }> {
  const path = join(work, `${name}.duckdb`);
  const store = new SlowStore(path, delayMs);
  await store.init();
  try {
    await importFiles(CAPTURES, { store, node: 'n1', batchRows: 16, rowsInFlight });
  } finally {
    await store.close();
  }
  return { rows: await rowsOf(path), store };
}

test('writes on their way while decoding goes on: the same rows, several writes at once, never more rows than the bound', { skip }, async () => {
  const oneAtATime = await importInto('one', 0, 1);
  const bound = 128;
  // Each write takes 250 ms: longer than decoding the chunks after it even on a loaded CI machine
  // (at 20 ms, CI once saw only two writes at once).
  const overlapping = await importInto('overlapping', 250, bound);
  assert.ok(oneAtATime.rows.length > 300, `rows imported (${oneAtATime.rows.length})`);
  assert.equal(oneAtATime.store.mostWritesOnTheirWay, 1, 'a bound of one row: one write at a time');
  assert.deepEqual(overlapping.rows, oneAtATime.rows);
  assert.ok(overlapping.store.mostWritesOnTheirWay >= 3, `several writes at once (${overlapping.store.mostWritesOnTheirWay})`);
  // The import waits once more than `bound` rows are on their way: at most the bound plus one batch.
  const most = overlapping.store.mostRowsOnTheirWay;
  assert.ok(most <= bound + overlapping.store.largestBatch, `rows on their way (${most}; largest batch ${overlapping.store.largestBatch})`);
});

test('a write that fails fails the import with the store’s error, and later batches are not handed over', { skip }, async () => {
  let writes = 0;
  let afterFailure = 0;
  let failed = false;
  const store = storeWriting(async () => {
    if (failed) afterFailure++;
    if (++writes === 3) {
      failed = true;
      throw new Error('disk full (test)');
    }
    await new Promise((r) => setTimeout(r, 5));
  });
  await assert.rejects(importFiles(CAPTURES, { store, node: 'n1', batchRows: 64, rowsInFlight: 1024 }), (err: unknown) => {
    assert.ok(err instanceof Error, `an Error (${String(err)})`);
    assert.equal(err.message, 'disk full (test)');
    return true;
  });
  // Writes already on their way when the failure became known may still be called; none after.
  assert.ok(afterFailure <= 1024 / 64, `writes after the failure (${afterFailure})`);
});

test('StoreWrites: a failure is told to the next write or to drain, once the write has ended', async () => {
  let fail: (err: Error) => void = () => {};
  const store = storeWriting(
    () =>
      new Promise<void>((_, reject) => {
        fail = reject;
      }),
  );
  const writes = new StoreWrites(store, 100);
  const batch: RecordBatch = { flows: [], hosts: [], traffic: [] };
  await writes.write(batch); // 0 rows: under the bound, returns at once
  fail(new Error('refused (test)'));
  await assert.rejects(writes.drain(), (err: unknown) => (err as { cause?: Error }).cause?.message === 'refused (test)');
});

test('packet index runs written while the next run is built list the same packets as runs written one by one', { skip }, async () => {
  const capture = CAPTURES[0];
  const p = parseCapture(capture);
  const build = async (dir: string, overlap: boolean) => {
    const writer = new PacketIndexWriter(dir, { source: 'kxun', maxRunPackets: 40 });
    await writer.begin();
    await writer.beginFile(capture, 'pcap', []);
    let writing: Promise<void> = Promise.resolve();
    let runsStartedWhileWriting = 0;
    for (let i = 0; i < p.offsets.length; i++) {
      writer.add(p.slot[i], p.idHi[i], p.idLo[i], p.ts[i], p.offsets[i], 16 + p.data.readUInt32LE(p.offsets[i] + 8));
      if (!writer.full) continue;
      if (overlap) {
        // As the import does: wait for the run before, start this one, go on adding.
        await writing;
        writing = writer.flush();
        runsStartedWhileWriting++;
      } else await writer.flush();
    }
    await writing;
    await writer.flush();
    return { writer, runsStartedWhileWriting };
  };
  const one = await build(join(work, 'one-by-one'), false);
  const overlapped = await build(join(work, 'overlapped'), true);
  assert.ok(overlapped.runsStartedWhileWriting > 10, `runs (${overlapped.runsStartedWhileWriting})`);
  assert.equal(overlapped.writer.runs, one.writer.runs);
  assert.equal(overlapped.writer.packets, p.offsets.length);
  const a = new PacketIndexReader(join(work, 'one-by-one'));
  const b = new PacketIndexReader(join(work, 'overlapped'));
  const ids = new Set<string>();
  for (let i = 0; i < p.offsets.length; i++) ids.add(flowIdHex(p.idHi[i], p.idLo[i]));
  assert.ok(ids.size > 50, `flows (${ids.size})`);
  let packets = 0;
  for (const id of ids) {
    const refs = (await b.lookup(id)).map((r) => `${r.ts} ${r.offset} ${r.length}`);
    assert.deepEqual(
      refs,
      (await a.lookup(id)).map((r) => `${r.ts} ${r.offset} ${r.length}`),
      id,
    );
    packets += refs.length;
  }
  assert.equal(packets, p.offsets.length, 'every packet listed under its flow');
});
