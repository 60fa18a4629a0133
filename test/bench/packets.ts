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
import { compactIndex } from '../../src/packets/compact.js';
import { extractPackets } from '../../src/packets/extract.js';
import { PacketIndexReader } from '../../src/packets/index-reader.js';
import { flowIdHex } from '../../src/packets/format.js';
import { DEFAULT_KEEP, PacketFileWriter, type KeeperStats } from '../../src/packets/keeper.js';
import { collect, createNsPair, missingTool, netnsUnavailable, sleep, waitForOutput } from '../helpers/netns.js';
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
const STORE = (dir: string) => ({ ...DEFAULT_KEEP, dir, maxBytes: 0, fileSeconds: 1e9, compact: false });

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
  small: ExtractFigure;
  large: ExtractFigure;
  /** Extraction as the store grows: before and after its index runs are compacted (compact.ts, tiered), and after a full compaction at the end. */
  sizes: { before: ExtractFigure; after: ExtractFigure; compactSeconds: number }[];
  full: ExtractFigure;
  flood: FloodFigure | string;
}

export interface ExtractFigure {
  storeBytes: number;
  runs: number;
  warmMs: number[];
  /** Fresh readers (a new `flowlens pcap`). */
  coldMs: number[];
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
export async function feed(keeper: PacketFileWriter, p: Parsed, copy: number, span: number): Promise<void> {
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
  const keeper = new PacketFileWriter(STORE(dir), 'bench', ['bench']);
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
  const coldMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const cold = await extractOnce(new PacketIndexReader(dir), flowId);
    if (cold.packets !== expectPackets) throw new Error(`extracted ${cold.packets} packets, the flow has ${expectPackets}`);
    coldMs.push(cold.ms);
  }
  // Warm: the server's reader (metas cached).
  const reader = new PacketIndexReader(dir);
  await extractOnce(reader, flowId);
  const warmMs: number[] = [];
  for (let i = 0; i < runs; i++) warmMs.push((await extractOnce(reader, flowId)).ms);
  return { storeBytes: storeSize(dir), runs: (await reader.runs()).length, warmMs, coldMs };
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
    const keeper = new PacketFileWriter(STORE(dir), 'bench', ['bench']);
    await feed(keeper, p, 0, span);
    await keeper.close();
    if (keeper.stats.dropped > 0) throw new Error(`the store dropped ${keeper.stats.dropped} packets while it was built`);
    const small = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
    log(`  store of one copy (${(small.storeBytes / 1e6).toFixed(0)} MB): extraction ${median(small.warmMs).toFixed(1)} ms`);

    // Copies with their own times and flow ids until the store has its size; at a quarter, half and
    // all of it, extraction before and after the index runs are compacted (tiered, as the live store does).
    let copies = 1;
    let bytes = small.storeBytes;
    const sizes: PacketsBenchResult['sizes'] = [];
    const measureAround = async () => {
      const before = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
      const t0 = process.hrtime.bigint();
      await compactIndex(dir);
      const compactSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const after = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
      sizes.push({ before, after, compactSeconds });
      log(
        `  store of ${(before.storeBytes / 1e9).toFixed(2)} GB: ${before.runs} runs, cold ${median(before.coldMs).toFixed(1)} ms; compacted (${compactSeconds.toFixed(1)} s) to ${after.runs} runs, cold ${median(after.coldMs).toFixed(1)} ms`,
      );
    };
    for (const fraction of [0.25, 0.5, 1]) {
      while (bytes < opts.storeBytes * fraction) {
        const more = new PacketFileWriter(STORE(dir), `bench-copy${String(copies).padStart(4, '0')}`, ['bench']);
        await feed(more, p, copies, span);
        await more.close();
        if (more.stats.dropped > 0) throw new Error(`the store dropped ${more.stats.dropped} packets while it was built`);
        copies++;
        bytes += more.stats.bytes;
      }
      await measureAround();
    }
    log(`  store built: ${copies} copies, ${(bytes / 1e9).toFixed(2)} GB`);
    const large = sizes[sizes.length - 1].before;
    await compactIndex(dir, { full: true });
    const full = await measureExtract(dir, flowId, opts.runs * 5, flowPackets);
    const flood = await measureFlood(opts.log).catch((err: Error) => `failed: ${err.message}`);
    return { packets: n, captureBytes: statSync(opts.capture).size, write, tcpdump, flowPackets, small, large, sizes, full, flood };
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
    `extract one flow of ${r.flowPackets} packets (lookup + read + write; medians: warm reader of ${r.small.warmMs.length}, fresh readers of ${r.small.coldMs.length}):`,
    `  store of ${(r.small.storeBytes / 1e9).toFixed(2)} GB (${r.small.runs} index runs): warm ${small.toFixed(1)} ms, fresh reader ${median(r.small.coldMs).toFixed(1)} ms`,
    ...r.sizes.map(
      (z) =>
        `  store of ${(z.before.storeBytes / 1e9).toFixed(2)} GB: ${z.before.runs} runs: warm ${median(z.before.warmMs).toFixed(1)} ms, fresh ${median(z.before.coldMs).toFixed(1)} ms; ` +
        `compacted in ${z.compactSeconds.toFixed(1)} s to ${z.after.runs} runs: warm ${median(z.after.warmMs).toFixed(1)} ms, fresh ${median(z.after.coldMs).toFixed(1)} ms`,
    ),
    `  store of ${(r.full.storeBytes / 1e9).toFixed(2)} GB, fully compacted (${r.full.runs} run): warm ${median(r.full.warmMs).toFixed(1)} ms, fresh ${median(r.full.coldMs).toFixed(1)} ms`,
    `target extraction < ${TARGET_EXTRACT_MS} ms on the large store (fresh reader, compacted): ${median(r.sizes[r.sizes.length - 1].after.coldMs) < TARGET_EXTRACT_MS ? 'PASS' : 'MISS'} (warm before compaction: ${large.toFixed(1)} ms)`,
    typeof r.flood === 'string' ? `iperf3 flood with and without the packet store: skipped (${r.flood})` : formatFlood(r.flood),
  ].join('\n');
}

