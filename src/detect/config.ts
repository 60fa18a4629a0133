// Detector thresholds, with their defaults. Every figure can be overridden from a JSON file
// (`--detect-config FILE`, FLOWLENS_DETECT_CONFIG) holding a partial DetectConfig; `--no-detect`
// turns detection off. Times are seconds of packet time (the packets' clock, never the wall clock).

export interface LifecycleConfig {
  /** An anomaly ends after this long without a packet that still meets its detector's criterion. */
  quietSec: number;
  /** While it lasts, an anomaly is re-emitted (store upsert, bus 'update') at most this often. */
  updateSec: number;
}

/** Threshold Random Walk (Jung, Paxson, Berger, Balakrishnan: "Fast Portscan Detection Using Sequential Hypothesis Testing", IEEE S&P 2004). */
export interface TrwConfig {
  /** θ0: probability that a benign source's first-contact attempt succeeds. */
  theta0: number;
  /** θ1: probability that a scanner's first-contact attempt succeeds. */
  theta1: number;
  /** α: the false positive rate aimed at (upper threshold η1 = β/α). */
  alpha: number;
  /** β: the detection probability aimed at (lower threshold η0 = (1-β)/(1-α)). */
  beta: number;
}

export interface ScanConfig extends TrwConfig {
  /** A source's (or source–target pair's) walk is forgotten after this long without attempts: slow scans spread over minutes stay in view. */
  idleSec: number;
  /** At most this many walks are tracked; the oldest is evicted first. */
  maxTracked: number;
}

export interface SynFloodConfig {
  /** SYNs per second to one host:port (over a sliding one-second window). */
  minRate: number;
  /** Share of those SYNs whose handshake never completed. */
  minIncompleteShare: number;
  /** One source sending at least this share of the SYNs is the source; otherwise 'distributed'. */
  singleSourceShare: number;
  maxTargets: number;
}

export interface VolumeFloodConfig {
  /** Packets per second to one host (sliding one-second window). */
  minRate: number;
  /** The target answers at most this share of those packets (floods go unanswered). */
  maxReplyShare: number;
  singleSourceShare: number;
  maxTargets: number;
}

export interface UdpFloodConfig extends VolumeFloodConfig {
  /** Packets per distinct destination port in the window: a port scan probes each port once or twice, a flood hammers few. */
  minPacketsPerPort: number;
}

/** Beaconing (beacon.ts): the thresholds of a pair's score, and the bounds of its table. */
export interface BeaconConfig {
  /** Connections of one pair before it is judged (its first ones only show a start). */
  minConnections: number;
  /** Time from the first to the latest of them (seconds): a beacon is judged over a long time. */
  minDurationSec: number;
  /** Median interval at least this long (seconds): a client polling many times a second is not calling home. */
  minPeriodSec: number;
  /** Score (0..1, RITA's: timing and size regularity, smallness) at or above which a pair beacons. */
  minScore: number;
  /** A pair is forgotten after this long without a packet (seconds): the longest period seen. */
  idleSec: number;
  /** At most this many pairs are tracked; the least recently used is evicted first (not one beaconing). */
  maxTracked: number;
}

export interface DetectConfig {
  lifecycle: LifecycleConfig;
  /** A connection attempt (TCP SYN or FIN/NULL/Xmas probe, UDP datagram, ICMP echo) with no answer after this long is a failure (seconds). */
  attemptTimeoutSec: number;
  /** Connection attempts pending an answer, at most (the oldest count as failed when full). */
  maxPendingAttempts: number;
  synFlood: SynFloodConfig;
  portScan: ScanConfig;
  hostScan: ScanConfig & { /** Distinct hosts a walk must have contacted before it can flag. */ minHosts: number };
  udpFlood: UdpFloodConfig;
  icmpFlood: VolumeFloodConfig;
  beacon: BeaconConfig;
}

export const DEFAULT_DETECT_CONFIG: DetectConfig = {
  lifecycle: { quietSec: 30, updateSec: 5 },
  attemptTimeoutSec: 5,
  maxPendingAttempts: 100_000,
  // A busy web server takes thousands of SYNs a second, but nearly all complete: the incomplete
  // share is what tells a flood from a rush.
  synFlood: { minRate: 200, minIncompleteShare: 0.8, singleSourceShare: 0.5, maxTargets: 20_000 },
  // Vertical scans (one source, many ports of one host). Jung et al. use θ0 = 0.8, θ1 = 0.2; with
  // their α = 0.01 four failures in a row flag a source, which suits first contacts to distinct
  // *hosts*. Distinct *ports* of one host fail more often in benign traffic (traceroute's last hop,
  // a client trying a few closed services), so α is far smaller: η1 = 0.99/1e-5 = 99,000, reached
  // after 9 failures net of successes (each failure multiplies the likelihood ratio by
  // (1-θ1)/(1-θ0) = 4, each success by θ1/θ0 = 1/4).
  portScan: { theta0: 0.8, theta1: 0.2, alpha: 1e-5, beta: 0.99, idleSec: 900, maxTracked: 50_000 },
  // Horizontal scans and sweeps (one source, one port or ICMP echo, many hosts): Jung et al.'s
  // θ0, θ1 and β, with α = 0.001 (η1 = 990: five failures net of successes) to spare P2P and
  // service discovery, plus a minimum of distinct hosts.
  hostScan: { theta0: 0.8, theta1: 0.2, alpha: 0.001, beta: 0.99, idleSec: 900, maxTracked: 50_000, minHosts: 6 },
  // A QUIC or RTP stream is answered (acks, RTCP) and runs on one flow the receiver takes part in;
  // a flood is one-way towards the target.
  udpFlood: { minRate: 2000, maxReplyShare: 0.2, minPacketsPerPort: 4, singleSourceShare: 0.5, maxTargets: 20_000 },
  // Echo floods are answered, so no reply share: the rate alone (ping -f on a LAN is a flood too).
  icmpFlood: { minRate: 1000, maxReplyShare: 1, singleSourceShare: 0.5, maxTargets: 20_000 },
  // RITA reports scores from 0.7 and calls 0.8 and above likely; an hour and ten connections is
  // the least that shows a period. Pairs are kept two hours idle (periods up to two hours).
  beacon: { minConnections: 10, minDurationSec: 3600, minPeriodSec: 1, minScore: 0.8, idleSec: 7200, maxTracked: 20_000 },
};

export type DetectConfigInput = { [K in keyof DetectConfig]?: Partial<DetectConfig[K]> };

/** Defaults with the given overrides (one level deep); unknown keys are an error, so that typos do not pass silently. */
export function resolveDetectConfig(input: DetectConfigInput = {}): DetectConfig {
  const out = structuredClone(DEFAULT_DETECT_CONFIG) as unknown as Record<string, unknown>;
  for (const [section, value] of Object.entries(input)) {
    if (!(section in out)) throw new Error(`detect config: unknown section '${section}'`);
    const base = out[section];
    if (typeof base === 'number') {
      if (typeof value !== 'number' || !(value > 0)) throw new Error(`detect config: '${section}' must be a positive number`);
      out[section] = value;
      continue;
    }
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      const b = base as Record<string, unknown>;
      if (!(key in b)) throw new Error(`detect config: unknown setting '${section}.${key}'`);
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`detect config: '${section}.${key}' must be a non-negative number`);
      b[key] = v;
    }
  }
  return out as unknown as DetectConfig;
}
