// An import through N decode workers (--workers N), with the records one Aggregator over all the
// packets would give:
//
//   reader (main thread)                       decode workers (src/flow/import-worker.ts)
//   file chunk → address-pair hash → ring[w] ──►  ring → Aggregator (flows, hosts, DPI)
//        │ clock markers to every ring                 │ frame + detector flags → detection ring[w]
//   DetectorSet ◄── frames taken back in the reader's order ┘
//   store writer ◄── flows; host and traffic records of an interval summed over the workers
//
// - Frames go to workers by the symmetric hash of their decoded address pair (src/capture/shard.ts): both
//   directions of a flow, its fragments, and every flow between two hosts meet in one worker, so
//   host peers add up exactly when the workers' interval records are summed.
// - The reader's clock goes to every worker as a marker whenever the interval changes (or the
//   time jumps back: the next file from another time), before the packet that changes it: every
//   worker closes its intervals and expires its flows at the very packet time one Aggregator would.
// - Detection sees every packet, in the reader's order, in one DetectorSet here: the workers hand
//   each frame back with the flags their flow table gives it (new flow, direction, first reply,
//   established, peer-to-peer), so a scan across many hosts or a distributed flood is not split.
// - Results equal an import with one worker while the workers' tables together stay under the caps
//   (one budget over the workers, Aggregator's tableBudget). Past a cap, which flows are evicted
//   depends on the number of workers: each worker evicts the oldest of its own flows, not of all.
import { badTimesNote, fileFailure, truncationWarning, warnUnsupportedLinkTypes } from './import-file.js';
import { basename } from 'node:path';
import { MessageChannel, type MessagePort, type Worker, receiveMessageOnPort } from 'node:worker_threads';
import { startWorker } from '../worker-thread.js';
import { DecodedPacket, MALFORMED_REASONS, R_PCAP_BAD_TIMESTAMP, R_PCAP_TRUNCATED_RECORD } from '../decode/packet.js';
import { DetectorSet } from '../detect/index.js';
import { type AggregatorStats, CLOCK_ADVANCE, CLOCK_FIRST, CLOCK_RESTART, newTableBudget } from '../flow/aggregator.js';
import { defaultMaxFlows } from '../flow/caps.js';
import { DistinctAddresses } from '../flow/distinct.js';
import { decodeBatch } from '../store/batch-transfer.js';
import {
  FlowIdRing,
  IMPORT_WORKER_ROLE,
  type ImportWorkerData,
  type ImportWorkerMessage,
  MARK_CLOCK,
  MARK_FINISH,
  MARKER,
  NO_FLOW,
} from '../flow/import-worker.js';
import type { HostRecord, RecordBatch, TrafficRecord } from '../store/types.js';
import { isoMicros } from '../store/time.js';
import type { FileResult, ImportOptions, ImportSummary } from './import.js';
import { mergeIntervalRecords } from './live.js';
import { StoreWriteFailure, StoreWrites, fileSize } from './import-writes.js';
import { FramePool } from './frame-pool.js';
import { CaptureFileReader, type PacketHandler, readBufferBytes } from './pcap-file.js';
import { RingReader, RingWriter, TRANSIENT, ringBytes, ringCapacity } from './ring.js';
import { shardOf } from './shard.js';
import { ORDER_FINISH, ORDER_TICK, ReplayOrder, detectorFeed } from './replay-order.js';

/**
 * Packet ring and detection ring of each worker (bytes each). The packet ring carries references
 * into the read buffers (32 bytes a frame): 2 MiB is 65,536 frames, more than two reads of the
 * benchmark capture hold. The detection ring carries the bytes of the frames detectors take.
 */
const PACKET_RING_BYTES = 2 * 1024 * 1024;
const DETECT_RING_BYTES = 8 * 1024 * 1024;
/**
 * Read buffers the workers take frames from (frame-pool.ts), 4 MiB and a little each: the one being
 * parsed, the read-ahead, and those whose frames the workers have not all read yet.
 */
