// Trains (`npm run train:ml`) and evaluates (`npm run eval:ml`) the learned traffic classifier
// (src/classify/classifier.ts) on the nDPI corpus (test/dpi/ml-data.ts: nDPI's payload-identified
// TCP/UDP flows, its categories mapped onto ML_CATEGORIES and its applications as labels).
//
// Splits are by capture, never by flow: the captures whose FNV-1a hash of the file name is 0 mod 5
// are the held-out test set, used by nothing but the final evaluation. Hyper-parameters (tree depth
// and least child weight, class weighting, rounds, the gate below which the port-only answer is
// taken, and whether it is taken on ports training never saw) are chosen by 5-fold
// cross-validation over the other captures, grouped by capture (a second hash), by flow accuracy. The port features (each server port's share of categories and applications) are
// computed for a training flow from the other captures' flows only, as a test flow's are from the
// training captures. The model trained on all training captures is written to
// src/classify/model.json, the model the flow path ships with; the evaluation prints per-class precision and recall, the confusion
// matrix and a port-only baseline (each transport/server port's majority label in the training
// captures, else the overall majority) on the test captures, overall and on the flows the
// classifier is meant for (encrypted ones, and those on a server port training never saw). Training is deterministic (seeded
// subsampling, captures in name order): the same corpus gives the same file.
//
//   npm run train:ml              (node --import tsx test/dpi/ml.ts train)
//   npm run eval:ml               (node --import tsx test/dpi/ml.ts eval: the model in src/classify/model.json)
//   add --cache to reuse test/.cache/ml-samples.json between runs (development only)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type BoostedTreesJson,
  ClassifierModel,
  featureNames,
  ML_CATEGORIES,
  MODEL_URL,
  MODEL_VERSION,
  type MlCategory,
  type ModelJson,
  type Prediction,
  portFeatures,
  readModel,
} from '../../src/classify/classifier.js';
import { Binned, type GbtParams, trainGbt } from './gbt.js';
import { corpusSamples, type Sample } from './ml-data.js';

/** The shipped model (src/classify/model.json), which train writes and eval reads. */
export const MODEL_PATH = fileURLToPath(MODEL_URL);
export const candidateModel = () => readModel(MODEL_PATH);
const CACHE_PATH = fileURLToPath(new URL('../.cache/ml-samples.json', import.meta.url));
const K = ML_CATEGORIES.length;
const FOLDS = 5;
const SEED = 27;
/** Applications named by the model: the largest in the training captures, at least this many flows in this many captures. */
const APP_MIN_FLOWS = 15;
const APP_MIN_CAPTURES = 3;
const APP_MAX = 24;
/** The grid cross-validation chooses from (tree depth / least hessian in a child); rounds are chosen at these checkpoints of each run. */
const GRID: { maxDepth: number; minChildWeight: number; classPower: number }[] = [];
for (const classPower of [0, 0.5]) {
  for (const [maxDepth, minChildWeight] of [
    [3, 1],
    [4, 4],
    [6, 4],
  ]) {
    GRID.push({ maxDepth, minChildWeight, classPower });
  }
}
const ROUND_CHECKPOINTS = [25, 50, 100, 150, 200];
/** Gates tried (ModelJson.gate): below this probability the port's majority answers where the port is known. */
const GATES = [0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01];
/**
 * The trees answer where the port was seen only if that beats the port's own answer (gate 1.01) in
 * cross-validation by at least this much: with ~2,500 flows a smaller gain is noise, and a held-out
 * test once showed a 0.3-point CV gain for applications turn into a 4.5-point loss.
 */
const TREES_MARGIN = 0.01;
const BASE_PARAMS: Omit<GbtParams, 'rounds' | 'maxDepth' | 'minChildWeight' | 'seed'> = { learningRate: 0.1, lambda: 1, rowSample: 0.8, featureSample: 0.6 };

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** The held-out test captures. */
export function isTestCapture(name: string): boolean {
  return fnv(name) % FOLDS === 0;
}
/** Cross-validation fold of a training capture. */
export const cvFold = (name: string) => fnv(`cv:${name}`) % FOLDS;

export async function loadSamples(useCache: boolean): Promise<Sample[]> {
  if (useCache && existsSync(CACHE_PATH)) {
    return (JSON.parse(readFileSync(CACHE_PATH, 'utf8')) as (Omit<Sample, 'flow'> & { flow: number[] })[]).map((s) => ({
      ...s,
      flow: Float32Array.from(s.flow),
    }));
  }
  const samples = await corpusSamples();
  if (useCache) {
    mkdirSync(dirname(CACHE_PATH), { recursive: true });
    writeFileSync(CACHE_PATH, JSON.stringify(samples.map((s) => ({ ...s, flow: Array.from(s.flow) }))));
  }
  return samples;
}

