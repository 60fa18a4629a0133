// Live capture: libpcap sessions on one or more interfaces feed decode workers, the main thread
// writes what they produce to the store.
//
//   capture callback (main thread)            decode workers (worker_threads)
//   frame → decode → address-pair hash → ring[w] ──► ring → Aggregator → record batches, flow events
//                                                     │ frame + its flow's facts → detection ring[w]
//   DetectorSet (main thread) ◄── frames taken back in capture order ┘
//   store writer (main thread)  ◄── merge per-interval host/traffic records across workers
//
// The same pipeline as a parallel import (src/capture/import-parallel.ts):
// - The capture callback decodes each frame's headers only to pick its worker, and copies it into
//   that worker's SharedArrayBuffer ring (src/capture/ring.ts): flows, DPI and records never hold
//   up libpcap. A full ring drops the frame and counts it (ring drops), next to the kernel's own
//   drop counters. The detectors run on this thread too, between libpcap's reads.
// - Frames are sharded by a symmetric hash of the address pair the decoder keys their flow by
//   (src/capture/shard.ts: the decoder's own parse, so every encapsulation it reads shards right):
//   both directions of a flow, all its fragments and all flows between two hosts meet in one worker.
// - Detection runs once, here, over every frame in capture order: each worker hands its frames back
//   with the flags its flow table gave them (new flow, direction, first reply...), so a scan across
//   many hosts or a distributed flood whose packets went to different workers is seen whole, and the
//   anomalies do not depend on the number of workers. A single worker sees every frame and runs
//   the detectors itself (no second copy and decode of each frame).
// - Each worker's Aggregator closes its own aggregation intervals. Host and traffic records of one
//   interval are merged here (counters summed) before they are written: QuestDB deduplicates
//   traffic on (ts, node) and hosts on (ts, node, ip), so two workers' rows for the same interval
//   would otherwise overwrite each other. Peers add up exactly because of the address-pair sharding
//   (a peer of a host is in exactly one worker).
// - The main thread is the store's single writer (a DuckDB file has one writer).
// - stop() (SIGINT/SIGTERM) reads what libpcap still buffers, lets every worker drain its ring and
//   end all flows, and writes every last segment and interval once before the store is closed.
import { makeDirectory } from '../store/make-dir.js';
import { cpus } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import type { Logger } from 'pino';
import { HOST, sumCounters, TRAFFIC } from '../records/index.js';
import type { StatusProvider } from '../records/status.js';
import type { EventBus } from '../bus/types.js';
import { type AggregatorOptions, type AggregatorStats, newTableBudget, type TableBudget } from '../flow/aggregator.js';
import { defaultMaxFlows } from '../flow/caps.js';
import type { DecodeWorkerData, WorkerBatch, WorkerMessage } from '../flow/worker.js';
import { type KeepPacketsOptions, type KeeperStats, sweep } from '../packets/keeper.js';
import type { FlowRecord, HostRecord, RecordBatch, StoreWriter, TrafficRecord } from '../store/types.js';
import { CaptureOpenError, LiveSession, type CaptureCounters } from './pcap-live.js';
import { decodeBatch } from '../store/batch-transfer.js';
import { RingReader, RingWriter, ringBytes, ringCapacity } from './ring.js';
import { ORDER_FINISH, ORDER_TICK, ReplayOrder, detectorFeed } from './replay-order.js';
import { shardOf } from './shard.js';
import { DecodedPacket } from '../decode/packet.js';
import { DetectorSet } from '../detect/index.js';
import { liveSource } from './source.js';
import { Enricher } from '../enrich/enricher.js';

export { CaptureOpenError, PRIVILEGE_HINT } from './pcap-live.js';

