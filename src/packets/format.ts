// The packet index on disk. A directory holds runs; a run is two files:
//   <name>.bin  the flows of the run sorted by flow id (DIR_ENTRY bytes each), then their packets
//               (ENTRY bytes each), every flow's packets together and in the order they were read;
//   <name>.json the run's meta: the capture files its packets are in, how many flows and packets,
//               and a fence (the flow id of every FENCE_EVERY-th flow) so that a lookup reads one
//               block of the directory and one run of packets, whatever the size of the store.
// The .json is written last (by rename), so a run without one is incomplete and ignored.
import type { PcapngSection } from '../capture/pcap-file.js';

export const INDEX_VERSION = 1;
/** idHi u32, idLo u32, first packet u32, packets u32, first ts f64, last ts f64. */
export const DIR_ENTRY = 32;
/** ts f64, record offset f64, record length u32, file u32. */
export const ENTRY = 24;
/** A fence id every this many flows: a lookup reads at most this many directory entries. */
export const FENCE_EVERY = 256;

/** A capture file the run's packets are in, as it was when they were indexed. */
export interface IndexedFile {
  path: string;
  size: number;
  mtimeMs: number;
  format: 'pcap' | 'pcapng';
  /**
   * Written by the live packet store, which keeps packets in its socket's order: a few µs off time
   * order across a flow's two directions. Extraction puts such packets in time order; an imported
   * capture's keep the file's own order (what `tshark -Y ... -w` writes).
   */
  live?: boolean;
  /** pcapng: its sections' header and interface blocks (offsets and lengths). */
  sections?: PcapngSection[];
}

export interface RunMeta {
  version: number;
  /** The run's source (src/capture/source.ts): a re-import of the same files replaces its runs. */
  source: string;
  node: string;
  files: IndexedFile[];
  flows: number;
  packets: number;
  /** Byte offset of the packets in the .bin (after the directory). */
  entriesAt: number;
  /** Flow ids (16 hex digits) of directory entries 0, FENCE_EVERY, 2 * FENCE_EVERY, ... */
  fences: string[];
  /** Time of the first and last packet of the run (µs). */
  firstTs: number;
  lastTs: number;
  /** Compaction (compact.ts): 0 or absent as written, n + 1 for a run merged from runs of level n... */
  level?: number;
  /** ...and the runs it was merged from: readers ignore them while they are still there. */
  replaces?: string[];
}

/** A flow id as the stores carry it (16 hex digits) to its two 32-bit halves; null when it is not one. */
export function parseFlowId(id: string): { hi: number; lo: number } | null {
  if (!/^[0-9a-f]{16}$/.test(id)) return null;
  return { hi: Number.parseInt(id.slice(0, 8), 16), lo: Number.parseInt(id.slice(8), 16) };
}

export function flowIdHex(hi: number, lo: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/** Orders flow ids as the directory is sorted: by the high half, then the low half (unsigned). */
export function compareIds(aHi: number, aLo: number, bHi: number, bLo: number): number {
  return aHi !== bHi ? (aHi >>> 0) - (bHi >>> 0) : (aLo >>> 0) - (bLo >>> 0);
}
