// The live packet store's caps (sweep in src/packets/keeper.ts) on a real directory: files older
// than the age cap go, the oldest closed files go first while the store is over the size cap, a
// file still being written (no index run yet) is never deleted, and an evicted file's index run
// stays (so its flows are reported evicted) until such runs pass a sixteenth of the size cap.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sweep } from '../src/packets/keeper.js';

const root = mkdtempSync(join(tmpdir(), 'flowlens-sweep-'));
after(() => rmSync(root, { recursive: true, force: true }));

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A closed file of the store: its pcapng (`size` bytes, last written `ageSec` ago) and its index run. */
function closedFile(dir: string, base: string, size: number, ageSec: number, runBytes = 100): void {
  const at = (NOW - ageSec * 1000) / 1000;
  writeFileSync(join(dir, `${base}.pcapng`), Buffer.alloc(size));
  writeFileSync(join(dir, `${base}-0000.bin`), Buffer.alloc(runBytes));
  writeFileSync(join(dir, `${base}-0000.json`), '{}');
  for (const f of [`${base}.pcapng`, `${base}-0000.bin`, `${base}-0000.json`]) utimesSync(join(dir, f), at, at);
}

function openFile(dir: string, base: string, size: number, ageSec: number): void {
  writeFileSync(join(dir, `${base}.pcapng`), Buffer.alloc(size));
  const at = (NOW - ageSec * 1000) / 1000;
  utimesSync(join(dir, `${base}.pcapng`), at, at);
}

const has = (dir: string, name: string) => existsSync(join(dir, name));

test('age cap: files last written before it go; their runs stay as tombstones; an open file stays', async () => {
  const dir = join(root, 'age');
  mkdirSync(dir);
  closedFile(dir, 'live-a-w0-000000', 1000, 600);
  closedFile(dir, 'live-a-w0-000001', 1000, 120);
  closedFile(dir, 'live-a-w0-000002', 1000, 10);
  openFile(dir, 'live-a-w0-000003', 1000, 900); // old, but no run: being written
  assert.equal(await sweep({ dir, maxBytes: 0, maxAgeSec: 300 }, NOW), 1);
  assert.ok(!has(dir, 'live-a-w0-000000.pcapng'), 'older than 300 s: deleted');
  assert.ok(has(dir, 'live-a-w0-000000-0000.json') && has(dir, 'live-a-w0-000000-0000.bin'), 'its index run stays');
  assert.ok(has(dir, 'live-a-w0-000001.pcapng') && has(dir, 'live-a-w0-000002.pcapng'));
  assert.ok(has(dir, 'live-a-w0-000003.pcapng'), 'the open file stays');
});

test('size cap: oldest closed files first until under it; tombstones past 1/16 of the cap go, oldest first', async () => {
  const dir = join(root, 'size');
  mkdirSync(dir);
  // 10 closed files of 10,000 bytes (+ 102-byte runs), oldest first; one open file of 10,000 bytes.
  for (let i = 0; i < 10; i++) closedFile(dir, `live-b-w0-${String(i).padStart(6, '0')}`, 10_000, 100 - i * 5);
  openFile(dir, 'live-b-w1-000000', 10_000, 200);
  const cap = 50_000;
  const n = await sweep({ dir, maxBytes: cap, maxAgeSec: 0 }, NOW);
  // 111,020 bytes: seven closed files must go to get under 50,000 (the open one counts but stays).
  assert.equal(n, 7);
  for (let i = 0; i < 10; i++) assert.equal(has(dir, `live-b-w0-${String(i).padStart(6, '0')}.pcapng`), i >= 7, `file ${i}`);
  assert.ok(has(dir, 'live-b-w1-000000.pcapng'));
  // Tombstones of 7 x 102 bytes = 714 < 50,000 / 16: all kept.
  for (let i = 0; i < 7; i++) assert.ok(has(dir, `live-b-w0-${String(i).padStart(6, '0')}-0000.json`), `tombstone ${i}`);

  // A cap below the open file alone: every closed file goes, and the tombstones with them (oldest first).
  assert.equal(await sweep({ dir, maxBytes: 6_400, maxAgeSec: 0 }, NOW), 3);
  for (let i = 0; i < 10; i++) {
    const base = `live-b-w0-${String(i).padStart(6, '0')}`;
    assert.ok(!has(dir, `${base}.pcapng`) && !has(dir, `${base}-0000.json`) && !has(dir, `${base}-0000.bin`), `file ${i} and its run`);
  }
  assert.ok(has(dir, 'live-b-w1-000000.pcapng'), 'the open file still stays');
});

test('a directory that does not exist: nothing to do', async () => {
  assert.equal(await sweep({ dir: join(root, 'none'), maxBytes: 1, maxAgeSec: 1 }, NOW), 0);
});
