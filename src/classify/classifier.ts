// The learned traffic classifier: a guess at a flow's category (web, video streaming, chat and
// VoIP, ...) and at its application from what its first packets look like — sizes with direction,
// the gaps between them, the TLS records they carry — with its transport and server port, for what
// DPI cannot read (ECH, VPNs, unknown protocols). Its answer is a flow field of its own
// (predictedCategory, predictedApp, predictedConfidence), given only where DPI named no
// application, and never presented as DPI's.
//
// The model (model.json beside this file) is trained by test/dpi/ml.ts (`npm run train:ml`) on the
// nDPI corpus and evaluated on captures it never saw (`npm run eval:ml`). Cross-validation chose
// the port table's answer wherever training saw the server port (the trees did not beat it there
// by the margin test/dpi/ml.ts asks), so the trees answer on server ports training never saw,
// where a port-only guess has nothing to go on: held-out categories 68.6% against the port-only
// baseline's 66.5% (24.5% against 15.1% on the 106 flows of unseen ports), applications 77.9%
// against 77.9%.
// - per-flow state in typed arrays indexed by the flow table's slot, as in the DPI engine: a
//   payload packet among a flow's first CLASSIFY_PACKETS costs a few array writes (and a walk over
//   the TLS record headers at the start of a TCP payload; the first in each direction, a byte
//   histogram of its first ENTROPY_BYTES), no allocation; the size statistics are computed when
//   a prediction is asked for, from the sizes kept;
// - the model: gradient-boosted trees (one tree per class and round, softmax over the sums) with a
//   port table and a gate (below a probability the port's majority answers), read from JSON.
import { readFileSync } from 'node:fs';
import type { MlCategory, PredictedCategory } from '../records/flow.js';

/** Payload packets of a flow whose sizes and gaps are kept. */
export const CLASSIFY_PACKETS = 12;
/** TLS record headers (type, length, direction) kept. */
export const CLASSIFY_TLS_RECORDS = 6;
/** The model file's version: 2 added the entropy and size statistics features. */
export const MODEL_VERSION = 2;
/** Bytes of a direction's first payload whose entropy is a feature. */
export const ENTROPY_BYTES = 64;

/** The categories, in the model's order (defined with the flow record's predictedCategory). */
export { ML_CATEGORIES, type MlCategory } from '../records/flow.js';

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/** A trained set of boosted trees for one target (categories or applications). */
export interface BoostedTreesJson {
  classes: string[];
  /** Initial score per class (log prior). */
  base: number[];
  /** Trees of round r, class k at index r * classes.length + k; node arrays of equal length. */
  trees: { f: number[]; t: number[]; l: number[]; r: number[]; v: number[] }[];
}

export interface ModelJson {
  version: number;
  /** How it was made (the command, seed, captures and hyper-parameters), for people. */
  about: Record<string, unknown>;
  packets: number;
  tlsRecords: number;
  /** Server ports seen in training: transport (0 tcp, 1 udp) * 65536 + port, with the share of each category and application of their flows. */
  portKeys: number[];
  portFlows: number[];
  portCategory: number[][];
  portApp: number[][];
  category: BoostedTreesJson;
  app: BoostedTreesJson;
  /**
   * Below these probabilities the trees' answer gives way to the port-only one (the majority
   * category, or application, of the server port's training flows where training saw the port,
   * else `fallback`): chosen by cross-validation (1.01: the port-only answer always).
   */
  gate: { category: number; app: number };
  /**
   * The answer below the gate for a port training never saw: the most frequent category and
   * application of the training flows (indices into the classes), or -1: the trees' answer stands
   * there. Chosen by cross-validation with the gate.
   */
  fallback: { category: number; app: number };
}

/** A BoostedTreesJson flattened into typed arrays (node n of every tree in one array). */
class BoostedTrees {
  readonly classes: readonly string[];
  readonly base: Float64Array;
  /** Index of each tree's root in the node arrays. */
  private readonly roots: Int32Array;
  private readonly feature: Int16Array;
  private readonly threshold: Float64Array;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly value: Float64Array;
  readonly scores: Float64Array;

