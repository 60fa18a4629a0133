// `flowlens pcap` end to end through the CLI: an import indexes each flow's packets beside its
// store (--packets-dir, default "packets" beside --db), and `pcap --flow`, `--filter` and
// `--anomaly` write the same file, byte for byte, as `tshark -r ORIGINAL -Y '<the same packets>'
// -F pcap -w` (corpus captures are classic little-endian µs pcap, tshark's own pcap header).
// Errors: packets never indexed or whose file is gone exit 1 with the reason and leave no file;
// bad flags and ids exit 2.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { runPcap } from '../src/cli/pcap-command.js';
import { EVIDENCE_FLOW_IDS, parseEvidenceFlows } from '../src/records/anomaly.js';
import { CLI_ARGV, REPO_ROOT, runCli } from './helpers/cli.js';
import { tupleFilter as flowTuples } from './helpers/flow-tuples.js';

const exec = promisify(execFile);
const NDPI = join(REPO_ROOT, '..', 'shared', 'corpus', 'ndpi', 'pcap');
const skip = existsSync(NDPI) ? false : `corpus absent (${NDPI})`;
const work = mkdtempSync(join(tmpdir(), 'flowlens-pcap-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Flow {
  flowId: string;
  transport: string;
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
  clientPackets: number;
  serverPackets: number;
  firstSeen: string;
  lastSeen: string;
}

async function tsharkPcap(original: string, filter: string, out: string): Promise<Buffer> {
  await exec('tshark', ['-r', original, '-Y', filter, '-F', 'pcap', '-w', out]);
  return readFileSync(out);
}

async function importInto(db: string, file: string, extra: string[] = []): Promise<void> {
  const r = await runCli(['import', '--db', db, '--no-progress', '--log-level', 'warn', ...extra, file]);
  assert.equal(r.code, 0, r.stderr);
}

async function flowsOf(db: string): Promise<Flow[]> {
  const r = await runCli(['export', 'flows', '--db', db]);
  assert.equal(r.code, 0, r.stderr);
  return (
    r.stdout
      .trim()
      .split('\n')
      // The export names fields as the API does: the record's flowId is `id` there.
      .map((l) => {
        const row = JSON.parse(l) as Omit<Flow, 'flowId'> & { id: string };
        return { ...row, flowId: row.id };
      })
  );
}

/** The CLI with its stdout as bytes. */
function runBinary(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI_ARGV, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

const tupleFilter = (f: Flow) =>
  `ip.addr==${f.clientIp} && ip.addr==${f.serverIp} && ${f.transport}.port==${f.clientPort} && ${f.transport}.port==${f.serverPort} && !icmp`;

// 1kxun: an ordinary capture (TCP and UDP, one file, little-endian µs pcap), imported from a copy
// that the last tests remove.
const KXUN = join(work, '1kxun.pcap');
const kxunDb = join(work, 'kxun', 'f.duckdb');
let kxunFlows: Flow[] = [];

before(async () => {
  if (skip) return;
  copyFileSync(join(NDPI, '1kxun.pcap'), KXUN);
  await importInto(kxunDb, KXUN);
  kxunFlows = await flowsOf(kxunDb);
});

/** `flowlens pcap` in this process (its error paths: no store write, no child to start): exit code and stderr. */
async function pcapHere(args: {
  db?: string;
  packetsDir?: string;
  flow?: string[];
  anomaly?: string;
  filter?: string;
  from?: string;
  to?: string;
  output?: string;
}) {
  const db = args.db ?? kxunDb;
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => {
    stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Parameters<typeof runPcap>[0]['log'];
    const code = await runPcap({ db, packetsDir: args.packetsDir ?? join(db, '..', 'packets'), output: join(work, 'bad.pcap'), log: silent, ...args });
    return { code, stderr };
  } finally {
    process.stderr.write = write;
  }
}

/** The largest TCP flow whose 5-tuple is met once (port reuse would give tshark's filter more). */
function largestTcp(flows: Flow[]): Flow {
  const count = new Map<string, number>();
  const key = (f: Flow) => `${f.transport} ${f.clientIp}:${f.clientPort} ${f.serverIp}:${f.serverPort}`;
  for (const f of flows) count.set(key(f), (count.get(key(f)) ?? 0) + 1);
  return flows
    .filter((f) => f.transport === 'tcp' && count.get(key(f)) === 1)
    .sort((a, b) => b.clientPackets + b.serverPackets - (a.clientPackets + a.serverPackets))[0];
}

test('pcap --flow writes the flow as tshark does, to a file and to stdout; the index is beside --db', { skip }, async () => {
  assert.ok(existsSync(join(work, 'kxun', 'packets')), 'packets/ beside the store');
  const f = largestTcp(kxunFlows);
  assert.ok(f.clientPackets + f.serverPackets >= 20, 'a flow of some size');
  const out = join(work, 'flow.pcap');
  const r = await runCli(['pcap', '--db', kxunDb, '--flow', f.flowId, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const theirs = await tsharkPcap(KXUN, tupleFilter(f), join(work, 'flow-tshark.pcap'));
  const ours = readFileSync(out);
  assert.ok(ours.equals(theirs), `flow ${f.flowId}: ${ours.length} bytes against tshark's ${theirs.length}`);
  const { stdout: capinfos } = await exec('capinfos', ['-c', '-M', out]);
  assert.match(capinfos, new RegExp(`Number of packets:\\s+${f.clientPackets + f.serverPackets}\\b`));

  const piped = await runBinary(['pcap', '--db', kxunDb, '--flow', f.flowId, '--log-level', 'warn']);
  assert.equal(piped.code, 0, piped.stderr);
  assert.ok(piped.stdout.equals(theirs), 'the same bytes on stdout');
});

test('pcap --filter over a time range: the flows of a host and port, merged in time order', { skip }, async () => {
  const f = largestTcp(kxunFlows);
  const from = kxunFlows.map((x) => x.firstSeen).sort()[0];
  const to = '2100-01-01T00:00:00Z';
  const out = join(work, 'filter.pcap');
  const r = await runCli(['pcap', '--db', kxunDb, '--filter', `host=${f.clientIp} port=${f.serverPort} transport=tcp`, '--from', from, '--to', to, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const selected = kxunFlows.filter(
    (x) =>
      x.transport === 'tcp' && (x.clientIp === f.clientIp || x.serverIp === f.clientIp) && (x.clientPort === f.serverPort || x.serverPort === f.serverPort),
  );
  assert.ok(selected.length > 1, `the filter selects several flows (${selected.length})`);
  const theirs = await tsharkPcap(KXUN, `ip.addr==${f.clientIp} && tcp.port==${f.serverPort} && !icmp`, join(work, 'filter-tshark.pcap'));
  assert.ok(readFileSync(out).equals(theirs), 'the same file as tshark (packets of equal time across flows in capture order)');

  // A range holding none of the flows: nothing to extract, said so.
  const none = await pcapHere({ filter: `host=${f.clientIp}`, from: '1999-01-01T00:00:00Z', to: '1999-01-02T00:00:00Z', output: join(work, 'none.pcap') });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no flow matches/);
  assert.ok(!existsSync(join(work, 'none.pcap')), 'no empty capture left behind');
});

test('pcap --anomaly: the flows an nmap SYN scan names as evidence, as tshark writes them', { skip }, async () => {
  const original = join(NDPI, 'synscan.pcap');
  const db = join(work, 'synscan', 'f.duckdb');
  await importInto(db, original);
  const list = await runCli(['export', 'anomalies', '--db', db]);
  const row = JSON.parse(list.stdout.trim().split('\n')[0]) as { id?: string; anomalyId?: string; kind: string; evidenceFlows: string };
  const anomaly = { ...row, anomalyId: row.anomalyId ?? row.id ?? '' };
  assert.equal(anomaly.kind, 'PORT_SCAN');
  // ~1,000 probes: the anomaly names the first and the last 100, and counts them all.
  const named = parseEvidenceFlows(anomaly.evidenceFlows);
  assert.ok(named && named.count > 2 * EVIDENCE_FLOW_IDS && named.ids.length === 2 * EVIDENCE_FLOW_IDS, `evidenceFlows: ${anomaly.evidenceFlows.slice(0, 40)}`);
  const out = join(work, 'anomaly.pcap');
  const r = await runCli(['pcap', '--db', db, '--anomaly', anomaly.anomalyId, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const ids = new Set(named.ids);
  const flows = (await flowsOf(db)).filter((f) => ids.has(f.flowId));
  assert.equal(flows.length, ids.size, 'every flow named is in the store');
  const theirs = await tsharkPcap(original, flowTuples(flows), join(work, 'anomaly-tshark.pcap'));
  assert.ok(theirs.length > 10_000, 'the named flows have packets');
  assert.ok(readFileSync(out).equals(theirs), 'the same file as tshark');
});

test('import --copy-packets: packets stay extractable after the original moves; a re-import replaces the copies', { skip }, async () => {
  const original = join(work, 'moving', '1kxun.pcap');
  mkdirSync(join(work, 'moving'));
  copyFileSync(join(NDPI, '1kxun.pcap'), original);
  const db = join(work, 'copied', 'f.duckdb');
  await importInto(db, original, ['--copy-packets']);
  const copies = join(work, 'copied', 'packets', 'files');
  assert.equal(readdirSync(copies).length, 1, 'one copy of the one file');
  const f = largestTcp(await flowsOf(db));
  const moved = join(work, 'moving', 'moved.pcap');
  renameSync(original, moved);
  const out = join(work, 'copied-flow.pcap');
  const r = await runCli(['pcap', '--db', db, '--flow', f.flowId, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const theirs = await tsharkPcap(join(NDPI, '1kxun.pcap'), tupleFilter(f), join(work, 'copied-tshark.pcap'));
  assert.ok(readFileSync(out).equals(theirs), 'the flow as tshark writes it, from the copy');

  // The same content again (through the environment variable): its copy replaces the first.
  const again = await runCli(['import', '--db', db, '--no-progress', '--log-level', 'warn', moved], { env: { FLOWLENS_COPY_PACKETS: '1' } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(readdirSync(copies).length, 1, 're-importing replaces the copy');
  rmSync(moved);
  const r2 = await runCli(['pcap', '--db', db, '--flow', f.flowId, '-o', out]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok(readFileSync(out).equals(theirs), 'still the same bytes with the original deleted');

  const bad = await runCli(['import', '--db', join(work, 'copied', 'g.duckdb'), '--copy-packets', '--no-packet-index', join(NDPI, '1kxun.pcap')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--copy-packets needs the packet index/);
});

test('packets not held: never indexed, or their capture file gone; exit 1 with the reason, no file', { skip }, async () => {
  const f = largestTcp(kxunFlows);
  const db2 = join(work, 'noindex', 'f.duckdb');
  await importInto(db2, KXUN, ['--no-packet-index']);
  assert.ok(!existsSync(join(work, 'noindex', 'packets')), '--no-packet-index writes no index');
  const out = join(work, 'gone-out.pcap');
  const never = await pcapHere({ db: db2, flow: [f.flowId], output: out });
  assert.equal(never.code, 1);
  assert.match(never.stderr, /are not held in .*imported without the packet index/);

  rmSync(KXUN);
  const gone = await pcapHere({ flow: [f.flowId], output: out });
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /1kxun\.pcap, which is gone/);
  assert.ok(!existsSync(out), 'no empty capture left behind');
});

test('bad requests exit 2 with one line', { skip }, async () => {
  const cases: [Parameters<typeof pcapHere>[0], RegExp][] = [
    [{ flow: ['xyz'] }, /not a flow id: 'xyz'/],
    [{ flow: ['0123456789abcdef'], anomaly: 'a' }, /give one of --flow, --anomaly or --filter \(got --flow, --anomaly\)/],
    [{}, /give one of --flow, --anomaly or --filter/],
    [{ filter: 'host=1.2.3.4' }, /--filter needs --from and --to/],
    [{ filter: 'colour=red', from: '0', to: '1' }, /bad filter term 'colour=red'/],
    [{ filter: 'port=70000', from: '0', to: '1' }, /port must be a whole number from 0 to 65535/],
    [{ filter: 'port=80', from: 'yesterday', to: '1' }, /--from: not a time/],
    [{ anomaly: 'ffffffffffffffff' }, /no anomaly ffffffffffffffff/],
  ];
  for (const [args, message] of cases) {
    const r = await pcapHere(args);
    assert.equal(r.code, 2, `${JSON.stringify(args)}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});