const portKey = (ipProto: number, port: number) => (ipProto === 17 ? 65536 : 0) + port;

interface PortCounts {
  n: number;
  cat: Float64Array;
  app: Float64Array;
}

/** Per server port: counts of categories and applications in all of `rows`, and per capture. */
export class PortTable {
  readonly all = new Map<number, PortCounts>();
  private readonly byCapture = new Map<string, PortCounts>();
  constructor(
    rows: Sample[],
    appIndex: (app: string) => number,
    private readonly apps: number,
  ) {
    for (const s of rows) {
      const key = portKey(s.ipProto, s.serverPort);
      for (const [map, k] of [
        [this.all, key],
        [this.byCapture, `${s.capture}#${key}`],
      ] as const) {
        let c = (map as Map<number | string, PortCounts>).get(k);
        if (!c) (map as Map<number | string, PortCounts>).set(k, (c = { n: 0, cat: new Float64Array(K), app: new Float64Array(apps) }));
        c.n++;
        c.cat[s.category]++;
        c.app[appIndex(s.app)]++;
      }
    }
  }

  /** Counts of the port of s, leaving out s's own capture when `others`. */
  counts(s: Sample, others: boolean): PortCounts | null {
    const key = portKey(s.ipProto, s.serverPort);
    const all = this.all.get(key);
    if (!all) return null;
    const own = others ? this.byCapture.get(`${s.capture}#${key}`) : undefined;
    if (!own) return all;
    if (own.n === all.n) return null;
    return { n: all.n - own.n, cat: all.cat.map((v, i) => v - own.cat[i]), app: all.app.map((v, i) => v - own.app[i]) };
  }

  /** The feature vector of s (port features from this table, then its flow features). */
  features(s: Sample, others: boolean, width: number): Float32Array {
    const x = new Float32Array(width);
    const c = this.counts(s, others);
    const at = c
      ? portFeatures(x, s.ipProto, s.serverPort, c.n, share(c.cat, c.n), share(c.app, c.n))
      : portFeatures(x, s.ipProto, s.serverPort, 0, null, null, K, this.apps);
    x.set(s.flow, at);
    return x;
  }

  /** The port-only baseline: the majority category and application of s's port, else of all. */
  baseline(s: Sample, overallCat: number, overallApp: number): { category: number; app: number } {
    const c = this.all.get(portKey(s.ipProto, s.serverPort));
    if (!c) return { category: overallCat, app: overallApp };
    return { category: argmax(c.cat), app: argmax(c.app) };
  }
}

/** Shares rounded to 3 decimals: as the model file holds them. */
const share = (counts: Float64Array, n: number) => Array.from(counts, (v) => Math.round((1000 * v) / n) / 1000);

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** The applications the model names (from training rows): '' first, for none of them. */
function chooseApps(rows: Sample[]): string[] {
  const flows = new Map<string, number>();
  const captures = new Map<string, Set<string>>();
  for (const s of rows) {
    flows.set(s.app, (flows.get(s.app) ?? 0) + 1);
    let c = captures.get(s.app);
    if (!c) captures.set(s.app, (c = new Set()));
    c.add(s.capture);
  }
  const big = [...flows]
    .filter(([app, n]) => n >= APP_MIN_FLOWS && captures.get(app)!.size >= APP_MIN_CAPTURES)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, APP_MAX)
    .map(([app]) => app);
  return ['', ...big];
}

interface Fitted {
  category: BoostedTreesJson & { importance: Float64Array };
  app: BoostedTreesJson & { importance: Float64Array };
}

