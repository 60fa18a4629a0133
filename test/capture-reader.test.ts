/**
 * The capture file reader over many chunks: it reads a regular file ahead, a chunk at a time into
 * a second buffer, and records cut by a chunk boundary (short ones, ones longer than the read-
 * ahead headroom, ones longer than a whole chunk) must come out whole and in order, in both pcap
 * and pcapng, as must a pipe, which is read without read-ahead.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureFileReader } from '../src/capture/pcap-file.js';
import type { Frame } from './helpers/frames.js';
import { pcap, pcapng } from './helpers/pcap-writer.js';
import { rng } from './helpers/random.js';

/** Frames of mostly packet-like sizes with a few large ones, each filled from its index. */
function frames(): Frame[] {
  const random = rng(20261124);
  const out: Frame[] = [];
  let total = 0;
  for (let i = 0; total < 12 << 20; i++) {
    // Mostly packet-sized; every 10th is 2-8 KiB (often longer than the 4 KiB headroom of the reads
    // below), every 1000th 100-300 KiB (longer than a 64 KiB chunk), one 5 MiB.
    const size =
      i === 900
        ? 5 << 20
        : i % 1000 === 999
          ? 100_000 + Math.floor(random() * 200_000)
          : i % 10 === 9
            ? 2000 + Math.floor(random() * 6000)
            : 40 + Math.floor(random() * 1500);
    const data = new Uint8Array(size);
    for (let k = 0; k < size; k++) data[k] = (i * 31 + k * 7) & 0xff;
    data[0] = i & 0xff;
    data[size - 1] = (i >> 8) & 0xff;
    out.push({ ts: BigInt(1_700_000_000 + i) * 1_000_000_000n + BigInt(i) * 1000n, data, origLen: size + (i % 3) });
    total += size + 16;
  }
  return out;
}

/** What a reader must deliver for a frame: time (µs), lengths and a checksum of the bytes. */
function expected(f: Frame): string {
  return `${f.ts / 1000n} ${f.data.length} ${f.origLen} ${checksum(f.data, 0, f.data.length)}`;
}

function checksum(data: Uint8Array, offset: number, length: number): number {
  let sum = 0;
  for (let k = 0; k < length; k++) sum = (Math.imul(sum, 33) + data[offset + k]) >>> 0;
  return sum;
}

/** Reads in 64 KiB chunks (4 KiB headroom), so that the file crosses hundreds of chunk boundaries. */
async function readAll(path: string): Promise<string[]> {
  const reader = new CaptureFileReader(path, { chunkBytes: 64 << 10 });
  const got: string[] = [];
  try {
    await reader.open();
    while (await reader.readChunk((_lt, ts, data, offset, caplen, wirelen) => got.push(`${ts} ${caplen} ${wirelen} ${checksum(data, offset, caplen)}`)));
    assert.equal(reader.truncated, null, 'no truncation reported');
  } finally {
    await reader.close();
  }
  return got;
}

describe('capture file reader across chunks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-reader-'));
  const all = frames();
  const want = all.map(expected);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('pcap: every record, whatever chunk boundary it straddles, arrives whole and in order', async () => {
    const path = join(dir, 'many.pcap');
    writeFileSync(path, pcap({ linktype: 1, resolution: 'nano', snaplen: 16 << 20 }, all));
    const got = await readAll(path);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `frame ${i}`);
  });

  it('pcapng: the same, with blocks', async () => {
    const path = join(dir, 'many.pcapng');
    writeFileSync(path, pcapng({ options: { interfaces: [{ linktype: 1, snaplen: 16 << 20, tsresol: 9 }] }, frames: all }));
    const got = await readAll(path);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `frame ${i}`);
  });

  it('a pipe (no read-ahead) delivers the same records', async () => {
    const fifo = join(dir, 'pipe.pcap');
    const file = join(dir, 'many.pcap');
    await new Promise<void>((resolve, reject) => {
      const mk = spawn('mkfifo', [fifo]);
      mk.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo exited ${code}`))));
    });
    const cat = spawn('sh', ['-c', `cat '${file}' > '${fifo}'`]);
    const got = await readAll(fifo);
    cat.kill();
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `frame ${i}`);
  });
});
