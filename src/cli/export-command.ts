// `flowlens export flows|hosts`: every flow (its segments summed) or every host, as JSON lines or CSV.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { openStore, type StoreOptions } from '../store/index.js';
import type { FlowSummary, HostSummary } from '../store/types.js';
import { isoMicros } from '../store/time.js';

export type ExportKind = 'flows' | 'hosts';
export type ExportFormat = 'jsonl' | 'csv';

export const FLOW_FIELDS = [
  'flowId', 'node', 'iface', 'firstSeen', 'lastSeen', 'transport', 'ipProto', 'clientIp', 'clientPort', 'serverIp',
  'serverPort', 'clientPackets', 'clientBytes', 'serverPackets', 'serverBytes', 'clientTcpFlags', 'serverTcpFlags',
  'tcpState', 'app', 'serverName',
] as const satisfies readonly (keyof FlowSummary)[];

export const HOST_FIELDS = [
  'ip', 'bytesSent', 'bytesReceived', 'packetsSent', 'packetsReceived', 'flowsInitiated', 'flowsReceived', 'flows',
  'peers', 'firstSeen', 'lastSeen',
] as const satisfies readonly (keyof HostSummary)[];

const TIME_FIELDS = new Set(['firstSeen', 'lastSeen']);

function csvField(v: unknown): string {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export async function runExport(
  kind: ExportKind,
  opts: StoreOptions & { format: ExportFormat; output?: string },
): Promise<number> {
  const store = await openStore({ ...opts, readOnly: true });
  const out: Writable = opts.output ? createWriteStream(opts.output) : process.stdout;
  const fields: readonly string[] = kind === 'flows' ? FLOW_FIELDS : HOST_FIELDS;
  const write = async (line: string) => {
    if (!out.write(line)) await once(out, 'drain');
  };
  try {
    if (opts.format === 'csv') await write(`${fields.join(',')}\n`);
    const rows: AsyncIterable<FlowSummary | HostSummary> = kind === 'flows' ? store.exportFlows() : store.exportHosts();
    for await (const row of rows) {
      const record: Record<string, unknown> = {};
      for (const f of fields) {
        const v = (row as unknown as Record<string, unknown>)[f];
        record[f] = TIME_FIELDS.has(f) ? isoMicros(v as number) : v;
      }
      if (opts.format === 'jsonl') await write(`${JSON.stringify(record)}\n`);
      else await write(`${fields.map((f) => csvField(record[f])).join(',')}\n`);
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
