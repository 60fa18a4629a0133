// The live packet store (--keep-packets DIR): each decode worker keeps the packets of its flows in
// pcapng files of its own, rotated by size and time, and indexes each rotated file like an import
// (index-writer.ts: one run per file, named after it), so that `flowlens pcap` and /pcap read live
// captures as they read imports.
//
// The capture path is never held up. The decode worker's part (PacketKeeper) is one copy of the
// packet into a bounded ring (store-ring.ts) and a count: everything else (pcapng blocks, rotation,
// the index and its sort, the writes) runs on a writer thread of its own (store-writer.ts, with
// PacketFileWriter below), which takes the ring's packets in batches. When the ring is full (the
// writer or the disk behind), the packet is dropped from the store and counted, and the capture
// goes on: the store drops before the capture does.
// Trade-offs as Arkime and Stenographer make them: only the first `snaplen` bytes of each packet and
// only the first `maxPacketsPerFlow` packets of each flow, when asked (both applied before the ring).
//
// The files of the open file's run have no .json yet: the sweeper (caps by size and age, run by
// worker 0 over the whole directory) never deletes a file being written. Evicting a file keeps its
// small index run, so that a flow whose packets were evicted is reported as such, not as unknown;
// those runs go once they exceed a sixteenth of the size cap.
import { close, openSync, write, writeSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import type { PcapngSection } from '../capture/pcap-file.js';
import type { RunMeta } from './format.js';
import type { PacketIndexReader } from './index-reader.js';
import { growUint32 } from '../flow/open-index.js';
import { compactIndex } from './compact.js';
import { PacketIndexWriter } from './index-writer.js';
import { StoreRing, type StoreRecordHandler, storeRingBuffer } from './store-ring.js';
import type { StoreWriterData } from './store-writer.js';

export interface KeepPacketsOptions {
  dir: string;
  /** Total size of the store (pcapng files and index), bytes; 0: no size cap. */
  maxBytes: number;
  /** Age of the oldest packets kept, seconds; 0: no age cap. */
  maxAgeSec: number;
  /** Bytes of each packet kept (the rest is cut, its original length kept); 0: all. */
  snaplen: number;
  /** Packets of each flow kept (its first ones); 0: all. */
  maxPacketsPerFlow: number;
  /** A file is closed and indexed once it reaches this size... */
  fileBytes: number;
  /** ...or is this old (seconds): packets become extractable when their file is closed. */
  fileSeconds: number;
  /** Each write buffer, bytes... */
  bufferBytes: number;
  /** ...and how many (a burst longer than them all, while the disk is behind, waits in the ring). */
  bufferCount: number;
  /** The ring between the decode worker and the store's writer thread, bytes (a power of two; default 32 MiB). */
  writerRingBytes?: number;
  /** Merge this worker's index runs as files close (compact.ts); default true. */
  compact?: boolean;
}

export const DEFAULT_KEEP: Omit<KeepPacketsOptions, 'dir'> = {
  maxBytes: 1024 * 1024 * 1024,
  maxAgeSec: 0,
  snaplen: 0,
  maxPacketsPerFlow: 0,
  fileBytes: 64 * 1024 * 1024,
  fileSeconds: 60,
  bufferBytes: 4 * 1024 * 1024,
  // The writer's buffers: what the disk is behind by, beside the writer ring.
  bufferCount: 8,
  // As large as the decode ring: a burst the decode worker took is held while the writer catches up.
  writerRingBytes: 32 * 1024 * 1024,
};

export interface KeeperStats {
  /** Packets written to the store. */
  kept: number;
  /** Bytes of pcapng written. */
  bytes: number;
  /** Packets not kept because the writer ring or the write buffers were full (the writer or the disk fell behind). */
  dropped: number;
  /** Packets not kept because their flow had its first maxPacketsPerFlow already. */
  skipped: number;
  /** Files closed and indexed. */
  files: number;
  /** Files deleted by the caps (this worker's sweeps). */
  evictedFiles: number;
  /** Write errors (each drops the buffer it was writing). */
  writeErrors: number;
}

const SHB_LENGTH = 28;
const EPB_HEADER = 28;
const PAD = (n: number) => (n + 3) & ~3;

/** A section header block (little-endian, no options, section length unknown). */
function sectionHeaderBlock(): Buffer {
  const b = Buffer.alloc(SHB_LENGTH);
  b.writeUInt32LE(0x0a0d0d0a, 0);
  b.writeUInt32LE(SHB_LENGTH, 4);
  b.writeUInt32LE(0x1a2b3c4d, 8);
  b.writeUInt16LE(1, 12);
  b.writeUInt16LE(0, 14);
  b.fill(0xff, 16, 24);
  b.writeUInt32LE(SHB_LENGTH, 24);
  return b;
}

/** An interface description block: link type, snap length and if_name (µs timestamps, the default). */
function interfaceBlock(linkType: number, snaplen: number, name: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const options = 4 + PAD(nameBytes.length) + 4;
  const length = 20 + options;
  const b = Buffer.alloc(length);
  b.writeUInt32LE(1, 0);
  b.writeUInt32LE(length, 4);
  b.writeUInt16LE(linkType, 8);
  b.writeUInt32LE(snaplen, 12);
  b.writeUInt16LE(2, 16); // if_name
  b.writeUInt16LE(nameBytes.length, 18);
  nameBytes.copy(b, 20);
  // opt_endofopt (zeros), then the trailing length.
  b.writeUInt32LE(length, length - 4);
  return b;
}

/**
 * The first `max` packets of each flow (Arkime's and Stenographer's trade-off): per aggregator slot,
 * the flow it holds and how many of its packets were admitted. A packet is counted when admitted.
 */
class FirstPackets {
  private kept = new Uint32Array(1024);
  private idLo = new Uint32Array(1024);
  private idHi = new Uint32Array(1024);

  constructor(readonly max: number) {}

  admit(slot: number, idHi: number, idLo: number): boolean {
    if (slot >= this.kept.length) {
      const size = Math.max(slot + 1, this.kept.length * 2);
      this.kept = growUint32(this.kept, size);
      this.idLo = growUint32(this.idLo, size);
      this.idHi = growUint32(this.idHi, size);
    }
    if (this.idLo[slot] !== idLo || this.idHi[slot] !== idHi || this.kept[slot] === 0) {
      this.idLo[slot] = idLo;
      this.idHi[slot] = idHi;
      this.kept[slot] = 0;
    }
    if (this.kept[slot] >= this.max) return false;
    this.kept[slot]++;
    return true;
  }
}

/** The counters in the order the writer thread shares them. */
export const STAT_KEYS = ['kept', 'bytes', 'dropped', 'skipped', 'files', 'evictedFiles', 'writeErrors'] as const satisfies readonly (keyof KeeperStats)[];

/**
 * Writes packets to the store's files, in the thread that calls add() (the store's writer thread in
 * a live capture; the benchmark's own thread when it measures the write rate).
 */
export class PacketFileWriter {
  readonly stats: KeeperStats = { kept: 0, bytes: 0, dropped: 0, skipped: 0, files: 0, evictedFiles: 0, writeErrors: 0 };
  private readonly dir: string;
  private readonly opts: KeepPacketsOptions;
  private readonly base: string;
  private readonly ifaces: string[];
  private seq = 0;

  // The open file.
  private fd = -1;
  private path = '';
  private index: PacketIndexWriter | null = null;
  private sections: PcapngSection[] = [];
  /** Local interface id in the open file of each capture interface (-1: no block yet). */
  private ifaceId: Int32Array;
  /** Bytes of the open file including those still buffered. */
  private fileLength = 0;
  private fileOpenedAt = 0;

  // Double buffering: `fill` takes packets; `flushing` is being written (or null).
  private fill: Buffer;
  /** Free buffers; the others are queued for writing. */
  private spares: Buffer[] = [];
  private used = 0;
  private writing: Promise<void> = Promise.resolve();
  /** Producers waiting for a free buffer (writable()). */
  private waiters: (() => void)[] = [];
  private closing: Promise<void> = Promise.resolve();

  private readonly first: FirstPackets | null;

  /**
   * `base` names this worker's files: <base>-<seq>.pcapng, unique per capture run and worker.
   */
  constructor(opts: KeepPacketsOptions, base: string, ifaces: string[]) {
    this.opts = opts;
    this.dir = resolve(opts.dir);
    this.base = base.replace(/[^A-Za-z0-9_.-]/g, '_');
    this.ifaces = ifaces;
    this.ifaceId = new Int32Array(ifaces.length).fill(-1);
    this.first = opts.maxPacketsPerFlow > 0 ? new FirstPackets(opts.maxPacketsPerFlow) : null;
    this.fill = Buffer.allocUnsafe(opts.bufferBytes);
    for (let i = 1; i < opts.bufferCount; i++) this.spares.push(Buffer.allocUnsafe(opts.bufferBytes));
  }

  /** One packet of the flow in aggregator slot `slot`; returns without waiting for any write. */
  readonly add: StoreRecordHandler = (slot, idHi, idLo, tsUs, linkType, ifIdx, buf, off, caplen, wirelen) => {
    if (this.first !== null && !this.first.admit(slot, idHi, idLo)) {
      this.stats.skipped++;
      return;
    }
    const snap = this.opts.snaplen;
    const keep = snap > 0 && caplen > snap ? snap : caplen;
    const length = EPB_HEADER + PAD(keep) + 4;
    if (length > this.fill.length) {
      this.stats.dropped++;
      return;
    }
    if (this.fd < 0 || this.fileLength + length > this.opts.fileBytes || this.index?.full || tsUs / 1000 - this.fileOpenedAt > this.opts.fileSeconds * 1000) {
      // A file is closed with its last buffer: not while both buffers are taken (the packet then
      // goes on into the open file, or is dropped when there is none).
      const canRotate = this.used === 0 || this.spares.length > 0;
      if (canRotate) this.rotate(tsUs);
      else if (this.fd < 0 || this.index?.full) {
        this.stats.dropped++;
        return;
      }
    }
    let id = this.ifaceId[ifIdx];
    if (id < 0) {
      // The interface's first packet in this file: its description block first.
      const idb = interfaceBlock(linkType, snap > 0 ? snap : 262144, this.ifaces[ifIdx] ?? `if${ifIdx}`);
      if (!this.room(idb.length + length)) {
        this.stats.dropped++;
        return;
      }
      id = this.sections[0].interfaces.length;
      this.sections[0].interfaces.push({ offset: this.fileLength, length: idb.length });
      idb.copy(this.fill, this.used);
      this.used += idb.length;
      this.fileLength += idb.length;
      this.ifaceId[ifIdx] = id;
    } else if (!this.room(length)) {
      this.stats.dropped++;
      return;
    }
    const b = this.fill;
    let p = this.used;
    const hi = Math.floor(tsUs / 4294967296);
    b.writeUInt32LE(6, p);
    b.writeUInt32LE(length, p + 4);
    b.writeUInt32LE(id, p + 8);
    b.writeUInt32LE(hi, p + 12);
    b.writeUInt32LE(tsUs - hi * 4294967296, p + 16);
    b.writeUInt32LE(keep, p + 20);
    b.writeUInt32LE(wirelen, p + 24);
    buf.copy(b, p + EPB_HEADER, off, off + keep);
    p += EPB_HEADER + keep;
    while (p & 3) b[p++] = 0;
    b.writeUInt32LE(length, p);
    this.used = p + 4;
    this.index!.add(slot, idHi, idLo, tsUs, this.fileLength, length);
    this.fileLength += length;
    this.stats.kept++;
  };

  /**
   * True while every spare buffer is queued for writing: once the fill buffer is full, add() drops.
   * A producer that can wait (the benchmark, which measures how fast the store writes) awaits
   * writable() then; the live capture never waits.
   */
  get saturated(): boolean {
    return this.spares.length === 0;
  }

  /** Resolves once a buffer is free again. */
  writable(): Promise<void> {
    if (this.spares.length > 0) return Promise.resolve();
    return new Promise((wake) => this.waiters.push(wake));
  }

  /** Room for `length` more bytes in the fill buffer: swaps buffers when the other one is free. */
  private room(length: number): boolean {
    if (this.used + length <= this.fill.length) return true;
    if (this.spares.length === 0) return false; // every buffer queued: the disk is behind
    this.startWrite();
    return true;
  }

  /** Hands the fill buffer to the writer and takes a free one. */
  private startWrite(): void {
    if (this.used === 0 || this.spares.length === 0) return;
    const full = this.fill;
    const n = this.used;
    const fd = this.fd;
    this.fill = this.spares.pop()!;
    this.used = 0;
    this.writing = this.writing.then(async () => {
      try {
        let done = 0;
        while (done < n) {
          const { bytesWritten } = await writeAsync(fd, full, done, n - done);
          done += bytesWritten;
        }
        this.stats.bytes += n;
      } catch {
        this.stats.writeErrors++;
      } finally {
        this.spares.push(full);
        const waiting = this.waiters;
        this.waiters = [];
        for (const wake of waiting) wake();
      }
    });
  }

  /** Writes what is buffered (every second from the worker's tick, so a quiet link's packets reach the disk). */
  tick(nowMs: number): void {
    if (this.fd >= 0 && nowMs - this.fileOpenedAt > this.opts.fileSeconds * 1000 && this.spares.length > 0) {
      this.closeFile();
      return;
    }
    this.startWrite();
  }

  /** Closes the open file (its last buffer written, then indexed) and opens the next. */
  private rotate(tsUs: number): void {
    if (this.fd >= 0) this.closeFile();
    this.openFile(tsUs);
  }

  private openFile(tsUs: number): void {
    const name = `${this.base}-${String(this.seq++).padStart(6, '0')}`;
    this.path = join(this.dir, `${name}.pcapng`);
    this.fd = openSync(this.path, 'w');
    const shb = sectionHeaderBlock();
    writeSync(this.fd, shb);
    this.fileLength = shb.length;
    this.sections = [{ offset: 0, length: shb.length, interfaces: [] }];
    this.ifaceId.fill(-1);
    this.index = new PacketIndexWriter(this.dir, { source: name, node: '' });
    this.index.beginLiveFile(this.path, this.sections);
    this.fileOpenedAt = tsUs / 1000;
  }

  /** The open file's last buffer, then its close and its index run (in order, off the packet path). */
  private closeFile(): void {
    this.startWrite();
    const fd = this.fd;
    const index = this.index!;
    this.fd = -1;
    this.index = null;
    const written = this.writing;
    // The file's index run (sorted, written and synced) follows its data; the next file's data
    // does not wait for it: the buffers keep flowing to the disk while an index is flushed (when
    // they waited, a sync under other disk traffic held every buffer and the store dropped).
    this.closing = this.closing.then(async () => {
      await written;
      await new Promise<void>((done) => close(fd, () => done()));
      await index.flush().catch(() => {
        this.stats.writeErrors++;
      });
      this.stats.files++;
      // One run per file would make every lookup read all of them: merged as they accumulate.
      if (this.opts.compact !== false) await compactIndex(this.dir, { prefix: `${this.base}-` }).catch(() => {});
    });
  }

  /** Ends the store: the open file is written, closed and indexed. */
  async close(): Promise<void> {
    if (this.fd >= 0) this.closeFile();
    await this.closing;
    await this.writing;
  }
}

/** Packets put in the writer ring between two wake-ups of the writer (it also looks every 50 ms). */
const WAKE_EVERY = 256;

/**
 * The decode worker's side of the packet store: add() applies the per-flow limit and the snap
 * length and copies the packet into the writer ring, or drops it from the store (counted) when the
 * ring is full; it never waits. The writer thread (store-writer.ts) does the rest.
 */
export class PacketKeeper {
  private readonly ring: StoreRing;
  /** The writer thread's counters (STAT_KEYS order). */
  private readonly shared: Float64Array;
  private readonly worker: Worker;
  private readonly ended: Promise<void>;
  private readonly view: KeeperStats = { kept: 0, bytes: 0, dropped: 0, skipped: 0, files: 0, evictedFiles: 0, writeErrors: 0 };
  private readonly snaplen: number;
  private ringDropped = 0;
  private skipped = 0;
  private sinceWake = 0;
  private failed = false;
  private readonly first: FirstPackets | null;

  /** `base` names this worker's files: <base>-<seq>.pcapng, unique per capture run and worker. */
  constructor(opts: KeepPacketsOptions, base: string, ifaces: string[]) {
    this.snaplen = opts.snaplen;
    this.first = opts.maxPacketsPerFlow > 0 ? new FirstPackets(opts.maxPacketsPerFlow) : null;
    // Fault injection for the tests (store-writer.ts): a stalled writer behind a ring of this many bytes.
    const stalled = Number(process.env.FLOWLENS_PACKET_STORE_STALL ?? 0);
    const sab = storeRingBuffer(stalled > 0 ? stalled : (opts.writerRingBytes ?? DEFAULT_KEEP.writerRingBytes!));
    this.ring = new StoreRing(sab);
    const stats = new SharedArrayBuffer(STAT_KEYS.length * 8);
    this.shared = new Float64Array(stats);
    const data: StoreWriterData = { ring: sab, stats, opts: { ...opts, maxPacketsPerFlow: 0 }, base, ifaces };
    this.worker = startWorker(import.meta.url, './store-writer', { workerData: data, name: `flowlens-packets-${base}` });
    this.ended = new Promise<void>((done) => {
      this.worker.once('error', () => {
        this.failed = true;
      });
      this.worker.once('exit', () => done());
    });
  }

  /** The store's counters: the writer's, and the packets the ring had no room for. */
  get stats(): KeeperStats {
    const v = this.view;
    const w = this.shared;
    // evictedFiles is the caller's (the sweeps); the writer thread never evicts.
    v.kept = w[0];
    v.bytes = w[1];
    v.dropped = w[2] + this.ringDropped;
    v.skipped = w[3] + this.skipped;
    v.files = w[4];
    v.writeErrors = w[6] + (this.failed ? 1 : 0);
    return v;
  }

  /** One packet of the flow in aggregator slot `slot`: into the writer ring, or dropped from the store. */
  readonly add: StoreRecordHandler = (slot, idHi, idLo, tsUs, linkType, ifIdx, buf, off, caplen, wirelen) => {
    // Counted when offered: a packet the ring drops is one of the flow's first all the same.
    if (this.first !== null && !this.first.admit(slot, idHi, idLo)) {
      this.skipped++;
      return;
    }
    const snap = this.snaplen;
    const keep = snap > 0 && caplen > snap ? snap : caplen;
    if (!this.ring.write(slot, idHi, idLo, tsUs, linkType, ifIdx, buf, off, keep, wirelen)) {
      this.ringDropped++;
      return;
    }
    if (++this.sinceWake === WAKE_EVERY) {
      this.sinceWake = 0;
      this.ring.wake();
    }
  };

  /** Wakes the writer for what came in since (the worker's tick, every second). */
  tick(_nowMs: number): void {
    this.sinceWake = 0;
    this.ring.wake();
  }

  /** Ends the store: the writer takes what is left in the ring, writes, closes and indexes the open file. */
  async close(): Promise<void> {
    this.ring.stop();
    await this.ended;
  }
}

function writeAsync(fd: number, buf: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }> {
  return new Promise((resolvePromise, reject) => {
    write(fd, buf, offset, length, null, (err, bytesWritten) => (err ? reject(err) : resolvePromise({ bytesWritten })));
  });
}

/**
 * Applies the caps to the whole directory: closed files (those an index run names) go oldest first
 * while the store is over maxBytes or their newest packet is older than maxAgeSec; the runs whose
 * files are all gone stay (tombstones: their flows are reported as evicted) until they pass a
 * sixteenth of maxBytes. Runs are read by their metas, so that compacted runs (compact.ts), which
 * name many files, count as the per-file runs did. Returns files deleted.
 */
export async function sweep(opts: Pick<KeepPacketsOptions, 'dir' | 'maxBytes' | 'maxAgeSec'>, nowMs = Date.now()): Promise<number> {
  const dir = resolve(opts.dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const sizes = new Map<string, { size: number; mtimeMs: number }>();
  let total = 0;
  for (const name of names) {
    try {
      const st = await stat(join(dir, name));
      sizes.set(name, { size: st.size, mtimeMs: st.mtimeMs });
      total += st.size;
    } catch {
      // gone meanwhile
    }
  }
  // The complete runs and the files each names (a file is closed once a run names it).
  const runs: { name: string; files: string[]; bytes: number; mtimeMs: number }[] = [];
  const named = new Set<string>();
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const run = name.slice(0, -'.json'.length);
    let meta: RunMeta;
    try {
      meta = JSON.parse(await readFile(join(dir, name), 'utf8')) as RunMeta;
    } catch {
      continue;
    }
    const files = (meta.files ?? []).map((f) => basename(f.path));
    // A live file's own run is <file>-0000 (keeper.ts), whatever its meta says.
    if (run.endsWith('-0000')) files.push(`${run.slice(0, -'-0000'.length)}.pcapng`);
    for (const f of files) named.add(f);
    const json = sizes.get(name);
    runs.push({ name: run, files, bytes: (json?.size ?? 0) + (sizes.get(`${run}.bin`)?.size ?? 0), mtimeMs: json?.mtimeMs ?? 0 });
  }
  const files = names
    .filter((n) => n.endsWith('.pcapng') && named.has(n) && sizes.has(n))
    .map((name) => ({ name, ...sizes.get(name)! }))
    .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let deleted = 0;
  const gone = new Set(names.filter((n) => n.endsWith('.pcapng') && !sizes.has(n)));
  for (const f of files) {
    const tooBig = opts.maxBytes > 0 && total > opts.maxBytes;
    const tooOld = opts.maxAgeSec > 0 && f.mtimeMs < nowMs - opts.maxAgeSec * 1000;
    if (!tooBig && !tooOld) continue;
    await rm(join(dir, f.name), { force: true });
    total -= f.size;
    gone.add(f.name);
    deleted++;
  }
  // Tombstones: the runs none of whose files is held, oldest first, while they weigh over a sixteenth of the cap.
  if (opts.maxBytes > 0) {
    const held = new Set(names.filter((n) => n.endsWith('.pcapng') && !gone.has(n)));
    const stones = runs.filter((r) => !r.files.some((f) => held.has(f))).sort((a, b) => a.mtimeMs - b.mtimeMs);
    let stoneBytes = stones.reduce((a, b) => a + b.bytes, 0);
    for (const r of stones) {
      if (stoneBytes <= opts.maxBytes / 16 && total <= opts.maxBytes) break;
      await rm(join(dir, `${r.name}.json`), { force: true });
      await rm(join(dir, `${r.name}.bin`), { force: true });
      stoneBytes -= r.bytes;
      total -= r.bytes;
    }
  }
  return deleted;
}

/**
 * The store's size (every file of the directory) and the time span of the packets still held
 * (the runs of files not evicted), for the metrics; times in µs, 0 when nothing is held.
 */
export async function storeExtent(reader: PacketIndexReader): Promise<{ bytes: number; oldestUs: number; newestUs: number }> {
  let names: string[];
  try {
    names = await readdir(reader.dir);
  } catch {
    return { bytes: 0, oldestUs: 0, newestUs: 0 };
  }
  let bytes = 0;
  for (const name of names)
    bytes += await stat(join(reader.dir, name)).then(
      (s) => s.size,
      () => 0,
    );
  const held = new Set(names.filter((n) => n.endsWith('.pcapng')));
  let oldestUs = Number.POSITIVE_INFINITY;
  let newestUs = 0;
  for (const run of await reader.runs()) {
    if (!run.meta.files.every((f) => held.has(basename(f.path)))) continue;
    if (run.meta.firstTs < oldestUs) oldestUs = run.meta.firstTs;
    if (run.meta.lastTs > newestUs) newestUs = run.meta.lastTs;
  }
  return { bytes, oldestUs: newestUs > 0 ? oldestUs : 0, newestUs };
}
