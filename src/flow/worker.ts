// A decode worker (worker_threads): reads frames from its packet ring, runs one Aggregator over
// them and posts record batches and flow events to the main thread, which merges the workers'
// per-interval records and is the store's single writer. With detection on, every frame goes on
// into a detection ring with its flow's facts (Aggregator.lastDetect) for the main thread's one
// DetectorSet, which takes the frames of all workers back in capture order (src/capture/live.ts).
//
// Messages from the main thread: { type: 'subscribers', flow, anomaly } (whether anyone listens), { type: 'stop' } (the capture is over: drain the ring, end every flow, post the last
// batch, then { type: 'done' }).
import { parentPort, workerData } from 'node:worker_threads';
import type { AnomalyEvent, BusEvents, EventBus, FlowEvent, Topic } from '../bus/types.js';
import { RingReader, RingWriter } from '../capture/ring.js';
import { type KeepPacketsOptions, type KeeperStats, PacketKeeper, sweep } from '../packets/keeper.js';
import { type EncodedBatch, encodeBatch, splitBatch } from '../store/batch-transfer.js';
import { Aggregator, type AggregatorOptions, type AggregatorStats } from './aggregator.js';
import { handToDetection } from './import-worker.js';

export interface DecodeWorkerData {
  ring: SharedArrayBuffer;
  /**
   * With detection on: every decoded frame goes on into this ring with its flow's facts, for the
   * main thread's one DetectorSet (src/capture/replay-order.ts); this worker runs no detector.
   */
  detectRing?: SharedArrayBuffer | null;
  index: number;
  ifaces: string[];
  aggregator: Omit<AggregatorOptions, 'bus' | 'iface'>;
  /** Rows buffered before a batch is posted without waiting for the next tick. */
  batchRows: number;
  /** How far behind the wall clock intervals are closed on a quiet link (µs): frames still in kernel buffers. */
  tickLagUs: number;
  /** The live packet store (src/packets/keeper.ts): this worker's files are named <base>-<seq>.pcapng. */
  keepPackets?: KeepPacketsOptions & { base: string };
  /**
   * Whether anyone listens to flow and anomaly events at the start. The 'subscribers' message comes
   * only when the packet loop yields, too late for the first flows' start events.
   */
  subscribers?: { flow: boolean; anomaly: boolean };
}

/** A batch from a worker. */
export interface WorkerBatch {
  type: 'batch';
  index: number;
  /** The records as columns (batch-transfer.ts). */
  records: EncodedBatch;
  /** Flow and anomaly events to publish on the real bus. */
  events: FlowEvent[];
  anomalyEvents: AnomalyEvent[];
  /** Every interval starting before this time (µs) is closed in this worker: its host and traffic records are in this or earlier batches. */
  closedBefore: number;
  stats: AggregatorStats;
  liveFlows: number;
  final: boolean;
  /** The packet store's counters in this worker (with --keep-packets). */
  packetStore?: KeeperStats;
}

export type WorkerMessage = WorkerBatch | { type: 'done'; index: number };

const TICK_MS = 1000;
/** Flow events are posted at least this often while they come in. */
const EVENTS_EVERY_MS = 250;
/** Flows changed since their last live update are published this often (Aggregator.publishUpdates). */
const UPDATES_EVERY_MS = 250;
const WAIT_MS = 200;
/** How often worker 0 applies the packet store's caps. */
const SWEEP_EVERY_MS = 5000;

/**
 * Collects the Aggregator's flow and anomaly events for the main thread. Traffic points are
 * published by the main thread after merging the workers' intervals.
 */
class ForwardingBus implements EventBus {
  events: FlowEvent[] = [];
  anomalies: AnomalyEvent[] = [];
  flowSubscribers = false;
  anomalySubscribers = false;

  publish<T extends Topic>(topic: T, event: BusEvents[T]): void {
    if (topic === 'flow') this.events.push(event as FlowEvent);
    else if (topic === 'anomaly') this.anomalies.push(event as AnomalyEvent);
  }

  subscribe(): () => void {
    return () => {};
  }

  hasSubscribers(topic: Topic): boolean {
    return topic === 'flow' ? this.flowSubscribers : topic === 'anomaly' && this.anomalySubscribers;
  }

  async close(): Promise<void> {}
}

