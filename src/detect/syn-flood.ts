// SYN flood against one host:port: many SYNs a second whose handshakes are never completed.
//
// Per target (host, port): the SYN rate over a sliding one-second window and the handshakes
// completed in it (the client's ACK after the server's SYN-ACK, marked by the flow table). A flood
// is a rate of at least `minRate` with at least `minIncompleteShare` of the SYNs left incomplete
// (a busy server takes thousands of SYNs a second too, but nearly all complete); it lasts while
// the rate stays above half of `minRate`. The source is the majority sender when it sent at least
// `singleSourceShare` of the SYNs, otherwise 'distributed' (spoofed, random sources).
import { IPPROTO_TCP } from '../decode/ip.js';
import { TCP_ACK, TCP_SYN } from '../decode/packet.js';
import type { SynFloodConfig } from './config.js';
import { F_ESTABLISHED, key3, type PacketFacts } from './facts.js';
import { FloodDetector, fromWhom, round3, type FloodTarget } from './flood.js';
import { severityFromRatio, type AnomalyEmitter } from './lifecycle.js';
import { RateWindow } from './window.js';

interface Target extends FloodTarget {
  port: number;
}

export class SynFloodDetector extends FloodDetector<Target> {
  constructor(
    private readonly cfg: SynFloodConfig,
    emitter: AnomalyEmitter,
  ) {
    super(cfg.maxTargets, cfg.minRate, emitter);
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.ipProto !== IPPROTO_TCP || !pkt.hasPorts || pkt.laterFragment) return;
    // Only SYNs and handshake completions matter: every other segment leaves at the first test.
    if ((pkt.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      const key = key3(p.dstKey, pkt.dstPort, IPPROTO_TCP);
      const t = this.target(key, p);
      if (t === undefined) return;
      const rate = this.count(t, p);
      if (rate >= this.cfg.minRate && incompleteShare(t.w) >= this.cfg.minIncompleteShare) this.start(t, p.ts);
    } else if (p.flags & F_ESTABLISHED) {
      if (this.targets.size > 0) this.targets.get(key3(p.dstKey, pkt.dstPort, IPPROTO_TCP))?.w.addAux(p.ts);
    }
  }

  protected newTarget(p: PacketFacts): Target {
    return { ip: p.dstIp(), port: p.pkt.dstPort, key: 0, w: new RateWindow(), anomaly: null, flows: null };
  }

  private start(t: Target, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    // The figures that crossed the thresholds, as they were then: by the end of the flood the
    // window holds only its tail and whatever ordinary traffic followed.
    const share = incompleteShare(w);
    const topShare = w.candidateHits / Math.max(1, w.packets());
    let sources = w.distinctSources();
    this.startFlood(t, 'SYN_FLOOD', source, t.port, now, () => {
      sources = Math.max(sources, w.distinctSources());
      return {
        severity: severityFromRatio(w.peak / cfg.minRate),
        evidence: {
          synRate: Math.round(w.peak),
          minRate: cfg.minRate,
          incompleteShare: round3(share),
          minIncompleteShare: cfg.minIncompleteShare,
          distinctSources: sources,
          topSourceShare: round3(topShare),
        },
        summary: `SYN flood on ${t.ip}:${t.port} ${fromWhom(source, sources)}, peaking at ${Math.round(w.peak)} SYN/s with ${Math.round(share * 100)}% of handshakes never completed.`,
      };
    });
  }
}

function incompleteShare(w: RateWindow): number {
  const syns = w.packets();
  return syns > 0 ? Math.max(0, 1 - w.aux() / syns) : 0;
}