export interface LiveCaptureOptions extends Partial<Omit<AggregatorOptions, 'bus' | 'iface'>> {
  interfaces: string[];
  /** BPF filter (pcap-filter(7)), applied in the kernel. */
  filter?: string;
  snaplen?: number;
  promiscuous?: boolean;
  /** libpcap (kernel) buffer per interface, MiB. */
  bufferMb?: number;
  /** Decode workers. */
  workers?: number;
  /** Ring between the capture callback and each worker, MiB (default: defaultRingMb). */
  ringMb?: number;
  store: StoreWriter;
  bus?: EventBus;
  logger: Logger;
  /** How often drop counters are read (seconds). */
  statsEverySec?: number;
  /** Rows buffered before a store write (otherwise every second), and at most per message from a decode worker (default 5000). */
  batchRows?: number;
  /** Called when the capture cannot go on (a worker died). */
  onFatal?: (err: Error) => void;
  /** Keep the packets of the flows in a rolling store (--keep-packets; src/packets/keeper.ts). */
  keepPackets?: KeepPacketsOptions;
}

export interface InterfaceStatus {
  name: string;
  node: string;
  linkType: number;
  /** Frames libpcap delivered (not ps_recv, which counts loopback frames twice: CaptureCounters). */
  packets: number;
  /** kernelDrops + ifDrops + ringDrops. */
  drops: number;
  /** No room in the kernel capture buffer (ps_drop). */
  kernelDrops: number;
  /** Dropped by the interface or driver (ps_ifdrop). */
  ifDrops: number;
  /** No room in a decode worker's ring (decoding fell behind). */
  ringDrops: number;
}

export interface LiveCaptureStatus {
  node: string;
  startedAt: number;
  interfaces: InterfaceStatus[];
  /**
   * ringFill: the share of the worker's ring written and not yet decoded (0 to 1), at this call;
   * ringPeakFill: the highest it has been since the start (1: the ring was full and frames were dropped).
   */
  workers: {
    index: number;
    packets: number;
    liveFlows: number;
    lastBatch: number;
    evictedFlows: number;
    evictedHosts: number;
    ringFill: number;
    ringPeakFill: number;
  }[];
}

export interface LiveCaptureSummary extends Omit<AggregatorStats, 'hosts' | 'firstPacket' | 'lastPacket' | 'malformedByReason'> {
  interfaces: InterfaceStatus[];
  drops: number;
  seconds: number;
  workers: number;
  /** Frames each decode worker decoded (how the address-pair sharding spread them). */
  workerPackets: number[];
  /** The highest share of each decode worker's ring in use at once (1: full; see --ring-mb). */
  ringPeakFill: number[];
  /** The packet store's counters summed over the workers (with --keep-packets). */
  packetStore?: KeeperStats;
}

const addTraffic = sumCounters<TrafficRecord>(TRAFFIC);
const addHost = sumCounters<HostRecord>(HOST);

/**
 * Merges one worker's per-interval traffic and host records into those pending, by interval (and
 * ip for hosts): every counter column of TRAFFIC and HOST is summed, the other columns are the
 * first worker's (the same on every worker: ts, node, ip, source). Summing is exact for peers too:
 * each peer of a host is in one worker only (address-pair sharding), so the workers' distinct-peer
 * counts of one host add up to its distinct-peer count.
 */
export function mergeIntervalRecords(
  pendingTraffic: Map<number, TrafficRecord>,
  pendingHosts: Map<number, Map<string, HostRecord>>,
  records: Pick<RecordBatch, 'traffic' | 'hosts'>,
): void {
  for (const t of records.traffic) {
    const p = pendingTraffic.get(t.ts);
    if (p) addTraffic(p, t);
    else pendingTraffic.set(t.ts, { ...t });
  }
  for (const h of records.hosts) {
    let m = pendingHosts.get(h.ts);
    if (!m) pendingHosts.set(h.ts, (m = new Map()));
    const p = m.get(h.ip);
    if (p) addHost(p, h);
    else m.set(h.ip, { ...h });
  }
}

/** Decode workers by default: the main thread needs a core for capture and the store. */
export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(4, cpus().length - 1));
}

/**
 * The decode workers' rings, MiB: this much over all of them, at least RING_MB_MIN each. A ring
 * must hold the backlog of a worker's first second on a busy link: until V8 has optimised the
 * pipeline's code (some 600 functions), a worker decodes at about half its later rate. At
 * tcpreplay's top speed on a veth (~460,000 packets/s, `npm run bench -- --only live`), one worker
 * overflowed 32 MiB in every run and 64 MiB in one run of three; 128 MiB peaked at 16-31%. With
 * more workers each takes a share of the traffic, and of the backlog.
 */
