// `flowlens export flows|hosts|anomalies`: every flow (its segments summed), every host or every
// anomaly (its latest version), as JSON lines or CSV. Flows and anomalies also take a range
// (--from, --to), flows the API's filter (--filter 'host=.. port=..'), both a --limit.
import { FLOW_FILTER_KEYS } from '../records/flow-filter.js';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { ANOMALY, apiFields, EMPTY_VALUE, exportFields, FLOW, flowBytes } from '../records/index.js';
import { openStore, type StoreOptions } from '../store/index.js';
import type { AnomalyRecord, FlowStore, FlowSummary, HostSummary } from '../store/types.js';
import { isoMicros } from '../store/time.js';
import { localByNetworks, writeZeekConnLog } from '../store/export-zeek.js';
import { NamedNetworks } from '../enrich/networks.js';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { parseFlowFilter, parseTimeArg } from '../packets/select.js';
import { positiveInteger } from './options.js';
import type { FlowFilter } from '../store/types.js';
import { remoteFlows, RemoteExportError } from '../api/export-client.js';

export type ExportKind = 'flows' | 'hosts' | 'anomalies';
/** zeek / zeek-json: flows only, as Zeek's conn.log (src/store/export-zeek.ts). */
export type ExportFormat = 'jsonl' | 'csv' | 'zeek' | 'zeek-json';

/**
 * A flow's fields as the API's Flow object has them (src/records/flow.ts: every column with a
 * GraphQL field, under its GraphQL name: `id`, not the record's flowId; a nullable column's empty
 * value as null), then the API's `bytes` (both directions). The columns of earlier releases keep
 * their CSV positions: new columns come after them (flowId became id in place).
 */
const FLOW_API = apiFields(FLOW);
export const FLOW_FIELDS: readonly string[] = [...FLOW_API.map((f) => f.name), 'bytes'];

/** A flow as the API shows it (what `flows { edges { node { ... } } }` returns for FLOW_FIELDS). */
function apiFlow(f: FlowSummary): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of FLOW_API) {
    const v = a.get(f);
    out[a.name] = a.column.type === 'time' && v !== null ? isoMicros(v as number) : v;
  }
  out.bytes = flowBytes(f);
  return out;
}

/** ISO 8601 text with µs (the API's DateTime) back to µs since the epoch. */
function microsFromIso(s: string): number {
  const m = /^(.{19})(?:\.(\d{1,6}))?Z$/.exec(s);
  if (!m) throw new RemoteExportError(`the server sent a time that is not ISO 8601 UTC: ${JSON.stringify(s)}`);
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0'));
}

/** The record behind an API flow (the inverse of apiFlow): what the Zeek formats are written from. */
function flowFromApi(o: Record<string, unknown>): FlowSummary {
  const out: Record<string, unknown> = {};
  for (const a of FLOW_API) {
    const v = o[a.name];
    out[a.column.field] = v === null || v === undefined ? EMPTY_VALUE[a.column.type] : a.column.type === 'time' ? microsFromIso(v as string) : v;
  }
  return out as FlowSummary;
}

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
      new Option(
        '--filter <terms>',
        `flows only: 'key=value ...' with keys ${FLOW_FILTER_KEYS.join(', ')} (the API's FlowFilter; host=10.0.0.0/8, serverName=*.example.com)`,
      )
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

/** null (the API's "not known") is an empty field; an object (anomaly evidence) its JSON text. */
function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The DuckDB file is held by another process (a running `flowlens serve`): DuckDB's lock error. */
function lockHolder(err: unknown): string | undefined {
  const message = (err as Error)?.message ?? '';
  if (!/Could not set lock on file/.test(message)) return undefined;
  const pid = /\(PID (\d+)\)/.exec(message);
  return pid ? `process ${pid[1]}` : 'another process';
}

