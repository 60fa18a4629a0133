// A write-only store (StoreWriter) that keeps the anomaly records an import writes: for tests that
// judge detection through the library's importFiles without a database.
import type { AnomalyRecord, RecordBatch, StoreWriter } from '../../src/store/types.js';

export function collectingStore(into: AnomalyRecord[]): StoreWriter {
  return {
    backend: 'collect',
    init: async () => {},
    close: async () => {},
    health: async () => ({ backend: 'collect', ok: true }),
    beginRun: async () => {},
    write: async (batch: RecordBatch) => {
      for (const a of batch.anomalies ?? []) into.push(a);
    },
    flush: async () => {},
  };
}

/** The latest version of each anomaly (an anomaly is written again as it is updated and ends). */
export function latestAnomalies(records: AnomalyRecord[]): AnomalyRecord[] {
  return [...new Map(records.map((a) => [a.anomalyId, a])).values()];
}
