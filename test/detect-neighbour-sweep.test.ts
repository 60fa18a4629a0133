// @runs-alone (test/run.ts): live capture of real nmap sweeps; a busy machine makes drops
/**
 * Neighbour sweeps: ARP requests from one sender to many IPv4 addresses, and IPv6 neighbour
 * solicitations from one source for many targets, are a HOST_SCAN (what `nmap -sn` sends on its
 * own subnet). Byte-built captures check the decoding (ARP operation and addresses, a truncated
 * ARP packet is malformed), the sweep's source, target prefix and evidence, and the near misses
 * that are not sweeps: a host resolving a few neighbours that answer, ARP probes and
 * announcements (RFC 5227), duplicate address detection. Then real nmap runs in network
 * namespaces (test/helpers/netns.ts): `nmap -sn` over the veth's IPv4 subnet (ARP) and
 * `nmap -6 -sn` over an IPv6 range on the link (ND), recorded by tcpdump and imported.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { importFiles } from '../src/capture/import.js';
import { Aggregator } from '../src/flow/aggregator.js';
import type { AnomalyRecord } from '../src/store/types.js';
import { collectingStore, latestAnomalies } from './helpers/anomaly-store.js';
import { exportAnomalies, runCli } from './helpers/cli.js';
import { be16, concat, ETHERTYPE, ethernet, ipv4Addr, ipv6, ipv6Addr, LINKTYPE, mac, rawPayload, u8 } from './helpers/frames.js';
import { collect, createNsPair, missingTool, netnsUnavailable, type NsPair, sleep, waitForOutput } from './helpers/netns.js';

const SCANNER_MAC = '02:00:00:00:00:0a';
const T0 = 1_700_000_000_000_000; // µs

function arp(op: number, senderIp: string, targetIp: string, senderMac = SCANNER_MAC): Uint8Array {
  const body = concat(be16(1), be16(ETHERTYPE.IPV4), u8(6, 4), be16(op), mac(senderMac), ipv4Addr(senderIp), new Uint8Array(6), ipv4Addr(targetIp));
  return ethernet({ src: senderMac, dst: op === 1 ? 'ff:ff:ff:ff:ff:ff' : SCANNER_MAC, etherType: ETHERTYPE.ARP, payload: body });
}

/** Neighbour solicitation (135) or advertisement (136) naming `target`; the checksum is not checked by the decoder. */
function nd(type: 135 | 136, src: string, dst: string, target: string): Uint8Array {
  const msg = concat(u8(type, 0), be16(0), type === 136 ? u8(0x60, 0, 0, 0) : u8(0, 0, 0, 0), ipv6Addr(target));
  return ethernet({ etherType: ETHERTYPE.IPV6, payload: ipv6({ src, dst, hopLimit: 255, l4: rawPayload(58, msg) }) });
}

function solicitedNode(target: string): string {
  const b = ipv6Addr(target);
  return `ff02::1:ff${b[13].toString(16).padStart(2, '0')}:${((b[14] << 8) | b[15]).toString(16)}`;
}

/** Runs frames (one every `stepUs`) through an aggregator; returns its anomalies (latest versions) and stats. */
function run(frames: Uint8Array[], stepUs = 20_000): { anomalies: AnomalyRecord[]; stats: ReturnType<Aggregator['stats']> } {
  const agg = new Aggregator({ dpi: false });
  let ts = T0;
  for (const f of frames) {
    const buf = Buffer.from(f);
    agg.packet(LINKTYPE.ETHERNET, ts, buf, 0, buf.length, Math.max(buf.length, 60));
    ts += stepUs;
  }
  agg.finish();
  const latest = new Map<string, AnomalyRecord>();
  for (const a of agg.takeBatch().anomalies ?? []) latest.set(a.anomalyId, a);
  return { anomalies: [...latest.values()], stats: agg.stats() };
}

const describeAll = (list: AnomalyRecord[]) => list.map((a) => `${a.kind} ${a.source} -> ${a.targetIp}: ${a.summary}`).join('\n') || 'none';

