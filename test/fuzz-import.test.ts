/**
 * Import fuzz: thousands of mutated captures (bit flips, byte overwrites, truncations, length and
 * timestamp edits, duplicated and removed records and blocks; test/helpers/capture-mutate.ts) of
 * byte-built pcap and pcapng fixtures and of nDPI corpus captures, imported in process without a
 * store and, every few cases, into a DuckDB store. With fixed seeds, so that a failure replays. No
 * case may throw, take long or grow the heap, and the summary must account for every record read:
 * records == packets (each decoded or malformed), malformed == the sum of malformedByReason, an
 * intact file after a broken one still imported whole. The loop runs in a worker thread
 * (test/helpers/import-fuzz-worker.ts) that is stopped when a case hangs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { REPO_ROOT } from './helpers/cli.js';
import {
  AF,
  ETHERTYPE,
  LINKTYPE,
  encap,
  fragmentIpv4,
  icmpPing,
  ipv4,
  tcpConversation,
  toFrames,
  ts,
  udp,
  udpExchange,
  type Frame,
  type TimedPacket,
} from './helpers/frames.js';
import type { FuzzJob, FuzzMessage, FuzzSeed } from './helpers/import-fuzz-worker.js';
import { pcap, pcapng, type PcapngFrame } from './helpers/pcap-writer.js';

const CORPUS = join(REPO_ROOT, '..', 'shared', 'corpus', 'ndpi', 'pcap');
/** A case that takes longer than this is a hang: the worker is stopped and the case named. */
const CASE_LIMIT_MS = 10_000;
/** The worker's heap (V8 old generation) may not grow past this; it dies if it does. */
const HEAP_LIMIT_MB = 256;
/** Heap growth allowed from case 50 to the end, after a full GC (a leak grows with the cases). */
const HEAP_GROWTH_MB = 24;

/** Traffic of several kinds (TCP, UDP, ICMP, IPv6, fragments, non-IP) from `start`. */
function packets(start: bigint): TimedPacket[] {
  const s = (n: number) => start + BigInt(n) * 1_000_000n;
  return [
    ...tcpConversation({
      client: { ip: '10.9.0.1', port: 40001 },
      server: { ip: '10.9.0.2', port: 443 },
      start: s(0),
      data: [
        { from: 'client', bytes: 300 },
        { from: 'server', bytes: 1400 },
      ],
      close: 'rst',
    }),
    ...tcpConversation({
      client: { ip: 'fd00::1', port: 40002 },
      server: { ip: 'fd00::2', port: 80 },
      start: s(1),
      data: [{ from: 'client', bytes: 50 }],
      close: 'fin',
    }),
    ...udpExchange({
      client: { ip: '10.9.0.3', port: 5353 },
      server: { ip: '10.9.0.4', port: 53 },
      start: s(2),
      messages: [
        { from: 'client', bytes: 40 },
        { from: 'server', bytes: 120 },
      ],
    }),
    ...icmpPing({ client: '10.9.0.5', server: '10.9.0.6', start: s(3), count: 3 }),
    ...fragmentIpv4({ src: '10.9.0.7', dst: '10.9.0.8', l4: udp({ srcPort: 1000, dstPort: 2000, payload: new Uint8Array(900) }), id: 77 }, [400, 400, 116]).map(
      (ip, i): TimedPacket => ({ ts: s(4) + BigInt(i), ip, from: 'client' }),
    ),
  ].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
}

/** Byte-built seeds: classic pcap in both byte orders and resolutions, pcapng with several interfaces, resolutions, block kinds and sections. */
function builtSeeds(): FuzzSeed[] {
  const p = packets(ts(1_700_000_000));
  const eth = toFrames(LINKTYPE.ETHERNET, p);
  const arp: Frame = {
    ts: ts(1_700_000_009),
    data: encap(LINKTYPE.ETHERNET, ipv4({ src: '10.9.0.9', dst: '10.9.0.10', l4: udp({ srcPort: 1, dstPort: 2 }) })),
  };
  arp.data[12] = ETHERTYPE.ARP >> 8;
  arp.data[13] = ETHERTYPE.ARP & 0xff;
  const sll = toFrames(LINKTYPE.LINUX_SLL, p, {});
  const ng: PcapngFrame[] = [
    ...eth.slice(0, 8).map((f) => ({ ...f, iface: 0 })),
    ...sll.slice(8, 16).map((f): PcapngFrame => ({ ...f, iface: 1 })),
    ...toFrames(LINKTYPE.RAW, p.slice(16, 22)).map((f): PcapngFrame => ({ ...f, iface: 2, block: 'opb' })),
  ];
  const interfaces = [
    { linktype: LINKTYPE.ETHERNET, tsresol: 9 },
    { linktype: LINKTYPE.LINUX_SLL, tsresol: 0x94 }, // 2^-20 s
    { linktype: LINKTYPE.RAW, snaplen: 200 },
  ];
  // The 2^-20 s interface takes times it can hold exactly.
  for (const f of ng) if (f.iface === 1) f.ts = (f.ts / 1_000_000_000n) * 1_000_000_000n;
  const spb: PcapngFrame[] = eth.slice(0, 4).map((f) => ({ ...f, block: 'spb' }));
  return [
    { name: 'pcap-le-us', bytes: pcap({ linktype: LINKTYPE.ETHERNET }, [...eth, arp]) },
    { name: 'pcap-be-ns', bytes: pcap({ linktype: LINKTYPE.ETHERNET, endian: 'be', resolution: 'nano', snaplen: 96 }, eth) },
    { name: 'pcap-null', bytes: pcap({ linktype: LINKTYPE.NULL }, toFrames(LINKTYPE.NULL, p, { inet6Family: AF.INET6_FREEBSD, nullByteOrder: 'be' })) },
    { name: 'pcapng-3-interfaces', bytes: pcapng({ options: { interfaces, trailerBlocks: true }, frames: ng }) },
    {
      name: 'pcapng-2-sections',
      bytes: pcapng(
        { options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: [...spb, ...eth.slice(4, 12)] },
        {
          options: { endian: 'be', interfaces: [{ linktype: LINKTYPE.ETHERNET, tsresol: 3 }] },
          frames: eth.slice(12, 20).map((f) => ({ ...f, ts: (f.ts / 1_000_000n) * 1_000_000n })),
        },
      ),
    },
  ];
}