async function run(data: DecodeWorkerData): Promise<void> {
  const port = parentPort!;
  const ring = new RingReader(data.ring);
  const bus = new ForwardingBus();
  bus.flowSubscribers = data.subscribers?.flow === true;
  bus.anomalySubscribers = data.subscribers?.anomaly === true;
  const detect = data.detectRing ? new RingWriter(data.detectRing) : null;
  const agg = new Aggregator({ ...data.aggregator, iface: data.ifaces[0] ?? '', bus, ...(detect !== null ? { detect: false, detectFlags: true } : {}) });
  let stopping = false;
  port.on('message', (m: { type: string; flow?: boolean; anomaly?: boolean }) => {
    if (m.type === 'subscribers') {
      bus.flowSubscribers = Boolean(m.flow);
      bus.anomalySubscribers = Boolean(m.anomaly);
    } else if (m.type === 'stop') stopping = true;
  });

  let iface = 0;
  const ifaces = data.ifaces;
  const keep = data.keepPackets;
  const keeper = keep ? new PacketKeeper(keep, keep.base, ifaces) : null;
  const flows = agg.flows;
  const onFrame = (buf: Buffer, off: number, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, ifIdx: number) => {
    if (ifIdx !== iface) {
      iface = ifIdx;
      agg.setIface(ifaces[ifIdx]);
    }
    const ts = tsSec * 1e6 + tsUsec;
    agg.packet(linkType, ts, buf, off, caplen, wirelen);
    const f = agg.lastFlow;
    if (detect !== null)
      handToDetection(detect, agg.lastDetect, buf, off, caplen, wirelen, tsSec, tsUsec, linkType, f >= 0 ? flows.idHi[f] : 0, f >= 0 ? flows.idLo[f] : 0);
    // The packet store takes the packets of flows (not ARP and other non-IP frames), never waiting.
    if (keeper !== null && f >= 0) keeper.add(f, flows.idHi[f], flows.idLo[f], ts, linkType, ifIdx, buf, off, caplen, wirelen);
  };
  // Worker 0 applies the size and age caps to the whole directory, one sweep at a time.
  let sweeping: Promise<unknown> | null = null;
  let lastSweep = 0;
  const sweepNow = () => {
    if (!keep || data.index !== 0 || sweeping) return;
    sweeping = sweep(keep)
      .then((n) => {
        if (keeper) keeper.stats.evictedFiles += n;
      })
      .catch(() => {})
      .finally(() => {
        sweeping = null;
      });
  };

  // An interval's end ends the segments of every live flow at once: tens of thousands of rows,
  // which the main thread would decode in one go between two reads of libpcap. They go in pieces of
  // at most batchRows; only the last closes intervals and carries the events.
  const post = (final: boolean, nowUs: number) => {
    const pieces = splitBatch(agg.takeBatch(), data.batchRows);
    const stats = agg.stats();
    const liveFlows = agg.liveFlows();
    const packetStore = keeper ? { ...keeper.stats } : undefined;
    for (let i = 0; i < pieces.length; i++) {
      const last = i === pieces.length - 1;
      const { encoded, transfer } = encodeBatch(pieces[i]);
      const msg: WorkerBatch = {
        type: 'batch',
        index: data.index,
        records: encoded,
        events: last ? bus.events : [],
        anomalyEvents: last ? bus.anomalies : [],
        closedBefore: !last ? 0 : final ? Number.MAX_SAFE_INTEGER : agg.openIntervalStart(nowUs),
        stats,
        liveFlows,
        final: final && last,
        packetStore,
      };
      port.postMessage(msg, transfer);
    }
    bus.events = [];
    bus.anomalies = [];
  };

  let lastTick = Date.now();
  let lastPost = lastTick;
  let lastUpdates = lastTick;
  for (;;) {
    const seen = ring.seq();
    ring.drain(onFrame);
    detect?.wake();
    const now = Date.now();
    if (stopping) {
      ring.drain(onFrame); // the capture is closed: nothing more comes in
      agg.finish();
      if (keeper) {
        await keeper.close();
        await sweeping;
        sweepNow();
        await sweeping;
      }
      post(true, now * 1000);
      port.postMessage({ type: 'done', index: data.index });
      return;
    }
    // A flow's last packets reach Live flows within a second, not at the flow's end: posted at once.
    if (now - lastUpdates >= UPDATES_EVERY_MS) {
      lastUpdates = now;
      if (agg.publishUpdates() > 0) lastPost = 0;
    }
    if (now - lastTick >= TICK_MS) {
      lastTick = now;
      agg.tick(now * 1000 - data.tickLagUs);
      keeper?.tick(now);
      if (now - lastSweep >= SWEEP_EVERY_MS) {
        lastSweep = now;
        sweepNow();
      }
      post(false, now * 1000 - data.tickLagUs);
      lastPost = now;
    } else if (agg.pendingRows() >= data.batchRows || (bus.events.length + bus.anomalies.length > 0 && now - lastPost >= EVENTS_EVERY_MS)) {
      post(false, now * 1000 - data.tickLagUs);
      lastPost = now;
    }
    if (ring.used() === 0) await ring.wait(seen, WAIT_MS);
    else await new Promise((r) => setImmediate(r)); // a long burst: still let messages in
  }
}

if (parentPort && workerData) {
  run(workerData as DecodeWorkerData).catch((err: unknown) => {
    // Uncaught, the error reaches the main thread's 'error' handler, which ends the capture.
    throw err;
  });
}
