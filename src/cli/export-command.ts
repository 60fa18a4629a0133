// `flowlens export flows|hosts|anomalies`: every flow (its segments summed), every host or every
// anomaly (its latest version), as JSON lines or CSV.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ANOMALY, exportFields, FLOW } from '../records/index.js';
import { openStore, type StoreOptions } from '../store/index.js';
import type { AnomalyRecord, FlowStore, FlowSummary, HostSummary } from '../store/types.js';
import { isoMicros } from '../store/time.js';
import { writeZeekConnLog } from '../store/export-zeek.js';

export type ExportKind = 'flows' | 'hosts' | 'anomalies';
/** zeek / zeek-json: flows only, as Zeek's conn.log (src/store/export-zeek.ts). */
export type ExportFormat = 'jsonl' | 'csv' | 'zeek' | 'zeek-json';

/** A flow's fields as its definition lists them (src/records/flow.ts: every summary column not marked export: false). */
export const FLOW_FIELDS: readonly string[] = exportFields(FLOW);

/** HostSummary is a read-side shape (the hosts rows of a range summed), not a record table: its fields are listed here. */
export const HOST_FIELDS = [
  'ip',
  'bytesSent',
  'bytesReceived',
  'packetsSent',
  'packetsReceived',
  'flowsInitiated',
  'flowsReceived',
  'flows',
  'peers',
  'firstSeen',
  'lastSeen',
] as const satisfies readonly (keyof HostSummary)[];

export const ANOMALY_FIELDS: readonly string[] = exportFields(ANOMALY, ANOMALY.list);

/** Printed as ISO 8601 text: the records' time columns (and HostSummary's firstSeen/lastSeen, which FLOW has too). */
const TIME_FIELDS = new Set([...FLOW.list, ...ANOMALY.list].filter((c) => c.type === 'time').map((c) => c.field));

/** The page size of anomaly reads (the stores' largest). */
const ANOMALY_PAGE = 1000;

/**
 * Every anomaly, oldest first. The store reads anomalies newest first in pages of at most 1000,
 * so this walks back in time: each page ends where the previous one's oldest start was (those
 * starting at that very microsecond are read again and skipped by id).
 */
export async function allAnomalies(store: FlowStore): Promise<AnomalyRecord[]> {
  const out: AnomalyRecord[] = [];
  const seen = new Set<string>();
  let to = Number.MAX_SAFE_INTEGER;
  for (;;) {
    const page = await store.queryAnomalies({ from: 0, to, limit: ANOMALY_PAGE });
    let added = 0;
    for (const a of page) {
      if (seen.has(a.anomalyId)) continue;
      seen.add(a.anomalyId);
      out.push(a);
      added++;
    }
    if (page.length < ANOMALY_PAGE) break;
    if (added === 0) throw new Error(`more than ${ANOMALY_PAGE} anomalies start at the same microsecond: cannot page through them`);
    to = page[page.length - 1].startedAt + 1;
  }
  return out.sort((a, b) => a.startedAt - b.startedAt || (a.anomalyId < b.anomalyId ? -1 : a.anomalyId > b.anomalyId ? 1 : 0));
}

function csvField(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function runExport(kind: ExportKind, opts: StoreOptions & { format: ExportFormat; output?: string }): Promise<number> {
  const store = await openStore({ ...opts, readOnly: true });
  const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
  const fields: readonly string[] = kind === 'flows' ? FLOW_FIELDS : kind === 'hosts' ? HOST_FIELDS : ANOMALY_FIELDS;
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  try {
    if (opts.format === 'zeek' || opts.format === 'zeek-json') {
      if (kind !== 'flows') throw new Error(`--format ${opts.format} exports flows only (Zeek's conn.log)`);
      await writeZeekConnLog(store.exportFlows(), opts.format, write);
      return 0;
    }
    if (opts.format === 'csv') await write(`${fields.join(',')}\n`);
    const rows: AsyncIterable<FlowSummary | HostSummary> | AnomalyRecord[] =
      kind === 'flows' ? store.exportFlows() : kind === 'hosts' ? store.exportHosts() : await allAnomalies(store);
    for await (const row of rows) {
      const record: Record<string, unknown> = {};
      for (const f of fields) {
        const v = (row as unknown as Record<string, unknown>)[f];
        record[f] = TIME_FIELDS.has(f) ? isoMicros(v as number) : v;
      }
      if (opts.format === 'jsonl') {
        // Evidence is a JSON object: nested as such in JSON lines, kept as text in CSV.
        if (kind === 'anomalies') record.evidence = JSON.parse(record.evidence as string);
        await write(`${JSON.stringify(record)}\n`);
      } else await write(`${fields.map((f) => csvField(record[f])).join(',')}\n`);
    }
  } finally {
    await store.close();
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
  }
  return 0;
}
