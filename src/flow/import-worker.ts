// A decode worker of a parallel import (src/capture/import-parallel.ts): reads frames from its
// packet ring, runs one Aggregator over them and posts record batches to the main thread.
//
// - The reader's clock comes through the ring as markers (linkType MARKER): the worker moves its
//   Aggregator's clock with them, so that every worker closes intervals and expires flows exactly
//   when one Aggregator over all the packets would, whatever share of them it sees.
// - Detection is not run here: a scan across many hosts or a distributed flood is spread over the
//   workers. Instead each frame goes on, with what the Aggregator would have handed the detectors
//   (Aggregator.lastDetect), into the worker's detection ring; the main thread takes the frames of
//   all workers back in the reader's order and runs the one DetectorSet.
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { RingReader, RingWriter, TRANSIENT, tagOffset } from '../capture/ring.js';
import { type EncodedBatch, encodeBatch } from '../store/batch-transfer.js';
import { Aggregator, type AggregatorOptions, type AggregatorStats, CLOCK_RESTART, DETECT_ARP, DETECT_NONE } from './aggregator.js';
import type { DistinctState } from './distinct.js';

/** linkType of a clock marker in the packet ring; its iface field says which (MARK_*). */
export const MARKER = 0xffff;
export const MARK_CLOCK = 0;
export const MARK_FINISH = 1;
/** iface field of a detection ring record: no detector (no frame bytes), ARP, else the F_* flags. */
export const D_NONE = 0xffff;
export const D_ARP = 0xfffe;

/** Marks a decode worker's data: this module is also imported, for its constants, by other threads. */
export const IMPORT_WORKER_ROLE = 'flowlens-import-decode';

export interface ImportWorkerData {
  role: typeof IMPORT_WORKER_ROLE;
  ring: SharedArrayBuffer;
  /** The reader's buffers the ring's reference records point into (src/capture/frame-pool.ts). */
  frames: SharedArrayBuffer[];
  /** Frames too long for the ring and the buffers, each in a SharedArrayBuffer of its own, in ring order. */
  longFrames: MessagePort;
  /** Where this worker posts the buffers of long frames it hands to detection (handToDetection). */
  detectLongFrames: MessagePort;
  detectRing: SharedArrayBuffer | null;
  /** Each frame's flow (slot and id) for the packet index; null without one. */
  flowIdRing: SharedArrayBuffer | null;
  index: number;
  /** Interface name of each file (the ring's iface field is the file's index). */
  ifaces: string[];
  aggregator: Omit<AggregatorOptions, 'bus' | 'iface'>;
  batchRows: number;
}

export interface ImportWorkerBatch {
  type: 'batch';
  index: number;
  /** The records as columns (batch-transfer.ts). */
  records: EncodedBatch;
  /** Intervals of `epoch` starting before `closedBefore` (µs), and of every earlier epoch, are closed in this worker. */
  epoch: number;
  closedBefore: number;
}

export interface ImportWorkerDone {
  type: 'done';
  index: number;
  stats: AggregatorStats;
  distinct: DistinctState;
  /** Malformed packets per file index. */
  malformedByFile: number[];
}

export type ImportWorkerMessage = ImportWorkerBatch | ImportWorkerDone;

const TWO32 = 4294967296;

/** FlowIdRing slot of a frame that went to no flow. */
export const NO_FLOW = 0xffffffff;
const FLOW_IDS = 1 << 18;

/**
 * Each frame's flow (slot, id high and low words), one entry per frame in the worker's order: a
 * single-producer single-consumer ring of three words an entry in a SharedArrayBuffer.
 */
export class FlowIdRing {
  private readonly ctrl: Int32Array;
  private readonly words: Uint32Array;
  /** The id words of the entry take() returned the slot of. */
  idHi = 0;
  idLo = 0;

  constructor(readonly sab: SharedArrayBuffer) {
    this.ctrl = new Int32Array(sab, 0, 2);
    this.words = new Uint32Array(sab, 8, FLOW_IDS * 3);
  }

