// Index compaction: merges consecutive runs of a packet index directory (format.ts) into one larger
// sorted run, so that a lookup reads a handful of runs however many files were indexed (a live
// store writes one run per rotated file: a fresh reader of a store of a few GB paid a meta read and
// two reads per run, ~60 ms at 55 runs, growing with them).
//
// Tiered: FAN_IN consecutive runs of one level become one run of the next level, so each packet's
// entry is rewritten log_FAN_IN(runs) times at most, and a store holds fewer than FAN_IN runs per
// level. The merge streams: the sources' directories (32 bytes a flow) are merged in memory, and
// their packet entries, which each source lays out in directory order, are read sequentially
// through one buffer per source while the merged directory is walked; memory does not grow with
// the runs' packets.
//
// Atomic, and safe against a reader and a crash:
//   1. the merged run is written under a new name (<first source>+c<level>): .bin, synced, then
//      its .json by rename, which names the sources it `replaces`;
//   2. readers (index-reader.ts) hide every run a complete run replaces: from the rename on, they
//      see the merged run alone, never both (no packet twice), never neither (none lost);
//   3. the sources are deleted afterwards, .json first; a reader that listed them before and finds
//      their .bin gone lists again (index-reader.ts) and finds the merged run.
// A crash before 1 ends leaves a .bin without .json (ignored by readers, removed by the next
// compaction); after it, sources that are replaced (removed by the next compaction).
// Packets keep their order: the merged run sorts where its first source did, before the next run,
// and each flow's entries are the sources' in the sources' order.
import { open, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DIR_ENTRY, ENTRY, FENCE_EVERY, INDEX_VERSION, compareIds, flowIdHex, type RunMeta } from './format.js';

/** Runs of one level merged into one of the next. */
export const FAN_IN = 8;
/** Bytes read from each source's entries at a time. */
const READ_CHUNK = 1 << 20;
/** Bytes of merged entries written at a time. */
const WRITE_CHUNK = 4 << 20;

export interface CompactOptions {
  /** Only the runs whose name starts with this (a live store's writer compacts its own runs). */
  prefix?: string;
  /** Runs of a level merged at once (default FAN_IN). */
  fanIn?: number;
  /** Merge every run of the prefix into one, whatever their levels (an import's end, the bench). */
  full?: boolean;
}

interface Source {
  name: string;
  meta: RunMeta;
}

/** A run's level: 0 as written, n + 1 once made of runs of level n. */
const levelOf = (meta: RunMeta) => meta.level ?? 0;

/** Removes what a crash or an earlier compaction left: replaced runs, and merged .bin files without their .json. */
async function cleanUp(dir: string, names: Set<string>, metas: Map<string, RunMeta>): Promise<void> {
  const replaced = new Set<string>();
  for (const meta of metas.values()) for (const r of meta.replaces ?? []) replaced.add(r);
  for (const r of replaced) {
    if (!names.has(`${r}.json`) && !names.has(`${r}.bin`)) continue;
    await rm(join(dir, `${r}.json`), { force: true });
    await rm(join(dir, `${r}.bin`), { force: true });
    metas.delete(r);
  }
  for (const n of names) {
    if (!n.endsWith('.bin') || !n.includes('+c')) continue;
    const run = n.slice(0, -'.bin'.length);
    if (!names.has(`${run}.json`) && !names.has(`${run}.json.tmp`)) await rm(join(dir, n), { force: true });
  }
}

async function readMetas(dir: string, names: Set<string>, prefix: string): Promise<Map<string, RunMeta>> {
  const metas = new Map<string, RunMeta>();
  for (const n of [...names].sort()) {
    if (!n.endsWith('.json') || !n.startsWith(prefix)) continue;
    try {
      const meta = JSON.parse(await readFile(join(dir, n), 'utf8')) as RunMeta;
      if (meta.version === INDEX_VERSION) metas.set(n.slice(0, -'.json'.length), meta);
    } catch {
      // removed meanwhile (a sweep, a re-import)
    }
  }
  return metas;
}

