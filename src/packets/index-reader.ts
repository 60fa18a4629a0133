// Looks flows up in a packet index directory (format.ts): per run, the fence list (in the run's
// meta, read once and cached) names the one directory block that can hold the flow id; one read
// of that block and one read of the flow's packet entries follow. A lookup thus costs two small
// reads per run, whatever the size of the store.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DIR_ENTRY, ENTRY, FENCE_EVERY, INDEX_VERSION, compareIds, parseFlowId, type IndexedFile, type RunMeta } from './format.js';

/** Where one packet's record is. */
export interface PacketRef {
  ts: number;
  file: IndexedFile;
  offset: number;
  length: number;
}

export interface Run {
  name: string;
  mtimeMs: number;
  meta: RunMeta;
  /** Fences as id halves, for the binary search. */
  fenceHi: Uint32Array;
  fenceLo: Uint32Array;
}

/** The directory is listed again after this long (a page of flows asks once per flow). */
const LIST_TTL_MS = 1000;

export class PacketIndexReader {
  readonly dir: string;
  private cache = new Map<string, Run>();
  private listed: { at: number; runs: Promise<Run[]> } | null = null;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** The complete runs of the directory, oldest name first; listed at most once a second. */
  runs(): Promise<Run[]> {
    const now = Date.now();
    if (!this.listed || now - this.listed.at > LIST_TTL_MS) {
      const runs = this.list();
      this.listed = { at: now, runs };
      runs.catch(() => {
        if (this.listed?.runs === runs) this.listed = null;
      });
    }
    return this.listed.runs;
  }

  /** Lists the directory (a run's meta is re-read when it changed). */
  private async list(attempt = 0): Promise<Run[]> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.json')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const live = new Set(names.map((file) => file.slice(0, -'.json'.length)));
    // The metas are read together: a fresh reader (a new `flowlens pcap`) of a store of many runs
    // paid one round of stat and read per run, one after the other.
    const found = await mapBounded([...live], (name) => this.readRun(name));
    // A run gone between the listing and its read (merged into one the listing missed): list again.
    if (attempt < 2 && found.includes(undefined)) return this.list(attempt + 1);
    // A compacted run hides the runs it was merged from while they are still there (compact.ts).
    const replaced = new Set(found.flatMap((r) => r?.meta.replaces ?? []));
    const runs = found.filter((r): r is Run => r != null && !replaced.has(r.name));
    for (const name of this.cache.keys()) if (!live.has(name)) this.cache.delete(name);
    return runs;
  }

  /** A run's meta (re-read when it changed); undefined when it is gone meanwhile, null when of another version. */
  private async readRun(name: string): Promise<Run | null | undefined> {
    let st: { mtimeMs: number };
    try {
      st = await stat(join(this.dir, `${name}.json`));
    } catch {
      return undefined; // removed meanwhile (a re-import replacing it, a compaction)
    }
    let run = this.cache.get(name);
    if (!run || run.mtimeMs !== st.mtimeMs) {
      let meta: RunMeta;
      try {
        meta = JSON.parse(await readFile(join(this.dir, `${name}.json`), 'utf8')) as RunMeta;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      if (meta.version !== INDEX_VERSION) return null;
      const fenceHi = new Uint32Array(meta.fences.length);
      const fenceLo = new Uint32Array(meta.fences.length);
      meta.fences.forEach((id, i) => {
        const parsed = parseFlowId(id);
        if (parsed) {
          fenceHi[i] = parsed.hi;
          fenceLo[i] = parsed.lo;
        }
      });
      run = { name, mtimeMs: st.mtimeMs, meta, fenceHi, fenceLo };
      this.cache.set(name, run);
    }
    return run;
  }

  /**
   * The packets of a flow in the order they were read (runs in name order, which is the order
   * they were written). Throws on an id that is not 16 hex digits.
   */
  async lookup(flowId: string): Promise<PacketRef[]> {
    const id = parseFlowId(flowId);
    if (!id) throw new Error(`not a flow id: '${flowId}' (16 hex digits)`);
    for (let attempt = 0; ; attempt++) {
      const out: PacketRef[] = [];
      let complete = true;
      for (const run of await this.runs()) if (!(await this.lookupRun(run, id.hi, id.lo, out))) complete = false;
      if (complete || attempt === 2) return out;
      // A run went while we read (compacted into another, or a re-import): the listing again.
      this.listed = null;
    }
  }

  /** Appends the flow's packets in `run` to `out`; false when the run is gone. */
  private async lookupRun(run: Run, hi: number, lo: number, out: PacketRef[]): Promise<boolean> {
    const { fenceHi, fenceLo, meta } = run;
    // The last fence <= id names the block.
    let a = 0;
    let b = fenceHi.length - 1;
    if (b < 0 || compareIds(hi, lo, fenceHi[0], fenceLo[0]) < 0) return true;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (compareIds(fenceHi[m], fenceLo[m], hi, lo) <= 0) a = m;
      else b = m - 1;
    }
    const first = a * FENCE_EVERY;
    const n = Math.min(FENCE_EVERY, meta.flows - first);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(join(this.dir, `${run.name}.bin`), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false; // replaced meanwhile
      throw err;
    }
    try {
      const block = Buffer.allocUnsafe(n * DIR_ENTRY);
      await readFully(fh, block, first * DIR_ENTRY);
      let lo2 = 0;
      let hi2 = n - 1;
      let found = -1;
      while (lo2 <= hi2) {
        const m = (lo2 + hi2) >> 1;
        const c = compareIds(block.readUInt32LE(m * DIR_ENTRY), block.readUInt32LE(m * DIR_ENTRY + 4), hi, lo);
        if (c === 0) {
          found = m;
          break;
        }
        if (c < 0) lo2 = m + 1;
        else hi2 = m - 1;
      }
      if (found < 0) return true;
      const start = block.readUInt32LE(found * DIR_ENTRY + 8);
      const count = block.readUInt32LE(found * DIR_ENTRY + 12);
      const entries = Buffer.allocUnsafe(count * ENTRY);
      await readFully(fh, entries, meta.entriesAt + start * ENTRY);
      for (let i = 0; i < count; i++) {
        const at = i * ENTRY;
        out.push({
          ts: entries.readDoubleLE(at),
          offset: entries.readDoubleLE(at + 8),
          length: entries.readUInt32LE(at + 16),
          file: meta.files[entries.readUInt32LE(at + 20)],
        });
      }
      return true;
    } finally {
      await fh.close();
    }
  }
}

/** Files open at once in one listing or lookup (a store may hold hundreds of runs). */
const PARALLEL_READS = 32;

/** `fn` over `items`, at most PARALLEL_READS at a time; results in the items' order. */
async function mapBounded<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, items.length) }, worker));
  return out;
}

async function readFully(fh: Awaited<ReturnType<typeof open>>, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new Error(`packet index: ${buf.length - done} bytes missing at ${position + done} (a run cut short)`);
    done += bytesRead;
  }
}