/** Cross-validated accuracy per (depth, rounds) for one target, over folds of training captures. */
function crossValidate(rows: Sample[], apps: string[], target: 'category' | 'app', grid: typeof GRID, log: (s: string) => void): Map<string, number> {
  const appIndex = (a: string) => Math.max(0, apps.indexOf(a));
  const width = featureNames(K, apps.length).length;
  const correct = new Map<string, number>();
  for (let fold = 0; fold < FOLDS; fold++) {
    const train = rows.filter((s) => cvFold(s.capture) !== fold);
    const valid = rows.filter((s) => cvFold(s.capture) === fold);
    const table = new PortTable(train, appIndex, apps.length);
    const x = train.map((s) => table.features(s, true, width));
    const vx = valid.map((s) => table.features(s, false, width));
    const labelOf = (s: Sample) => (target === 'category' ? s.category : appIndex(s.app));
    const y = Int32Array.from(train, labelOf);
    const classes = target === 'category' ? K : apps.length;
    const binned = new Binned(x, width);
    // The port-only answer: the port's majority in the fold's training captures, else their overall majority.
    const overall = majority(train, labelOf, classes);
    const port = valid.map((s) => {
      const c = table.all.get(portKey(s.ipProto, s.serverPort));
      return c === undefined ? -1 : argmax(target === 'category' ? c.cat : c.app);
    });
    for (const g of grid) {
      const rounds = ROUND_CHECKPOINTS[ROUND_CHECKPOINTS.length - 1];
      const onRound = (round: number, scores: Float64Array) => {
        if (!ROUND_CHECKPOINTS.includes(round)) return;
        // Below the gate: the port's answer where it was seen; where not, the overall majority
        // (unseen 1) or the trees' (unseen 0).
        for (const gate of GATES) {
          for (const unseen of [0, 1]) {
            let ok = 0;
            for (let i = 0; i < valid.length; i++) {
              const s = scores.subarray(i * classes, (i + 1) * classes);
              const best = argmax(s);
              let sum = 0;
              for (let k = 0; k < classes; k++) sum += Math.exp(s[k] - s[best]);
              const predicted = 1 / sum >= gate ? best : port[i] >= 0 ? port[i] : unseen === 1 ? overall : best;
              if (predicted === labelOf(valid[i])) ok++;
            }
            const key = `${g.maxDepth}/${g.minChildWeight}/${g.classPower}/${round}/${gate}/${unseen}`;
            correct.set(key, (correct.get(key) ?? 0) + ok);
          }
        }
      };
      trainGbt(binned, y, classes, { ...BASE_PARAMS, ...g, rounds, seed: SEED + fold }, { x: vx, onRound }, rowWeights(train, y, classes, g.classPower));
    }
    log(`  ${target} fold ${fold + 1}/${FOLDS}: ${train.length} training, ${valid.length} validation flows`);
  }
  const out = new Map<string, number>();
  for (const [k, v] of correct) out.set(k, v / rows.length);
  return out;
}

/**
 * Row weights 1/sqrt(flows of the row's capture): a capture of hundreds of flows of one kind
 * (srvloc.pcap has 619) would otherwise teach its own traffic rather than the category's.
 */
function captureWeights(rows: Sample[]): Float64Array {
  const flows = new Map<string, number>();
  for (const s of rows) flows.set(s.capture, (flows.get(s.capture) ?? 0) + 1);
  return Float64Array.from(rows, (s) => 1 / Math.sqrt(flows.get(s.capture)!));
}

/**
 * captureWeights times (balanced class weight)^power: power 0 leaves the classes as the corpus has
 * them, 1 gives each class the same total weight (rare classes, as gaming or VPN, count as much as
 * system services); cross-validation chooses.
 */
function rowWeights(rows: Sample[], y: Int32Array, classes: number, power: number): Float64Array {
  const w = captureWeights(rows);
  if (power === 0) return w;
  const total = w.reduce((a, b) => a + b, 0);
  const byClass = new Float64Array(classes);
  for (let i = 0; i < rows.length; i++) byClass[y[i]] += w[i];
  return w.map((v, i) => v * (total / (classes * byClass[y[i]])) ** power);
}

/** The most frequent label of rows. */
function majority(rows: Sample[], labelOf: (s: Sample) => number, classes: number): number {
  const n = new Float64Array(classes);
  for (const s of rows) n[labelOf(s)]++;
  return argmax(n);
}

/** Port-only baseline accuracy (category, application) over the same cross-validation folds (for the record). */
function crossValidateBaseline(rows: Sample[], apps: string[]): { category: number; app: number } {
  const appIndex = (a: string) => Math.max(0, apps.indexOf(a));
  let ok = 0;
  let appOk = 0;
  for (let fold = 0; fold < FOLDS; fold++) {
    const train = rows.filter((s) => cvFold(s.capture) !== fold);
    const table = new PortTable(train, appIndex, apps.length);
    const overall = majority(train, (s) => s.category, K);
    const overallApp = majority(train, (s) => appIndex(s.app), apps.length);
    for (const s of rows) {
      if (cvFold(s.capture) !== fold) continue;
      const b = table.baseline(s, overall, overallApp);
      if (b.category === s.category) ok++;
      if (b.app === appIndex(s.app)) appOk++;
    }
  }
  return { category: ok / rows.length, app: appOk / rows.length };
}

