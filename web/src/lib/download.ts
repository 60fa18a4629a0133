// History's downloads of the current view (range, filter, order) as CSV or JSON. Pure apart from
// saveFile (tested in node): the same field names as the API, nulls as null in JSON and empty in CSV.

/** The columns of a download, in the API's names and order of reading (time, who, how much, what). */
export const DOWNLOAD_FIELDS = [
  'id',
  'firstSeen',
  'lastSeen',
  'duration',
  'node',
  'iface',
  'transport',
  'ipProto',
  'clientIp',
  'clientPort',
  'serverIp',
  'serverPort',
  'clientPackets',
  'clientBytes',
  'serverPackets',
  'serverBytes',
  'bytes',
  'clientTcpFlags',
  'serverTcpFlags',
  'tcpState',
  'endReason',
  'app',
  'serverName',
  'confidence',
] as const;

/** Flows a download holds at most (100 pages of the API's 1,000). */
export const MAX_DOWNLOAD_FLOWS = 100_000;

type Row = Record<string, unknown>;

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function flowsCsv(flows: Row[]): string {
  const lines = [DOWNLOAD_FIELDS.join(',')];
  for (const f of flows) lines.push(DOWNLOAD_FIELDS.map((k) => csvField(f[k])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A JSON array of objects with the download's fields (absent ones as null). */
export function flowsJson(flows: Row[]): string {
  const rows = flows.map((f) => Object.fromEntries(DOWNLOAD_FIELDS.map((k) => [k, f[k] ?? null])));
  return `${JSON.stringify(rows, null, 1)}\n`;
}

/** flowlens-flows-20231114T2200Z-20231114T2205Z.csv: the range in the name, UTC to the minute. */
export function downloadName(range: { from: number; to: number }, ext: 'csv' | 'json'): string {
  const stamp = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace(/[-:]/g, '');
  return `flowlens-flows-${stamp(range.from)}Z-${stamp(range.to)}Z.${ext}`;
}

/** Hands the browser a file to save. */
export function saveFile(name: string, type: string, content: string | Blob): void {
  const url = URL.createObjectURL(typeof content === 'string' ? new Blob([content], { type }) : content);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