/** Merges runs of `dir` as the options say; returns how many merged runs were written. */
export async function compactIndex(dirIn: string, opts: CompactOptions = {}): Promise<number> {
  const dir = resolve(dirIn);
  const prefix = opts.prefix ?? '';
  const fanIn = Math.max(2, opts.fanIn ?? FAN_IN);
  let names: Set<string>;
  try {
    names = new Set(await readdir(dir));
  } catch {
    return 0;
  }
  const metas = await readMetas(dir, names, prefix);
  await cleanUp(dir, names, metas);
  const runs: Source[] = [...metas.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([name, meta]) => ({ name, meta }));
  let written = 0;
  if (opts.full) {
    if (runs.length < 2) return 0;
    await mergeRuns(dir, runs, Math.max(...runs.map((r) => levelOf(r.meta))) + 1);
    return 1;
  }
  // Consecutive runs of one level, FAN_IN at a time; levels are merged upwards in one call.
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = 0; i + fanIn <= runs.length; i++) {
      const level = levelOf(runs[i].meta);
      const group = runs.slice(i, i + fanIn);
      if (!group.every((r) => levelOf(r.meta) === level)) continue;
      const merged = await mergeRuns(dir, group, level + 1);
      runs.splice(i, fanIn, merged);
      written++;
      changed = true;
      break;
    }
  }
  return written;
}

/** Reads a source's packet entries front to back. */
class EntryStream {
  private buf = Buffer.allocUnsafe(0);
  private at = 0;
  private pos: number;

