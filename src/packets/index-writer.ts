// Builds the packet index of an import (or of the live packet store's files): for every packet
// accounted to a flow, where its record is (file, offset, length) and its time, chained per flow.
// Per packet it writes five typed-array cells and allocates nothing; flows are told apart by the
// aggregator's slot plus the flow's id (a slot is reused once its flow ends). Memory is bounded:
// at MAX_RUN_PACKETS packets the run is written out (flows sorted by id) and a new one begins, so
// a store of many GB becomes several runs, each looked up in two small reads (see format.ts).
import { makeDirectory } from '../store/make-dir.js';
import { copyFile, open, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { PcapngSection } from '../capture/pcap-file.js';
import { growFloat64, growInt32, growUint32 } from '../flow/open-index.js';
import { DIR_ENTRY, ENTRY, FENCE_EVERY, INDEX_VERSION, compareIds, flowIdHex, type IndexedFile, type RunMeta } from './format.js';

/**
 * Packets per run: ~28 bytes each in memory while the run is built, as much again while it is
 * written (7 MiB each at this cap; at 1 << 20 the runs held ~80 MB of an import's peak).
 */
export const MAX_RUN_PACKETS = 1 << 18;
const INITIAL = 1 << 12;

/** A name safe as a file name for a run of `source` (sources are short hex-ish strings; anything else is replaced). */
export function runPrefix(source: string): string {
  return `${source.replace(/[^A-Za-z0-9_.-]/g, '_') || 'run'}-`;
}

export class PacketIndexWriter {
  readonly dir: string;
  private readonly source: string;
  private readonly node: string;
  private readonly maxRunPackets: number;
  private runNo = 0;
  /** The files of the run, each with the reader's live list of pcapng sections (it grows as the file is read). */
  private files: { file: IndexedFile; sections: readonly PcapngSection[]; live?: boolean }[] = [];
  /** Index in `files` of the file being read, -1 before beginFile. */
  private file = -1;
  /** Runs written so far. */
  runs = 0;
  /** Packets indexed over all runs. */
  packets = 0;
  /** The runs being written, one after another (see flush()). */
  private writing: Promise<void> = Promise.resolve();

  // The run being built: packets...
  private n = 0;
  private ts = new Float64Array(INITIAL);
  private offset = new Float64Array(INITIAL);
  private length = new Uint32Array(INITIAL);
  private fileOf = new Uint32Array(INITIAL);
  private next = new Int32Array(INITIAL);
  // ...flows (numbered in order of their first packet in the run)...
  private flows = 0;
  private idHi = new Uint32Array(INITIAL);
  private idLo = new Uint32Array(INITIAL);
  private head = new Int32Array(INITIAL);
  private tail = new Int32Array(INITIAL);
  private count = new Uint32Array(INITIAL);
  // ...and the run's flow of each aggregator slot (-1: none yet).
  private flowOfSlot = new Int32Array(INITIAL).fill(-1);

  /** Where imported files are copied to (import --copy-packets); undefined: indexed where they are. */
  private readonly copyTo: string | undefined;
  private copies = 0;

  /**
   * `copyTo`: each file read is first copied there and its packets indexed in the copy, so that
   * they can be extracted after the original is moved or deleted (the copy is byte for byte the
   * same, so the offsets the reader finds hold in it).
   */
  constructor(dir: string, opts: { source: string; node?: string; maxRunPackets?: number; copyTo?: string }) {
    this.dir = resolve(dir);
    this.copyTo = opts.copyTo === undefined ? undefined : resolve(opts.copyTo);
    this.source = opts.source;
    this.node = opts.node ?? '';
    this.maxRunPackets = opts.maxRunPackets ?? MAX_RUN_PACKETS;
  }

  /** Removes the runs of an earlier import of the same source (re-importing replaces, as the stores do). */
  async begin(): Promise<void> {
    makeDirectory(this.dir);
    const prefix = runPrefix(this.source);
    for (const name of await readdir(this.dir)) {
      if (name.startsWith(prefix) && (name.endsWith('.json') || name.endsWith('.bin'))) await rm(join(this.dir, name), { force: true });
    }
    if (this.copyTo !== undefined) {
      // The copies of an earlier import of the source go with its runs.
      makeDirectory(this.copyTo);
      for (const name of await readdir(this.copyTo)) if (name.startsWith(prefix)) await rm(join(this.copyTo, name), { force: true });
    }
  }

  /**
   * The packets from now on are in `path` (its format as the reader found it). A pipe or device
   * cannot be read again: its packets are not indexed.
   */
  async beginFile(path: string, format: 'pcap' | 'pcapng', sections: readonly PcapngSection[]): Promise<void> {
    this.file = -1;
    let st = await stat(path);
    if (!st.isFile()) return;
    let indexed = resolve(path);
    if (this.copyTo !== undefined) {
      indexed = join(this.copyTo, `${runPrefix(this.source)}${this.copies++}-${basename(path)}`);
      await copyFile(path, indexed);
      st = await stat(indexed);
    }
    this.files.push({ file: { path: indexed, size: st.size, mtimeMs: st.mtimeMs, format }, sections });
    this.file = this.files.length - 1;
  }

  /**
   * A pcapng file being written by the live packet store (keeper.ts): its size and time of last
   * change are taken when the run is written, once the file is closed.
   */
  beginLiveFile(path: string, sections: readonly PcapngSection[]): void {
    this.files.push({ file: { path: resolve(path), size: 0, mtimeMs: 0, format: 'pcapng', live: true }, sections, live: true });
    this.file = this.files.length - 1;
  }

  /** The file's packets are over (packets from here on, if any, are not in an indexed file). */
  endFile(): void {
    this.file = -1;
  }

  /** One packet of the flow in aggregator slot `slot` with id (idHi, idLo). */
  add(slot: number, idHi: number, idLo: number, ts: number, recordOffset: number, recordLength: number): void {
    if (this.file < 0) return;
    if (slot >= this.flowOfSlot.length) {
      const before = this.flowOfSlot.length;
      this.flowOfSlot = growInt32(this.flowOfSlot, Math.max(slot + 1, before * 2));
      this.flowOfSlot.fill(-1, before);
    }
    let fl = this.flowOfSlot[slot];
    if (fl < 0 || this.idLo[fl] !== idLo || this.idHi[fl] !== idHi) {
      fl = this.newFlow(idHi, idLo);
      this.flowOfSlot[slot] = fl;
    }
    const p = this.n;
    if (p === this.ts.length) this.growPackets();
    this.ts[p] = ts;
    this.offset[p] = recordOffset;
    this.length[p] = recordLength;
    this.fileOf[p] = this.file;
    this.next[p] = -1;
    if (this.count[fl] === 0) this.head[fl] = p;
    else this.next[this.tail[fl]] = p;
    this.tail[fl] = p;
    this.count[fl]++;
    this.n = p + 1;
  }

  /** True when the run is full: the caller calls flush() (between chunks, not per packet). */
  get full(): boolean {
    return this.n >= this.maxRunPackets;
  }

  /**
   * Writes the run built so far (if any packets) and starts a new one. The run is laid out and the
   * next one begun before this returns; the promise resolves once the run is on disk. Until then
   * more packets may be added (an import goes on decoding while the run is written: awaiting it
   * idled the import's thread ~0.2-0.5 s on the benchmark capture).
   */
  flush(): Promise<void> {
    if (this.n === 0) return this.writing;
    const order = new Uint32Array(this.flows);
    for (let i = 0; i < order.length; i++) order[i] = i;
    const { idHi, idLo } = this;
    // By id, then by first packet: a flow met twice in one run (never so far: slots are stable) stays in order.
    order.sort((a, b) => compareIds(idHi[a], idLo[a], idHi[b], idLo[b]) || a - b);

    // Directory: one entry per distinct id (consecutive equal ids merge). Laid out through
    // DataViews (little-endian, as format.ts says): Buffer's write methods cost twice as much.
    const dir = Buffer.alloc(this.flows * DIR_ENTRY);
    const entries = Buffer.allocUnsafeSlow(this.n * ENTRY);
    const dv = new DataView(dir.buffer, dir.byteOffset, dir.byteLength);
    const ev = new DataView(entries.buffer, entries.byteOffset, entries.byteLength);
    const { ts, offset, length, fileOf, next } = this;
    const fences: string[] = [];
    let dirCount = 0;
    let e = 0;
    let firstTs = Number.POSITIVE_INFINITY;
    let lastTs = Number.NEGATIVE_INFINITY;
    let d = -1;
    let flowFirst = 0;
    let flowLast = 0;
    for (let i = 0; i < order.length; i++) {
      const fl = order[i];
      if (d < 0 || dv.getUint32(d, true) !== idHi[fl] || dv.getUint32(d + 4, true) !== idLo[fl]) {
        if (d >= 0) {
          dv.setUint32(d + 12, e - dv.getUint32(d + 8, true), true);
          dv.setFloat64(d + 16, flowFirst, true);
          dv.setFloat64(d + 24, flowLast, true);
        }
        d = dirCount * DIR_ENTRY;
        if (dirCount % FENCE_EVERY === 0) fences.push(flowIdHex(idHi[fl], idLo[fl]));
        dirCount++;
        dv.setUint32(d, idHi[fl], true);
        dv.setUint32(d + 4, idLo[fl], true);
        dv.setUint32(d + 8, e, true);
        flowFirst = Number.POSITIVE_INFINITY;
        flowLast = Number.NEGATIVE_INFINITY;
      }
      for (let p = this.head[fl]; p >= 0; p = next[p]) {
        const at = e * ENTRY;
        const t = ts[p];
        ev.setFloat64(at, t, true);
        ev.setFloat64(at + 8, offset[p], true);
        ev.setUint32(at + 16, length[p], true);
        ev.setUint32(at + 20, fileOf[p], true);
        if (t < flowFirst) flowFirst = t;
        if (t > flowLast) flowLast = t;
        e++;
      }
      if (flowFirst < firstTs) firstTs = flowFirst;
      if (flowLast > lastTs) lastTs = flowLast;
    }
    if (d >= 0) {
      dv.setUint32(d + 12, e - dv.getUint32(d + 8, true), true);
      dv.setFloat64(d + 16, flowFirst, true);
      dv.setFloat64(d + 24, flowLast, true);
    }

    // What the run's files are now: pcapng section lists grow as their file is read on.
    const files = this.files.map(({ file, sections, live }) => ({
      file:
        file.format === 'pcapng'
          ? { ...file, sections: sections.map((s) => ({ offset: s.offset, length: s.length, interfaces: [...s.interfaces] })) }
          : { ...file },
      live,
    }));
    const name = `${runPrefix(this.source)}${String(this.runNo++).padStart(4, '0')}`;
    const entriesAt = dirCount * DIR_ENTRY;
    const meta: Omit<RunMeta, 'files'> = {
      version: INDEX_VERSION,
      source: this.source,
      node: this.node,
      flows: dirCount,
      packets: e,
      entriesAt,
      fences,
      firstTs,
      lastTs,
    };

    // A new run: the file being read is still the current one (its index restarts at 0).
    const current = this.file >= 0 ? this.files[this.file] : undefined;
    this.files = current ? [current] : [];
    this.file = current ? 0 : -1;
    this.n = 0;
    this.flows = 0;
    this.flowOfSlot.fill(-1);

    // Runs are written one after another, each once the one before is on disk.
    const write = this.writing.then(() => this.writeRun(name, files, meta, dir.subarray(0, entriesAt), entries.subarray(0, e * ENTRY)));
    this.writing = write.catch(() => {}); // the caller of this flush is told; the next run is still written
    return write;
  }

  private async writeRun(
    name: string,
    files: { file: IndexedFile; live?: boolean }[],
    meta: Omit<RunMeta, 'files'>,
    dir: Buffer,
    entries: Buffer,
  ): Promise<void> {
    for (const f of files) {
      if (!f.live) continue;
      // A live store's file is closed by now (keeper.ts): its size and time of last change are final.
      const st = await stat(f.file.path);
      f.file.size = st.size;
      f.file.mtimeMs = st.mtimeMs;
    }
    const bin = await open(join(this.dir, `${name}.bin`), 'w');
    try {
      await bin.write(dir, 0, dir.length, 0);
      await bin.write(entries, 0, entries.length, dir.length);
      await bin.sync();
    } finally {
      await bin.close();
    }
    const run: RunMeta = { ...meta, files: files.map((f) => f.file) };
    const tmp = join(this.dir, `${name}.json.tmp`);
    await writeFile(tmp, JSON.stringify(run));
    await rename(tmp, join(this.dir, `${name}.json`));
    this.runs++;
    this.packets += meta.packets;
  }

  private newFlow(idHi: number, idLo: number): number {
    const fl = this.flows;
    if (fl === this.idHi.length) {
      const size = fl * 2;
      this.idHi = growUint32(this.idHi, size);
      this.idLo = growUint32(this.idLo, size);
      this.head = growInt32(this.head, size);
      this.tail = growInt32(this.tail, size);
      this.count = growUint32(this.count, size);
    }
    this.idHi[fl] = idHi;
    this.idLo[fl] = idLo;
    this.count[fl] = 0;
    this.flows = fl + 1;
    return fl;
  }

  private growPackets(): void {
    const size = this.ts.length * 2;
    this.ts = growFloat64(this.ts, size);
    this.offset = growFloat64(this.offset, size);
    this.length = growUint32(this.length, size);
    this.fileOf = growUint32(this.fileOf, size);
    this.next = growInt32(this.next, size);
  }
}