export const RING_MB_TOTAL = 128;
export const RING_MB_MIN = 32;

/** Each decode worker's ring (MiB) when --ring-mb is not given. */
export function defaultRingMb(workers: number): number {
  return Math.max(RING_MB_MIN, Math.floor(RING_MB_TOTAL / workers));
}
/** Intervals are closed this long after their end on a quiet link: frames still in kernel buffers. */
const TICK_LAG_US = 2_000_000;
const WRITE_EVERY_MS = 1000;
const SUBSCRIBERS_EVERY_MS = 500;
/** How often the detectors take back the frames the workers have decoded. */
const DETECT_EVERY_MS = 10;

let active: LiveCapture | null = null;

/** The running capture's status (for captureStatus and /metrics); null when none runs in this process. */
export function liveCaptureStatus(): LiveCaptureStatus | null {
  return active?.status() ?? null;
}

export class LiveCapture {
  private readonly opts: LiveCaptureOptions;
  private readonly logger: Logger;
  private readonly node: string;
  /** New at every start: a restart in the middle of an interval adds to the rows of the run before. */
  private readonly source = liveSource();
  private readonly intervalUs: number;
  private readonly sessions: LiveSession[] = [];
  private readonly rings: RingWriter[] = [];
  /** The one DetectorSet, over every worker's frames in capture order; null with detection off. */
  private readonly detector: DetectorSet | null;
  private readonly detectRings: RingReader[] = [];
  private readonly order = new ReplayOrder();
  private tableBudget: TableBudget = newTableBudget(1);
  /** Gives a frame taken back from a detection ring to the detector. */
  private readonly feed: ReturnType<typeof detectorFeed>;
  /** Workers that failed: their frames are skipped when taken back. */
  private readonly failed: boolean[] = [];
  private readonly workers: Worker[] = [];
  private readonly ringDrops: Float64Array;
  private readonly counters: CaptureCounters[];
  private readonly reportedDrops: number[];
  private readonly workerStats: (WorkerBatch | null)[] = [];
  private readonly lastBatch: number[] = [];
  private readonly closedBefore: number[] = [];
  private readonly done: Promise<void>[] = [];
  private readonly startedAt = Date.now();
  private readonly statsListeners: ((s: LiveCaptureStatus) => void)[] = [];

  private readonly pendingTraffic = new Map<number, TrafficRecord>();
  private readonly pendingHosts = new Map<number, Map<string, HostRecord>>();
  private out: RecordBatch = { flows: [], hosts: [], traffic: [] };
  private writing: Promise<void> = Promise.resolve();
  private writeErrors = 0;
  private timers: NodeJS.Timeout[] = [];
  private subscribers = { flow: false, anomaly: false };
  private stopping: Promise<LiveCaptureSummary> | null = null;

  private constructor(opts: LiveCaptureOptions) {
    this.opts = opts;
    this.logger = opts.logger;
    this.node = opts.node ?? '';
    this.intervalUs = (opts.intervalSec ?? 60) * 1e6;
    // One worker sees every frame: it runs the detectors itself, in capture order, sparing each frame
    // a second copy and decode. With several, the detectors run here, over all of them.
    const workers = Math.max(1, opts.workers ?? defaultWorkerCount());
    this.detector = opts.detect === false || workers === 1 ? null : new DetectorSet(opts.detect ?? {}, this.node, opts.bus);
    this.feed = this.detector === null ? () => {} : detectorFeed(this.detector);
    const n = opts.interfaces.length;
    this.ringDrops = new Float64Array(n);
    this.counters = Array.from({ length: n }, () => ({ received: 0, dropped: 0, ifDropped: 0 }));
    this.reportedDrops = new Array<number>(n).fill(0);
  }

  /** Opens every interface and starts the workers. Throws CaptureOpenError for the user. */
  static async start(opts: LiveCaptureOptions): Promise<LiveCapture> {
    if (opts.interfaces.length === 0) throw new CaptureOpenError('no interface to capture on', 'no-such-device');
    if (opts.interfaces.length > 0xffff) throw new CaptureOpenError('too many interfaces', 'other');
    const c = new LiveCapture(opts);
    if (opts.keepPackets) makeDirectory(opts.keepPackets.dir);
    await opts.store.beginRun(c.source);
    c.openRings();
    try {
      c.openSessions();
    } catch (err) {
      for (const s of c.sessions) s.close();
      throw err;
    }
    c.startWorkers();
    c.startTimers();
    active = c;
    return c;
  }

