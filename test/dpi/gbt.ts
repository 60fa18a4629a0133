// Gradient-boosted trees for multi-class classification (softmax loss), trained here and run by
// src/classify/classifier.ts: each round grows one regression tree per class on the gradient and
// hessian of the softmax log loss (second-order leaf values, L2 regularised, as XGBoost does).
// Features are cut into at most MAX_BINS bins at their training quantiles so that a node's best
// split is found from per-bin sums; the trees keep the cut values, so that prediction compares
// the raw feature (x <= threshold goes left). Rows and features are subsampled each round from a
// seeded generator: the same data and parameters give the same model.
import type { BoostedTreesJson } from '../../src/classify/classifier.js';
import { rng } from '../helpers/random.js';

export interface GbtParams {
  rounds: number;
  maxDepth: number;
  learningRate: number;
  /** L2 regularisation of leaf values. */
  lambda: number;
  /** Least hessian sum in a child. */
  minChildWeight: number;
  /** Share of rows, and of features, each round's trees see. */
  rowSample: number;
  featureSample: number;
  seed: number;
}

export const MAX_BINS = 64;

/** Features binned once for a training set: bins[row * features + feature]. */
export class Binned {
  readonly rows: number;
  readonly features: number;
  readonly bins: Uint8Array;
  /** Per feature, its cut values: bin b holds x <= cuts[b] (and > cuts[b - 1]); the last bin the rest. */
  readonly cuts: Float64Array[];

  constructor(x: Float32Array[], features: number) {
    this.rows = x.length;
    this.features = features;
    this.bins = new Uint8Array(this.rows * features);
    this.cuts = [];
    const column = new Float64Array(this.rows);
    for (let j = 0; j < features; j++) {
      for (let i = 0; i < this.rows; i++) column[i] = x[i][j];
      const sorted = Float64Array.from(column).sort();
      const distinct: number[] = [];
      for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) distinct.push(sorted[i]);
      const cuts: number[] = [];
      if (distinct.length <= MAX_BINS) {
        for (let i = 0; i + 1 < distinct.length; i++) cuts.push(between(distinct[i], distinct[i + 1]));
      } else {
        for (let b = 1; b < MAX_BINS; b++) {
          const v = sorted[Math.floor((b * sorted.length) / MAX_BINS)];
          // The cut between v and the next larger value.
          const k = distinct.indexOf(v);
          if (k + 1 < distinct.length) {
            const c = between(distinct[k], distinct[k + 1]);
            if (cuts.length === 0 || c > cuts[cuts.length - 1]) cuts.push(c);
          }
        }
      }
      const c = Float64Array.from(cuts);
      this.cuts.push(c);
      for (let i = 0; i < this.rows; i++) {
        let b = 0;
        while (b < c.length && column[i] > c[b]) b++;
        this.bins[i * features + j] = b;
      }
    }
  }
}

/** A short number between a and b (a < b): their midpoint to 6 significant digits, when that is still between them (the model file stays small). */
function between(a: number, b: number): number {
  const mid = (a + b) / 2;
  const short = Number(mid.toPrecision(6));
  return short >= a && short < b ? short : mid;
}

type Tree = BoostedTreesJson['trees'][number];

/**
 * Trains on binned rows with labels y (class indices < classes). `onRound(r, scores)` sees the
 * training scores after each round (unused by training); `valid` rows, when given, are scored after
 * each round into validScores (rows x classes) for choosing the number of rounds.
 */