describe('neighbour sweeps in byte-built captures', () => {
  test('an ARP sweep of 30 addresses, 3 answering, is one HOST_SCAN over the smallest covering prefix', () => {
    const frames: Uint8Array[] = [];
    const live = new Set([3, 7, 20]);
    for (let i = 1; i <= 30; i++) {
      frames.push(arp(1, '192.168.7.33', `192.168.7.${i}`));
      if (live.has(i)) frames.push(arp(2, `192.168.7.${i}`, '192.168.7.33', `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`));
    }
    const { anomalies, stats } = run(frames);
    assert.equal(stats.nonIp, frames.length, 'ARP is counted as non-IP traffic');
    assert.equal(stats.flows, 0, 'ARP forms no flow');
    assert.equal(anomalies.length, 1, describeAll(anomalies));
    const a = anomalies[0];
    assert.equal(a.kind, 'HOST_SCAN');
    assert.equal(a.source, '192.168.7.33');
    assert.equal(a.targetIp, '192.168.7.0/27');
    assert.equal(a.targetPort, 0);
    const ev = JSON.parse(a.evidence) as Record<string, unknown>;
    assert.deepEqual(ev.probes, ['arp']);
    assert.equal(ev.distinctHosts, 30);
    assert.equal(ev.successes, 3);
    assert.equal(ev.failures, 27);
    assert.match(a.summary, /ARP-swept 30 hosts of 192\.168\.7\.0\/27/);
    assert.equal(a.packets, 30, "the 30 requests are the sweep's packets");
  });

  test('not a sweep: a host resolving 5 neighbours that answer, ARP probes from 0.0.0.0, announcements, replies nobody asked for', () => {
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= 5; i++) {
      frames.push(arp(1, '10.0.0.50', `10.0.0.${i}`));
      frames.push(arp(2, `10.0.0.${i}`, '10.0.0.50', `02:00:00:00:02:0${i}`));
    }
    // A DHCP client probing 40 addresses before taking one (RFC 5227 probes), and announcing.
    for (let i = 100; i < 140; i++) frames.push(arp(1, '0.0.0.0', `10.0.0.${i}`));
    for (let i = 0; i < 10; i++) frames.push(arp(1, '10.0.0.139', '10.0.0.139'));
    for (let i = 0; i < 10; i++) frames.push(arp(2, '10.0.0.139', '10.0.0.139'));
    // Unsolicited replies to 30 addresses (an ARP spoofer's poisoning is no sweep).
    for (let i = 150; i < 180; i++) frames.push(arp(2, '10.0.0.1', `10.0.0.${i}`));
    const { anomalies, stats } = run(frames);
    assert.equal(stats.nonIp, frames.length);
    assert.deepEqual(anomalies, [], describeAll(anomalies));
  });

  test('a truncated ARP packet is malformed (arp.truncated); ARP for another hardware type is plain non-IP', () => {
    const whole = arp(1, '10.0.0.1', '10.0.0.2');
    const cut = whole.slice(0, 14 + 20);
    const token = concat(whole.slice(0, 14), be16(6), whole.slice(16)); // IEEE 802 (token ring) hardware type
    const { stats } = run([cut, token]);
    assert.equal(stats.malformedByReason['arp.truncated'], 1);
    assert.equal(stats.nonIp, 1);
  });

  test('an IPv6 neighbour solicitation sweep of 20 targets is one HOST_SCAN; answers and duplicate address detection are not probes', () => {
    const frames: Uint8Array[] = [];
    for (let i = 1; i <= 20; i++) {
      const target = `fd00:7::${i.toString(16)}`;
      frames.push(nd(135, 'fd00:7::99', solicitedNode(target), target));
      if (i === 4) frames.push(nd(136, target, 'fd00:7::99', target));
    }
    // Duplicate address detection from :: for 30 addresses: nobody is asked.
    for (let i = 0x100; i < 0x100 + 30; i++) frames.push(nd(135, '::', solicitedNode(`fd00:7::${i.toString(16)}`), `fd00:7::${i.toString(16)}`));
    const { anomalies } = run(frames);
    assert.equal(anomalies.length, 1, describeAll(anomalies));
    const a = anomalies[0];
    assert.equal(a.kind, 'HOST_SCAN');
    assert.equal(a.source, 'fd00:7::99');
    assert.equal(a.targetIp, 'fd00:7::1', 'the first target named in the solicitations, not their multicast group');
    const ev = JSON.parse(a.evidence) as Record<string, unknown>;
    assert.deepEqual(ev.probes, ['nd']);
    assert.equal(ev.distinctHosts, 20);
    assert.equal(ev.successes, 1);
  });

  test('not a sweep: a host resolving 5 IPv6 neighbours that answer', () => {
    const frames: Uint8Array[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i <= 5; i++) {
        const target = `fd00:8::${i}`;
        frames.push(nd(135, 'fd00:8::50', solicitedNode(target), target));
        frames.push(nd(136, target, 'fd00:8::50', target));
      }
    }
    const { anomalies } = run(frames);
    assert.deepEqual(anomalies, [], describeAll(anomalies));
  });
});

// ---------------------------------------------------------------- real nmap

const missing = missingTool('nmap', 'tcpdump');
const unavailable = netnsUnavailable() ?? (missing ? `needs ${missing} (apt-get install -y nmap tcpdump)` : null);
if (unavailable) console.log(`# detect-neighbour-sweep: nmap scenarios skipped: ${unavailable}`);

