// Trains and evaluates the traffic-category classifier (test/dpi/ml-model.ts) on the nDPI corpus: each
// capture imported through the library API, each flow matched to nDPI's listing line, its label
// nDPI's category mapped onto ML_CATEGORIES (P2P by application). Evaluation is split by capture,
// never by flow: five folds of captures (by a hash of the name), each fold's flows predicted by a
// forest trained on the other four. Beside it, a port-only baseline trained on the same folds (the
// majority category of each transport/server port, else the overall majority). Prints per-class
// precision and recall, the confusion matrix, and writes the forest trained on every capture to
// test/dpi/ml-forest.json with --write.
//
//   node --import tsx test/dpi/ml.ts [--write]
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { importFiles } from '../../src/capture/import.js';
import { FEATURES, type Forest, features, ML_CATEGORIES, predict, type Tree } from './ml-model.js';
import type { FlowRecord, RecordBatch, StoreWriter } from '../../src/store/types.js';
import { rng } from '../helpers/random.js';
import { canonicalIp, corpusFiles, flowKey } from './eval.js';

const P2P_APPS = /BitTorrent|Gnutella|eDonkey|Kazaa|Soulseek|Thunder|AppleJuice|DirectConnect/;

/** nDPI category (and application, for P2P) -> ML_CATEGORIES index. */
function categoryOf(ndpiCategory: string, proto: string): number {
  const c = (name: string) => ML_CATEGORIES.indexOf(name as (typeof ML_CATEGORIES)[number]);
  if (P2P_APPS.test(proto)) return c('p2p');
  switch (ndpiCategory) {
    case 'Web':
    case 'Cloud':
    case 'SocialNetwork':
    case 'Shopping':
    case 'Advertisement':
    case 'Collaborative':
    case 'VirtAssistant':
      return c('web');
    case 'Streaming':
    case 'Video':
    case 'Media':
    case 'Music':
      return c('video-streaming');
    case 'Chat':
    case 'VoIP':
      return c('chat-voip');
    case 'Download':
    case 'DataTransfer':
    case 'SoftwareUpdate':
      return c('file-transfer');
    case 'VPN':
      return c('vpn-tunnel');
    case 'Game':
      return c('gaming');
    case 'Network':
    case 'System':
    case 'RPC':
    case 'ConnCheck':
    case 'IoT-Scada':
    case 'Database':
    case 'RemoteAccess':
      return c('system');
    default:
      return c('other');
  }
}

interface Sample {
  capture: string;
  x: Float64Array;
  y: number;
  transport: string;
  port: number;
}

const LINE = /^\s*\d+\s+(\S+)\s+(\S+)\s+(?:<->|->)\s+(\S+)\s+\[proto: ([^\]]+)\].*?\[cat: ([^/\]]+)/;

function split(ep: string): [string, string] {
  if (ep.startsWith('[')) {
    const i = ep.lastIndexOf(']:');
    return [canonicalIp(ep.slice(1, i)), ep.slice(i + 2)];
  }
  const i = ep.lastIndexOf(':');
  return [ep.slice(0, i), ep.slice(i + 1)];
}

async function samples(): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const file of corpusFiles()) {
    const records: FlowRecord[] = [];
    const store: StoreWriter = {
      backend: 'collect',
      init: async () => {},
      close: async () => {},
      health: async () => ({ backend: 'collect', ok: true }),
      beginRun: async () => {},
      write: async (b: RecordBatch) => {
        records.push(...b.flows);
      },
      flush: async () => {},
    };
    await importFiles([file.pcap], { store, detect: false, node: file.name });
    // A flow's last segment holds its firstPackets whole (they only grow).
    const byKey = new Map<string, FlowRecord>();
    for (const r of records) byKey.set(flowKey(r.transport, canonicalIp(r.clientIp), String(r.clientPort), canonicalIp(r.serverIp), String(r.serverPort)), r);
    for (const line of readFileSync(file.listing, 'utf8').split('\n')) {
      const m = LINE.exec(line);
      if (!m) continue;
      const [, transport, a, b, proto, cat] = m;
      const [ai, ap] = split(a!);
      const [bi, bp] = split(b!);
      const r = byKey.get(flowKey(transport!.toLowerCase(), ai, ap, bi, bp));
      if (r === undefined || r.firstPackets === '') continue;
      out.push({
        capture: file.name,
        x: features(r.firstPackets, r.transport, r.serverPort, new Float64Array(FEATURES)),
        y: categoryOf(cat!.trim(), proto!),
        transport: r.transport,
        port: r.serverPort,
      });
    }
  }
  return out;
}

// ------------------------------------------------------------------ CART and the forest

const K = ML_CATEGORIES.length;

function gini(counts: Float64Array, n: number): number {
  if (n === 0) return 0;
  let s = 0;
  for (let c = 0; c < K; c++) s += (counts[c] / n) ** 2;
  return 1 - s;
}

function majority(rows: Sample[], idx: number[]): number {
  const counts = new Float64Array(K);
  for (const i of idx) counts[rows[i]!.y]++;
  let best = 0;
  for (let c = 1; c < K; c++) if (counts[c] > counts[best]) best = c;
  return best;
}