  static create(): FlowIdRing {
    return new FlowIdRing(new SharedArrayBuffer(8 + FLOW_IDS * 12));
  }

  /** Entries written and not yet taken. */
  available(): number {
    return (Atomics.load(this.ctrl, 0) - Atomics.load(this.ctrl, 1)) >>> 0;
  }

  /** Appends an entry; false when the ring is full. */
  put(slot: number, idHi: number, idLo: number): boolean {
    const w = Atomics.load(this.ctrl, 0) >>> 0;
    if ((w - (Atomics.load(this.ctrl, 1) >>> 0)) >>> 0 >= FLOW_IDS) return false;
    const i = (w & (FLOW_IDS - 1)) * 3;
    this.words[i] = slot;
    this.words[i + 1] = idHi;
    this.words[i + 2] = idLo;
    Atomics.store(this.ctrl, 0, (w + 1) | 0);
    return true;
  }

  /** Takes the oldest entry (there must be one): returns its slot, sets idHi and idLo. */
  take(): number {
    const r = Atomics.load(this.ctrl, 1) >>> 0;
    const i = (r & (FLOW_IDS - 1)) * 3;
    const slot = this.words[i];
    this.idHi = this.words[i + 1];
    this.idLo = this.words[i + 2];
    Atomics.store(this.ctrl, 1, (r + 1) | 0);
    return slot;
  }
}
const WAIT_MS = 50;

/** A packet time (µs) as the ring's two words: seconds' low 32 bits, and µs plus the seconds' high bits << 20 (times past 2106). */
export function tsWords(ts: number): [number, number] {
  const sec = Math.floor(ts / 1e6);
  return [sec % TWO32, (ts - sec * 1e6) | (Math.floor(sec / TWO32) << 20)];
}

export function tsFromWords(lo: number, hi: number): number {
  return ((hi >>> 20) * TWO32 + lo) * 1e6 + (hi & 0xfffff);
}

const detectPause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes a decoded frame to the worker's detection ring with what its Aggregator gave the detectors
 * for it (Aggregator.lastDetect), the bytes only when a detector takes it. While the ring is full
 * this waits for the main thread to take frames back (the main thread never waits on this worker
 * while this ring is full).
 */
export function handToDetection(
  detect: RingWriter,
  lastDetect: number,
  buf: Buffer,
  off: number,
  caplen: number,
  wirelen: number,
  tsSec: number,
  tsUsec: number,
  linkType: number,
  flowHi: number,
  flowLo: number,
  longFrames?: MessagePort,
): void {
  const code = lastDetect === DETECT_NONE ? D_NONE : lastDetect === DETECT_ARP ? D_ARP : lastDetect;
  const len = code === D_NONE ? 0 : caplen;
  const tagged = code !== D_NONE && code !== D_ARP;
  if (longFrames !== undefined && len > detect.longestCopied) {
    // A frame that might not fit the ring goes in a buffer of its own, its flow id after its bytes
    // as in the ring (the reader takes the buffer when it meets the record: RingReader.setShared).
    const own = Buffer.from(new SharedArrayBuffer(tagOffset(0, len) + 8));
    buf.copy(own, 0, off, off + len);
    if (tagged) {
      own.writeUInt32LE(flowHi, tagOffset(0, len));
      own.writeUInt32LE(flowLo, tagOffset(0, len) + 4);
    }
    longFrames.postMessage(own.buffer);
    while (!detect.writeRef(TRANSIENT, 0, len, wirelen, tsSec, tsUsec, linkType, code)) {
      detect.wake();
      Atomics.wait(detectPause, 0, 0, 1);
    }
    return;
  }
  // An IP frame for the detectors carries its flow's id (their evidence: src/detect/evidence.ts).
  if (tagged) detect.tagNext(flowHi, flowLo);
  while (!detect.write(buf, len, wirelen, tsSec, tsUsec, linkType, code, off)) {
    detect.wake();
    Atomics.wait(detectPause, 0, 0, 1);
  }
}