describe('neighbour sweeps by real nmap on a veth link', { skip: unavailable ?? undefined }, () => {
  let net: NsPair;
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'flowlens-nsweep-'));
    net = createNsPair(2);
  });

  after(() => {
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Records the link on A's veth while `cmd` runs in A; returns the capture's path. */
  async function capture(name: string, cmd: string[]): Promise<string> {
    const pcap = join(dir, `${name}.pcap`);
    const tcpdump = net.spawnIn(net.nsA, ['tcpdump', '-i', net.vethA, '-n', '-U', '-s', '0', '-w', pcap]);
    const tcpdumpOut = collect(tcpdump);
    await waitForOutput(tcpdump, /listening on/);
    const scan = net.spawnIn(net.nsA, cmd);
    const scanOut = collect(scan);
    const timer = setTimeout(() => scan.kill('SIGKILL'), 30_000);
    const { code } = await scanOut.done;
    clearTimeout(timer);
    assert.equal(code, 0, `${cmd.join(' ')}: ${scanOut.stderr()}`);
    console.log(`# detect-neighbour-sweep: ${cmd.join(' ')}: ${scanOut.stdout().match(/\d+ IP addresses? \(\d+ hosts? up\)/)?.[0] ?? '?'}`);
    await sleep(300);
    tcpdump.kill('SIGINT');
    await tcpdumpOut.done;
    return pcap;
  }

  test("nmap -sn over the link's IPv4 subnet (ARP ping) is a HOST_SCAN from the scanner over the subnet, through import and export", {
    timeout: 120_000,
  }, async () => {
    const prefix = net.ipA.split('.').slice(0, 3).join('.');
    const pcap = await capture('arp', ['nmap', '-n', '-sn', `${prefix}.0/27`]);
    const db = join(dir, 'arp.duckdb');
    const imp = await runCli(['import', pcap, '--db', db, '--json', '--no-progress']);
    assert.equal(imp.code, 0, imp.stderr);
    const summary = JSON.parse(imp.stdout) as { nonIp: number };
    assert.ok(summary.nonIp >= 31, `the ARP requests and replies are non-IP traffic (${summary.nonIp})`);
    const reported = (await exportAnomalies(db)) as (AnomalyRecord & { evidence: Record<string, unknown> })[];
    assert.equal(reported.length, 1, describeAll(reported));
    const a = reported[0];
    assert.equal(a.kind, 'HOST_SCAN');
    assert.equal(a.source, net.ipA);
    assert.match(a.targetIp, new RegExp(`^${prefix.replaceAll('.', '\\.')}\\.0/2[4-9]$`));
    assert.deepEqual(a.evidence.probes, ['arp']);
    // B owns .2, .10 and .11 and answers for them.
    assert.equal(a.evidence.successes, 3, a.summary);
    assert.ok((a.evidence.distinctHosts as number) >= 28, a.summary);
  });

  test('nmap -6 -sn over an IPv6 range on the link (neighbour discovery) is a HOST_SCAN from the scanner', { timeout: 120_000 }, async () => {
    const [, n, m] = net.ipA.split('.');
    const v6 = `fd00:${Number(n).toString(16)}:${Number(m).toString(16)}::`;
    for (const [ns, veth, addr] of [
      [net.nsA, net.vethA, `${v6}1`],
      [net.nsB, net.vethB, `${v6}2`],
    ]) {
      for (const s of ['net.ipv6.conf.all.disable_ipv6=0', `net.ipv6.conf.${veth}.disable_ipv6=0`]) net.exec(ns, ['sysctl', '-q', '-w', s]);
      const r = net.exec(ns, ['ip', 'addr', 'add', `${addr}/64`, 'dev', veth, 'nodad']);
      assert.equal(r.status, 0, r.stderr);
    }
    await sleep(500);
    const pcap = await capture('nd', ['nmap', '-6', '-n', '-sn', `${v6}/123`]);
    const anomalies: AnomalyRecord[] = [];
    await importFiles([pcap], { store: collectingStore(anomalies) });
    const latest = latestAnomalies(anomalies);
    assert.equal(latest.length, 1, describeAll(latest));
    const a = latest[0];
    assert.equal(a.kind, 'HOST_SCAN');
    assert.equal(a.source, `${v6}1`);
    const ev = JSON.parse(a.evidence) as Record<string, unknown>;
    assert.deepEqual(ev.probes, ['nd']);
    assert.equal(ev.successes, 1, a.summary);
    assert.ok((ev.distinctHosts as number) >= 28, a.summary);
  });
});