/** Grows a CART tree (Gini) on rows[idx], trying `tryFeatures` random features at each node. */
function grow(rows: Sample[], idx: number[], r: () => number, maxDepth: number, minLeaf: number, tryFeatures: number): Tree {
  const t: Tree = { feature: [], threshold: [], left: [], right: [], leaf: [] };
  const node = (ids: number[], depth: number): number => {
    const k = t.feature.length;
    t.feature.push(-1);
    t.threshold.push(0);
    t.left.push(-1);
    t.right.push(-1);
    t.leaf.push(majority(rows, ids));
    const counts = new Float64Array(K);
    for (const i of ids) counts[rows[i]!.y]++;
    const parent = gini(counts, ids.length);
    if (depth >= maxDepth || ids.length < 2 * minLeaf || parent === 0) return k;
    let best = { gain: 1e-9, f: -1, thr: 0 };
    const feats = new Set<number>();
    while (feats.size < tryFeatures) feats.add(Math.floor(r() * FEATURES));
    for (const f of feats) {
      const sorted = [...ids].sort((p, q) => rows[p]!.x[f]! - rows[q]!.x[f]!);
      const left = new Float64Array(K);
      const right = counts.slice();
      for (let j = 0; j < sorted.length - 1; j++) {
        const y = rows[sorted[j]!]!.y;
        left[y]++;
        right[y]--;
        const v = rows[sorted[j]!]!.x[f]!;
        const next = rows[sorted[j + 1]!]!.x[f]!;
        if (v === next || j + 1 < minLeaf || sorted.length - j - 1 < minLeaf) continue;
        const nl = j + 1;
        const nr = sorted.length - nl;
        const gain = parent - (nl * gini(left, nl) + nr * gini(right, nr)) / sorted.length;
        if (gain > best.gain) best = { gain, f, thr: (v + next) / 2 };
      }
    }
    if (best.f < 0) return k;
    t.feature[k] = best.f;
    t.threshold[k] = best.thr;
    const l = ids.filter((i) => rows[i]!.x[best.f]! <= best.thr);
    const rr = ids.filter((i) => rows[i]!.x[best.f]! > best.thr);
    t.left[k] = node(l, depth + 1);
    t.right[k] = node(rr, depth + 1);
    return k;
  };
  node(idx, 0);
  return t;
}

export function trainForest(rows: Sample[], seed = 27, trees = 25): Forest {
  const r = rng(seed);
  const out: Forest = { categories: [...ML_CATEGORIES], trees: [] };
  for (let i = 0; i < trees; i++) {
    const boot = Array.from({ length: rows.length }, () => Math.floor(r() * rows.length));
    out.trees.push(grow(rows, boot, r, 12, 3, 4));
  }
  return out;
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

interface Report {
  flows: number;
  captures: number;
  accuracy: number;
  baselineAccuracy: number;
  perClass: { category: string; support: number; precision: number; recall: number; baselinePrecision: number; baselineRecall: number }[];
  confusion: number[][];
}

export async function evaluateMl(folds = 5): Promise<{ report: Report; rows: Sample[] }> {
  const rows = await samples();
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  const base = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  for (let fold = 0; fold < folds; fold++) {
    const train = rows.filter((s) => fnv(s.capture) % folds !== fold);
    const test = rows.filter((s) => fnv(s.capture) % folds === fold);
    const forest = trainForest(train, 27 + fold);
    // Port-only baseline: the majority category of each transport/port in the training captures.
    const byPort = new Map<string, Float64Array>();
    const overall = new Float64Array(K);
    for (const s of train) {
      const key = `${s.transport}/${s.port}`;
      let c = byPort.get(key);
      if (!c) byPort.set(key, (c = new Float64Array(K)));
      c[s.y]++;
      overall[s.y]++;
    }
    const argmax = (c: Float64Array) => c.indexOf(Math.max(...c));
    for (const s of test) {
      confusion[s.y]![predict(forest, s.x).category]!++;
      base[s.y]![argmax(byPort.get(`${s.transport}/${s.port}`) ?? overall)]!++;
    }
  }
  const total = rows.length;
  const diag = (m: number[][]) => m.reduce((a, row, i) => a + row[i]!, 0);
  const perClass = ML_CATEGORIES.map((category, c) => {
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c]!, 0);
    const bPredicted = base.reduce((a, row) => a + row[c]!, 0);
    return {
      category,
      support,
      precision: predicted ? confusion[c]![c]! / predicted : 0,
      recall: support ? confusion[c]![c]! / support : 0,
      baselinePrecision: bPredicted ? base[c]![c]! / bPredicted : 0,
      baselineRecall: support ? base[c]![c]! / support : 0,
    };
  });
  return {
    report: {
      flows: total,
      captures: new Set(rows.map((s) => s.capture)).size,
      accuracy: diag(confusion) / total,
      baselineAccuracy: diag(base) / total,
      perClass,
      confusion,
    },
    rows,
  };
}

export function printReport(r: Report): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `${r.flows} flows of ${r.captures} captures, 5 folds split by capture`,
    `accuracy: forest ${pct(r.accuracy)}, port-only baseline ${pct(r.baselineAccuracy)}`,
    'category          support  precision  recall   | baseline precision  recall',
  ];
  for (const c of r.perClass) {
    lines.push(
      `${c.category.padEnd(17)} ${String(c.support).padStart(7)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)}   | ${pct(c.baselinePrecision).padStart(18)}  ${pct(c.baselineRecall).padStart(6)}`,
    );
  }
  lines.push('confusion (rows: nDPI, columns: forest):', `${''.padEnd(17)}${ML_CATEGORIES.map((c) => c.slice(0, 6).padStart(7)).join('')}`);
  for (const [i, row] of r.confusion.entries()) lines.push(`${ML_CATEGORIES[i]!.padEnd(17)}${row.map((v) => String(v).padStart(7)).join('')}`);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const { report, rows } = await evaluateMl();
  console.log(printReport(report));
  if (process.argv.includes('--write')) {
    const forest = trainForest(rows);
    const path = fileURLToPath(new URL('../../test/dpi/ml-forest.json', import.meta.url));
    writeFileSync(path, JSON.stringify(forest));
    console.log(`wrote ${path}: ${forest.trees.length} trees, ${forest.trees.reduce((a, t) => a + t.feature.length, 0)} nodes`);
  }
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
}