  constructor(
    private readonly fh: Awaited<ReturnType<typeof open>>,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  /** The next `n` entries (valid until the next call). */
  async take(n: number): Promise<{ buf: Buffer; at: number }> {
    const bytes = n * ENTRY;
    if (this.at + bytes > this.buf.length) {
      const rest = this.buf.subarray(this.at);
      const want = Math.max(bytes, Math.min(READ_CHUNK, this.end - this.pos + rest.length));
      const next = Buffer.allocUnsafe(want);
      rest.copy(next, 0);
      let filled = rest.length;
      while (filled < bytes || (filled < want && this.pos < this.end)) {
        const { bytesRead } = await this.fh.read(next, filled, Math.min(want - filled, this.end - this.pos), this.pos);
        if (bytesRead === 0) throw new Error('packet index: a run cut short while compacting');
        filled += bytesRead;
        this.pos += bytesRead;
      }
      this.buf = next.subarray(0, filled);
      this.at = 0;
    }
    const out = { buf: this.buf, at: this.at };
    this.at += bytes;
    return out;
  }
}

/** Writes the merged run of `group` (consecutive runs, in name order), then deletes them. */
async function mergeRuns(dir: string, group: Source[], level: number): Promise<Source> {
  const base = group[0].name.replace(/\+c\d+$/, '');
  const name = `${base}+c${level}`;
  const handles: Awaited<ReturnType<typeof open>>[] = [];
  try {
    // The sources' directories, and where each one's files begin in the merged list.
    const dirs: Buffer[] = [];
    const fileBase: number[] = [];
    let files = 0;
    for (const s of group) {
      const fh = await open(join(dir, `${s.name}.bin`), 'r');
      handles.push(fh);
      const d = Buffer.allocUnsafe(s.meta.flows * DIR_ENTRY);
      await readAll(fh, d, 0);
      dirs.push(d);
      fileBase.push(files);
      files += s.meta.files.length;
    }
    // Pass 1: the merged directory (a k-way merge by id; equal ids, in source order, become one flow).
    const k = group.length;
    const cursor = new Array<number>(k).fill(0);
    const total = group.reduce((n, s) => n + s.meta.flows, 0);
    const out = Buffer.alloc(total * DIR_ENTRY);
    /** For each merged flow, the sources holding it and how many entries each: [source, count, ...]. */
    const holders: number[][] = [];
    const fences: string[] = [];
    let flows = 0;
    let entries = 0;
    for (;;) {
      let best = -1;
      for (let s = 0; s < k; s++) {
        if (cursor[s] >= group[s].meta.flows) continue;
        const d = dirs[s];
        const at = cursor[s] * DIR_ENTRY;
        if (best < 0) best = s;
        else {
          const bAt = cursor[best] * DIR_ENTRY;
          if (compareIds(d.readUInt32LE(at), d.readUInt32LE(at + 4), dirs[best].readUInt32LE(bAt), dirs[best].readUInt32LE(bAt + 4)) < 0) best = s;
        }
      }
      if (best < 0) break;
      const hi = dirs[best].readUInt32LE(cursor[best] * DIR_ENTRY);
      const lo = dirs[best].readUInt32LE(cursor[best] * DIR_ENTRY + 4);
      const o = flows * DIR_ENTRY;
      if (flows % FENCE_EVERY === 0) fences.push(flowIdHex(hi, lo));
      let count = 0;
      let first = Number.POSITIVE_INFINITY;
      let last = Number.NEGATIVE_INFINITY;
      const from: number[] = [];
      for (let s = 0; s < k; s++) {
        // A source may hold the id more than once (never so far): all its entries, in order.
        while (cursor[s] < group[s].meta.flows) {
          const at = cursor[s] * DIR_ENTRY;
          if (dirs[s].readUInt32LE(at) !== hi || dirs[s].readUInt32LE(at + 4) !== lo) break;
          count += dirs[s].readUInt32LE(at + 12);
          first = Math.min(first, dirs[s].readDoubleLE(at + 16));
          last = Math.max(last, dirs[s].readDoubleLE(at + 24));
          from.push(s, dirs[s].readUInt32LE(at + 12));
          cursor[s]++;
        }
      }
      out.writeUInt32LE(hi, o);
      out.writeUInt32LE(lo, o + 4);
      out.writeUInt32LE(entries, o + 8);
      out.writeUInt32LE(count, o + 12);
      out.writeDoubleLE(first, o + 16);
      out.writeDoubleLE(last, o + 24);
      holders.push(from);
      entries += count;
      flows++;
    }
    // Pass 2: the entries, each source read front to back, file numbers moved to the merged list.
    const entriesAt = flows * DIR_ENTRY;
    const streams = group.map((s, i) => new EntryStream(handles[i], s.meta.entriesAt, s.meta.entriesAt + s.meta.packets * ENTRY));
    const tmpBin = join(dir, `${name}.bin`);
    const bin = await open(tmpBin, 'w');
    try {
      await bin.write(out, 0, entriesAt, 0);
      let pos = entriesAt;
      const chunk = Buffer.allocUnsafe(WRITE_CHUNK);
      let used = 0;
      for (const from of holders) {
        for (let j = 0; j < from.length; j += 2) {
          const s = from[j];
          const n = from[j + 1];
          for (let left = n; left > 0; ) {
            const take = Math.min(left, Math.floor(WRITE_CHUNK / ENTRY));
            if (used + take * ENTRY > WRITE_CHUNK) {
              await bin.write(chunk, 0, used, pos);
              pos += used;
              used = 0;
            }
            const { buf, at } = await streams[s].take(take);
            buf.copy(chunk, used, at, at + take * ENTRY);
            if (fileBase[s] > 0)
              for (let e = 0; e < take; e++) chunk.writeUInt32LE(chunk.readUInt32LE(used + e * ENTRY + 20) + fileBase[s], used + e * ENTRY + 20);
            used += take * ENTRY;
            left -= take;
          }
        }
      }
      if (used > 0) await bin.write(chunk, 0, used, pos);
      await bin.sync();
    } finally {
      await bin.close();
    }
    const meta: RunMeta = {
      version: INDEX_VERSION,
      source: group[0].meta.source,
      node: group[0].meta.node,
      files: group.flatMap((s) => s.meta.files),
      flows,
      packets: entries,
      entriesAt,
      fences,
      firstTs: Math.min(...group.map((s) => s.meta.firstTs)),
      lastTs: Math.max(...group.map((s) => s.meta.lastTs)),
      level,
      replaces: group.map((s) => s.name),
    };
    const tmp = join(dir, `${name}.json.tmp`);
    await writeFile(tmp, JSON.stringify(meta));
    await rename(tmp, join(dir, `${name}.json`));
    // From here readers see the merged run alone: the sources can go (.json first).
    for (const s of group) {
      await rm(join(dir, `${s.name}.json`), { force: true });
      await rm(join(dir, `${s.name}.bin`), { force: true });
    }
    return { name, meta };
  } finally {
    for (const fh of handles) await fh.close();
  }
}

async function readAll(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error('packet index: a run cut short while compacting');
    done += bytesRead;
  }
}