  private openRings(): void {
    const n = Math.max(1, this.opts.workers ?? defaultWorkerCount()); // as in the constructor
    const capacity = ringCapacity((this.opts.ringMb ?? defaultRingMb(n)) * 1024 * 1024);
    this.tableBudget = newTableBudget(n);
    for (let i = 0; i < n; i++) {
      this.rings.push(RingWriter.create(capacity));
      if (this.detector !== null) this.detectRings.push(new RingReader(new SharedArrayBuffer(ringBytes(capacity))));
      this.failed.push(false);
    }
  }

  /** Runs the detectors over the frames the workers have handed back, in capture order, as far as they have got. */
  private replay(): void {
    const detector = this.detector;
    if (detector === null) return;
    const order = this.order;
    while (order.size > 0) {
      const who = order.peekWho();
      if (who === ORDER_TICK) detector.tick(order.peekTs());
      else if (who === ORDER_FINISH) detector.finish();
      else if (!this.failed[who] && !this.detectRings[who].next(this.feed)) return;
      order.shift();
    }
  }

  private openSessions(): void {
    const rings = this.rings;
    const nRings = rings.length;
    const ringDrops = this.ringDrops;
    const wake = () => {
      for (let i = 0; i < nRings; i++) rings[i].wake();
    };
    const ifaces = this.opts.interfaces;
    const shardPkt = new DecodedPacket();
    const detecting = this.detector !== null;
    const order = this.order;
    const intervalUs = this.intervalUs;
    // The packets' clock, as each worker's Aggregator keeps it: the detectors tick when an interval
    // ends and start afresh when the time jumps back (Aggregator.clock).
    let interval = -1;
    const clock = (ts: number) => {
      const idx = Math.floor(ts / intervalUs);
      if (idx === interval) return;
      if (interval >= 0 && idx > interval) order.push(ORDER_TICK, ts);
      else if (interval >= 0 && idx < interval - 1) order.push(ORDER_FINISH, ts);
      else if (interval >= 0) return;
      interval = idx;
    };
    for (let ifIdx = 0; ifIdx < ifaces.length; ifIdx++) {
      let linkType = -1;
      // The capture callback: no allocation, the decode that picks the worker and a copy into its ring.
      const onFrame = (frame: Buffer, caplen: number, wirelen: number, tsSec: number, tsUsec: number) => {
        const w = shardOf(linkType, frame, 0, caplen, wirelen, shardPkt, nRings);
        if (!rings[w].write(frame, caplen, wirelen, tsSec, tsUsec, linkType, ifIdx)) {
          ringDrops[ifIdx]++;
          return;
        }
        if (detecting) {
          const ts = tsSec * 1e6 + tsUsec;
          clock(ts);
          order.push(w, ts);
        }
      };
      const session = new LiveSession(
        ifaces[ifIdx],
        {
          filter: this.opts.filter ?? '',
          snaplen: this.opts.snaplen ?? 262144,
          promiscuous: this.opts.promiscuous ?? true,
          bufferBytes: Math.round((this.opts.bufferMb ?? 16) * 1024 * 1024),
          bufferTimeoutMs: 100,
        },
        onFrame,
        wake,
        // pcap_lookupnet's complaint about an interface without an IPv4 address: harmless.
        (text) => this.logger.debug({ iface: ifaces[ifIdx] }, `libpcap: ${text}`),
      );
      linkType = session.linkType;
      this.sessions.push(session);
      this.logger.info(
        { iface: ifaces[ifIdx], linkType, filter: this.opts.filter || undefined, promiscuous: this.opts.promiscuous ?? true },
        `capturing on ${ifaces[ifIdx]}`,
      );
    }
  }

