// A record batch on its way from a decode worker to the thread that merges the records and writes
// the store, its flow, host and traffic records as columns (src/records/columns.ts): cloning them
// as objects cost both threads ~5 µs a flow record, which made the receiving thread the bottleneck
// of a parallel import and blocked a live capture's libpcap reads for ~25 ms a batch.
import { FLOW, HOST, TRAFFIC } from '../records/index.js';
import { type RecordColumns, columnBuffers, decodeRecords, encodeRecords } from '../records/columns.js';
import type { RecordBatch } from './types.js';

export interface EncodedBatch {
  flows: RecordColumns;
  hosts: RecordColumns;
  traffic: RecordColumns;
  /** Few (anomaly updates): as objects. */
  anomalies?: RecordBatch['anomalies'];
}

/** The batch as columns, and the buffers to transfer with it (postMessage(msg, transfer)). */
export function encodeBatch(batch: RecordBatch): { encoded: EncodedBatch; transfer: ArrayBuffer[] } {
  const encoded: EncodedBatch = {
    flows: encodeRecords(FLOW, batch.flows),
    hosts: encodeRecords(HOST, batch.hosts),
    traffic: encodeRecords(TRAFFIC, batch.traffic),
  };
  if (batch.anomalies !== undefined) encoded.anomalies = batch.anomalies;
  return { encoded, transfer: [...columnBuffers(encoded.flows), ...columnBuffers(encoded.hosts), ...columnBuffers(encoded.traffic)] };
}

/**
 * The batch cut into pieces of at most maxRows flow, host and traffic rows, in order (flows, then
 * hosts, then traffic); the anomalies go with the last piece. The receiving thread decodes a piece in
 * one go: a live capture's, between two reads of libpcap.
 */
export function splitBatch(batch: RecordBatch, maxRows: number): RecordBatch[] {
  const limit = Math.max(1, Math.floor(maxRows));
  const rows = batch.flows.length + batch.hosts.length + batch.traffic.length;
  if (rows <= limit) return [batch];
  const pieces: RecordBatch[] = [];
  let piece: RecordBatch = { flows: [], hosts: [], traffic: [] };
  let room = limit;
  for (const kind of ['flows', 'hosts', 'traffic'] as const) {
    const list = batch[kind] as unknown[];
    for (let at = 0; at < list.length; ) {
      if (room === 0) {
        pieces.push(piece);
        piece = { flows: [], hosts: [], traffic: [] };
        room = limit;
      }
      // A piece takes one run of each kind: the list is empty until then.
      const take = Math.min(room, list.length - at);
      (piece as Record<typeof kind, unknown[]>)[kind] = list.slice(at, at + take);
      at += take;
      room -= take;
    }
  }
  if (batch.anomalies !== undefined) piece.anomalies = batch.anomalies;
  pieces.push(piece);
  return pieces;
}

export function decodeBatch(encoded: EncodedBatch): RecordBatch {
  const batch: RecordBatch = {
    flows: decodeRecords(FLOW, encoded.flows),
    hosts: decodeRecords(HOST, encoded.hosts),
    traffic: decodeRecords(TRAFFIC, encoded.traffic),
  };
  if (encoded.anomalies !== undefined) batch.anomalies = encoded.anomalies;
  return batch;
}
