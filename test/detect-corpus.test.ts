/**
 * No anomaly on normal traffic: every capture of the nDPI corpus (../shared/corpus/ndpi) is imported
 * through the library (importFiles, one aggregator per capture, several at a time) and its anomaly
 * records are collected. Only the known positives below may show up, each with its reason; any
 * other anomaly fails the test. Precision and recall over the corpus are printed. Skips with a
 * message when ../shared is absent.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { importFiles } from '../src/capture/import.js';
import type { AnomalyRecord } from '../src/store/types.js';
import { collectingStore } from './helpers/anomaly-store.js';
import { REPO_ROOT } from './helpers/cli.js';

const CORPUS = join(REPO_ROOT, '..', 'shared', 'corpus', 'ndpi', 'pcap');
const unavailable = existsSync(CORPUS) ? null : `${CORPUS} is absent`;
if (unavailable) console.log(`# detect-corpus: skipped: ${unavailable}`);

interface Known {
  file: string;
  kind: string;
  source: string;
  /** Whether it is a real scan or sweep (counts as a correct report), or a false positive we accept. */
  real: boolean;
  reason: string;
}

const KNOWN: Known[] = [
  { file: 'synscan.pcap', kind: 'PORT_SCAN', source: '172.16.0.8', real: true, reason: 'an nmap SYN scan of 1000 ports of 64.13.134.52 (scanme.nmap.org)' },
  {
    file: 'bjnp.pcap',
    kind: 'HOST_SCAN',
    source: '192.168.185.141',
    real: true,
    reason: 'Canon BJNP printer discovery: unicast probes on udp/8612 to 10 addresses, none answers; a sweep by design',
  },
  {
    file: 'srvloc.pcap',
    kind: 'HOST_SCAN',
    source: '200.31.144.158',
    real: true,
    reason: 'SLP service discovery on udp/427 to 7 addresses, none answers; a sweep by design',
  },
  {
    file: 'srvloc.pcap',
    kind: 'HOST_SCAN',
    source: '215.48.253.201',
    real: true,
    reason: 'SLP service discovery on udp/427 to 9 addresses, none answers; a sweep by design',
  },
];

/** Captures holding real scans (ground truth for recall). */
const REAL_SCANS = new Set(KNOWN.filter((k) => k.real).map((k) => `${k.file} ${k.kind} ${k.source}`));

test('no anomaly on the normal traffic of the nDPI corpus, but the known positives', { skip: unavailable ?? undefined, timeout: 600_000 }, async () => {
  const files = readdirSync(CORPUS)
    .filter((f) => /\.pcap(ng)?$/.test(f))
    .sort();
  const found = new Map<string, AnomalyRecord[]>();
  const BATCH = 8;
  for (let i = 0; i < files.length; i += BATCH) {
    await Promise.all(
      files.slice(i, i + BATCH).map(async (file) => {
        const anomalies: AnomalyRecord[] = [];
        // DPI on, as by default: the scan detectors skip flows it gives to a peer-to-peer protocol.
        await importFiles([join(CORPUS, file)], { store: collectingStore(anomalies) });
        // The latest version of each anomaly.
        const latest = new Map<string, AnomalyRecord>();
        for (const a of anomalies) latest.set(a.anomalyId, a);
        if (latest.size > 0) found.set(file, [...latest.values()]);
      }),
    );
  }

  const unexpected: string[] = [];
  const seen = new Set<string>();
  let correct = 0;
  let reported = 0;
  for (const [file, list] of found) {
    for (const a of list) {
      reported++;
      const key = `${file} ${a.kind} ${a.source}`;
      const known = KNOWN.find((k) => k.file === file && k.kind === a.kind && k.source === a.source);
      const line = `${file}: ${a.kind} ${a.source} -> ${a.targetIp}${a.targetPort ? `:${a.targetPort}` : ''}: ${a.summary}`;
      if (!known) unexpected.push(line);
      else {
        console.log(`# detect-corpus: known positive ${line} (${known.reason})`);
        if (known.real) correct++;
        seen.add(key);
      }
    }
  }
  const detectedReal = [...REAL_SCANS].filter((k) => seen.has(k)).length;
  const precision = reported > 0 ? correct / reported : 1;
  const recall = REAL_SCANS.size > 0 ? detectedReal / REAL_SCANS.size : 1;
  console.log(
    `# detect-corpus: ${files.length} captures, ${found.size} with anomalies, ${reported} anomalies (${correct} real scans or sweeps): precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)} over ${REAL_SCANS.size} labelled scans`,
  );
  assert.deepEqual(unexpected, [], 'anomalies on normal traffic');
  for (const k of KNOWN.filter((x) => x.real))
    assert.ok(seen.has(`${k.file} ${k.kind} ${k.source}`), `${k.file}: ${k.kind} from ${k.source} not reported (${k.reason})`);
});
