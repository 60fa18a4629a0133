// `flowlens export flows|hosts|anomalies`: every flow (its segments summed), every host or every
// anomaly (its latest version), as JSON lines or CSV. Flows and anomalies also take a range
// (--from, --to), flows the API's filter (--filter 'host=.. port=..'), both a --limit.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ANOMALY, exportFields, FLOW } from '../records/index.js';
import { openStore, type StoreOptions } from '../store/index.js';
import type { AnomalyRecord, FlowStore, FlowSummary, HostSummary } from '../store/types.js';
import { isoMicros } from '../store/time.js';
import { localByNetworks, writeZeekConnLog } from '../store/export-zeek.js';
import { NamedNetworks } from '../enrich/networks.js';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseFlowFilter, parseTimeArg } from '../packets/select.js';
import { positiveInteger } from './options.js';
import type { FlowFilter } from '../store/types.js';

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

/** The page size of anomaly and flow reads (the stores' largest). */
const ANOMALY_PAGE = 1000;
const FLOW_PAGE = 1000;

/** End of the times a store holds (2200-01-01, see the README's packet times): "no --to". */
const END_OF_TIME = Date.UTC(2200, 0, 1) * 1000;

/** What to export of flows and anomalies: a range [from, to) in µs, a flow filter, at most `limit`. */
export interface ExportSelection {
  from?: number;
  to?: number;
  filter?: FlowFilter;
  limit?: number;
}

const asArgument =
  <T>(parse: (v: string) => T) =>
  (v: string): T => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };

/** --from, --to, --filter, --limit, each with its variable. */
export function addExportSelectionOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--from <time>', 'flows and anomalies from this time (ISO 8601 or µs since the epoch), inclusive')
        .env('FLOWLENS_EXPORT_FROM')
        .argParser(asArgument((v) => parseTimeArg(v, '--from'))),
    )
    .addOption(new Option('--to <time>', 'up to this time, exclusive').env('FLOWLENS_EXPORT_TO').argParser(asArgument((v) => parseTimeArg(v, '--to'))))
    .addOption(
      new Option('--filter <terms>', "flows only: 'key=value ...' with keys host, port, transport, app, serverName, minBytes, node (the API's FlowFilter)")
        .env('FLOWLENS_EXPORT_FILTER')
        .argParser(asArgument(parseFlowFilter)),
    )
    .addOption(new Option('--limit <n>', 'at most this many records (flows: the earliest first)').env('FLOWLENS_EXPORT_LIMIT').argParser(positiveInteger));
}

export function exportSelectionFrom(o: Record<string, unknown>): ExportSelection | undefined {
  const s: ExportSelection = {
    from: o.from as number | undefined,
    to: o.to as number | undefined,
    filter: o.filter as FlowFilter | undefined,
    limit: o.limit as number | undefined,
  };
  return Object.values(s).some((v) => v !== undefined) ? s : undefined;
}

/** The flows of a selection, by first packet then id, a page at a time through the store's cursor. */
async function* selectedFlows(store: FlowStore, sel: ExportSelection): AsyncGenerator<FlowSummary> {
  let left = sel.limit ?? Number.POSITIVE_INFINITY;
  let after: string | undefined;
  while (left > 0) {
    const page = await store.queryFlows({
      from: sel.from ?? 0,
      to: sel.to ?? END_OF_TIME,
      filter: sel.filter,
      first: Math.min(FLOW_PAGE, left),
      after,
      orderBy: 'time',
    });
    for (const e of page.edges) yield e.node;
    left -= page.edges.length;
    if (!page.pageInfo.hasNextPage || !page.pageInfo.endCursor) return;
    after = page.pageInfo.endCursor;
  }
}

/**
 * Every anomaly, oldest first. The store reads anomalies newest first in pages of at most 1000,
 * so this walks back in time: each page ends where the previous one's oldest start was (those
 * starting at that very microsecond are read again and skipped by id).
 */
export async function allAnomalies(store: FlowStore, range: { from?: number; to?: number } = {}): Promise<AnomalyRecord[]> {
  const out: AnomalyRecord[] = [];
  const seen = new Set<string>();
  let to = range.to ?? Number.MAX_SAFE_INTEGER;
  for (;;) {
    const page = await store.queryAnomalies({ from: range.from ?? 0, to, limit: ANOMALY_PAGE });
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

/** A bad combination of flags: one line on stderr, exit 2 as for any bad flag. */
function usage(message: string): number {
  process.stderr.write(`flowlens export: ${message}\n`);
  return 2;
}

function csvField(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function runExport(
  kind: ExportKind,
  opts: StoreOptions & {
    format: ExportFormat;
    output?: string;
    selection?: ExportSelection;
    /** Named networks (--networks): Zeek's local_orig / local_resp from them instead of the special ranges. */
    networks?: string;
  },
): Promise<number> {
  const sel = opts.selection;
  // Hosts are summed over all time (no range); only flows have the flow filter.
  if (sel && kind === 'hosts') return usage('export hosts takes no --from, --to, --filter or --limit (hosts are summed over all time)');
  if (sel?.filter && kind !== 'flows') return usage('--filter selects flows: export flows --filter ...');
  if (sel?.from !== undefined && sel.to !== undefined && sel.from >= sel.to) return usage('--from must be before --to');
  const store = await openStore({ ...opts, readOnly: true });
  const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
  const fields: readonly string[] = kind === 'flows' ? FLOW_FIELDS : kind === 'hosts' ? HOST_FIELDS : ANOMALY_FIELDS;
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  try {
    if (opts.format === 'zeek' || opts.format === 'zeek-json') {
      if (kind !== 'flows') throw new Error(`--format ${opts.format} exports flows only (Zeek's conn.log)`);
      const isLocal = opts.networks ? localByNetworks(NamedNetworks.load(opts.networks)) : undefined;
      await writeZeekConnLog(sel ? selectedFlows(store, sel) : store.exportFlows(), opts.format, write, isLocal);
      return 0;
    }
    if (opts.format === 'csv') await write(`${fields.join(',')}\n`);
    const rows: AsyncIterable<FlowSummary | HostSummary> | AnomalyRecord[] =
      kind === 'flows'
        ? sel
          ? selectedFlows(store, sel)
          : store.exportFlows()
        : kind === 'hosts'
          ? store.exportHosts()
          : (await allAnomalies(store, sel ?? {})).slice(0, sel?.limit ?? undefined);
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
