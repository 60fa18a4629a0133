// Anomalies name the flows of their evidence (the record's evidenceFlows, src/detect/evidence.ts),
// and `flowlens pcap --anomaly` extracts exactly those. The capture: a SYN port scan of 150 ports
// and an ICMP echo flood (one flow: echo ids do not split flows), both from 10.0.0.1 to
// 10.0.0.2, while the same two hosts talk normally all along (HTTP from the scanner to the target,
// SSH the other way). The guess from an anomaly's source, target and time span that `pcap
// --anomaly` used before takes the normal flows too; the evidence names only the attack's. The
// import gives the same evidence through one and two decode workers, and the extracted capture is,
// byte for byte, what tshark writes for the attack's packets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { flowsOfAnomaly } from '../src/packets/select.js';
import { parseEvidenceFlows } from '../src/records/anomaly.js';
import { openStore } from '../src/store/index.js';
import type { AnomalyRecord } from '../src/store/types.js';
import { byTime, icmpEcho, ip, LINKTYPE, type TimedPacket, tcp, TCP_FLAGS, tcpConversation, toFrames } from './helpers/frames.js';
import { runCli } from './helpers/cli.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const exec = promisify(execFile);
const A = '10.0.0.1';
const T = '10.0.0.2';
const T0 = 1_700_000_000n * 1_000_000_000n; // ns, on a whole second
const ms = (n: number) => BigInt(Math.round(n * 1e6));

const work = mkdtempSync(join(tmpdir(), 'flowlens-evidence-'));
after(() => rmSync(work, { recursive: true, force: true }));
const capture = join(work, 'attacks.pcap');

function attackCapture(): void {
  const pkts: TimedPacket[] = [];
  // Normal traffic all along: HTTP from A to T every 200 ms, SSH from T to A every 500 ms.
  for (let i = 0; i < 70; i++) {
    pkts.push(
      ...tcpConversation({
        client: { ip: A, port: 50000 + i },
        server: { ip: T, port: 8000 },
        start: T0 + ms(i * 200),
        data: [{ from: 'client', bytes: 100 }],
      }),
    );
  }
  for (let i = 0; i < 28; i++) {
    pkts.push(
      ...tcpConversation({
        client: { ip: T, port: 42000 + i },
        server: { ip: A, port: 22 },
        start: T0 + ms(i * 500 + 50),
        data: [{ from: 'server', bytes: 40 }],
      }),
    );
  }
  // The scan, from 1 s: a SYN to each of ports 1..150 every 5 ms (one source port, as nmap -sS),
  // each answered by a reset.
  for (let p = 1; p <= 150; p++) {
    const at = T0 + ms(1000 + p * 5);
    pkts.push({ ts: at, from: 'client', ip: ip({ src: A, dst: T, l4: tcp({ srcPort: 40000, dstPort: p, seq: 7, flags: TCP_FLAGS.SYN }) }) });
    pkts.push({
      ts: at + ms(0.2),
      from: 'server',
      ip: ip({ src: T, dst: A, l4: tcp({ srcPort: p, dstPort: 40000, ack: 8, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK }) }),
    });
  }
  // The flood, from 8 s: 1,500 echo requests 0.5 ms apart, each answered.
  for (let i = 0; i < 1500; i++) {
    const at = T0 + ms(8000 + i * 0.5);
    const id = 1000 + Math.floor(i / 10);
    pkts.push({ ts: at, from: 'client', ip: ip({ src: A, dst: T, l4: icmpEcho({ id, seq: i }) }) });
    pkts.push({ ts: at + ms(0.1), from: 'server', ip: ip({ src: T, dst: A, l4: icmpEcho({ id, seq: i, reply: true }) }) });
  }
  writeCapture(capture, pcap({ linktype: LINKTYPE.ETHERNET }, toFrames(LINKTYPE.ETHERNET, byTime(pkts))));
}

interface Row {
  anomalyId: string;
  kind: string;
  source: string;
  targetIp: string;
  evidenceFlows: string | null;
}
interface FlowRow {
  id: string;
  transport: string;
  clientIp: string;
  serverIp: string;
  serverPort: number;
}

const jsonl = <T>(text: string): T[] =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

