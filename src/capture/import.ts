// Imports capture files: reads each file, feeds its packets to one Aggregator (so a capture split
// over several files keeps its flows) and writes the records to the store in batches, several
// writes on their way while the next chunks are decoded (import-writes.ts). A file that cannot be
// read, or that fails in any way while it is read, is reported and skipped; the packets before the
// failure and the other files stay imported. A store write that fails fails the import. A packet
// whose time is out of the window the store holds (see pcap-file.ts) is malformed
// (pcap.bad-timestamp). An abort (Ctrl-C) ends the flows decoded so far and writes them.
import { badTimesNote, fileFailure, truncationWarning, warnUnsupportedLinkTypes } from './import-file.js';
import { basename } from 'node:path';
import type { EventBus } from '../bus/types.js';
import { R_PCAP_BAD_TIMESTAMP, R_PCAP_TRUNCATED_RECORD } from '../decode/packet.js';
import { Aggregator, type AggregatorOptions, type AggregatorStats } from '../flow/aggregator.js';
import type { PacketIndexWriter } from '../packets/index-writer.js';
import type { StoreWriter } from '../store/types.js';
import { isoMicros } from '../store/time.js';
import { canImportInParallel, importFilesParallel } from './import-parallel.js';
import { StoreWriteFailure, StoreWrites, fileSize } from './import-writes.js';
import { importSource } from './source.js';
import { CaptureFileReader, type PacketHandler } from './pcap-file.js';

export interface ImportProgress {
  file: string;
  fileIndex: number;
  files: number;
  /** Bytes read over all files so far, and the total size of all files. */
  bytesRead: number;
  totalBytes: number;
  packets: number;
  elapsedSec: number;
}

export interface ImportOptions extends Partial<Omit<AggregatorOptions, 'bus'>> {
  /** Where the records go; null for a dry run (decode, count and summarise; write nothing). */
  store: StoreWriter | null;
  bus?: EventBus;
  signal?: AbortSignal;
  onProgress?: (p: ImportProgress) => void;
  /** Problems worth a log line: unsupported link types, truncated files. */
  onWarning?: (message: string) => void;
  /** Rows buffered before a store write. */
  batchRows?: number;
  /** Rows handed to the store and not yet written before decoding waits (default DEFAULT_ROWS_IN_FLIGHT, import-writes.ts). */
  rowsInFlight?: number;
  /** Records where each flow's packets are in the files (src/packets), for `flowlens pcap` and /pcap. */
  packetIndex?: PacketIndexWriter;
  /**
   * Decode workers (src/capture/import-parallel.ts); 1 (the default) decodes in this thread. The
   * records are the same whatever the number. An import with a packet index, a bus or an Enricher
   * instance runs in this thread (see canImportInParallel).
   */
  workers?: number;
  /** Bytes of each worker's rings (default 2 MiB of frame references and 8 MiB of frames back to detection; at least 64 KiB): tests make them small to fill them. */
  workerRingBytes?: number;
  /** Bytes per file read (default 4 MiB): tests make it small, so that the workers' shared read buffers are reused all along. */
  readChunkBytes?: number;
}

export interface FileResult {
  path: string;
  format: string;
  /**
   * Packet records read from the file (one cut short by the end of the file included): each is
   * counted in `packets`, decoded or malformed, so the two are equal. Absent when the import went
   * through a server (the API does not carry it).
   */
  records?: number;
  packets: number;
  bytes: number;
  malformed: number;
  linkTypes: number[];
  error?: string;
  warning?: string;
}

export interface ImportSummary extends Omit<AggregatorStats, 'firstPacket' | 'lastPacket'> {
  /** Packet records read from all files: equal to `packets` (see FileResult.records; absent through a server). */
  records?: number;
  files: FileResult[];
  seconds: number;
  packetsPerSecond: number;
  interrupted: boolean;
  /** Anomalies detected (started) in the capture; 0 with detection off. */
  anomalies: number;
  /** Time of the earliest and latest packet, ISO 8601 ('' when there were none). */
  firstPacket: string;
  lastPacket: string;
}

