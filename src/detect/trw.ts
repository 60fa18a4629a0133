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
import type { TrwConfig } from './config.js';

export const TRW_PENDING = 0;
export const TRW_SCANNER = 1;
export const TRW_BENIGN = 2;

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

/** One walk: the log likelihood ratio so far. */
export class TrwWalk {
  llr = 0;
  successes = 0;
  failures = 0;

  /** Adds one observation; returns TRW_SCANNER, TRW_BENIGN (and restarts) or TRW_PENDING. */
  observe(t: TrwThresholds, success: boolean): number {
    if (success) {
      this.successes++;
      this.llr += t.successStep;
    } else {
      this.failures++;
      this.llr += t.failureStep;
    }
    if (this.llr >= t.upper) return TRW_SCANNER;
    if (this.llr <= t.lower) {
      this.restart();
      return TRW_BENIGN;
    }
    return TRW_PENDING;
  }

  restart(): void {
    this.llr = 0;
    this.successes = 0;
    this.failures = 0;
  }

  /**
   * The log-likelihood ratio, for evidence: the ratio itself, exp(llr), overflows to Infinity
   * (null in JSON) after about a thousand failures.
   */
  logRatio(): number {
    return Math.round(this.llr * 100) / 100;
  }
}
