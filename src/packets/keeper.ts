// The live packet store (--keep-packets DIR): each decode worker keeps the packets of its flows in
// pcapng files of its own, rotated by size and time, and indexes each rotated file like an import
// (index-writer.ts: one run per file, named after it), so that `flowlens pcap` and /pcap read live
// captures as they read imports.
//
// The capture path is never held up: add() copies a packet into one of a few fixed buffers and
// returns; a full buffer is written asynchronously (libuv's thread pool) while the next fills;
// when all are queued the packet is dropped from the store and counted, and the capture goes on.
// Per packet: a few writes into a preallocated buffer and the index's typed arrays, no allocation.
// Trade-offs as Arkime and Stenographer make them: only the first `snaplen` bytes of each packet and
// only the first `maxPacketsPerFlow` packets of each flow, when asked.
//
// The files of the open file's run have no .json yet: the sweeper (caps by size and age, run by
// worker 0 over the whole directory) never deletes a file being written. Evicting a file keeps its
// small index run, so that a flow whose packets were evicted is reported as such, not as unknown;
// those runs go once they exceed a sixteenth of the size cap.
import { close, openSync, write, writeSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { PcapngSection } from '../capture/pcap-file.js';
import type { PacketIndexReader } from './index-reader.js';
import { PacketIndexWriter } from './index-writer.js';

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
  /** ...and how many (a burst longer than them all, while the disk is behind, is dropped from the store). */
  bufferCount: number;
}

export const DEFAULT_KEEP: Omit<KeepPacketsOptions, 'dir'> = {
  maxBytes: 1024 * 1024 * 1024,
  maxAgeSec: 0,
  snaplen: 0,
  maxPacketsPerFlow: 0,
  fileBytes: 64 * 1024 * 1024,
  fileSeconds: 60,
  bufferBytes: 4 * 1024 * 1024,
  // Buffers are freed when the worker yields between ring drains: together they hold a burst as
  // large as the decode ring (32 MiB) before the store drops.
  bufferCount: 8,
};

export interface KeeperStats {
  /** Packets written to the store. */
  kept: number;
  /** Bytes of pcapng written. */
  bytes: number;
  /** Packets not kept because the write buffers were full (the disk fell behind). */
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

export class PacketKeeper {
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

  // First packets per flow: the count of packets kept and the id of the flow each slot holds.
  private keptOfSlot = new Uint32Array(1024);
  private idLoOfSlot = new Uint32Array(1024);
  private idHiOfSlot = new Uint32Array(1024);

  /**
   * `base` names this worker's files: <base>-<seq>.pcapng, unique per capture run and worker.
   */
  constructor(opts: KeepPacketsOptions, base: string, ifaces: string[]) {
    this.opts = opts;
    this.dir = resolve(opts.dir);
    this.base = base.replace(/[^A-Za-z0-9_.-]/g, '_');
    this.ifaces = ifaces;
    this.ifaceId = new Int32Array(ifaces.length).fill(-1);
    this.fill = Buffer.allocUnsafe(opts.bufferBytes);
    for (let i = 1; i < opts.bufferCount; i++) this.spares.push(Buffer.allocUnsafe(opts.bufferBytes));
  }

  /** One packet of the flow in aggregator slot `slot`; returns without waiting for any write. */
  add(
    slot: number,
    idHi: number,
    idLo: number,
    tsUs: number,
    linkType: number,
    ifIdx: number,
    buf: Buffer,
    off: number,
    caplen: number,
    wirelen: number,
  ): void {
    const max = this.opts.maxPacketsPerFlow;
    if (max > 0) {
      if (slot >= this.keptOfSlot.length) this.growSlots(slot + 1);
      if (this.idLoOfSlot[slot] !== idLo || this.idHiOfSlot[slot] !== idHi || this.keptOfSlot[slot] === 0) {
        this.idLoOfSlot[slot] = idLo;
        this.idHiOfSlot[slot] = idHi;
        this.keptOfSlot[slot] = 0;
      }
      if (this.keptOfSlot[slot] >= max) {
        this.stats.skipped++;
        return;
      }
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
    if (max > 0) this.keptOfSlot[slot]++;
  }

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
    });
  }

  /** Ends the store: the open file is written, closed and indexed. */
  async close(): Promise<void> {
    if (this.fd >= 0) this.closeFile();
    await this.closing;
    await this.writing;
  }

  private growSlots(n: number): void {
    const size = Math.max(n, this.keptOfSlot.length * 2);
    const grow = (a: Uint32Array) => {
      const b = new Uint32Array(size);
      b.set(a);
      return b;
    };
    this.keptOfSlot = grow(this.keptOfSlot);
    this.idLoOfSlot = grow(this.idLoOfSlot);
    this.idHiOfSlot = grow(this.idHiOfSlot);
  }
}