  private startWorkers(): void {
    // Who listens now goes with the workers' start (startTimers' check() then only sends changes).
    const bus = this.opts.bus;
    if (bus) this.subscribers = { flow: bus.hasSubscribers('flow'), anomaly: bus.hasSubscribers('anomaly') };
    const o = this.opts;
    for (let i = 0; i < this.rings.length; i++) {
      const data: DecodeWorkerData = {
        ring: this.rings[i].sab,
        detectRing: this.detectRings[i]?.sab ?? null,
        index: i,
        ifaces: o.interfaces,
        aggregator: {
          intervalSec: o.intervalSec ?? 60,
          activeTimeoutSec: o.activeTimeoutSec ?? 60,
          idle: { tcp: 300, tcpClosed: 10, tcpAttempted: 60, udp: 60, icmp: 60, other: 60, ...o.idle },
          node: this.node,
          source: this.source,
          detect: this.detector === null ? o.detect : false,
          dpi: o.dpi,
          classify: o.classify,
          // Settings, not an Enricher: each worker opens its own (the databases cannot cross threads).
          enrich: o.enrich instanceof Enricher ? o.enrich.settings : o.enrich,
          // The caps are the whole capture's, one budget over the workers.
          maxFlows: o.maxFlows ?? defaultMaxFlows(),
          maxHosts: o.maxHosts,
          tableBudget: this.tableBudget,
        },
        batchRows: o.batchRows ?? 5000,
        tickLagUs: TICK_LAG_US,
        // Each worker's files carry the run's source: several captures can share one directory.
        keepPackets: o.keepPackets ? { ...o.keepPackets, base: `live-${this.source}-w${i}` } : undefined,
        subscribers: this.subscribers,
      };
      const worker = startWorker(import.meta.url, '../flow/worker', { workerData: data, name: `flowlens-decode-${i}` });
      this.workers.push(worker);
      this.workerStats.push(null);
      this.lastBatch.push(0);
      this.closedBefore.push(0);
      this.done.push(
        new Promise<void>((resolve) => {
          worker.on('message', (m: WorkerMessage) => {
            if (m.type === 'batch') this.onBatch(m);
            else if (m.type === 'done') resolve();
          });
          worker.on('error', (err) => {
            this.logger.error({ err, worker: i }, 'decode worker failed');
            this.closedBefore[i] = Number.MAX_SAFE_INTEGER; // do not hold back the other workers' intervals
            this.failed[i] = true; // nor the detectors
            resolve();
            this.opts.onFatal?.(err);
          });
          worker.on('exit', () => resolve());
        }),
      );
    }
    this.logger.info({ workers: this.workers.length }, `${this.workers.length} decode worker${this.workers.length === 1 ? '' : 's'}`);
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(WRITE_EVERY_MS, () => this.scheduleWrite(true));
    every((this.opts.statsEverySec ?? 5) * 1000, () => this.readStats());
    if (this.detector !== null) {
      every(DETECT_EVERY_MS, () => this.replay());
      // Unanswered attempts time out and quiet anomalies end on a quiet link too (Aggregator.tick).
      every(1000, () => this.order.push(ORDER_TICK, Date.now() * 1000 - TICK_LAG_US));
    }
    const bus = this.opts.bus;
    if (bus) {
      const check = () => {
        const flow = bus.hasSubscribers('flow');
        const anomaly = bus.hasSubscribers('anomaly');
        if (flow === this.subscribers.flow && anomaly === this.subscribers.anomaly) return;
        this.subscribers = { flow, anomaly };
        for (const w of this.workers) w.postMessage({ type: 'subscribers', flow, anomaly });
      };
      check();
      every(SUBSCRIBERS_EVERY_MS, check);
    }
  }

  private onBatch(b: WorkerBatch): void {
    this.workerStats[b.index] = b;
    this.lastBatch[b.index] = Date.now();
    const records = decodeBatch(b.records);
    const flows: FlowRecord[] = this.out.flows;
    for (const f of records.flows) flows.push(f);
    // Anomalies are upserted by id: a worker's updates replace its earlier versions.
    if (records.anomalies?.length) (this.out.anomalies ??= []).push(...records.anomalies);
    mergeIntervalRecords(this.pendingTraffic, this.pendingHosts, records);
    if (b.closedBefore > this.closedBefore[b.index]) this.closedBefore[b.index] = b.closedBefore;
    this.releaseIntervals(Math.min(...this.closedBefore));
    const bus = this.opts.bus;
    if (bus) {
      for (const e of b.events) bus.publish('flow', e);
      for (const e of b.anomalyEvents) bus.publish('anomaly', e);
    }
    if (this.pendingRows() >= (this.opts.batchRows ?? 5000)) this.scheduleWrite(false);
  }

