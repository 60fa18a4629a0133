// SYN flood against one host:port: many SYNs a second whose handshakes are never completed.
//
// Per target (host, port): the SYN rate over a sliding one-second window and the handshakes
// completed in it (the client's ACK after the server's SYN-ACK, marked by the flow table). A flood
// is a rate of at least `minRate` with at least `minIncompleteShare` of the SYNs left incomplete;
// it lasts while the rate stays above half of `minRate`. The source is the majority sender when it
// sent at least `singleSourceShare` of the SYNs, otherwise 'distributed' (spoofed, random sources).
import { IPPROTO_TCP } from '../decode/ip.js';
import { TCP_ACK, TCP_SYN } from '../decode/packet.js';
import type { SynFloodConfig } from './config.js';
import { F_ESTABLISHED, key3, type PacketFacts } from './facts.js';
import { severityFromRatio, type Anomaly, type AnomalyEmitter } from './lifecycle.js';
import type { Detector } from './types.js';
import { RateWindow, makeRoom } from './window.js';

interface Target {
  ip: string;
  port: number;
  w: RateWindow;
  anomaly: Anomaly | null;
}

/** Targets with no SYN for this long are forgotten (µs). */
const TARGET_IDLE_US = 10e6;

export class SynFloodDetector implements Detector {
  private readonly targets = new Map<number, Target>();

  constructor(
    private readonly cfg: SynFloodConfig,
    private readonly emitter: AnomalyEmitter,
  ) {}

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.ipProto !== IPPROTO_TCP || !pkt.hasPorts || pkt.laterFragment) return;
    const key = key3(p.dstKey, pkt.dstPort, IPPROTO_TCP);
    if ((pkt.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      let t = this.targets.get(key);
      if (t === undefined) {
        if (!makeRoom(this.targets, this.cfg.maxTargets, (v) => v.anomaly !== null)) return;
        t = { ip: p.dstIp(), port: pkt.dstPort, w: new RateWindow(), anomaly: null };
        this.targets.set(key, t);
      }
      const w = t.w;
      w.add(p);
      const rate = w.rate(p.ts);
      if (rate > w.peak) w.peak = rate;
      if (t.anomaly !== null) {
        if (rate >= this.cfg.minRate / 2) t.anomaly.touch(p.ts, p.bytes);
      } else if (rate >= this.cfg.minRate && this.incompleteShare(w) >= this.cfg.minIncompleteShare) {
        this.start(t, p.ts);
      }
    } else if (p.flags & F_ESTABLISHED) {
      this.targets.get(key)?.w.addAux(p.ts);
    }
  }

  private incompleteShare(w: RateWindow): number {
    const syns = w.packets();
    return syns > 0 ? Math.max(0, 1 - w.aux() / syns) : 0;
  }

  private start(t: Target, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    t.anomaly = this.emitter.start({
      kind: 'SYN_FLOOD',
      source,
      targetIp: t.ip,
      targetPort: t.port,
      startedAt: w.surgeStart(cfg.minRate / 4),
      now,
      packets: w.packets(),
      bytes: w.bytes(),
      view: () => {
        const share = this.incompleteShare(w);
        const sources = w.distinctSources();
        return {
          severity: severityFromRatio(w.peak / cfg.minRate),
          evidence: {
            synRate: Math.round(w.peak),
            minRate: cfg.minRate,
            incompleteShare: round3(share),
            minIncompleteShare: cfg.minIncompleteShare,
            distinctSources: sources,
            topSourceShare: round3(w.candidateHits / Math.max(1, w.packets())),
          },
          summary:
            source === 'distributed'
              ? `SYN flood on ${t.ip}:${t.port} from about ${sources} sources, peaking at ${Math.round(w.peak)} SYN/s with ${Math.round(share * 100)}% of handshakes never completed.`
              : `SYN flood on ${t.ip}:${t.port} from ${source}, peaking at ${Math.round(w.peak)} SYN/s with ${Math.round(share * 100)}% of handshakes never completed.`,
        };
      },
      onEnd: () => {
        t.anomaly = null;
      },
    });
  }

  tick(now: number): void {
    for (const [k, t] of this.targets) {
      if (t.anomaly === null && now - t.w.lastTs > TARGET_IDLE_US) this.targets.delete(k);
    }
  }

  reset(): void {
    this.targets.clear();
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