async function run(data: ImportWorkerData): Promise<void> {
  const port = parentPort!;
  const ring = new RingReader(data.ring);
  // A long frame's buffer was posted before its ring record was written: it is there to take.
  ring.setShared(data.frames, () => Buffer.from(receiveMessageOnPort(data.longFrames)!.message as SharedArrayBuffer));
  const detect = data.detectRing === null ? null : new RingWriter(data.detectRing);
  const flowIds = data.flowIdRing === null ? null : new FlowIdRing(data.flowIdRing);
  const agg = new Aggregator({ ...data.aggregator, iface: data.ifaces[0] ?? '', detect: false, detectFlags: detect !== null });
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const malformedByFile = data.ifaces.map(() => 0);
  let iface = 0;
  let epoch = 0;
  let finished = false;

  const post = (closedBefore = agg.openIntervalStart(0)) => {
    const { encoded, transfer } = encodeBatch(agg.takeBatch());
    const msg: ImportWorkerBatch = { type: 'batch', index: data.index, records: encoded, epoch, closedBefore };
    port.postMessage(msg, transfer);
  };

  const onFrame = (buf: Buffer, off: number, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, ifIdx: number) => {
    const ts = tsFromWords(tsSec, tsUsec);
    if (linkType === MARKER) {
      if (ifIdx === MARK_FINISH) finished = true;
      else if (agg.clock(ts) === CLOCK_RESTART) {
        // Everything so far (the flows and intervals the restart ended included) belongs to the
        // epoch that ends here: its records go out labelled with it, all of its intervals closed.
        post(Number.MAX_SAFE_INTEGER);
        epoch++;
      }
      return;
    }
    if (ifIdx !== iface) {
      iface = ifIdx;
      agg.setIface(data.ifaces[ifIdx]);
    }
    const malformed = agg.malformed;
    agg.packet(linkType, ts, buf, off, caplen, wirelen);
    if (agg.malformed !== malformed) malformedByFile[ifIdx]++;
    if (flowIds !== null) {
      const f = agg.lastFlow;
      const slot = f >= 0 ? f : NO_FLOW;
      const hi = f >= 0 ? agg.flows.idHi[f] : 0;
      const lo = f >= 0 ? agg.flows.idLo[f] : 0;
      while (!flowIds.put(slot, hi, lo)) Atomics.wait(pause, 0, 0, 1); // the main thread is behind
    }
    if (detect !== null) {
      const f = agg.lastFlow;
      handToDetection(
        detect,
        agg.lastDetect,
        buf,
        off,
        caplen,
        wirelen,
        tsSec,
        tsUsec,
        linkType,
        f >= 0 ? agg.flows.idHi[f] : 0,
        f >= 0 ? agg.flows.idLo[f] : 0,
        data.detectLongFrames,
      );
    }
  };

  // Atomics.waitAsync's timeout does not keep the event loop alive: this does, until the end.
  const keepAlive = setInterval(() => {}, 1 << 30);
  while (!finished) {
    const seen = ring.seq();
    const n = ring.drain(onFrame);
    detect?.wake();
    if (agg.pendingRows() >= data.batchRows) post();
    if (n === 0 && !finished) await ring.wait(seen, WAIT_MS);
  }
  clearInterval(keepAlive);
  agg.finish();
  post();
  detect?.wake();
  const done: ImportWorkerDone = { type: 'done', index: data.index, stats: agg.stats(), distinct: agg.distinctHosts.state(), malformedByFile };
  port.postMessage(done);
}

// Only as a decode worker's entry: a worker thread that imports the import path (the fuzz test's
// worker, an API server in a worker) must not start a decode loop on its own data.
if (parentPort && (workerData as Partial<ImportWorkerData> | null)?.role === IMPORT_WORKER_ROLE) {
  run(workerData as ImportWorkerData).catch((err: unknown) => {
    throw err; // reaches the main thread's 'error' handler, which fails the import
  });
}