const POOL_BUFFERS = 4;
const TWO32 = 4294967296;
/** Host and traffic records of open intervals, per epoch (a time jump back starts a new one), until every worker has closed them. */
interface Pending {
  traffic: Map<number, TrafficRecord>;
  hosts: Map<number, Map<string, HostRecord>>;
}

/**
 * Whether the import can go through workers: a bus (flow events) is not carried across them yet,
 * and enrichment must be plain settings (each worker opens its own lookups).
 */
export function canImportInParallel(opts: ImportOptions): boolean {
  const enrich: unknown = opts.enrich;
  return opts.bus === undefined && (enrich == null || Object.getPrototypeOf(enrich) === Object.prototype);
}

export async function importFilesParallel(paths: string[], opts: ImportOptions, source: string, workerCount: number): Promise<ImportSummary> {
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;
  const intervalUs = (opts.intervalSec ?? 60) * 1e6;
  const node = opts.node ?? '';
  const detector = opts.detect === false ? null : new DetectorSet(opts.detect ?? {}, node, opts.bus);
  await opts.store?.beginRun(source);

  const capacity = ringCapacity(opts.workerRingBytes ?? PACKET_RING_BYTES);
  const detectCapacity = ringCapacity(opts.workerRingBytes ?? DETECT_RING_BYTES);
  const rings: RingWriter[] = [];
  const detectRings: RingReader[] = [];
  const packetIndex = opts.packetIndex;
  await packetIndex?.begin();
  const flowRings: FlowIdRing[] = [];
  /** Frames are taken back in order for detection, the packet index, or both. */
  const takeBack = detector !== null || packetIndex !== undefined;
  const workers: Worker[] = [];
  /** Where each worker takes its long frames' buffers from, and this thread those of the frames it hands back (RingWriter.longestCopied). */
  const longFrames: MessagePort[] = [];
  const detectLongFrames: MessagePort[] = [];
  const ifaces = paths.map((p) => opts.iface ?? basename(p));

  const pending = new Map<number, Pending>();
  const closed: { epoch: number; before: number }[] = [];
  const doneStats: (AggregatorStats | null)[] = [];
  const distinct = new DistinctAddresses();
  const malformedByFile = paths.map(() => 0);
  let out: RecordBatch = { flows: [], hosts: [], traffic: [] };
  let failure: Error | null = null;

  const release = (all: boolean) => {
    let epoch = Number.MAX_SAFE_INTEGER;
    let before = Number.MAX_SAFE_INTEGER;
    if (!all) {
      for (const c of closed) {
        if (c.epoch < epoch || (c.epoch === epoch && c.before < before)) {
          epoch = c.epoch;
          before = c.before;
        }
      }
    }
    for (const [e, p] of pending) {
      if (e > epoch) continue;
      const limit = e < epoch ? Number.MAX_SAFE_INTEGER : before;
      for (const [ts, t] of p.traffic) {
        if (ts >= limit) continue;
        p.traffic.delete(ts);
        out.traffic.push(t);
      }
      for (const [ts, m] of p.hosts) {
        if (ts >= limit) continue;
        p.hosts.delete(ts);
        for (const h of m.values()) out.hosts.push(h);
      }
      if (e < epoch) pending.delete(e);
    }
  };

  // The caps are one budget over the workers: no eviction while the whole import is under them.
  const maxFlows = opts.maxFlows ?? defaultMaxFlows();
  const tableBudget = newTableBudget(workerCount);
  const finished: Promise<void>[] = [];
  // The file is read into shared buffers and frames go to the workers as references into them.
  // While every buffer still has frames to be read, the reader lets the workers go on.
  const pool = new FramePool(POOL_BUFFERS, readBufferBytes(opts.readChunkBytes), rings, async () => {
    replay();
    await letWorkersRun();
  });
  for (let i = 0; i < workerCount; i++) {
    const ring = RingWriter.create(capacity);
    const longChannel = new MessageChannel();
    longFrames.push(longChannel.port1);
    const detectLongChannel = new MessageChannel();
    detectLongFrames.push(detectLongChannel.port1);
    const detectSab = detector === null ? null : new SharedArrayBuffer(ringBytes(detectCapacity));
    rings.push(ring);
    if (detectSab !== null) {
      const detectRing = new RingReader(detectSab);
      const port = detectLongChannel.port1;
      detectRing.setShared([], () => Buffer.from(receiveMessageOnPort(port)!.message as SharedArrayBuffer));
      detectRings.push(detectRing);
    }
    const flowIds = packetIndex === undefined ? null : FlowIdRing.create();
    if (flowIds !== null) flowRings.push(flowIds);
    closed.push({ epoch: 0, before: 0 });
    doneStats.push(null);
    const data: ImportWorkerData = {
      role: IMPORT_WORKER_ROLE,
      ring: ring.sab,
      frames: pool.sabs,
      longFrames: longChannel.port2,
      detectLongFrames: detectLongChannel.port2,
      detectRing: detectSab,
      flowIdRing: flowIds?.sab ?? null,
      index: i,
      ifaces,
      aggregator: {
        intervalSec: opts.intervalSec ?? 60,
        activeTimeoutSec: opts.activeTimeoutSec ?? 60,
        idle: { tcp: 300, tcpClosed: 10, tcpAttempted: 60, udp: 60, icmp: 60, other: 60, ...opts.idle },
        node,
        source,
        dpi: opts.dpi,
        classify: opts.classify,
        enrich: opts.enrich,
        maxFlows,
        maxHosts: opts.maxHosts,
        tableBudget,
      },
      batchRows: opts.batchRows ?? 4096,
    };
    const worker = startWorker(import.meta.url, '../flow/import-worker', {
      workerData: data,
      transferList: [longChannel.port2, detectLongChannel.port2],
      name: `flowlens-import-${i}`,
    });
    workers.push(worker);
    finished.push(
      new Promise<void>((resolve) => {
        worker.on('message', (m: ImportWorkerMessage) => {
          if (m.type === 'batch') {
            const records = decodeBatch(m.records);
            for (const f of records.flows) out.flows.push(f);
            let p = pending.get(m.epoch);
            if (!p) pending.set(m.epoch, (p = { traffic: new Map(), hosts: new Map() }));
            mergeIntervalRecords(p.traffic, p.hosts, records);
            closed[i] = { epoch: m.epoch, before: m.closedBefore };
            release(false);
          } else {
            doneStats[i] = m.stats;
            distinct.merge(m.distinct);
            for (let f = 0; f < m.malformedByFile.length; f++) malformedByFile[f] += m.malformedByFile[f];
            closed[i] = { epoch: Number.MAX_SAFE_INTEGER, before: Number.MAX_SAFE_INTEGER };
            resolve();
          }
        });
        worker.on('error', (err) => {
          failure ??= err;
          resolve();
        });
        worker.on('exit', (code) => {
          if (doneStats[i] === null) failure ??= new Error(`import worker ${i} exited (code ${code}) before the end of the input`);
          resolve();
        });
      }),
    );
  }

  // Detection: frames taken back from the workers in the order they were handed out.
  const order = new ReplayOrder();
  const shardPkt = new DecodedPacket();
  const onDetect = detector === null ? () => {} : detectorFeed(detector);
  /** Runs detection and the packet index as far as the workers have got; true when nothing is left to take back. */
  const replay = (): boolean => {
    if (!takeBack) return true;
    while (order.size > 0) {
      const who = order.peekWho();
      if (who === ORDER_TICK) detector?.tick(order.peekTs());
      else if (who === ORDER_FINISH) detector?.finish();
      else {
        // A worker writes the flow id before the detection frame: with both, the frame's presence tells.
        if (detector !== null) {
          if (!detectRings[who].next(onDetect)) return false;
        } else if (flowRings[who].available() === 0) return false;
        if (packetIndex !== undefined) {
          const ids = flowRings[who];
          const slot = ids.take();
          // Slots are per worker: interleaved, they stay distinct.
          if (slot !== NO_FLOW) packetIndex.add(slot * workerCount + who, ids.idHi, ids.idLo, order.peekTs(), order.peekRecOff(), order.peekRecLen());
        }
      }
      order.shift();
    }
    return true;
  };
  /** Wakes the workers and lets them run a millisecond; throws a worker's failure. */
  const letWorkersRun = async () => {
    if (failure) throw failure;
    for (const r of rings) r.wake();
    await new Promise((r) => setTimeout(r, 1));
  };
  /** Waits until every frame handed out has been taken back (a file's end, for the packet index). */
  const replayAll = async () => {
    while (!replay()) await letWorkersRun();
  };

  const pause = new Int32Array(new SharedArrayBuffer(4));
  const empty = Buffer.alloc(0);
  /** `data`'s index in the pool, or -1 (a buffer of the reader's own: the frame is copied). */
  let lastData: Buffer = empty;
  let lastIndex = -1;
  const put = (w: number, data: Buffer, off: number, caplen: number, wirelen: number, lo: number, hi: number, linkType: number, iface: number) => {
    const ring = rings[w];
    if (data !== lastData) {
      lastData = data;
      lastIndex = pool.index(data);
    }
    let shared = lastIndex;
    let at = off;
    if (shared < 0 && caplen > ring.longestCopied) {
      const own = new SharedArrayBuffer(caplen);
      data.copy(Buffer.from(own), 0, off, off + caplen);
      longFrames[w].postMessage(own);
      shared = TRANSIENT;
      at = 0;
    }
    while (
      !(shared >= 0 ? ring.writeRef(shared, at, caplen, wirelen, lo, hi, linkType, iface) : ring.write(data, caplen, wirelen, lo, hi, linkType, iface, off))
    ) {
      // The worker is behind: let it run, and take back what it has done meanwhile (it may wait on that).
      if (failure) throw failure;
      ring.wake();
      replay();
      Atomics.wait(pause, 0, 0, 1);
    }
  };
  const tsLo = (ts: number) => Math.floor(ts / 1e6) % TWO32;
  const tsHi = (ts: number) => (ts - Math.floor(ts / 1e6) * 1e6) | (Math.floor(Math.floor(ts / 1e6) / TWO32) << 20);

  // The reader's clock, as Aggregator.clock() keeps it.
  let interval = -1;
  const clock = (ts: number) => {
    const idx = Math.floor(ts / intervalUs);
    if (idx === interval) return;
    let what: number;
    if (interval < 0) what = CLOCK_FIRST;
    else if (idx > interval) what = CLOCK_ADVANCE;
    else if (idx < interval - 1) what = CLOCK_RESTART;
    else return;
    interval = idx;
    const lo = tsLo(ts);
    const hi = tsHi(ts);
    for (let w = 0; w < rings.length; w++) put(w, empty, 0, 0, 0, lo, hi, MARKER, MARK_CLOCK);
    if (takeBack && what === CLOCK_ADVANCE) order.push(ORDER_TICK, ts);
    else if (takeBack && what === CLOCK_RESTART) order.push(ORDER_FINISH, ts);
  };

  // Counts of frames that never reach a worker (bad times, records cut short).
  let unreadablePackets = 0;
  let unreadableBytes = 0;
  const unreadableByReason = new Map<number, number>();
  const unreadable = (reason: number, bytes: number) => {
    unreadablePackets++;
    unreadableBytes += bytes;
    unreadableByReason.set(reason, (unreadableByReason.get(reason) ?? 0) + 1);
  };

  const store = opts.store;
  // Several store writes may be on their way while the reader goes on (import-writes.ts).
  const writes = store === null ? null : new StoreWrites(store, opts.rowsInFlight);
  const writeOut = async () => {
    if (detector !== null && detector.pending() > 0) out.anomalies = detector.take();
    const batch = out;
    out = { flows: [], hosts: [], traffic: [] };
    await writes?.write(batch);
  };
  // The packet index's full run is written while the next one is built (index-writer.ts).
  let indexWrite: Promise<void> = Promise.resolve();
  const batchRows = opts.batchRows ?? 4096;
  const outRows = () => out.flows.length + out.hosts.length + out.traffic.length;

  let totalBytes = 0;
  const sizes: number[] = [];
  for (const path of paths) {
    const size = await fileSize(path);
    sizes.push(size);
    totalBytes += size;
  }
  let doneBytes = 0;
  let packets = 0;
  const files: FileResult[] = [];
  let interrupted = false;

  try {
    for (let i = 0; i < paths.length && !interrupted; i++) {
      const path = paths[i];
      const reader = new CaptureFileReader(path, { chunkBytes: opts.readChunkBytes, buffers: pool });
      const result: FileResult = { path, format: '', records: 0, packets: 0, bytes: 0, malformed: 0, linkTypes: [] };
      files.push(result);
      let badTimes = 0;
      let filePackets = 0;
      let fileBytes = 0;
      const iface = i & 0xffff;
      const onPacket: PacketHandler = (linkType, ts, data, offset, caplen, wirelen, _interfaceId, recordOffset, recordLength) => {
        filePackets++;
        fileBytes += Math.max(wirelen, caplen);
        if (ts < 0) {
          badTimes++;
          unreadable(R_PCAP_BAD_TIMESTAMP, Math.max(wirelen, caplen));
          return;
        }
        clock(ts);
        const w = shardOf(linkType, data, offset, caplen, wirelen, shardPkt, rings.length);
        put(w, data, offset, caplen, wirelen, tsLo(ts), tsHi(ts), linkType, iface);
        if (takeBack) order.push(w, ts, recordOffset, recordLength);
      };
      try {
        await reader.open();
        result.format = reader.format;
        if (packetIndex !== undefined && reader.format !== '') await packetIndex.beginFile(path, reader.format, reader.sections);
        const warned = new Set<number>();
        for (;;) {
          const more = await reader.readChunk(onPacket, opts.signal);
          for (const r of rings) r.wake();
          replay();
          if (failure) throw failure;
          warnUnsupportedLinkTypes(reader, warned, path, opts.onWarning);
          if (outRows() >= batchRows) await writeOut();
          if (packetIndex?.full) {
            await indexWrite;
            indexWrite = packetIndex.flush();
            indexWrite.catch(() => {}); // handled: awaited at the next full run or at the end
          }
          opts.onProgress?.({
            file: path,
            fileIndex: i,
            files: paths.length,
            bytesRead: doneBytes + reader.bytesRead,
            totalBytes,
            packets: packets + filePackets,
            elapsedSec: elapsed(),
          });
          if (opts.signal?.aborted) {
            interrupted = true;
            break;
          }
          if (!more) break;
        }
        if (reader.truncated) {
          const t = reader.truncated;
          unreadable(R_PCAP_TRUNCATED_RECORD, t.got);
          filePackets++;
          fileBytes += t.got;
          result.warning = truncationWarning(t);
          opts.onWarning?.(`${path}: ${result.warning}`);
        }
      } catch (err) {
        if (err === failure) throw err;
        if (err instanceof StoreWriteFailure) throw err.cause;
        result.error = fileFailure(err, path, reader.bytesRead);
      } finally {
        if (packetIndex !== undefined) {
          // The file's packets must be indexed under it before the next file begins.
          await replayAll();
          packetIndex.endFile();
        }
        await reader.close().catch(() => {});
      }
      if (badTimes > 0) {
        const note = badTimesNote(badTimes);
        result.warning = result.warning ? `${result.warning}; ${note}` : note;
        opts.onWarning?.(`${path}: ${note}`);
      }
      result.records = reader.records + (reader.truncated ? 1 : 0);
      result.linkTypes = reader.linkTypes;
      result.packets = filePackets;
      result.bytes = fileBytes;
      result.malformed = badTimes + (reader.truncated ? 1 : 0); // the workers' decode failures are added at the end
      packets += filePackets;
      doneBytes += sizes[i];
    }

    // End of input: every worker ends its flows; detection takes back the last frames.
    for (let w = 0; w < rings.length; w++) put(w, empty, 0, 0, 0, 0, 0, MARKER, MARK_FINISH);
    for (const r of rings) r.wake();
    let allDone = false;
    void Promise.all(finished).then(() => {
      allDone = true;
    });
    while (!(replay() && allDone)) await letWorkersRun();
    if (failure) throw failure;
    detector?.finish();
    release(true);
    try {
      await writeOut();
      await writes?.drain();
    } catch (err) {
      throw err instanceof StoreWriteFailure ? err.cause : err;
    }
    await store?.flush();
    await indexWrite;
    await packetIndex?.flush();
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    for (const port of [...longFrames, ...detectLongFrames]) port.close();
  }

  for (let i = 0; i < files.length; i++) files[i].malformed += malformedByFile[i];
  const stats = mergeStats(doneStats.filter((s): s is AggregatorStats => s !== null));
  stats.packets += unreadablePackets;
  stats.bytes += unreadableBytes;
  stats.malformed += unreadablePackets;
  // In reason order, as one Aggregator lists them.
  const byReason: Record<string, number> = {};
  for (let r = 1; r < MALFORMED_REASONS.length; r++) {
    const n = (stats.malformedByReason[MALFORMED_REASONS[r]] ?? 0) + (unreadableByReason.get(r) ?? 0);
    if (n > 0) byReason[MALFORMED_REASONS[r]] = n;
  }
  stats.malformedByReason = byReason;
  stats.hosts = distinct.count();
  const seconds = elapsed();
  return {
    ...stats,
    records: files.reduce((n, f) => n + (f.records ?? 0), 0),
    anomalies: detector?.started ?? 0,
    firstPacket: stats.firstPacket >= 0 ? isoMicros(stats.firstPacket) : '',
    lastPacket: stats.lastPacket >= 0 ? isoMicros(stats.lastPacket) : '',
    files,
    seconds: Math.round(seconds * 1000) / 1000,
    packetsPerSecond: seconds > 0 ? Math.round(stats.packets / seconds) : 0,
    interrupted,
  };
}

/** The workers' counts summed, the time span widened over all. */
function mergeStats(all: AggregatorStats[]): AggregatorStats {
  const m: AggregatorStats = {
    packets: 0,
    bytes: 0,
    malformed: 0,
    nonIp: 0,
    fragments: 0,
    flows: 0,
    hosts: 0,
    evictedFlows: 0,
    evictedHosts: 0,
    malformedByReason: {},
    firstPacket: -1,
    lastPacket: -1,
  };
  for (const s of all) {
    m.packets += s.packets;
    m.bytes += s.bytes;
    m.malformed += s.malformed;
    m.nonIp += s.nonIp;
    m.fragments += s.fragments;
    m.flows += s.flows;
    m.evictedFlows += s.evictedFlows;
    m.evictedHosts += s.evictedHosts;
    for (const [reason, n] of Object.entries(s.malformedByReason)) m.malformedByReason[reason] = (m.malformedByReason[reason] ?? 0) + n;
    if (s.firstPacket >= 0 && (m.firstPacket < 0 || s.firstPacket < m.firstPacket)) m.firstPacket = s.firstPacket;
    if (s.lastPacket > m.lastPacket) m.lastPacket = s.lastPacket;
  }
  return m;
}