export async function runExport(
  kind: ExportKind,
  opts: StoreOptions & {
    format: ExportFormat;
    output?: string;
    selection?: ExportSelection;
    /** Named networks (--networks): Zeek's local_orig / local_resp from them instead of the special ranges. */
    networks?: string;
    /** A running `flowlens serve` to read through (it holds the DuckDB file), and its token. */
    server?: string;
    token?: string;
  },
): Promise<number> {
  const sel = opts.selection;
  // Hosts are summed over all time (no range); only flows have the flow filter.
  if (sel && kind === 'hosts') return usage('export hosts takes no --from, --to, --filter or --limit (hosts are summed over all time)');
  if (sel?.filter && kind !== 'flows') return usage('--filter selects flows: export flows --filter ...');
  if (sel?.from !== undefined && sel.to !== undefined && sel.from >= sel.to) return usage('--from must be before --to');
  if (opts.server && kind !== 'flows') return usage('--server exports flows only (export hosts and anomalies read the store itself)');
  if ((opts.format === 'zeek' || opts.format === 'zeek-json') && kind !== 'flows') {
    process.stderr.write(`flowlens export: --format ${opts.format} exports flows only (Zeek's conn.log)\n`);
    return 1;
  }
  let store: FlowStore | undefined;
  if (!opts.server) {
    try {
      store = await openStore({ ...opts, readOnly: true });
    } catch (err) {
      const holder = lockHolder(err);
      if (!holder) throw err;
      process.stderr.write(
        `flowlens export: ${opts.db} is locked by ${holder} (a flowlens serve, capture or import writing to it): export through a running serve with --server URL (FLOWLENS_EXPORT_SERVER)\n`,
      );
      return 1;
    }
  }
  const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
  const fields: readonly string[] = kind === 'flows' ? FLOW_FIELDS : kind === 'hosts' ? HOST_FIELDS : ANOMALY_FIELDS;
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  // Flows as the API shows them: from the store, or read through the server.
  const apiFlows = async function* (): AsyncGenerator<Record<string, unknown>> {
    if (opts.server) {
      yield* remoteFlows(opts.server, opts.token, FLOW_FIELDS, { from: sel?.from ?? 0, to: sel?.to ?? END_OF_TIME, filter: sel?.filter, limit: sel?.limit });
      return;
    }
    for await (const f of sel ? selectedFlows(store as FlowStore, sel) : (store as FlowStore).exportFlows()) yield apiFlow(f);
  };
  try {
    if (opts.format === 'zeek' || opts.format === 'zeek-json') {
      const isLocal = opts.networks ? localByNetworks(NamedNetworks.load(opts.networks)) : undefined;
      const flows = store ? (sel ? selectedFlows(store, sel) : store.exportFlows()) : mapAsync(apiFlows(), flowFromApi);
      await writeZeekConnLog(flows, opts.format, write, isLocal);
      return 0;
    }
    if (opts.format === 'csv') await write(`${fields.join(',')}\n`);
    const rows: AsyncIterable<Record<string, unknown>> =
      kind === 'flows' ? apiFlows() : kind === 'hosts' ? mapAsync((store as FlowStore).exportHosts(), plainRecord) : anomalyRecords(store as FlowStore, sel);
    for await (const record of rows) {
      if (opts.format === 'jsonl') await write(`${JSON.stringify(record)}\n`);
      else await write(`${fields.map((f) => csvField(record[f])).join(',')}\n`);
    }
  } catch (err) {
    if (!(err instanceof RemoteExportError)) throw err;
    process.stderr.write(`flowlens export: ${err.message}\n`);
    return 1;
  } finally {
    await store?.close();
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
  }
  return 0;
}

async function* mapAsync<A, B>(rows: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const r of rows) yield f(r);
}

/** A host or anomaly row with its time fields as ISO 8601 text, in the order of its fields. */
function plainRecord(row: HostSummary | AnomalyRecord, fields: readonly string[] = HOST_FIELDS): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const f of fields) {
    const v = (row as unknown as Record<string, unknown>)[f];
    record[f] = TIME_FIELDS.has(f) ? isoMicros(v as number) : v;
  }
  return record;
}

/** Anomalies, oldest first, their evidence as a JSON object (in CSV its text again). */
async function* anomalyRecords(store: FlowStore, sel: ExportSelection | undefined): AsyncGenerator<Record<string, unknown>> {
  for (const a of (await allAnomalies(store, sel ?? {})).slice(0, sel?.limit ?? undefined)) {
    const record = plainRecord(a, ANOMALY_FIELDS);
    record.evidence = JSON.parse(record.evidence as string);
    yield record;
  }
}