  /** Moves the merged records of every interval starting before `before` to the write queue. */
  private releaseIntervals(before: number): void {
    const bus = this.opts.bus;
    for (const [ts, t] of [...this.pendingTraffic].sort((a, b) => a[0] - b[0])) {
      if (ts >= before) continue;
      this.pendingTraffic.delete(ts);
      this.out.traffic.push(t);
      if (bus?.hasSubscribers('traffic')) {
        bus.publish('traffic', { node: t.node, step: this.intervalUs, point: { ts, bytes: t.bytes, packets: t.packets, flows: t.flows } });
      }
    }
    for (const [ts, m] of this.pendingHosts) {
      if (ts >= before) continue;
      this.pendingHosts.delete(ts);
      for (const h of m.values()) this.out.hosts.push(h);
    }
  }

  /** Moves the detectors' new and changed anomalies to the write queue. */
  private takeAnomalies(): void {
    if (this.detector !== null && this.detector.pending() > 0) (this.out.anomalies ??= []).push(...this.detector.take());
  }

  private pendingRows(): number {
    return this.out.flows.length + this.out.hosts.length + this.out.traffic.length + (this.out.anomalies?.length ?? 0);
  }

  /** Queues a write of what is buffered (one write at a time, in order); `flush` makes it readable. */
  private scheduleWrite(flush: boolean): Promise<void> {
    this.takeAnomalies();
    if (this.pendingRows() === 0 && !flush) return this.writing;
    const batch = this.out;
    this.out = { flows: [], hosts: [], traffic: [] };
    const store = this.opts.store;
    this.writing = this.writing.then(async () => {
      try {
        if (batch.flows.length + batch.hosts.length + batch.traffic.length + (batch.anomalies?.length ?? 0) > 0) await store.write(batch);
        if (flush) await store.flush();
      } catch (err) {
        this.writeErrors++;
        this.logger.error({ err, flows: batch.flows.length, hosts: batch.hosts.length, traffic: batch.traffic.length }, 'store write failed');
      }
    });
    return this.writing;
  }

  /** Reads libpcap's counters and logs new drops. */
  private readStats(): void {
    for (let i = 0; i < this.sessions.length; i++) {
      try {
        this.counters[i] = this.sessions[i].counters();
      } catch (err) {
        this.logger.debug({ err, iface: this.opts.interfaces[i] }, 'pcap_stats failed');
      }
    }
    const status = this.status();
    for (let i = 0; i < status.interfaces.length; i++) {
      const s = status.interfaces[i];
      if (s.drops > this.reportedDrops[i]) {
        this.logger.warn(
          {
            iface: s.name,
            drops: s.drops,
            new: s.drops - this.reportedDrops[i],
            kernelDrops: s.kernelDrops,
            ifDrops: s.ifDrops,
            ringDrops: s.ringDrops,
            packets: s.packets,
          },
          `${s.name}: ${s.drops - this.reportedDrops[i]} packets dropped (kernel ${s.kernelDrops}, interface ${s.ifDrops}, decode ring ${s.ringDrops} so far)`,
        );
        this.reportedDrops[i] = s.drops;
      }
    }
    for (const l of this.statsListeners) l(status);
  }

  /** Called after every read of the drop counters. */
  onStats(listener: (s: LiveCaptureStatus) => void): void {
    this.statsListeners.push(listener);
  }