/** The corpus captures used: every n-th of the sorted list up to 256 KiB, so the set is fixed. */
function corpusSeeds(): FuzzSeed[] {
  const names = readdirSync(CORPUS)
    .filter((n) => /\.pcap(ng)?$/.test(n) && statSync(join(CORPUS, n)).size <= 256 << 10)
    .sort();
  return names.filter((_, i) => i % 8 === 0).map((name) => ({ name, bytes: readFileSync(join(CORPUS, name)) }));
}

interface Outcome {
  failures: string[];
  done: Extract<FuzzMessage, { type: 'done' }> | null;
  seconds: number;
  peakRssMb: number;
}

/** Runs a job in a worker; a case that takes CASE_LIMIT_MS stops it and is reported. */
function runWorker(job: Omit<FuzzJob, 'dir'>): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-fuzz-'));
  const started = performance.now();
  // The worker loads TypeScript through tsx's loader, registered before the worker's module loads.
  const entry = new URL('./helpers/import-fuzz-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  const worker = new Worker(boot, {
    eval: true,
    workerData: { ...job, dir } satisfies FuzzJob,
    resourceLimits: { maxOldGenerationSizeMb: HEAP_LIMIT_MB },
  });
  const failures: string[] = [];
  let done: Outcome['done'] = null;
  let current = 'before the first case';
  let peakRssMb = 0;
  return new Promise<Outcome>((resolve) => {
    let timer = setTimeout(() => {}, 0);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        failures.push(`hang: ${current} took over ${CASE_LIMIT_MS} ms`);
        void worker.terminate();
      }, CASE_LIMIT_MS);
    };
    arm();
    worker.on('message', (m: FuzzMessage) => {
      peakRssMb = Math.max(peakRssMb, process.memoryUsage().rss / 2 ** 20);
      if (m.type === 'case') {
        current = m.what;
        arm();
      } else if (m.type === 'fail') failures.push(`${m.what}: ${m.message}`);
      else done = m;
    });
    worker.on('error', (err) => failures.push(`worker died in ${current}: ${err.stack ?? err}`));
    worker.on('exit', () => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      const rusage = process.resourceUsage().maxRSS / 1024;
      resolve({ failures, done, seconds: (performance.now() - started) / 1000, peakRssMb: Math.max(peakRssMb, rusage) });
    });
  });
}

function assertOutcome(o: Outcome, label: string, cases: number): void {
  assert.deepEqual(o.failures.slice(0, 20), [], `${o.failures.length} failed cases (first 20 shown)`);
  assert.ok(o.done, 'the worker finished');
  const d = o.done;
  assert.equal(d.cases, cases);
  assert.ok(d.heapEndMb - d.heapStartMb < HEAP_GROWTH_MB, `heap grew ${(d.heapEndMb - d.heapStartMb).toFixed(1)} MB from case 50 to the end`);
  // The mutations reach both outcomes: malformed packets and failed files.
  assert.ok(d.malformed > 0 && d.fileErrors > 0, JSON.stringify(d));
  console.log(
    `${label}: ${d.cases} cases (${d.storeCases} into DuckDB) in ${o.seconds.toFixed(1)} s, slowest ${d.slowestMs.toFixed(0)} ms; ` +
      `${d.packets} packets, ${d.malformed} malformed, ${d.fileErrors} failed files; heap ${d.heapStartMb.toFixed(1)} -> ${d.heapEndMb.toFixed(1)} MB, peak RSS ${o.peakRssMb.toFixed(0)} MB`,
  );
}

describe('import fuzz', () => {
  it('mutated byte-built pcap and pcapng captures: no throw, no hang, bounded heap, every record accounted for', { timeout: 120_000 }, async () => {
    const seeds = builtSeeds();
    const companion = seeds[0];
    const cases = 2500;
    const o = await runWorker({
      seeds,
      companion: { bytes: companion.bytes, packets: packets(0n).length + 1 },
      cases,
      seed: 0x1f0a7,
      storeEvery: 25,
    });
    assertOutcome(o, 'byte-built', cases);
  });

  it('mutated nDPI corpus captures: the same', {
    timeout: 120_000,
    skip: existsSync(CORPUS) ? false : `no corpus at ${CORPUS} (../shared is absent): corpus cases skipped`,
  }, async () => {
    const seeds = corpusSeeds();
    assert.ok(seeds.length >= 10, `${seeds.length} corpus seeds`);
    const companion = builtSeeds()[0];
    const cases = 1000;
    const o = await runWorker({ seeds, companion: { bytes: companion.bytes, packets: packets(0n).length + 1 }, cases, seed: 0xc0b05, storeEvery: 25 });
    assertOutcome(o, `corpus (${seeds.length} captures)`, cases);
  });
});
