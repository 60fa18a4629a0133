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

export function decodeBatch(encoded: EncodedBatch): RecordBatch {
  const batch: RecordBatch = {
    flows: decodeRecords(FLOW, encoded.flows),
    hosts: decodeRecords(HOST, encoded.hosts),
    traffic: decodeRecords(TRAFFIC, encoded.traffic),
  };
  if (encoded.anomalies !== undefined) batch.anomalies = encoded.anomalies;
  return batch;
}
