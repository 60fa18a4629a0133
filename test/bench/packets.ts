// The packet store (#26): how fast the live store (src/packets/keeper.ts) writes packets, beside
// `tcpdump -r CAPTURE -w FILE` on the same input; and how long extracting one flow of about 1,000
// packets takes (index lookup + reading its packets, as `flowlens pcap --flow` and /pcap do) from a
// store of a few GB built from the bench capture repeated, against the same from a store of one copy:
// the index makes it depend on the flow's size, not the store's.
//
// The store is fed as a capture worker feeds it: packets in batches (a ring drain), the event loop
// let run between batches (the store's buffers are written in libuv's thread pool meanwhile). The
// flow ids are worked out before the timed part (a hash of the canonical 5-tuple: the bench times
// the store, not the flow table). Everything is written under test/.cache and removed afterwards.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodePacket, DecodedPacket } from '../../src/decode/index.js';
import { KIND_NON_IP } from '../../src/decode/packet.js';
import { extractPackets } from '../../src/packets/extract.js';
import { PacketIndexReader } from '../../src/packets/index-reader.js';
import { flowIdHex } from '../../src/packets/format.js';
import { DEFAULT_KEEP, PacketKeeper, type KeeperStats } from '../../src/packets/keeper.js';
import { REPO_ROOT } from './flowlens.js';
import { median } from './measure.js';

/** Packets handed to the store between two turns of the event loop (a ring drain of the worker). */
const BATCH = 1024;
const TARGET_EXTRACT_MS = 100;
/**
 * The live store's defaults, no size cap, and files rotated by size only: the bench plays minutes
 * of capture in seconds, and at a rate this high a live store's files fill (64 MiB) long before
 * their minute is up.
 */
const STORE = (dir: string) => ({ ...DEFAULT_KEEP, dir, maxBytes: 0, fileSeconds: 1e9 });

export interface PacketsBenchOptions {
  /** A classic pcap (the bench capture). */
  capture: string;
  /** Size of the large store, bytes. */
  storeBytes: number;
  /** Timed runs of each figure (medians). */
  runs: number;
  log: (msg: string) => void;
}

interface Parsed {
  linkType: number;
  data: Buffer;
  /** Record offsets in `data` (the 16-byte record header's). */
  offsets: Float64Array;
  ts: Float64Array;
  idHi: Uint32Array;
  idLo: Uint32Array;
  slot: Uint32Array;
  flows: number;
  /** Packets of each slot. */
  packetsOfSlot: Uint32Array;
}

export interface WriteFigure {
  packetsPerSecond: number;
  cpuPacketsPerSecond: number;
  mbPerSecond: number;
  stats: KeeperStats;
}

export interface PacketsBenchResult {
  packets: number;
  captureBytes: number;
  write: WriteFigure[];
  tcpdump: { packetsPerSecond: number; cpuPacketsPerSecond: number }[];
  flowPackets: number;
  small: { storeBytes: number; runs: number; warmMs: number[]; coldMs: number };
  large: { storeBytes: number; runs: number; warmMs: number[]; coldMs: number };
}

function fnv(h: number, x: number): number {
  h ^= x & 0xff;
  h = Math.imul(h, 16777619);
  h ^= (x >>> 8) & 0xff;
  h = Math.imul(h, 16777619);
  h ^= (x >>> 16) & 0xff;
  h = Math.imul(h, 16777619);
  h ^= x >>> 24;
  return Math.imul(h, 16777619) >>> 0;
}

