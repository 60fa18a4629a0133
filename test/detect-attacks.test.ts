// @runs-alone (test/run.ts): real floods and scans captured live; a busy machine makes drops
/**
 * Anomaly detection against real attacks. In their own network namespaces (test/helpers/attack-net.ts),
 * real tools attack a target while normal traffic runs (curl against python3 http.server, dig
 * against a small DNS responder): nmap SYN, connect, UDP, FIN and slow (-T2) port scans, an nmap
 * ping sweep over a /28, hping3 SYN floods from one source and from random sources, UDP and ICMP
 * floods. tcpdump records each scenario; `flowlens import` reads the capture into a fresh DuckDB
 * and `flowlens export anomalies` must list the attack exactly once, with the right kind, source
 * and target, starting within a few seconds of the attack's first packet, and nothing else. A
 * scenario with normal traffic only must give no anomaly. Precision and recall are printed.
 * One live scenario: `flowlens capture` on the veth while hping3 floods, then SIGINT, then the same
 * export must show the flood.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createAttackNet, startNormalTraffic, type AttackNet } from './helpers/attack-net.js';
import { CLI_ARGV, REPO_ROOT, runCli } from './helpers/cli.js';
import { collect, missingTool, netnsUnavailable, sleep, waitForOutput } from './helpers/netns.js';

const TOOLS = ['tcpdump', 'nmap', 'hping3', 'curl', 'dig', 'python3'];
const missing = missingTool(...TOOLS);
const unavailable = netnsUnavailable() ?? (missing ? `needs ${missing} (apt-get install -y nmap hping3 tcpdump curl dnsutils)` : null);
if (unavailable) console.log(`# detect-attacks: skipped: ${unavailable}`);

/** How far startedAt may be from the attack's launch (µs): tool start-up, and the first walk step. */
const START_SLACK_US = 4_000_000;

interface Exported {
  kind: string;
  severity: string;
  state: string;
  source: string;
  targetIp: string;
  targetPort: number;
  startedAt: string;
  lastSeen: string;
  packets: number;
  bytes: number;
  summary: string;
  evidence: Record<string, unknown>;
}

interface Expected {
  kind: string;
  source: string;
  target: string | RegExp;
  port?: number;
}

interface Scenario {
  name: string;
  /** The attack, run inside namespace A; [] for normal traffic only. */
  cmd: (net: AttackNet) => string[];
  expect: (net: AttackNet) => Expected | null;
  timeoutMs?: number;
}

const hping = (args: string[]) => ['hping3', '-q', ...args];
// hping3's -i is a sleep between packets, not a rate: -i u100 gives 800 to 10,000 packets/s
// depending on the machine's load (measured: 776/s on a busy 2-core machine). The UDP and ICMP
// floods ask for far more than their thresholds (2000/s and 1000/s) so that a busy machine still
// floods: -i u10 gave 4800/s there.

/** The live capture command exists (src/cli/capture-command.ts). */
const LIVE = existsSync(join(REPO_ROOT, 'src', 'cli', 'capture-command.ts'));
if (!LIVE) console.log('# detect-attacks: live scenario skipped: no `flowlens capture` in this tree');

async function exportAnomalies(db: string): Promise<Exported[]> {
  const exp = await runCli(['export', 'anomalies', '--db', db, '--format', 'jsonl']);
  assert.equal(exp.code, 0, exp.stderr);
  return exp.stdout.trim()
    ? exp.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Exported)
    : [];
}