function writeAsync(fd: number, buf: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }> {
  return new Promise((resolvePromise, reject) => {
    write(fd, buf, offset, length, null, (err, bytesWritten) => (err ? reject(err) : resolvePromise({ bytesWritten })));
  });
}

/**
 * Applies the caps to the whole directory: closed files (those with an index run) go oldest first
 * while the store is over maxBytes or their newest packet is older than maxAgeSec; the runs of
 * evicted files stay (tombstones) until they pass a sixteenth of maxBytes. Returns files deleted.
 */
export async function sweep(opts: Pick<KeepPacketsOptions, 'dir' | 'maxBytes' | 'maxAgeSec'>, nowMs = Date.now()): Promise<number> {
  const dir = resolve(opts.dir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const set = new Set(names);
  const files: { name: string; base: string; size: number; mtimeMs: number; closed: boolean }[] = [];
  const runs: { base: string; size: number; mtimeMs: number }[] = [];
  let total = 0;
  for (const name of names) {
    let st: { size: number; mtimeMs: number };
    try {
      st = await stat(join(dir, name));
    } catch {
      continue;
    }
    total += st.size;
    if (name.endsWith('.pcapng')) {
      const base = name.slice(0, -'.pcapng'.length);
      files.push({ name, base, size: st.size, mtimeMs: st.mtimeMs, closed: set.has(`${base}-0000.json`) });
    } else if (name.endsWith('-0000.bin') || name.endsWith('-0000.json')) {
      const base = name.replace(/-0000\.(bin|json)$/, '');
      runs.push({ base, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1));
  let deleted = 0;
  const evicted = new Set<string>();
  for (const f of files) {
    if (!f.closed) continue;
    const tooBig = opts.maxBytes > 0 && total > opts.maxBytes;
    const tooOld = opts.maxAgeSec > 0 && f.mtimeMs < nowMs - opts.maxAgeSec * 1000;
    if (!tooBig && !tooOld) continue;
    await rm(join(dir, f.name), { force: true });
    total -= f.size;
    evicted.add(f.base);
    deleted++;
  }
  // Tombstones: the runs whose file is gone, oldest first, while they weigh over a sixteenth of the cap.
  if (opts.maxBytes > 0) {
    const present = new Set(files.filter((f) => !evicted.has(f.base)).map((f) => f.base));
    const stones = new Map<string, { size: number; mtimeMs: number }>();
    for (const r of runs) {
      if (present.has(r.base)) continue;
      const s = stones.get(r.base) ?? { size: 0, mtimeMs: r.mtimeMs };
      s.size += r.size;
      s.mtimeMs = Math.min(s.mtimeMs, r.mtimeMs);
      stones.set(r.base, s);
    }
    let stoneBytes = [...stones.values()].reduce((a, b) => a + b.size, 0);
    for (const base of [...stones.keys()].sort((a, b) => stones.get(a)!.mtimeMs - stones.get(b)!.mtimeMs)) {
      if (stoneBytes <= opts.maxBytes / 16 && total <= opts.maxBytes) break;
      await rm(join(dir, `${base}-0000.json`), { force: true });
      await rm(join(dir, `${base}-0000.bin`), { force: true });
      stoneBytes -= stones.get(base)!.size;
      total -= stones.get(base)!.size;
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
