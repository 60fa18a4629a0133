/**
 * Runs the flowlens CLI as a real child process from the repository root, and parses its output:
 * the compiled dist/cli/main.js when it is up to date with src/ (it starts in 0.85 s where tsx
 * takes 1.7 s, and the suites start the CLI hundreds of times), `--import tsx src/cli/main.ts`
 * otherwise (FLOWLENS_TEST_CLI=dist|tsx chooses; test/bench/flowlens.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { apiFields, EMPTY_VALUE, FLOW } from '../../src/records/index.js';
import { CLI_SRC, flowlensCommand, REPO_ROOT } from '../bench/flowlens.js';
import { byTime, directionTotals, isoMicros, type Frame } from './frames.js';

export { REPO_ROOT };
export const CLI_MAIN = CLI_SRC;
/** node's arguments before the CLI's own: the shebang's V8 flags and the entry point (see above). */
export const CLI_ARGV: readonly string[] = flowlensCommand('auto').args;

export function cliExists(): boolean {
  return existsSync(CLI_MAIN);
}

/** The parent's environment without FLOWLENS_* settings, so tests never pick up a developer's store. */
function hermeticEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { NO_COLOR: '1', FORCE_COLOR: '0' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLOWLENS_')) env[k] = v;
  return env;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A child process whose output is collected as it comes, for tests that act on it while it runs. */
export interface WatchedChild {
  child: ChildProcess;
  /** Everything written so far. */
  output: { stdout: string; stderr: string };
  /** Resolves when the child has ended: its exit code, or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node ...argv` in the repository with its output collected (see WatchedChild). */
export function spawnWatched(argv: readonly string[]): WatchedChild {
  const child = spawn(process.execPath, [...argv], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output, exited };
}

/** Runs the CLI with no FLOWLENS_* variable of the caller's, only those in `opts.env`. */
export function runCli(args: string[], opts: { timeoutMs?: number; cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGV, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...hermeticEnv(), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** A fresh temp directory, removed after `fn` (pass or fail). */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-test-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface FileSummary {
  path: string;
  packets: number;
  bytes: number;
  malformed: number;
  error?: string;
}

export interface ImportSummary {
  packets: number;
  bytes: number;
  flows: number;
  hosts: number;
  malformed: number;
  malformedByReason: Record<string, number>;
  nonIp: number;
  fragments: number;
  seconds: number;
  files: FileSummary[];
}

export interface ImportResult extends CliResult {
  summary: ImportSummary;
}

function describe(r: CliResult): string {
  return `exit ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Parse the single JSON object `import --json` prints on stdout. */
export function parseSummary(r: CliResult): ImportSummary {
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    assert.fail(`import --json stdout is not exactly one JSON object: ${describe(r)}`);
  }
  assert.equal(typeof parsed, 'object', `summary is not an object: ${describe(r)}`);
  return parsed as ImportSummary;
}

/**
 * `flowlens import FILES --db DB --json [extra]`. By default asserts exit 0;
 * pass `expectCode` for other outcomes (null skips the check).
 */
export async function importFiles(
  db: string,
  files: string[],
  o: { extra?: string[]; expectCode?: number | null; env?: Record<string, string> } = {},
): Promise<ImportResult> {
  const r = await runCli(['import', ...files, '--db', db, '--json', ...(o.extra ?? [])], { env: o.env });
  const expect = o.expectCode === undefined ? 0 : o.expectCode;
  if (expect !== null) assert.equal(r.code, expect, `unexpected exit code: ${describe(r)}`);
  return { ...r, summary: parseSummary(r) };
}

/**
 * The flow export's first fields, in the order of the first release: the CSV contract that existing
 * consumers read by position. Later fields are appended in the record definition's order.
 */
export const FIRST_RELEASE_FLOW_FIELDS = [
  // The record's flowId, printed under the API's name since the export follows the API (issue 21).
  'id',
  'node',
  'iface',
  'firstSeen',
  'lastSeen',
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
  'clientTcpFlags',
  'serverTcpFlags',
  'tcpState',
  'app',
  'serverName',
  'confidence',
  'firstPackets',
  'appInfo',
  'duration',
  'endReason',
];

/**
 * Every flow export field: the API's Flow fields, as the record definition lists them
 * (src/records/flow.ts, GraphQL names: `id`), then the API's `bytes`.
 */
export const FLOW_FIELDS: readonly string[] = [...apiFields(FLOW).map((f) => f.name), 'bytes'];

/** The record fields recordFromExport gives (the record's names of FLOW_FIELDS but `bytes`). */
export const EXPORTED_RECORD_FIELDS: readonly string[] = apiFields(FLOW).map((f) => f.column.field);

/**
 * An exported flow (the API's names and nulls) as the record the tests compare: `flowId` for
 * `id`, a null as its column's empty value ('' or 0), `bytes` left out. Most tests assert the
 * record's values (tcpState '' for UDP); test/export-server.test.ts checks the API form itself.
 */
export function recordFromExport(o: Record<string, unknown>): FlowRecord {
  const out: Record<string, unknown> = {};
  for (const a of apiFields(FLOW)) {
    const v = o[a.name];
    out[a.column.field] = v === null ? EMPTY_VALUE[a.column.type] : v;
  }
  return out as unknown as FlowRecord;
}

export interface FlowRecord {
  flowId: string;
  node: string;
  iface: string;
  firstSeen: string;
  lastSeen: string;
  transport: string;
  ipProto: number;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  clientPackets: number;
  clientBytes: number;
  serverPackets: number;
  serverBytes: number;
  clientTcpFlags: number;
  serverTcpFlags: number;
  tcpState: string;
  app: string;
  serverName: string;
  confidence: string;
  firstPackets: string;
  appInfo: string;
  duration: number;
  endReason: string;
}

export interface HostRecord {
  ip: string;
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
  flowsInitiated: number;
  flowsReceived: number;
  flows: number;
  peers: number;
  firstSeen: string;
  lastSeen: string;
}

export function parseJsonl<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

async function exportJsonl<T>(what: 'flows' | 'hosts' | 'anomalies', db: string): Promise<T[]> {
  const r = await runCli(['export', what, '--db', db, '--format', 'jsonl']);
  assert.equal(r.code, 0, `export ${what} failed: ${describe(r)}`);
  return parseJsonl<T>(r.stdout);
}

/** `export anomalies --format jsonl`, parsed (the fields a test looks at). */
export function exportAnomalies(db: string): Promise<{ kind: string; source: string; targetIp: string; targetPort: number }[]> {
  return exportJsonl('anomalies', db);
}

/** `export flows --format jsonl`, parsed. Numbers must be JSON numbers (no coercion: strings would fail the assertions). */
export async function exportFlows(db: string): Promise<FlowRecord[]> {
  return (await exportJsonl<Record<string, unknown>>('flows', db)).map(recordFromExport);
}

/** `export hosts --format jsonl`, parsed. */
export function exportHosts(db: string): Promise<HostRecord[]> {
  return exportJsonl<HostRecord>('hosts', db);
}

/** Find the single flow between two IPs (either direction); fails if not exactly one. */
export function flowBetween(flows: FlowRecord[], a: string, b: string, pred: (f: FlowRecord) => boolean = () => true): FlowRecord {
  const hits = flows.filter((f) => ((f.clientIp === a && f.serverIp === b) || (f.clientIp === b && f.serverIp === a)) && pred(f));
  assert.equal(hits.length, 1, `expected exactly one flow between ${a} and ${b}, got ${hits.length}: ${JSON.stringify(flows, null, 1)}`);
  return hits[0];
}

/** The fields that must not depend on the capture file format or interface. */
export function flowEssence(f: FlowRecord): Omit<FlowRecord, 'flowId' | 'iface' | 'node' | 'app' | 'serverName' | 'confidence' | 'firstPackets' | 'appInfo'> {
  // Frame sizes depend on the link type, which differs between the formats compared.
  const { flowId: _id, iface: _i, node: _n, app: _a, serverName: _s, confidence: _c, firstPackets: _p, appInfo: _x, ...rest } = f;
  return rest;
}

export function sortFlows<T extends FlowRecord>(flows: T[]): T[] {
  const key = (f: FlowRecord): string => `${f.transport}|${f.clientIp}|${f.clientPort}|${f.serverIp}|${f.serverPort}|${f.firstSeen}`;
  return [...flows].sort((x, y) => key(x).localeCompare(key(y)));
}

// ---------------------------------------------------------------- expectations

/** What a test knows about a flow besides what its frames say. */
export interface FlowMeta {
  transport: string;
  ipProto: number;
  clientIp: string;
  serverIp: string;
  clientPort?: number;
  serverPort?: number;
  tcpState: string;
  clientTcpFlags?: number;
  serverTcpFlags?: number;
}

/** Expected export record for a flow made of `frames` (timestamps, per-direction counts and wire bytes). */
export function expectedFlow(meta: FlowMeta, frames: Frame[]): Partial<FlowRecord> {
  assert.ok(frames.length > 0, 'a flow needs frames');
  const sorted = byTime(frames);
  return {
    ...meta,
    ...directionTotals(frames),
    firstSeen: isoMicros(sorted[0].ts),
    lastSeen: isoMicros(sorted[sorted.length - 1].ts),
  };
}

/** Assert the fields named in `expected` (and only those) equal the record's. */
export function assertFlow(actual: FlowRecord | undefined, expected: Partial<FlowRecord>, label = ''): void {
  assert.ok(actual, `${label}: flow missing; expected ${JSON.stringify(expected)}`);
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, actual[k as keyof FlowRecord]]));
  assert.deepEqual(picked, expected, `${label}: flow ${JSON.stringify(actual)}`);
}

/** Find the flow whose client and server IPs are exactly `clientIp` and `serverIp` (and predicate); fails if not exactly one. */
export function findFlow(flows: FlowRecord[], clientIp: string, serverIp: string, pred: (f: FlowRecord) => boolean = () => true): FlowRecord {
  const hits = flows.filter((f) => f.clientIp === clientIp && f.serverIp === serverIp && pred(f));
  if (hits.length !== 1) {
    // Report the flows between the two hosts in either orientation to make role mistakes obvious.
    const near = flows.filter((f) => [f.clientIp, f.serverIp].includes(clientIp) && [f.clientIp, f.serverIp].includes(serverIp));
    assert.fail(`expected exactly one flow ${clientIp} -> ${serverIp}, got ${hits.length}; flows between them: ${JSON.stringify(near)}`);
  }
  return hits[0];
}

/** Lines of `text` that look like a JavaScript stack trace (an uncaught crash). */
export function stackTraceLines(text: string): string[] {
  return text.split('\n').filter((l) => /^\s+at .+(:\d+:\d+\)?|\(native\))$/.test(l));
}

export function linesMentioning(text: string, needle: string): string[] {
  return text.split('\n').filter((l) => l.includes(needle));
}

/** Run every check, then fail once listing all that failed (so one run reports every broken case). */
export function assertEach(checks: [label: string, check: () => void][]): void {
  const failures: string[] = [];
  for (const [label, check] of checks) {
    try {
      check();
    } catch (e) {
      const msg = (e as Error).message;
      failures.push(msg.startsWith(label) ? msg : `${label}: ${msg}`);
    }
  }
  if (failures.length) assert.fail(`${failures.length} of ${checks.length} cases failed:\n\n${failures.join('\n\n')}`);
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