  constructor(json: BoostedTreesJson) {
    this.classes = json.classes;
    this.base = Float64Array.from(json.base);
    this.scores = new Float64Array(json.classes.length);
    const total = json.trees.reduce((a, t) => a + t.f.length, 0);
    this.roots = new Int32Array(json.trees.length);
    this.feature = new Int16Array(total);
    this.threshold = new Float64Array(total);
    this.left = new Int32Array(total);
    this.right = new Int32Array(total);
    this.value = new Float64Array(total);
    let at = 0;
    json.trees.forEach((t, i) => {
      this.roots[i] = at;
      for (let n = 0; n < t.f.length; n++) {
        this.feature[at + n] = t.f[n];
        this.threshold[at + n] = t.t[n];
        this.left[at + n] = t.l[n] + at;
        this.right[at + n] = t.r[n] + at;
        this.value[at + n] = t.v[n];
      }
      at += t.f.length;
    });
  }

  /** Softmax class probabilities for feature vector x, into this.scores; returns the best class. */
  predict(x: Float32Array): number {
    const k = this.classes.length;
    const s = this.scores;
    s.set(this.base);
    const { roots, feature, threshold, left, right, value } = this;
    for (let i = 0; i < roots.length; i++) {
      let n = roots[i];
      while (feature[n] >= 0) n = x[feature[n]] <= threshold[n] ? left[n] : right[n];
      s[i % k] += value[n];
    }
    let best = 0;
    for (let c = 1; c < k; c++) if (s[c] > s[best]) best = c;
    const top = s[best];
    let sum = 0;
    for (let c = 0; c < k; c++) sum += s[c] = Math.exp(s[c] - top);
    for (let c = 0; c < k; c++) s[c] /= sum;
    return best;
  }
}

/** The model as loaded: its trees and port table. */
export class ClassifierModel {
  readonly json: ModelJson;
  readonly category: BoostedTrees;
  readonly app: BoostedTrees;
  /** Length of a feature vector (featureNames().length). */
  readonly featureCount: number;
  private readonly portRow = new Map<number, number>();
  /** Per port table row: its majority category and application (the port-only answer). */
  private readonly portCategoryBest: Uint8Array;
  private readonly portAppBest: Uint8Array;

  constructor(json: ModelJson) {
    if (
      json.version !== MODEL_VERSION ||
      json.packets !== CLASSIFY_PACKETS ||
      json.tlsRecords !== CLASSIFY_TLS_RECORDS ||
      typeof json.gate?.category !== 'number' ||
      typeof json.fallback?.category !== 'number'
    ) {
      throw new Error(`classifier model: version ${json.version} for ${json.packets} packets and ${json.tlsRecords} TLS records does not fit this build`);
    }
    this.json = json;
    this.category = new BoostedTrees(json.category);
    this.app = new BoostedTrees(json.app);
    for (const [i, k] of json.portKeys.entries()) this.portRow.set(k, i);
    this.portCategoryBest = Uint8Array.from(json.portCategory, argmax);
    this.portAppBest = Uint8Array.from(json.portApp, argmax);
    this.featureCount = featureNames(json.category.classes.length, json.app.classes.length).length;
  }

  /**
   * The prediction for feature vector x of a flow whose server port is row `portRow` of the port
   * table (-1: unseen): the trees' most probable class, or the port-only answer (the port's
   * majority, else the overall one) where the trees are less sure than the gate. The flow path and the evaluation both predict through here.
   */
  predictVector(x: Float32Array, portRow: number): Prediction {
    const { gate, fallback } = this.json;
    const known = portRow >= 0;
    let c: number;
    let p: number;
    if (known && gate.category > 1) {
      // The port's answer whatever the trees say: no need to ask them.
      c = this.portCategoryBest[portRow];
      p = this.portConfidence(portRow, c);
    } else {
      c = this.category.predict(x);
      p = this.category.scores[c];
      if (p < gate.category && (known || fallback.category >= 0)) {
        c = known ? this.portCategoryBest[portRow] : fallback.category;
        p = known ? this.portConfidence(portRow, c) : this.category.scores[c];
      }
    }
    let a: number;
    if (known && gate.app > 1) a = this.portAppBest[portRow];
    else {
      a = this.app.predict(x);
      if (this.app.scores[a] < gate.app && (known || fallback.app >= 0)) a = known ? this.portAppBest[portRow] : fallback.app;
    }
    return { category: this.category.classes[c] as MlCategory, app: this.app.classes[a], confidence: Math.max(1, Math.round(p * 100)) };
  }

