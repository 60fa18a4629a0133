// Threshold Random Walk (Jung, Paxson, Berger and Balakrishnan, "Fast Portscan Detection Using
// Sequential Hypothesis Testing", IEEE Symposium on Security and Privacy, 2004).
//
// Each first-contact connection attempt of a source is an observation: success (the other end
// answered) or failure (reset, ICMP unreachable, or no answer). H0 = benign, where an attempt
// succeeds with probability θ0; H1 = scanner, with θ1 < θ0. The walk is the log of the likelihood
// ratio P(observations | H1) / P(observations | H0):
//   success: + ln(θ1 / θ0)            (θ0 = 0.8, θ1 = 0.2: − ln 4)
//   failure: + ln((1 − θ1) / (1 − θ0)) (                 + ln 4)
// Wald's sequential test stops at η1 = β/α (scanner: with false positive rate at most α and
// detection probability at least β) or at η0 = (1 − β)/(1 − α) (benign). A benign verdict restarts
// the walk, so a host that behaves for a while and then scans is still caught. Unlike a fixed
// count per window, the walk has no time window: a slow scan reaches η1 after as many failures as
// a fast one.
//
import { growFloat64, growInt32 } from '../flow/open-index.js';
import type { TrwConfig } from './config.js';

export class TrwThresholds {
  readonly successStep: number;
  readonly failureStep: number;
  readonly upper: number;
  readonly lower: number;

  constructor(c: TrwConfig) {
    if (!(c.theta1 < c.theta0) || c.theta0 >= 1 || c.theta1 <= 0) throw new Error('TRW: need 0 < θ1 < θ0 < 1');
    if (!(c.alpha > 0 && c.alpha < c.beta && c.beta < 1)) throw new Error('TRW: need 0 < α < β < 1');
    this.successStep = Math.log(c.theta1 / c.theta0);
    this.failureStep = Math.log((1 - c.theta1) / (1 - c.theta0));
    this.upper = Math.log(c.beta / c.alpha);
    this.lower = Math.log((1 - c.beta) / (1 - c.alpha));
  }

  /** Failures in a row that take a fresh walk to the upper threshold. */
  failuresToFlag(): number {
    return Math.ceil(this.upper / this.failureStep - 1e-9);
  }
}

/**
 * The walks of a scan detector's table, one per slot (lru-slots.ts): the log-likelihood ratio, the
 * observations counted for the evidence, and the earliest failed attempt of the current walk (a
 * scan starts with its first unanswered probe, not with the ordinary connections before it).
 */
export class TrwWalks {
  llr = new Float64Array(0);
  walkStart = new Float64Array(0);
  successes = new Int32Array(0);
  failures = new Int32Array(0);

  constructor(readonly t: TrwThresholds) {}

  /** Makes room for n slots. */
  grow(n: number): void {
    this.llr = growFloat64(this.llr, n);
    this.walkStart = growFloat64(this.walkStart, n);
    this.successes = growInt32(this.successes, n);
    this.failures = growInt32(this.failures, n);
  }

  /** A fresh walk in slot s. */
  start(s: number): void {
    this.restart(s);
    this.successes[s] = 0;
    this.failures[s] = 0;
  }

  /** Back to the start, keeping the counts (a benign verdict, or the end of an anomaly). */
  restart(s: number): void {
    this.llr[s] = 0;
    this.walkStart[s] = Infinity;
  }

  /** One first-contact outcome at time ts. */
  observe(s: number, success: boolean, ts: number): void {
    const t = this.t;
    let llr = this.llr[s];
    if (success) {
      this.successes[s]++;
      llr += t.successStep;
    } else {
      this.failures[s]++;
      if (ts < this.walkStart[s]) this.walkStart[s] = ts;
      llr += t.failureStep;
    }
    if (llr <= t.lower) this.restart(s);
    else this.llr[s] = llr;
  }

  /** The walk is at or above the scanner threshold. */
  crossed(s: number): boolean {
    return this.llr[s] >= this.t.upper;
  }

  /**
   * The log-likelihood ratio, for evidence: the ratio itself, exp(llr), overflows to Infinity
   * (null in JSON) after about a thousand failures.
   */
  logRatio(s: number): number {
    return Math.round(this.llr[s] * 100) / 100;
  }
}