const SCENARIOS: Scenario[] = [
  {
    name: 'nmap -sS',
    cmd: (n) => ['nmap', '-n', '-Pn', '-sS', '--max-retries', '1', '-p', '1-1000', n.target],
    expect: (n) => ({ kind: 'PORT_SCAN', source: n.ipA, target: n.target }),
  },
  {
    name: 'nmap -sT',
    cmd: (n) => ['nmap', '-n', '-Pn', '-sT', '--max-retries', '1', '-p', '1-500', n.target],
    expect: (n) => ({ kind: 'PORT_SCAN', source: n.ipA, target: n.target }),
  },
  {
    name: 'nmap -sU',
    cmd: (n) => ['nmap', '-n', '-Pn', '-sU', '--max-retries', '1', '-p', '1-200', n.target],
    expect: (n) => ({ kind: 'PORT_SCAN', source: n.ipA, target: n.target }),
  },
  {
    name: 'nmap -sF',
    cmd: (n) => ['nmap', '-n', '-Pn', '-sF', '--max-retries', '1', '-p', '1-300', n.target],
    expect: (n) => ({ kind: 'PORT_SCAN', source: n.ipA, target: n.target }),
  },
  {
    name: 'nmap -sS -T2 (slow)',
    cmd: (n) => ['nmap', '-n', '-Pn', '-sS', '-T2', '--max-retries', '0', '-p', '20-35', n.target],
    expect: (n) => ({ kind: 'PORT_SCAN', source: n.ipA, target: n.target }),
    timeoutMs: 60_000,
  },
  {
    name: 'nmap -sn ping sweep',
    cmd: (n) => ['nmap', '-n', '-sn', '--disable-arp-ping', n.sweepNet],
    expect: (n) => ({ kind: 'HOST_SCAN', source: n.ipA, target: new RegExp(`^${n.sweepNet.split('.').slice(0, 3).join('\\.')}\\.`) }),
  },
  {
    name: 'hping3 SYN flood',
    cmd: (n) => hping(['-S', '-p', '8000', '-c', '3000', '-i', 'u100', n.target]),
    expect: (n) => ({ kind: 'SYN_FLOOD', source: n.ipA, target: n.target, port: 8000 }),
  },
  {
    name: 'hping3 SYN flood --rand-source',
    cmd: (n) => hping(['-S', '-p', '8000', '--rand-source', '-c', '3000', '-i', 'u100', n.target]),
    expect: (n) => ({ kind: 'SYN_FLOOD', source: 'distributed', target: n.target, port: 8000 }),
  },
  {
    name: 'hping3 UDP flood',
    cmd: (n) => hping(['--udp', '-p', '9999', '-c', '8000', '-i', 'u10', n.target]),
    expect: (n) => ({ kind: 'UDP_FLOOD', source: n.ipA, target: n.target, port: 9999 }),
  },
  {
    name: 'hping3 ICMP flood',
    cmd: (n) => hping(['--icmp', '-c', '6000', '-i', 'u10', n.target]),
    expect: (n) => ({ kind: 'ICMP_FLOOD', source: n.ipA, target: n.target }),
  },
  {
    name: 'normal traffic only',
    cmd: () => ['sleep', '4'],
    expect: () => null,
  },
];

/**
 * Debian's hping3 aborts now and then in glibc's free() after sending everything (seen in two CI
 * runs: "free(): double free detected in tcache 2"). What counts then is what it sent, which the
 * capture holds and the assertions judge; an exit for any other reason still fails.
 */
function hpingAborted(name: string, status: number | null, stderr: string): boolean {
  const aborted = status === null && /free\(\)|double free|corrupted/.test(stderr);
  if (aborted) console.log(`# detect-attacks: ${name}: hping3 aborted in free(); judging the capture`);
  return aborted;
}