  /**
   * How sure the port table is of category c for its row: the share of the port's training flows in
   * c, smoothed (Laplace) so that a port seen in three flows does not claim 100%.
   */
  private portConfidence(portRow: number, c: number): number {
    const n = this.json.portFlows[portRow];
    return (this.json.portCategory[portRow][c] * n + 1) / (n + this.category.classes.length);
  }

  /** Row of the port table for a transport and server port, -1 when training never saw it. */
  portIndex(ipProto: number, serverPort: number): number {
    return this.portRow.get((ipProto === IPPROTO_UDP ? 65536 : 0) + serverPort) ?? -1;
  }
}

function argmax(a: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** A model file written by test/dpi/ml.ts; one clear error when it does not fit this build. */
export function readModel(path: string | URL): ClassifierModel {
  return new ClassifierModel(JSON.parse(readFileSync(path, 'utf8')) as ModelJson);
}

/**
 * The shipped model, src/classify/model.json (read from src/ by the compiled build too: dist/classify
 * and src/classify are at the same depth, as schema/ is for the store). Read once per thread.
 */
export const MODEL_URL = new URL('../../src/classify/model.json', import.meta.url);
let shipped: ClassifierModel | undefined;
export function shippedModel(): ClassifierModel {
  shipped ??= readModel(MODEL_URL);
  return shipped;
}

const FLOW_FEATURE_NAMES: string[] = [];
for (let i = 0; i < CLASSIFY_PACKETS; i++) FLOW_FEATURE_NAMES.push(`size${i}`, `gap${i}`);
FLOW_FEATURE_NAMES.push(
  'payloadPackets',
  'clientPackets',
  'clientBytes',
  'serverBytes',
  'clientMax',
  'serverMax',
  'turns',
  'gapMean',
  'gapMax',
  'spanLog2',
  'tlsRecords',
);
for (let i = 0; i < CLASSIFY_TLS_RECORDS; i++) FLOW_FEATURE_NAMES.push(`tlsType${i}`, `tlsLength${i}`);
FLOW_FEATURE_NAMES.push(
  'clientEntropy',
  'serverEntropy',
  'clientFirst',
  'serverFirst',
  'clientMean',
  'serverMean',
  'clientStd',
  'serverStd',
  'clientMin',
  'serverMin',
  'distinctSizes',
  'repeatedSizes',
);
/** Features of a flow's packets (FlowClassifier.flowFeatures), after the port's. */
export const FLOW_FEATURES = FLOW_FEATURE_NAMES.length;

/** Names of the feature vector's entries, in order (the training script prints them with importances). */
export function featureNames(categories: number, apps: number): string[] {
  const names = ['udp', 'serverPort', 'serverPortBelow1024', 'portFlowsLog2'];
  for (let c = 0; c < categories; c++) names.push(`portCategory${c}`);
  for (let a = 0; a < apps; a++) names.push(`portApp${a}`);
  return names.concat(FLOW_FEATURE_NAMES);
}

/**
 * Writes the port's features into x: transport, port, and the share of each category and
 * application among the training flows of that server port (-1 each when there were none; the
 * training script computes them from other captures' flows only). Returns where the flow's start.
 */
export function portFeatures(
  x: Float32Array,
  ipProto: number,
  serverPort: number,
  portFlows: number,
  categoryShare: readonly number[] | null,
  appShare: readonly number[] | null,
  categories = categoryShare?.length ?? 0,
  apps = appShare?.length ?? 0,
): number {
  x[0] = ipProto === IPPROTO_UDP ? 1 : 0;
  x[1] = serverPort;
  x[2] = serverPort < 1024 ? 1 : 0;
  x[3] = Math.log2(1 + portFlows);
  let i = 4;
  for (let c = 0; c < categories; c++) x[i++] = categoryShare === null ? -1 : categoryShare[c];
  for (let a = 0; a < apps; a++) x[i++] = appShare === null ? -1 : appShare[a];
  return i;
}

const byteCounts = new Uint16Array(256);

/** Shannon entropy of buf[off, off + len) in bits per byte (0 for len 0; at most log2(len)). */
export function entropyOf(buf: Uint8Array, off: number, len: number): number {
  if (len <= 0) return 0;
  const end = off + len;
  for (let o = off; o < end; o++) byteCounts[buf[o]]++;
  let h = 0;
  for (let o = off; o < end; o++) {
    const c = byteCounts[buf[o]];
    if (c === 0) continue;
    const q = c / len;
    h -= q * Math.log2(q);
    byteCounts[buf[o]] = 0;
  }
  return h;
}

/** What the classifier says of one flow. */
export interface Prediction {
  category: PredictedCategory;
  /** '' for none of the largest applications. */
  app: string;
  /**
   * How sure it is of the category, percent (1-100; 0 with no prediction): the trees' probability,
   * or where the port table answers, the share of that port's training flows in the category
   * (smoothed: (flows in it + 1) / (flows + categories)).
   */
  confidence: number;
}

export const NO_PREDICTION: Prediction = { category: '', app: '', confidence: 0 };

/** Per-flow features and cached predictions, by flow table slot. */
export class FlowClassifier {
  cap = 0;
  /** Payload packets recorded (up to CLASSIFY_PACKETS). */
  count = new Uint8Array(0);
  /** Payload length, positive client to server, negative server to client. */
  private sizes = new Int32Array(0);
  /** µs since the previous payload packet (the first: since the flow's first packet). */
  private gaps = new Float64Array(0);
  /** Time of the last payload packet, or of the flow's first packet before any (µs). */
  private last = new Float64Array(0);
  private tlsCount = new Uint8Array(0);
  /** Record length, positive client to server, negative server to client; and its content type. */
  private tlsLength = new Int32Array(0);
  private tlsType = new Uint8Array(0);
  /** Entropy (bits per byte) of the first ENTROPY_BYTES of the first payload client to server, server to client; -1 before it. */
  private entropy = new Float32Array(0);
  /** 1 + packets recorded when the cached prediction was made, 0 for none. */
  private predictedAt = new Uint8Array(0);
  /** The cached predictions (one small object per prediction made, not per packet). */
  private predicted: Prediction[] = [];
  private readonly x: Float32Array;
  /** null: features only (training); predict() answers NO_PREDICTION. */
  private readonly model: ClassifierModel | null;

  constructor(model: ClassifierModel | null) {
    this.model = model;
    this.x = new Float32Array(model === null ? 0 : model.featureCount);
  }

  ensure(cap: number): void {
    if (cap <= this.cap) return;
    const g = <T extends Uint8Array | Int32Array | Float64Array | Float32Array>(a: T, n: number, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.count = g(this.count, cap, (n) => new Uint8Array(n));
    this.sizes = g(this.sizes, cap * CLASSIFY_PACKETS, (n) => new Int32Array(n));
    this.gaps = g(this.gaps, cap * CLASSIFY_PACKETS, (n) => new Float64Array(n));
    this.last = g(this.last, cap, (n) => new Float64Array(n));
    this.tlsCount = g(this.tlsCount, cap, (n) => new Uint8Array(n));
    this.tlsLength = g(this.tlsLength, cap * CLASSIFY_TLS_RECORDS, (n) => new Int32Array(n));
    this.tlsType = g(this.tlsType, cap * CLASSIFY_TLS_RECORDS, (n) => new Uint8Array(n));
    this.entropy = g(this.entropy, cap * 2, (n) => new Float32Array(n));
    this.predictedAt = g(this.predictedAt, cap, (n) => new Uint8Array(n));
    for (let i = this.predicted.length; i < cap; i++) this.predicted.push(NO_PREDICTION);
    this.cap = cap;
  }

  /** A flow starts in slot f at time ts (µs). */
  reset(f: number, ts: number): void {
    if (f >= this.cap) this.ensure(f + 1);
    this.count[f] = 0;
    this.last[f] = ts;
    this.tlsCount[f] = 0;
    this.entropy[2 * f] = -1;
    this.entropy[2 * f + 1] = -1;
    this.predictedAt[f] = 0;
  }

  /**
   * Records a payload packet while fewer than CLASSIFY_PACKETS are kept (the caller checks count):
   * its length, direction and gap, and the TLS record headers at the start of a TCP payload.
   */
  packet(f: number, ts: number, fromClient: boolean, ipProto: number, buf: Buffer, off: number, len: number): void {
    const n = this.count[f];
    const at = f * CLASSIFY_PACKETS + n;
    this.sizes[at] = fromClient ? len : -len;
    const gap = ts - this.last[f];
    this.gaps[at] = Math.max(gap, 0);
    if (ts > this.last[f]) this.last[f] = ts;
    this.count[f] = n + 1;
    const e = 2 * f + (fromClient ? 0 : 1);
    if (this.entropy[e] < 0) this.entropy[e] = entropyOf(buf, off, Math.min(len, ENTROPY_BYTES));
    if (ipProto !== IPPROTO_TCP) return;
    // TLS records whose header starts this segment, and those that follow it in the segment. A
    // record that starts in the middle of a segment after one spanning several is not seen: few
    // are, among the first packets.
    let t = this.tlsCount[f];
    let o = off;
    const end = off + len;
    while (t < CLASSIFY_TLS_RECORDS && o + 5 <= end) {
      const type = buf[o];
      if (type < 20 || type > 23 || buf[o + 1] !== 3 || buf[o + 2] > 4) break;
      const length = (buf[o + 3] << 8) | buf[o + 4];
      const r = f * CLASSIFY_TLS_RECORDS + t;
      this.tlsType[r] = type;
      this.tlsLength[r] = fromClient ? length : -length;
      t++;
      o += 5 + length;
    }
    this.tlsCount[f] = t;
  }

  /** Fills x (model.featureCount long) with flow f's features. */
  features(f: number, ipProto: number, serverPort: number, x: Float32Array = this.x): Float32Array {
    const m = this.model;
    if (m === null) throw new Error('FlowClassifier.features: no model');
    const row = m.portIndex(ipProto, serverPort);
    const at =
      row >= 0
        ? portFeatures(x, ipProto, serverPort, m.json.portFlows[row], m.json.portCategory[row], m.json.portApp[row])
        : portFeatures(x, ipProto, serverPort, 0, null, null, m.category.classes.length, m.app.classes.length);
    this.flowFeatures(f, x, at);
    return x;
  }

  /** Writes flow f's packet features (FLOW_FEATURES of them) into x from index `at`. */
  flowFeatures(f: number, x: Float32Array, at: number): void {
    let i = at;
    x.fill(0, at, at + FLOW_FEATURES);
    const n = this.count[f];
    const base = f * CLASSIFY_PACKETS;
    let clientPackets = 0;
    let clientBytes = 0;
    let serverBytes = 0;
    let clientMax = 0;
    let serverMax = 0;
    let turns = 0;
    let gapSum = 0;
    let gapMax = 0;
    let span = 0;
    let clientSq = 0;
    let serverSq = 0;
    let clientMin = 0;
    let serverMin = 0;
    let clientFirst = 0;
    let serverFirst = 0;
    let distinct = 0;
    let repeated = 0;
    for (let p = 0; p < n; p++) {
      const s = this.sizes[base + p];
      if (s > 0) {
        clientSq += s * s;
        if (clientFirst === 0) clientFirst = s;
        if (clientMin === 0 || s < clientMin) clientMin = s;
      } else {
        serverSq += s * s;
        if (serverFirst === 0) serverFirst = -s;
        if (serverMin === 0 || -s < serverMin) serverMin = -s;
      }
      let q = p - 1;
      while (q >= 0 && this.sizes[base + q] !== s) q--;
      if (q < 0) distinct++;
      // The same size as the previous packet in its direction (constant-size media and game frames).
      let r = p - 1;
      while (r >= 0 && this.sizes[base + r] > 0 !== s > 0) r--;
      if (r >= 0 && this.sizes[base + r] === s) repeated++;
      const gap = Math.log2(1 + this.gaps[base + p]);
      x[i + 2 * p] = s;
      x[i + 2 * p + 1] = gap;
      if (s > 0) {
        clientPackets++;
        clientBytes += s;
        if (s > clientMax) clientMax = s;
      } else {
        serverBytes -= s;
        if (-s > serverMax) serverMax = -s;
      }
      if (p > 0) {
        if (s > 0 !== this.sizes[base + p - 1] > 0) turns++;
        gapSum += gap;
        if (gap > gapMax) gapMax = gap;
        span += this.gaps[base + p];
      }
    }
    i += 2 * CLASSIFY_PACKETS;
    x[i++] = n;
    x[i++] = clientPackets;
    x[i++] = clientBytes;
    x[i++] = serverBytes;
    x[i++] = clientMax;
    x[i++] = serverMax;
    x[i++] = turns;
    x[i++] = n > 1 ? gapSum / (n - 1) : 0;
    x[i++] = gapMax;
    x[i++] = Math.log2(1 + span);
    const t = this.tlsCount[f];
    x[i++] = t;
    for (let r = 0; r < t; r++) {
      x[i + 2 * r] = this.tlsType[f * CLASSIFY_TLS_RECORDS + r];
      x[i + 2 * r + 1] = this.tlsLength[f * CLASSIFY_TLS_RECORDS + r];
    }
    i += 2 * CLASSIFY_TLS_RECORDS;
    const serverPackets = n - clientPackets;
    const clientMean = clientPackets > 0 ? clientBytes / clientPackets : 0;
    const serverMean = serverPackets > 0 ? serverBytes / serverPackets : 0;
    x[i++] = this.entropy[2 * f];
    x[i++] = this.entropy[2 * f + 1];
    x[i++] = clientFirst;
    x[i++] = serverFirst;
    x[i++] = clientMean;
    x[i++] = serverMean;
    x[i++] = clientPackets > 0 ? Math.sqrt(Math.max(clientSq / clientPackets - clientMean * clientMean, 0)) : 0;
    x[i++] = serverPackets > 0 ? Math.sqrt(Math.max(serverSq / serverPackets - serverMean * serverMean, 0)) : 0;
    x[i++] = clientMin;
    x[i++] = serverMin;
    x[i++] = distinct;
    x[i++] = n > 1 ? repeated / (n - 1) : 0;
  }

  /**
   * The prediction for flow f from its packets so far (TCP or UDP with at least one payload packet;
   * NO_PREDICTION for the rest). Cached: made again only when a payload packet was added since, so
   * at most CLASSIFY_PACKETS times in a flow's life and in practice once or twice (records are built
   * when a flow ends or at an active timeout), and fixed once its first CLASSIFY_PACKETS are in.
   */
  predict(f: number, ipProto: number, serverPort: number): Prediction {
    const n = this.count[f];
    const m = this.model;
    if (n === 0 || (ipProto !== IPPROTO_TCP && ipProto !== IPPROTO_UDP) || m === null) return NO_PREDICTION;
    if (this.predictedAt[f] !== n + 1) {
      const x = this.features(f, ipProto, serverPort);
      this.predicted[f] = m.predictVector(x, m.portIndex(ipProto, serverPort));
      this.predictedAt[f] = n + 1;
    }
    return this.predicted[f];
  }
}