export async function train(useCache: boolean, log: (s: string) => void): Promise<{ model: ModelJson; samples: Sample[] }> {
  const started = Date.now();
  const samples = await loadSamples(useCache);
  const rows = samples.filter((s) => !isTestCapture(s.capture));
  const apps = chooseApps(rows);
  const appIndex = (a: string) => Math.max(0, apps.indexOf(a));
  log(
    `${rows.length} training flows of ${new Set(rows.map((s) => s.capture)).size} captures (test: ${samples.length - rows.length} flows held out); ${apps.length - 1} applications`,
  );
  const best = (cv: Map<string, number>) => [...cv].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]!;
  const pick = (cv: Map<string, number>) => {
    const trees = best(cv);
    const portFirst = best(new Map([...cv].filter(([k]) => k.split('/')[4] === '1.01')));
    return trees[1] >= portFirst[1] + TREES_MARGIN ? trees : portFirst;
  };
  const cvCategory = crossValidate(rows, apps, 'category', GRID, log);
  const [catKey, catAcc] = pick(cvCategory);
  const [catDepth, catChild, catPower, catRounds, catGate, catUnseen] = catKey.split('/').map(Number);
  const tree = { maxDepth: catDepth, minChildWeight: catChild, classPower: catPower };
  const cvBaseline = crossValidateBaseline(rows, apps);
  log(
    `category CV accuracy by depth/min child weight/class power/rounds/gate/unseen-port fallback: ${[...cvCategory].map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ')}; port-only ${(100 * cvBaseline.category).toFixed(1)}%`,
  );
  const cvApp = crossValidate(rows, apps, 'app', [tree], log);
  const [appKey, appAcc] = pick(cvApp);
  const [, , , appRounds, appGate, appUnseen] = appKey.split('/').map(Number);
  log(
    `chosen ${catKey}; application CV accuracy by depth/min child weight/class power/rounds/gate/unseen-port fallback: ${[...cvApp].map(([k, v]) => `${k} ${(100 * v).toFixed(1)}%`).join(', ')}; port-only ${(100 * cvBaseline.app).toFixed(1)}%`,
  );

  const width = featureNames(K, apps.length).length;
  const table = new PortTable(rows, appIndex, apps.length);
  const x = rows.map((s) => table.features(s, true, width));
  const binned = new Binned(x, width);
  const yCategory = Int32Array.from(rows, (s) => s.category);
  const yApp = Int32Array.from(rows, (s) => appIndex(s.app));
  const fitted: Fitted = {
    category: trainGbt(binned, yCategory, K, { ...BASE_PARAMS, ...tree, rounds: catRounds, seed: SEED }, undefined, rowWeights(rows, yCategory, K, catPower)),
    app: trainGbt(
      binned,
      yApp,
      apps.length,
      { ...BASE_PARAMS, ...tree, rounds: appRounds, seed: SEED },
      undefined,
      rowWeights(rows, yApp, apps.length, catPower),
    ),
  };
  const names = featureNames(K, apps.length);
  const top = (imp: Float64Array) =>
    [...imp]
      .map((v, i) => [names[i], v] as const)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([n, v]) => `${n} ${((100 * v) / imp.reduce((a, b) => a + b, 0)).toFixed(1)}%`)
      .join(', ');
  log(`category model's most used features (share of split gain): ${top(fitted.category.importance)}`);
  const ports = [...table.all].sort((a, b) => a[0] - b[0]);
  const model: ModelJson = {
    version: MODEL_VERSION,
    about: {
      trainedBy: 'npm run train:ml (test/dpi/ml.ts)',
      data: 'nDPI corpus (../shared/corpus/ndpi): TCP/UDP flows nDPI identified by payload (Confidence DPI), with payload',
      split: 'test captures: FNV-1a(file name) % 5 == 0, never trained on; cross-validation: 5 folds of the other captures by FNV-1a("cv:" + name) % 5',
      trainingFlows: rows.length,
      trainingCaptures: new Set(rows.map((s) => s.capture)).size,
      seed: SEED,
      params: { ...BASE_PARAMS, ...tree, categoryRounds: catRounds, appRounds, weights: '1/sqrt(flows of the capture) * (balanced class weight)^classPower' },
      crossValidation: {
        categoryAccuracy: round3(catAcc),
        appAccuracy: round3(appAcc),
        portOnlyCategoryAccuracy: round3(cvBaseline.category),
        portOnlyAppAccuracy: round3(cvBaseline.app),
      },
    },
    packets: 12,
    tlsRecords: 6,
    portKeys: ports.map(([k]) => k),
    portFlows: ports.map(([, c]) => c.n),
    portCategory: ports.map(([, c]) => share(c.cat, c.n)),
    portApp: ports.map(([, c]) => share(c.app, c.n)),
    category: { classes: [...ML_CATEGORIES], base: fitted.category.base, trees: fitted.category.trees },
    app: { classes: apps, base: fitted.app.base, trees: fitted.app.trees },
    gate: { category: catGate, app: appGate },
    fallback: {
      category: catUnseen === 1 ? majority(rows, (s) => s.category, K) : -1,
      app: appUnseen === 1 ? majority(rows, (s) => appIndex(s.app), apps.length) : -1,
    },
  };
  log(`trained in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { model, samples };
}

const round3 = (v: number) => Math.round(v * 1000) / 1000;

export interface EvalReport {
  flows: number;
  captures: number;
  accuracy: number;
  baselineAccuracy: number;
  appAccuracy: number;
  appBaselineAccuracy: number;
  /**
   * The flows the classifier is for, with both accuracies: encrypted ones (nDPI's master protocol
   * carries ciphertext: what DPI names there comes from a server name or an IP list, not from the
   * payload's content), and those whose server port the training captures never saw (where a port
   * says nothing). The model reads packets' sizes, gaps, TLS record headers and payload entropy,
   * transport and port: never DPI's answer.
   */
  subsets: { name: string; flows: number; accuracy: number; baselineAccuracy: number; appAccuracy: number; appBaselineAccuracy: number }[];
  perClass: { category: string; support: number; precision: number; recall: number; baselinePrecision: number; baselineRecall: number }[];
  confusion: number[][];
  baselineConfusion: number[][];
}

/** Masters whose payload is ciphertext past the handshake (nDPI names their application from a server name or an address list). */
const ENCRYPTED = new Set(['TLS', 'QUIC', 'DTLS', 'SRTP', 'IPSec', 'OpenVPN', 'WireGuard', 'Tor', 'SSH', 'Signal', 'WhatsApp', 'Telegram']);
const SUBSETS: [string, (s: Sample, portSeen: boolean) => boolean][] = [
  ['encrypted (TLS, QUIC, DTLS, SRTP, IPSec, OpenVPN, WireGuard, Tor, SSH, WhatsApp, Telegram)', (s) => ENCRYPTED.has(s.master)],
  ['server port never seen in the training captures', (_s, seen) => !seen],
];

/** What the model says of a sample: as FlowClassifier.predict on the flow path (feature vector, trees, port table of the model). */
export function predictSample(model: ClassifierModel, s: Sample): Prediction {
  const x = new Float32Array(model.featureCount);
  const row = model.portIndex(s.ipProto, s.serverPort);
  const at =
    row >= 0
      ? portFeatures(x, s.ipProto, s.serverPort, model.json.portFlows[row], model.json.portCategory[row], model.json.portApp[row])
      : portFeatures(x, s.ipProto, s.serverPort, 0, null, null, model.category.classes.length, model.app.classes.length);
  x.set(s.flow, at);
  return model.predictVector(x, row);
}

/** The model against the port-only baseline on the held-out captures. */
export function evaluate(model: ClassifierModel, samples: Sample[]): EvalReport {
  const train = samples.filter((s) => !isTestCapture(s.capture));
  const test = samples.filter((s) => isTestCapture(s.capture));
  const apps = model.app.classes;
  const appIndex = (a: string) => Math.max(0, apps.indexOf(a));
  const table = new PortTable(train, appIndex, apps.length);
  const overall = argmax(Array.from({ length: K }, (_, c) => train.filter((s) => s.category === c).length));
  const overallApp = argmax(Array.from(apps, (_, a) => train.filter((s) => appIndex(s.app) === a).length));
  const confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  const base = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let appOk = 0;
  let appBaseOk = 0;
  const subsets = SUBSETS.map(([name]) => ({ name, flows: 0, ok: 0, baseOk: 0, appOk: 0, appBaseOk: 0 }));
  for (const s of test) {
    const p = predictSample(model, s);
    const category = ML_CATEGORIES.indexOf(p.category as MlCategory);
    const b = table.baseline(s, overall, overallApp);
    confusion[s.category][category]++;
    base[s.category][b.category]++;
    if (appIndex(p.app) === appIndex(s.app)) appOk++;
    if (b.app === appIndex(s.app)) appBaseOk++;
    const seen = table.all.has(portKey(s.ipProto, s.serverPort));
    for (const [i, [, within]] of SUBSETS.entries()) {
      if (!within(s, seen)) continue;
      const sub = subsets[i];
      sub.flows++;
      if (category === s.category) sub.ok++;
      if (b.category === s.category) sub.baseOk++;
      if (appIndex(p.app) === appIndex(s.app)) sub.appOk++;
      if (b.app === appIndex(s.app)) sub.appBaseOk++;
    }
  }
  const diag = (m: number[][]) => m.reduce((a, row, i) => a + row[i], 0);
  const n = test.length;
  return {
    flows: n,
    captures: new Set(test.map((s) => s.capture)).size,
    accuracy: diag(confusion) / n,
    baselineAccuracy: diag(base) / n,
    appAccuracy: appOk / n,
    appBaselineAccuracy: appBaseOk / n,
    subsets: subsets.map((t) => ({
      name: t.name,
      flows: t.flows,
      accuracy: t.ok / t.flows,
      baselineAccuracy: t.baseOk / t.flows,
      appAccuracy: t.appOk / t.flows,
      appBaselineAccuracy: t.appBaseOk / t.flows,
    })),
    perClass: ML_CATEGORIES.map((category, c) => {
      const support = confusion[c].reduce((a, v) => a + v, 0);
      const predicted = confusion.reduce((a, row) => a + row[c], 0);
      const bPredicted = base.reduce((a, row) => a + row[c], 0);
      return {
        category,
        support,
        precision: predicted ? confusion[c][c] / predicted : 0,
        recall: support ? confusion[c][c] / support : 0,
        baselinePrecision: bPredicted ? base[c][c] / bPredicted : 0,
        baselineRecall: support ? base[c][c] / support : 0,
      };
    }),
    confusion,
    baselineConfusion: base,
  };
}

export function printReport(r: EvalReport): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `held-out test: ${r.flows} flows of ${r.captures} captures (split by capture; none of them trained on)`,
    `category accuracy: model ${pct(r.accuracy)}, port-only baseline ${pct(r.baselineAccuracy)}`,
    `application accuracy (largest applications, else none): model ${pct(r.appAccuracy)}, port-only baseline ${pct(r.appBaselineAccuracy)}`,
    ...r.subsets.map(
      (t) =>
        `  ${t.name}: ${t.flows} flows; category model ${pct(t.accuracy)}, port-only ${pct(t.baselineAccuracy)}; application model ${pct(t.appAccuracy)}, port-only ${pct(t.appBaselineAccuracy)}`,
    ),
    '',
    'category          support  precision  recall | port-only precision  recall',
  ];
  for (const c of r.perClass) {
    lines.push(
      `${c.category.padEnd(17)} ${String(c.support).padStart(7)}  ${pct(c.precision).padStart(9)}  ${pct(c.recall).padStart(6)} | ${pct(c.baselinePrecision).padStart(19)}  ${pct(c.baselineRecall).padStart(6)}`,
    );
  }
  const matrix = (title: string, m: number[][]) => {
    lines.push('', title, `${''.padEnd(17)}${ML_CATEGORIES.map((c) => c.slice(0, 7).padStart(8)).join('')}`);
    for (const [i, row] of m.entries()) lines.push(`${ML_CATEGORIES[i].padEnd(17)}${row.map((v) => String(v).padStart(8)).join('')}`);
  };
  matrix('confusion matrix, model (rows: nDPI, columns: predicted):', r.confusion);
  matrix('confusion matrix, port-only baseline:', r.baselineConfusion);
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const command = process.argv[2];
  const useCache = process.argv.includes('--cache');
  const log = (s: string) => console.error(s);
  if (command === 'train') {
    const { model: json, samples } = await train(useCache, log);
    writeFileSync(MODEL_PATH, `${JSON.stringify(json)}\n`);
    const model = new ClassifierModel(json);
    log(`wrote ${MODEL_PATH}: ${json.category.trees.length + json.app.trees.length} trees, ${readFileSync(MODEL_PATH).length} bytes`);
    console.log(printReport(evaluate(model, samples)));
  } else if (command === 'eval') {
    console.log(printReport(evaluate(candidateModel(), await loadSamples(useCache))));
  } else {
    console.error('usage: node --import tsx test/dpi/ml.ts train|eval [--cache]');
    process.exit(2);
  }
}