describe('anomaly detection on real attacks', { skip: unavailable ?? undefined }, () => {
  let net: AttackNet;
  let dir: string;
  const results: { name: string; expected: Expected | null; reported: Exported[]; hit: boolean; note: string }[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-detect-'));
    net = await createAttackNet();
  });

  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (results.length === 0) return;
    const attacks = results.filter((r) => r.expected !== null);
    const reported = results.reduce((n, r) => n + r.reported.length, 0);
    const correct = results.reduce((n, r) => n + (r.hit ? 1 : 0), 0);
    const precision = reported > 0 ? correct / reported : 1;
    const recall = attacks.length > 0 ? attacks.filter((r) => r.hit).length / attacks.length : 1;
    console.log('# detect-attacks: per scenario');
    for (const r of results) {
      console.log(`#   ${r.hit || (r.expected === null && r.reported.length === 0) ? 'ok  ' : 'MISS'} ${r.name}: ${r.note}`);
    }
    console.log(
      `# detect-attacks: ${attacks.length} attacks, ${reported} anomalies reported, ${correct} correct: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`,
    );
  });

  for (const s of SCENARIOS) {
    test(s.name, { timeout: (s.timeoutMs ?? 40_000) + 60_000 }, async () => {
      const slug = s.name.replace(/[^a-z0-9]+/gi, '-');
      const pcap = join(dir, `${slug}.pcap`);
      const db = join(dir, `${slug}.duckdb`);
      const tcpdump = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-n', '-U', '-s', '0', '-w', pcap]);
      const tcpdumpOut = collect(tcpdump);
      await waitForOutput(tcpdump, /listening on/);
      const normal = startNormalTraffic(net);
      await sleep(1500);
      const launched = Date.now() * 1000;
      const run = net.spawnIn(net.nsA, s.cmd(net));
      const runOut = collect(run);
      const timer = setTimeout(() => run.kill('SIGKILL'), s.timeoutMs ?? 40_000);
      const { code } = await runOut.done;
      clearTimeout(timer);
      await sleep(1500);
      normal.stop();
      await sleep(200);
      tcpdump.kill('SIGINT');
      await tcpdumpOut.done;
      // hping3 exits 1 when no answer came back (spoofed sources get none).
      const hping = s.cmd(net)[0] === 'hping3';
      const hpingAbort = hping && hpingAborted(s.name, code, runOut.stderr());
      assert.ok(code === 0 || (hping && code === 1) || hpingAbort, `${s.name} failed (${code}): ${runOut.stderr()}`);

      const imp = await runCli(['import', pcap, '--db', db, '--json', '--no-progress']);
      assert.equal(imp.code, 0, imp.stderr);
      const reported = await exportAnomalies(db);
      const expected = s.expect(net);
      const matches = (a: Exported) =>
        expected !== null &&
        a.kind === expected.kind &&
        a.source === expected.source &&
        (typeof expected.target === 'string' ? a.targetIp === expected.target : expected.target.test(a.targetIp)) &&
        (expected.port === undefined || a.targetPort === expected.port);
      const hit = reported.filter(matches);
      const startedAt = hit[0] ? Date.parse(hit[0].startedAt) * 1000 : 0;
      const delay = hit[0] ? (startedAt - launched) / 1e6 : NaN;
      const describe = (a: Exported) => `${a.kind} ${a.source} -> ${a.targetIp}${a.targetPort ? `:${a.targetPort}` : ''} [${a.severity}] ${a.summary}`;
      results.push({
        name: s.name,
        expected,
        reported,
        hit: hit.length === 1 && Math.abs(startedAt - launched) <= START_SLACK_US,
        note: (reported.length === 0 ? 'no anomaly' : reported.map(describe).join(' | ')) + (hit[0] ? ` (started ${delay.toFixed(2)} s after launch)` : ''),
      });

      if (expected === null) {
        assert.deepEqual(reported.map(describe), [], 'normal traffic must give no anomaly');
        return;
      }
      assert.equal(hit.length, 1, `expected one ${expected.kind} from ${expected.source}, got: ${reported.map(describe).join('\n') || 'none'}`);
      assert.equal(reported.length, 1, `only the attack is reported: ${reported.map(describe).join('\n')}`);
      assert.ok(Math.abs(startedAt - launched) <= START_SLACK_US, `startedAt ${hit[0].startedAt} is ${delay} s from the launch`);
      assert.equal(hit[0].state, 'ended');
      assert.ok(hit[0].packets > 0 && hit[0].bytes > 0, 'packets and bytes counted');
      assert.ok(hit[0].summary.length > 20 && Object.keys(hit[0].evidence).length > 0, 'summary and evidence');
    });
  }

  test('live: flowlens capture sees an hping3 SYN flood', { skip: LIVE ? undefined : 'no flowlens capture', timeout: 90_000 }, async () => {
    const db = join(dir, 'live.duckdb');
    const capture = net.spawnIn(net.nsA, [process.execPath, ...CLI_ARGV, 'capture', '-i', net.vethA, '--db', db, '--workers', '1', '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NO_COLOR: '1' },
    });
    const out = collect(capture);
    await waitForOutput(capture, /decode worker/, 30_000);
    await sleep(500);
    const normal = startNormalTraffic(net);
    await sleep(1000);
    const launched = Date.now() * 1000;
    const r = net.exec(net.nsA, hping(['-S', '-p', '8000', '-c', '3000', '-i', 'u100', net.target]));
    assert.ok(r.status === 0 || r.status === 1 || hpingAborted('live SYN flood', r.status, r.stderr), r.stderr);
    await sleep(1500);
    normal.stop();
    capture.kill('SIGINT');
    const { code } = await out.done;
    assert.equal(code, 0, out.stderr().slice(-2000));
    const reported = await exportAnomalies(db);
    const floods = reported.filter((a) => a.kind === 'SYN_FLOOD' && a.source === net.ipA && a.targetIp === net.target && a.targetPort === 8000);
    const line = reported.map((a) => `${a.kind} ${a.source} -> ${a.targetIp}:${a.targetPort} ${a.summary}`).join(' | ') || 'no anomaly';
    const startedAt = floods[0] ? Date.parse(floods[0].startedAt) * 1000 : 0;
    const hit = floods.length === 1 && reported.length === 1 && Math.abs(startedAt - launched) <= START_SLACK_US;
    results.push({
      name: 'live hping3 SYN flood',
      expected: { kind: 'SYN_FLOOD', source: net.ipA, target: net.target, port: 8000 },
      reported,
      hit,
      note: line,
    });
    assert.equal(floods.length, 1, line);
    assert.equal(reported.length, 1, line);
    assert.ok(Math.abs(startedAt - launched) <= START_SLACK_US, `startedAt ${floods[0].startedAt} vs launch`);
  });
});