export async function importFiles(paths: string[], opts: ImportOptions): Promise<ImportSummary> {
  const started = process.hrtime.bigint();
  // Importing the same files again names the same source: the stores replace its rows, not add to them.
  const source = opts.source ?? (await importSource(paths));
  const workers = opts.workers ?? 1;
  if (workers > 1 && canImportInParallel(opts) && paths.length <= 0xffff) {
    return importFilesParallel(paths, opts, source, workers);
  }
  const aggregator = new Aggregator({ ...opts, node: opts.node ?? '', iface: opts.iface ?? '', source });
  await opts.store?.beginRun(source);
  const packetIndex = opts.packetIndex;
  await packetIndex?.begin();
  // Small batches: records handed to the store die young instead of being promoted to V8's old
  // space (20,000 rows per batch cost ~30 MB more peak memory on the benchmark capture).
  const batchRows = opts.batchRows ?? 4096;
  const store = opts.store;
  const files: FileResult[] = [];
  let interrupted = false;
  // Several store writes may be on their way while the next chunks are decoded (import-writes.ts).
  const writes = store === null ? null : new StoreWrites(store, opts.rowsInFlight);
  // The packet index's full run is written while the next one is built (index-writer.ts).
  let indexWrite: Promise<void> = Promise.resolve();

  let totalBytes = 0;
  const sizes: number[] = [];
  for (const path of paths) {
    const size = await fileSize(path);
    sizes.push(size);
    totalBytes += size;
  }
  let doneBytes = 0;
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e9;

  for (let i = 0; i < paths.length && !interrupted; i++) {
    const path = paths[i];
    const reader = new CaptureFileReader(path, { chunkBytes: opts.readChunkBytes });
    const before = { packets: aggregator.packets, bytes: aggregator.bytes, malformed: aggregator.malformed };
    const result: FileResult = { path, format: '', records: 0, packets: 0, bytes: 0, malformed: 0, linkTypes: [] };
    files.push(result);
    let badTimes = 0;
    const onPacket: PacketHandler = (linkType, ts, data, offset, caplen, wirelen, _interfaceId, recordOffset, recordLength) => {
      if (ts >= 0) {
        aggregator.packet(linkType, ts, data, offset, caplen, wirelen);
        const f = aggregator.lastFlow;
        if (packetIndex !== undefined && f >= 0) packetIndex.add(f, aggregator.flows.idHi[f], aggregator.flows.idLo[f], ts, recordOffset, recordLength);
      } else {
        badTimes++;
        aggregator.countUnreadable(R_PCAP_BAD_TIMESTAMP, Math.max(wirelen, caplen));
      }
    };
    try {
      await reader.open();
      result.format = reader.format;
      if (packetIndex !== undefined && reader.format !== '') await packetIndex.beginFile(path, reader.format, reader.sections);
      aggregator.setIface(opts.iface ?? basename(path));
      const warned = new Set<number>();
      for (;;) {
        const more = await reader.readChunk(onPacket, opts.signal);
        warnUnsupportedLinkTypes(reader, warned, path, opts.onWarning);
        // A dry run takes its batches too and drops them: records are never held past their batch.
        if (aggregator.pendingRows() >= batchRows) {
          const batch = aggregator.takeBatch();
          if (writes !== null) await writes.write(batch);
        }
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
          packets: aggregator.packets,
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
        aggregator.countUnreadable(R_PCAP_TRUNCATED_RECORD, t.got);
        result.warning = truncationWarning(t);
        opts.onWarning?.(`${path}: ${result.warning}`);
      }
    } catch (err) {
      if (err instanceof StoreWriteFailure) throw err.cause;
      result.error = fileFailure(err, path, reader.bytesRead);
    } finally {
      packetIndex?.endFile();
      await reader.close().catch(() => {});
    }
    if (badTimes > 0) {
      const note = badTimesNote(badTimes);
      result.warning = result.warning ? `${result.warning}; ${note}` : note;
      opts.onWarning?.(`${path}: ${note}`);
    }
    result.records = reader.records + (reader.truncated ? 1 : 0);
    result.linkTypes = reader.linkTypes;
    result.packets = aggregator.packets - before.packets;
    result.bytes = aggregator.bytes - before.bytes;
    result.malformed = aggregator.malformed - before.malformed;
    doneBytes += sizes[i];
  }

  aggregator.finish();
  try {
    const batch = aggregator.takeBatch();
    if (writes !== null) {
      await writes.write(batch);
      await writes.drain();
    }
  } catch (err) {
    throw err instanceof StoreWriteFailure ? err.cause : err;
  }
  await store?.flush();
  await indexWrite;
  await packetIndex?.flush();

  const stats = aggregator.stats();
  const seconds = elapsed();
  return {
    ...stats,
    records: files.reduce((n, f) => n + (f.records ?? 0), 0),
    anomalies: aggregator.detect?.started ?? 0,
    firstPacket: stats.firstPacket >= 0 ? isoMicros(stats.firstPacket) : '',
    lastPacket: stats.lastPacket >= 0 ? isoMicros(stats.lastPacket) : '',
    files,
    seconds: Math.round(seconds * 1000) / 1000,
    packetsPerSecond: seconds > 0 ? Math.round(stats.packets / seconds) : 0,
    interrupted,
  };
}
