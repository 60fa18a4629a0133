/**
 * Mutations of pcap and pcapng files for fuzz tests: bit flips, byte overwrites, truncations, edits
 * of record and block length fields and timestamps, duplicated and removed records or blocks. The
 * structure (where each record or block is) comes from walking the intact file, so that the edits
 * land on the fields parsers trust most.
 */
import { concat } from './frames.js';

/** A record (classic pcap, header included) or a block (pcapng) of a capture: where it starts and its length. */
export interface Unit {
  offset: number;
  length: number;
}

export interface CaptureLayout {
  format: 'pcap' | 'pcapng';
  littleEndian: boolean;
  /** Bytes before the first unit (the pcap file header; 0 for pcapng, whose section header is a block). */
  headerLength: number;
  units: Unit[];
}

/** Walks an intact pcap or pcapng file; null for anything else. */
export function captureLayout(b: Uint8Array): CaptureLayout | null {
  if (b.length < 24) return null;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const magic = dv.getUint32(0, true);
  const units: Unit[] = [];
  if ([0xa1b2c3d4, 0xa1b23c4d, 0xd4c3b2a1, 0x4d3cb2a1].includes(magic)) {
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    for (let p = 24; p + 16 <= b.length; ) {
      const length = 16 + dv.getUint32(p + 8, le);
      units.push({ offset: p, length });
      p += length;
    }
    return { format: 'pcap', littleEndian: le, headerLength: 24, units };
  }
  if (magic !== 0x0a0d0d0a) return null;
  let le = true;
  for (let p = 0; p + 12 <= b.length; ) {
    if (dv.getUint32(p, true) === 0x0a0d0d0a) le = dv.getUint32(p + 8, true) === 0x1a2b3c4d;
    const length = dv.getUint32(p + 4, le);
    if (length < 12) break;
    units.push({ offset: p, length });
    p += length;
  }
  return { format: 'pcapng', littleEndian: le, headerLength: 0, units };
}

/** Mutation kinds, in the order mutateCapture draws them. */
export const MUTATIONS = [
  'bit-flips',
  'byte-overwrites',
  'truncate',
  'length-edit',
  'timestamp-edit',
  'duplicate-unit',
  'remove-unit',
  'insert-bytes',
  'header-edit',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

const EXTREMES = [0, 1, 3, 11, 12, 15, 16, 27, 28, 31, 32, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff, 65535, 65536, 262144, 64 << 20, (64 << 20) + 4];

/**
 * One to three mutations of `seed` drawn with `r`; returns the new bytes and what was done (to name
 * a failing case). The seed is not changed.
 */
export function mutateCapture(seed: Uint8Array, layout: CaptureLayout | null, r: () => number): { bytes: Uint8Array; what: string } {
  let b: Uint8Array = Uint8Array.from(seed);
  const done: string[] = [];
  const pick = (n: number) => Math.floor(r() * n);
  const units = layout?.units ?? [];
  const unit = () => units[pick(units.length)];
  for (let k = 0, n = 1 + pick(3); k < n && b.length > 0; k++) {
    const kind: Mutation = MUTATIONS[pick(MUTATIONS.length)];
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const le = layout?.littleEndian ?? true;
    const setU32 = (at: number, v: number) => {
      if (at >= 0 && at + 4 <= b.length) dv.setUint32(at, v >>> 0, le);
    };
    switch (kind) {
      case 'bit-flips':
        for (let i = 0, m = 1 + pick(8); i < m; i++) b[pick(b.length)] ^= 1 << pick(8);
        done.push(kind);
        break;
      case 'byte-overwrites':
        for (let i = 0, m = 1 + pick(8); i < m; i++) b[pick(b.length)] = pick(256);
        done.push(kind);
        break;
      case 'truncate': {
        const at = pick(b.length);
        b = b.subarray(0, at);
        done.push(`truncate@${at}`);
        break;
      }
      case 'length-edit': {
        if (!units.length) break;
        const u = unit();
        const v = r() < 0.6 ? EXTREMES[pick(EXTREMES.length)] : pick(2 * u.length + 64);
        // pcap: the captured (or original) length; pcapng: the leading or trailing block length, or a packet block's captured length.
        const at = layout?.format === 'pcap' ? u.offset + (r() < 0.8 ? 8 : 12) : [u.offset + 4, u.offset + u.length - 4, u.offset + 20, u.offset + 24][pick(4)];
        setU32(at, v);
        done.push(`length-edit@${at}=${v}`);
        break;
      }
      case 'timestamp-edit': {
        if (!units.length) break;
        const u = unit();
        const at = layout?.format === 'pcap' ? u.offset + pick(2) * 4 : u.offset + 12 + pick(2) * 4;
        const v = r() < 0.7 ? [0, 0xffffffff, 0x7fffffff, 1_000_000, 999_999, 1_000_000_000][pick(6)] : pick(4294967296);
        setU32(at, v);
        done.push(`timestamp-edit@${at}=${v}`);
        break;
      }
      case 'duplicate-unit': {
        if (!units.length) break;
        const u = unit();
        const end = Math.min(u.offset + u.length, b.length);
        const at = layout!.headerLength + pick(Math.max(1, b.length - layout!.headerLength));
        b = concat(b.subarray(0, at), b.slice(u.offset, end), b.subarray(at));
        done.push(`duplicate@${u.offset}->${at}`);
        break;
      }
      case 'remove-unit': {
        if (!units.length) break;
        const u = unit();
        b = concat(b.subarray(0, u.offset), b.subarray(Math.min(u.offset + u.length, b.length)));
        done.push(`remove@${u.offset}`);
        break;
      }
      case 'insert-bytes': {
        const at = pick(b.length);
        const junk = Uint8Array.from({ length: 1 + pick(40) }, () => pick(256));
        b = concat(b.subarray(0, at), junk, b.subarray(at));
        done.push(`insert@${at}+${junk.length}`);
        break;
      }
      case 'header-edit': {
        // The file header (pcap: version, snaplen, link type) or a section/interface block's fields.
        const at = layout?.format === 'pcap' ? 4 + pick(20) : units.length ? unit().offset + 8 + pick(16) : pick(b.length);
        if (at < b.length) b[at] = r() < 0.5 ? pick(256) : [0, 0x7f, 0x80, 0xff][pick(4)];
        done.push(`header-edit@${at}`);
        break;
      }
    }
  }
  return { bytes: b, what: done.join(' ') || 'none' };
}