async function importWith(workers: number): Promise<{ db: string; anomalies: Row[]; flows: FlowRow[] }> {
  const db = join(work, `w${workers}`, 'f.duckdb');
  const imp = await runCli(['import', '--db', db, '--no-progress', '--log-level', 'warn', '--workers', String(workers), capture]);
  assert.equal(imp.code, 0, imp.stderr);
  const an = await runCli(['export', 'anomalies', '--db', db, '--format', 'jsonl']);
  assert.equal(an.code, 0, an.stderr);
  const fl = await runCli(['export', 'flows', '--db', db, '--format', 'jsonl']);
  assert.equal(fl.code, 0, fl.stderr);
  return { db, anomalies: jsonl<Row>(an.stdout), flows: jsonl<FlowRow>(fl.stdout) };
}

let one: Awaited<ReturnType<typeof importWith>>;
let two: Awaited<ReturnType<typeof importWith>>;

before(async () => {
  attackCapture();
  one = await importWith(1);
  two = await importWith(2);
});

const CASES = [
  {
    kind: 'PORT_SCAN',
    flows: 150,
    attack: (f: FlowRow) => f.transport === 'tcp' && f.clientIp === A && f.serverIp === T && f.serverPort <= 150,
    // The scan's one source port (the normal flows use others, and port 22 the other way).
    tshark: `ip.addr==${A} && ip.addr==${T} && tcp.port==40000`,
  },
  // Echo requests between two hosts are one flow, whatever their id.
  { kind: 'ICMP_FLOOD', flows: 1, attack: (f: FlowRow) => f.transport === 'icmp', tshark: 'icmp' },
];

test('the anomalies of a capture: a port scan and an ICMP flood, the same through one and two workers', () => {
  assert.deepEqual(one.anomalies.map((a) => `${a.kind} ${a.source} ${a.targetIp}`).sort(), [`ICMP_FLOOD ${A} ${T}`, `PORT_SCAN ${A} ${T}`]);
  const byId = (rows: Row[]) => [...rows].sort((x, y) => x.anomalyId.localeCompare(y.anomalyId));
  assert.deepEqual(byId(two.anomalies), byId(one.anomalies), 'the same anomalies, evidence flows included, with two workers');
  assert.deepEqual(two.flows.map((f) => f.id).sort(), one.flows.map((f) => f.id).sort(), 'the same flow ids');
});

for (const c of CASES) {
  test(`${c.kind}: its evidence names exactly the attack's flows; pcap --anomaly writes exactly its packets`, async () => {
    const a = one.anomalies.find((x) => x.kind === c.kind);
    assert.ok(a, `a ${c.kind}`);
    const named = parseEvidenceFlows(a.evidenceFlows ?? '');
    assert.ok(named, 'evidenceFlows recorded');
    const attack = one.flows.filter(c.attack).map((f) => f.id);
    assert.equal(attack.length, c.flows, `the attack's flows`);
    assert.equal(named.count, attack.length, 'the count of all evidence flows');
    assert.deepEqual([...named.ids].sort(), [...attack].sort(), 'the ids named are the attack flows');

    // The guess used before (and still for anomalies stored without evidenceFlows) takes the
    // normal flows between the same hosts in the same time span.
    const store = await openStore({ db: one.db, readOnly: true });
    try {
      const full = (await store.queryAnomalies({ from: 0, to: Number.MAX_SAFE_INTEGER, limit: 100 })).find((x) => x.anomalyId === a.anomalyId) as AnomalyRecord;
      const evidence = await flowsOfAnomaly(store, full);
      assert.equal(evidence.basis, 'evidence');
      assert.deepEqual([...evidence.flowIds].sort(), [...attack].sort());
      const guess = await flowsOfAnomaly(store, { ...full, evidenceFlows: '' });
      assert.equal(guess.basis, 'guess');
      const extra = guess.flowIds.filter((id) => !attack.includes(id));
      assert.ok(extra.length > 0, `the guess takes flows that are not the attack's (${guess.flowIds.length} flows)`);
    } finally {
      await store.close();
    }

    const out = join(work, `${c.kind}.pcap`);
    const r = await runCli(['pcap', '--db', one.db, '--anomaly', a.anomalyId, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const theirs = join(work, `${c.kind}-tshark.pcap`);
    await exec('tshark', ['-r', capture, '-Y', c.tshark, '-F', 'pcap', '-w', theirs]);
    const ours = readFileSync(out);
    const expected = readFileSync(theirs);
    assert.ok(expected.length > 300 * 50, 'tshark selects the attack');
    assert.ok(ours.equals(expected), `${ours.length} bytes against tshark's ${expected.length}`);
  });
}