  status(): LiveCaptureStatus {
    return {
      node: this.node,
      startedAt: this.startedAt * 1000,
      interfaces: this.opts.interfaces.map((name, i) => {
        const c = this.counters[i];
        const ring = this.ringDrops[i];
        return {
          name,
          node: this.node,
          linkType: this.sessions[i]?.linkType ?? -1,
          packets: c.received,
          drops: c.dropped + c.ifDropped + ring,
          kernelDrops: c.dropped,
          ifDrops: c.ifDropped,
          ringDrops: ring,
        };
      }),
      workers: this.workerStats.map((b, index) => {
        const ring = this.rings[index];
        return {
          index,
          packets: b?.stats.packets ?? 0,
          liveFlows: b?.liveFlows ?? 0,
          lastBatch: this.lastBatch[index] * 1000,
          evictedFlows: b?.stats.evictedFlows ?? 0,
          evictedHosts: b?.stats.evictedHosts ?? 0,
          ringFill: ring ? ring.used() / ring.capacity : 0,
          ringPeakFill: ring ? ring.peakUsed / ring.capacity : 0,
        };
      }),
    };
  }

  /** For the API's captureStatus. */
  statusProvider(): StatusProvider {
    return {
      interfaces: () => this.status().interfaces.map((i) => ({ name: i.name, node: i.node, packets: i.packets, drops: i.drops })),
      workers: () => [{ node: this.node, lastSeen: Math.max(this.startedAt, ...this.lastBatch) * 1000 }],
    };
  }

  /** Stops capturing and writes everything: every open flow ends, every interval closes. Idempotent. */
  stop(): Promise<LiveCaptureSummary> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<LiveCaptureSummary> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Reads what libpcap still holds, then no frame enters a ring any more.
    for (const s of this.sessions) s.close();
    this.readStats();
    for (let i = 0; i < this.workers.length; i++) {
      this.workers[i].postMessage({ type: 'stop' });
      this.rings[i].poke();
    }
    let workersDone = false;
    void Promise.all(this.done).then(() => {
      workersDone = true;
    });
    // The workers may wait for the detectors to take their last frames back.
    while (!workersDone) {
      this.replay();
      await new Promise((r) => setTimeout(r, 1));
    }
    this.replay();
    this.detector?.finish();
    // Every worker's last file is closed now: the caps once more over all of them.
    const keep = this.opts.keepPackets;
    const lastEvicted = keep ? await sweep(keep).catch(() => 0) : 0;
    this.releaseIntervals(Number.MAX_SAFE_INTEGER);
    await this.scheduleWrite(true);
    await Promise.all(this.workers.map((w) => w.terminate()));
    if (active === this) active = null;

    const status = this.status();
    const sum = (f: (s: AggregatorStats) => number) => this.workerStats.reduce((n, b) => n + (b ? f(b.stats) : 0), 0);
    const drops = status.interfaces.reduce((n, i) => n + i.drops, 0);
    return {
      packets: sum((s) => s.packets),
      bytes: sum((s) => s.bytes),
      flows: sum((s) => s.flows),
      malformed: sum((s) => s.malformed),
      nonIp: sum((s) => s.nonIp),
      fragments: sum((s) => s.fragments),
      evictedFlows: sum((s) => s.evictedFlows),
      evictedHosts: sum((s) => s.evictedHosts),
      interfaces: status.interfaces,
      drops,
      seconds: Math.round(Date.now() - this.startedAt) / 1000,
      workers: this.workers.length,
      workerPackets: this.workerStats.map((b) => b?.stats.packets ?? 0),
      ringPeakFill: status.workers.map((w) => w.ringPeakFill),
      packetStore: keep ? { ...this.packetStoreStats()!, evictedFiles: this.packetStoreStats()!.evictedFiles + lastEvicted } : undefined,
    };
  }

  /** The packet store's directory; undefined without --keep-packets. */
  get packetStoreDir(): string | undefined {
    return this.opts.keepPackets?.dir;
  }

  /** The packet store's counters summed over the workers; undefined without --keep-packets. */
  packetStoreStats(): KeeperStats | undefined {
    if (!this.opts.keepPackets) return undefined;
    const total: KeeperStats = { kept: 0, bytes: 0, dropped: 0, skipped: 0, files: 0, evictedFiles: 0, writeErrors: 0 };
    for (const b of this.workerStats) {
      const p = b?.packetStore;
      if (!p) continue;
      for (const k of Object.keys(total) as (keyof KeeperStats)[]) total[k] += p[k];
    }
    return total;
  }

  /** Store writes that failed (logged). */
  get failedWrites(): number {
    return this.writeErrors;
  }
}
