/**
 * The capture file reader over many chunks: it reads a regular file ahead, a chunk at a time into
 * a second buffer, and records cut by a chunk boundary (short ones, ones longer than the read-
 * ahead headroom, ones longer than a whole chunk) must come out whole and in order, in both pcap
 * and pcapng, as must a pipe, which is read without read-ahead. Read into a parallel import's
 * shared buffers (src/capture/frame-pool.ts), the frames handed out must stay whole until the
 * consumer has read them, however late.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FramePool } from '../src/capture/frame-pool.js';
import { CaptureFileReader, readBufferBytes } from '../src/capture/pcap-file.js';
import { RingReader, RingWriter, ringCapacity } from '../src/capture/ring.js';
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

/**
 * Reads as a parallel import does: into a pool of three shared buffers, each frame written to a
 * ring as a reference (or, from a buffer of the reader's own, a copy), and read out by the consumer
 * only when the reader waits for a buffer, the ring is full, or the file ends. A buffer reused
 * before the consumer read its frames would give wrong checksums. Returns the records and how many
 * went by reference.
 */
async function readAllPooled(path: string): Promise<{ got: string[]; refs: number }> {
  const ring = RingWriter.create(ringCapacity(8 << 20));
  const consumer = new RingReader(ring.sab);
  const got: string[] = [];
  const drain = () =>
    consumer.drain((data, offset, caplen, wirelen, tsSec, tsUsec) =>
      got.push(`${tsSec * 1e6 + tsUsec} ${caplen} ${wirelen} ${checksum(data, offset, caplen)}`),
    );
  let waits = 0;
  const pool = new FramePool(3, readBufferBytes(64 << 10), [ring], async () => {
    waits++;
    drain();
  });
  consumer.setShared(pool.sabs);
  const reader = new CaptureFileReader(path, { chunkBytes: 64 << 10, buffers: pool });
  let refs = 0;
  try {
    await reader.open();
    while (
      await reader.readChunk((_lt, ts, data, offset, caplen, wirelen) => {
        const sec = Math.floor(ts / 1e6);
        const index = pool.index(data);
        if (index >= 0) refs++;
        const write = () =>
          index >= 0
            ? ring.writeRef(index, offset, caplen, wirelen, sec, ts - sec * 1e6, 1, 0)
            : ring.write(data, caplen, wirelen, sec, ts - sec * 1e6, 1, 0, offset);
        while (!write()) drain();
      })
    );
    assert.equal(reader.truncated, null, 'no truncation reported');
  } finally {
    await reader.close();
  }
  drain();
  assert.ok(waits > 0, 'the reader waited for the consumer');
  return { got, refs };
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

  it('into shared buffers, by reference: every record stays whole until the consumer reads it (pcap, pcapng)', async () => {
    for (const name of ['many.pcap', 'many.pcapng']) {
      const { got, refs } = await readAllPooled(join(dir, name));
      assert.equal(got.length, want.length, name);
      for (let i = 0; i < want.length; i++) assert.equal(got[i], want[i], `${name}: frame ${i}`);
      // All but the records longer than a buffer (copied from one of the reader's own).
      assert.ok(refs > want.length * 0.9, `${name}: ${refs} of ${want.length} by reference`);
    }
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