/** One capture of the flood: the capture's drops (libpcap's and the decode ring's) and the store's counters. */
interface FloodRun {
  store: boolean;
  packets: number;
  drops: number;
  kernelDrops: number;
  ringDrops: number;
  kept: number;
  storeDropped: number;
}

export interface FloodFigure {
  rate: string;
  seconds: number;
  runs: FloodRun[];
}

const FLOOD_RATE = '200M';
const FLOOD_SECONDS = 3;
const FLOOD_ROUNDS = 2;

/**
 * `flowlens capture` on a veth between two network namespaces while iperf3 sends FLOOD_RATE through
 * it, alternately without and with --keep-packets: how many packets the capture dropped each way
 * (the store must drop, and count, before the capture does). Needs root and iperf3.
 */
async function measureFlood(log: (msg: string) => void): Promise<FloodFigure | string> {
  const why = netnsUnavailable() ?? (missingTool('iperf3') ? `needs ${missingTool('iperf3')}` : null);
  if (why) return why;
  const work = join(REPO_ROOT, 'test', '.cache', `packets-flood-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const runs: FloodRun[] = [];
  try {
    for (let round = 0; round < FLOOD_ROUNDS; round++) {
      for (const store of [false, true]) {
        const net = createNsPair();
        try {
          const server = net.spawnIn(net.nsB, ['iperf3', '-s', '-p', '5201', '--forceflush']);
          await waitForOutput(server, /Server listening/);
          const tag = `${round}-${store ? 'on' : 'off'}`;
          const args = [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'main.ts'), 'capture', '-i', net.vethA, '--json', '--workers', '2'];
          args.push('--db', join(work, `${tag}.duckdb`));
          if (store) args.push('--keep-packets', join(work, `${tag}-packets`), '--keep-max-size', '2G');
          const child = net.spawnIn(net.nsA, args, { cwd: REPO_ROOT, env: { ...process.env, FLOWLENS_LOG_FORMAT: 'json' } });
          const out = collect(child);
          await waitForOutput(child, /decode worker/, 90_000);
          await sleep(2000); // the workers (and the store's writer threads) started
          const r = net.exec(net.nsA, ['iperf3', '-c', net.ipsB[0], '-p', '5201', '-t', String(FLOOD_SECONDS), '-b', FLOOD_RATE], { timeoutMs: 60_000 });
          if (r.status !== 0) throw new Error(`iperf3: ${r.stderr}`);
          await sleep(500);
          child.kill('SIGINT');
          await out.done;
          const s = JSON.parse(out.stdout().trim().split('\n').pop() ?? '{}') as {
            packets: number;
            drops: number;
            interfaces: { kernelDrops: number; ringDrops: number }[];
            packetStore?: KeeperStats;
          };
          const run: FloodRun = {
            store,
            packets: s.packets,
            drops: s.drops,
            kernelDrops: s.interfaces.reduce((a, i) => a + i.kernelDrops, 0),
            ringDrops: s.interfaces.reduce((a, i) => a + i.ringDrops, 0),
            kept: s.packetStore?.kept ?? 0,
            storeDropped: s.packetStore?.dropped ?? 0,
          };
          runs.push(run);
          log(`  flood ${tag}: ${formatFloodRun(run)}`);
        } finally {
          net.destroy();
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { rate: FLOOD_RATE, seconds: FLOOD_SECONDS, runs };
}

function formatFloodRun(r: FloodRun): string {
  const base = `capture dropped ${r.drops} of ${r.packets + r.drops} (kernel ${r.kernelDrops}, decode ring ${r.ringDrops})`;
  return r.store ? `${base}; store kept ${r.kept}, dropped ${r.storeDropped}` : base;
}

function formatFlood(f: FloodFigure): string {
  const lines = [`iperf3 at ${f.rate}bit/s for ${f.seconds} s on a veth, flowlens capture --workers 2, without and with --keep-packets:`];
  for (const r of f.runs) lines.push(`  ${r.store ? 'with the store:   ' : 'without the store:'} ${formatFloodRun(r)}`);
  const share = (store: boolean) => {
    const rs = f.runs.filter((r) => r.store === store);
    const drops = rs.reduce((a, r) => a + r.drops, 0);
    return `${(
      (100 * drops) /
        Math.max(
          1,
          rs.reduce((a, r) => a + r.packets + r.drops, 0),
        )
    ).toFixed(1)}%`;
  };
  lines.push(`  capture drops over the runs: ${share(false)} without the store, ${share(true)} with it`);
  return lines.join('\n');
}