/** Reads a little-endian µs classic pcap (what make-bench-pcap.sh writes) and gives each packet a flow. */
export function parseCapture(path: string): Parsed {
  const data = readFileSync(path);
  if (data.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error(`${path}: not a little-endian microsecond pcap`);
  const linkType = data.readUInt32LE(20) & 0xffff;
  let n = 0;
  for (let at = 24; at + 16 <= data.length; at += 16 + data.readUInt32LE(at + 8)) n++;
  const offsets = new Float64Array(n);
  const ts = new Float64Array(n);
  const idHi = new Uint32Array(n);
  const idLo = new Uint32Array(n);
  const slot = new Uint32Array(n);
  const slots = new Map<string, number>();
  const pkt = new DecodedPacket();
  let i = 0;
  for (let at = 24; i < n; at += 16 + data.readUInt32LE(at + 8), i++) {
    offsets[i] = at;
    ts[i] = data.readUInt32LE(at) * 1e6 + data.readUInt32LE(at + 4);
    const caplen = data.readUInt32LE(at + 8);
    decodePacket(linkType, data, at + 16, at + 16 + caplen, data.readUInt32LE(at + 12), pkt);
    let a = 0;
    let b = 0;
    if (pkt.kind !== KIND_NON_IP && pkt.ipVersion !== 0) {
      // Canonical: the lower (address, port) end first.
      let ha = 2166136261;
      let hb = 2166136261;
      for (let w = 0; w < 4; w++) {
        ha = fnv(ha, pkt.src[w]);
        hb = fnv(hb, pkt.dst[w]);
      }
      ha = fnv(ha, pkt.srcPort);
      hb = fnv(hb, pkt.dstPort);
      a = Math.min(ha, hb);
      b = Math.max(ha, hb);
    }
    const key = `${a}:${b}:${pkt.ipProto}`;
    let s = slots.get(key);
    if (s === undefined) {
      s = slots.size;
      slots.set(key, s);
    }
    slot[i] = s;
    idHi[i] = fnv(fnv(2166136261, a), b ^ pkt.ipProto);
    idLo[i] = fnv(fnv(0x811c9dc5 ^ 0x5bd1e995, b), a);
  }
  const packetsOfSlot = new Uint32Array(slots.size);
  for (let k = 0; k < n; k++) packetsOfSlot[slot[k]]++;
  return { linkType, data, offsets, ts, idHi, idLo, slot, flows: slots.size, packetsOfSlot };
}

const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Copy `copy` of the capture: its times shifted past the previous copies, its flow ids changed. */
export async function feed(keeper: PacketKeeper, p: Parsed, copy: number, span: number): Promise<void> {
  const shift = copy * span;
  const mix = Math.imul(copy, 0x9e3779b1) >>> 0;
  const n = p.offsets.length;
  for (let i = 0; i < n; i++) {
    const at = p.offsets[i];
    // The bench measures how fast the store writes: it waits for the disk instead of dropping.
    if (keeper.saturated) await keeper.writable();
    keeper.add(
      p.slot[i],
      (p.idHi[i] ^ mix) >>> 0,
      p.idLo[i],
      p.ts[i] + shift,
      p.linkType,
      0,
      p.data,
      at + 16,
      p.data.readUInt32LE(at + 8),
      p.data.readUInt32LE(at + 12),
    );
    if ((i & (BATCH - 1)) === BATCH - 1) await yieldToLoop();
  }
}

function storeSize(dir: string): number {
  const r = spawnSync('du', ['-sb', dir], { encoding: 'utf8' });
  return Number(r.stdout.split('\t')[0]);
}

/** Writes the capture once into a fresh store: packets per second (wall and CPU of this process, the writer threads included). */
async function measureWrite(p: Parsed, dir: string): Promise<WriteFigure> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const keeper = new PacketKeeper(STORE(dir), 'bench', ['bench']);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await feed(keeper, p, 0, 0);
  await keeper.close();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  rmSync(dir, { recursive: true, force: true });
  return {
    packetsPerSecond: keeper.stats.kept / seconds,
    cpuPacketsPerSecond: keeper.stats.kept / cpuSeconds,
    mbPerSecond: keeper.stats.bytes / 1e6 / seconds,
    stats: { ...keeper.stats },
  };
}

/** `tcpdump -r CAPTURE -w FILE`: wall and CPU (bash's `time`). */
function measureTcpdump(capture: string, out: string, packets: number): { packetsPerSecond: number; cpuPacketsPerSecond: number } {
  const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%R %U %S"; time tcpdump -r "$1" -w "$2" 2>/dev/null', 'bash', capture, out], { encoding: 'utf8' });
  rmSync(out, { force: true });
  const [real, user, sys] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  if (r.status !== 0 || !(real > 0)) throw new Error(`tcpdump failed: ${r.stderr}`);
  return { packetsPerSecond: packets / real, cpuPacketsPerSecond: packets / (user + sys) };
}