export function trainGbt(
  data: Binned,
  y: Int32Array,
  classes: number,
  p: GbtParams,
  valid?: { x: Float32Array[]; onRound: (round: number, scores: Float64Array) => void },
  /** Per-row weights (default 1). */
  weight?: Float64Array,
): BoostedTreesJson & { importance: Float64Array } {
  const n = data.rows;
  const F = data.features;
  const random = rng(p.seed);
  const counts = new Float64Array(classes);
  for (let i = 0; i < n; i++) counts[y[i]]++;
  const base = Array.from(counts, (c) => Math.log((c + 1) / (n + classes)));
  const scores = new Float64Array(n * classes);
  for (let i = 0; i < n; i++) for (let k = 0; k < classes; k++) scores[i * classes + k] = base[k];
  const validScores = valid ? new Float64Array(valid.x.length * classes) : null;
  if (valid && validScores) for (let i = 0; i < valid.x.length; i++) for (let k = 0; k < classes; k++) validScores[i * classes + k] = base[k];
  const trees: Tree[] = [];
  const importance = new Float64Array(F);
  const grad = new Float64Array(n);
  const hess = new Float64Array(n);
  const prob = new Float64Array(n * classes);
  const histG = new Float64Array(F * (MAX_BINS + 1));
  const histH = new Float64Array(F * (MAX_BINS + 1));
  for (let round = 0; round < p.rounds; round++) {
    // Softmax of the current scores.
    for (let i = 0; i < n; i++) {
      let top = -Infinity;
      for (let k = 0; k < classes; k++) top = Math.max(top, scores[i * classes + k]);
      let sum = 0;
      for (let k = 0; k < classes; k++) sum += prob[i * classes + k] = Math.exp(scores[i * classes + k] - top);
      for (let k = 0; k < classes; k++) prob[i * classes + k] /= sum;
    }
    const rows: number[] = [];
    for (let i = 0; i < n; i++) if (random() < p.rowSample) rows.push(i);
    const feats: number[] = [];
    for (let j = 0; j < F; j++) if (random() < p.featureSample) feats.push(j);
    if (feats.length === 0) feats.push(Math.floor(random() * F));
    for (let k = 0; k < classes; k++) {
      for (let i = 0; i < n; i++) {
        const q = prob[i * classes + k];
        const w = weight === undefined ? 1 : weight[i];
        grad[i] = w * (q - (y[i] === k ? 1 : 0));
        hess[i] = w * Math.max(q * (1 - q), 1e-6);
      }
      const tree: Tree = { f: [], t: [], l: [], r: [], v: [] };
      /** Per node, the bin its split keeps on the left. */
      const splitBin: number[] = [];
      const grow = (ids: number[], depth: number): number => {
        const node = tree.f.length;
        let G = 0;
        let H = 0;
        for (const i of ids) {
          G += grad[i];
          H += hess[i];
        }
        tree.f.push(-1);
        tree.t.push(0);
        tree.l.push(-1);
        tree.r.push(-1);
        tree.v.push(round4((-G / (H + p.lambda)) * p.learningRate));
        splitBin.push(0);
        if (depth >= p.maxDepth || H < 2 * p.minChildWeight) return node;
        histG.fill(0);
        histH.fill(0);
        for (const i of ids) {
          const at = i * F;
          for (const j of feats) {
            const h = j * (MAX_BINS + 1) + data.bins[at + j];
            histG[h] += grad[i];
            histH[h] += hess[i];
          }
        }
        const parent = (G * G) / (H + p.lambda);
        let best = 1e-6;
        let bestF = -1;
        let bestB = 0;
        for (const j of feats) {
          let gl = 0;
          let hl = 0;
          const cuts = data.cuts[j].length;
          for (let b = 0; b < cuts; b++) {
            gl += histG[j * (MAX_BINS + 1) + b];
            hl += histH[j * (MAX_BINS + 1) + b];
            const hr = H - hl;
            if (hl < p.minChildWeight || hr < p.minChildWeight) continue;
            const gr = G - gl;
            const gain = (gl * gl) / (hl + p.lambda) + (gr * gr) / (hr + p.lambda) - parent;
            if (gain > best) {
              best = gain;
              bestF = j;
              bestB = b;
            }
          }
        }
        if (bestF < 0) return node;
        importance[bestF] += best;
        const left: number[] = [];
        const right: number[] = [];
        for (const i of ids) (data.bins[i * F + bestF] <= bestB ? left : right).push(i);
        tree.f[node] = bestF;
        tree.t[node] = data.cuts[bestF][bestB];
        splitBin[node] = bestB;
        tree.v[node] = 0;
        tree.l[node] = grow(left, depth + 1);
        tree.r[node] = grow(right, depth + 1);
        return node;
      };
      grow(rows, 0);
      trees.push(tree);
      // Every row's score, sampled or not, moves by the tree's leaf.
      for (let i = 0; i < n; i++) {
        let node = 0;
        while (tree.f[node] >= 0) node = data.bins[i * F + tree.f[node]] <= splitBin[node] ? tree.l[node] : tree.r[node];
        scores[i * classes + k] += tree.v[node];
      }
      if (valid && validScores) for (let i = 0; i < valid.x.length; i++) validScores[i * classes + k] += leafOf(tree, valid.x[i]);
    }
    if (valid && validScores) valid.onRound(round + 1, validScores);
  }
  return { classes: [], base: base.map(round4), trees, importance };
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

/** The leaf value tree gives x. */
export function leafOf(tree: Tree, x: Float32Array): number {
  let node = 0;
  while (tree.f[node] >= 0) node = x[tree.f[node]] <= tree.t[node] ? tree.l[node] : tree.r[node];
  return tree.v[node];
}