/** One extraction of the flow (lookup + read + write to a counting sink): ms and packets. */
async function extractOnce(reader: PacketIndexReader, flowId: string): Promise<{ ms: number; packets: number }> {
  const t0 = process.hrtime.bigint();
  const refs = await reader.lookup(flowId);
  let bytes = 0;
  const r = await extractPackets(refs, (chunk) => {
    bytes += chunk.length;
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (bytes === 0) throw new Error('nothing extracted');
  return { ms, packets: r.packets };
}

async function measureExtract(dir: string, flowId: string, runs: number, expectPackets: number) {
  // Cold: a fresh reader (lists the directory, reads each run's meta) as a new `flowlens pcap` does.
  const cold = await extractOnce(new PacketIndexReader(dir), flowId);
  if (cold.packets !== expectPackets) throw new Error(`extracted ${cold.packets} packets, the flow has ${expectPackets}`);
  // Warm: the server's reader (metas cached).
  const reader = new PacketIndexReader(dir);
  await extractOnce(reader, flowId);
  const warmMs: number[] = [];
  for (let i = 0; i < runs; i++) warmMs.push((await extractOnce(reader, flowId)).ms);
  return { storeBytes: storeSize(dir), runs: (await reader.runs()).length, warmMs, coldMs: cold.ms };
}

export async function runPacketsBench(opts: PacketsBenchOptions): Promise<PacketsBenchResult> {
  const { log } = opts;
  const base = join(REPO_ROOT, 'test', '.cache', `packets-bench-${process.pid}`);
  log(`packet store: reading ${opts.capture} and working out its flows...`);
  const p = parseCapture(opts.capture);
  const n = p.offsets.length;
  mkdirSync(base, { recursive: true });
  try {
    const write: WriteFigure[] = [];
    const tcpdump: { packetsPerSecond: number; cpuPacketsPerSecond: number }[] = [];
    for (let i = 0; i < opts.runs; i++) {
      tcpdump.push(measureTcpdump(opts.capture, join(base, 'tcpdump.pcap'), n));
      const w = await measureWrite(p, join(base, 'write'));
      write.push(w);
      log(
        `  run ${i + 1}/${opts.runs}: store ${Math.round(w.packetsPerSecond).toLocaleString('en-US')} packets/s (${w.stats.kept} kept, ${w.stats.dropped} dropped), tcpdump -w ${Math.round(tcpdump[i].packetsPerSecond).toLocaleString('en-US')} packets/s`,
      );
    }

    // The flow closest to 1,000 packets (at least 1,000 when there is one).
    let best = -1;
    for (let s = 0; s < p.flows; s++) {
      const c = p.packetsOfSlot[s];
      const score = (c >= 1000 ? 0 : 1e9) + Math.abs(c - 1000);
      if (best < 0 || score < (p.packetsOfSlot[best] >= 1000 ? 0 : 1e9) + Math.abs(p.packetsOfSlot[best] - 1000)) best = s;
    }
    const first = p.slot.indexOf(best);
    const flowId = flowIdHex(p.idHi[first], p.idLo[first]);
    const flowPackets = p.packetsOfSlot[best];
    const span = p.ts[n - 1] - p.ts[0] + 1e6;

    const dir = join(base, 'store');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const keeper = new PacketKeeper(STORE(dir), 'bench', ['bench']);
    await feed(keeper, p, 0, span);
    await keeper.close();
    if (keeper.stats.dropped > 0) throw new Error(`the store dropped ${keeper.stats.dropped} packets while it was built`);
    const small = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
    log(`  store of one copy (${(small.storeBytes / 1e6).toFixed(0)} MB): extraction ${median(small.warmMs).toFixed(1)} ms`);

    // Copies with their own times and flow ids until the store has its size.
    let copies = 1;
    let bytes = small.storeBytes;
    while (bytes < opts.storeBytes) {
      const more = new PacketKeeper(STORE(dir), `bench-copy${copies}`, ['bench']);
      await feed(more, p, copies, span);
      await more.close();
      if (more.stats.dropped > 0) throw new Error(`the store dropped ${more.stats.dropped} packets while it was built`);
      copies++;
      bytes += more.stats.bytes;
    }
    log(`  store built: ${copies} copies, ${(bytes / 1e9).toFixed(2)} GB`);
    const large = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
    return { packets: n, captureBytes: statSync(opts.capture).size, write, tcpdump, flowPackets, small, large };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

export function formatPacketsBench(r: PacketsBenchResult): string {
  const k = (x: number) => Math.round(x).toLocaleString('en-US');
  const w = median(r.write.map((x) => x.packetsPerSecond));
  const wCpu = median(r.write.map((x) => x.cpuPacketsPerSecond));
  const t = median(r.tcpdump.map((x) => x.packetsPerSecond));
  const tCpu = median(r.tcpdump.map((x) => x.cpuPacketsPerSecond));
  const dropped = r.write.reduce((s, x) => s + x.stats.dropped, 0);
  const small = median(r.small.warmMs);
  const large = median(r.large.warmMs);
  const runs = r.write.length;
  return [
    `packet store writes (${k(r.packets)} packets, ${(r.captureBytes / 1e6).toFixed(0)} MB, batches of ${BATCH}; median of ${runs}):`,
    `  flowlens store: ${k(w)} packets/s (${k(wCpu)} per CPU-second), ${median(r.write.map((x) => x.mbPerSecond)).toFixed(0)} MB/s; ${dropped} packets dropped in ${runs} runs`,
    `  tcpdump -r -w:  ${k(t)} packets/s (${k(tCpu)} per CPU-second)`,
    `  store/tcpdump:  ${(w / t).toFixed(2)} (CPU: ${(wCpu / tCpu).toFixed(2)})`,
    `extract one flow of ${r.flowPackets} packets (lookup + read + write; warm reader, median of ${r.small.warmMs.length}):`,
    `  store of ${(r.small.storeBytes / 1e9).toFixed(2)} GB (${r.small.runs} index runs): ${small.toFixed(1)} ms (cold reader ${r.small.coldMs.toFixed(1)} ms)`,
    `  store of ${(r.large.storeBytes / 1e9).toFixed(2)} GB (${r.large.runs} index runs): ${large.toFixed(1)} ms (cold reader ${r.large.coldMs.toFixed(1)} ms)`,
    `target extraction < ${TARGET_EXTRACT_MS} ms on the large store: ${large < TARGET_EXTRACT_MS ? 'PASS' : 'MISS'}`,
  ].join('\n');
}
