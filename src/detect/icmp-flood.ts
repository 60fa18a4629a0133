// ICMP flood against one host: echo requests (and other queries) at a high rate.
//
// Per target host: ICMP queries sent to it, over a sliding one-second window, and its echo replies
// (evidence only by default: an echo flood is answered, so `maxReplyShare` is 1). Errors
// (unreachable, time exceeded...) and echo replies are not counted as flood packets: they answer
// traffic of the host they go to.
import { IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../decode/ip.js';
import type { VolumeFloodConfig } from './config.js';
import type { PacketFacts } from './facts.js';
import { FloodDetector, fromWhom, round3, type FloodTarget } from './flood.js';
import { severityFromRatio, type AnomalyEmitter } from './lifecycle.js';
import { RateWindow } from './window.js';

/** ICMP (v4) queries: echo, timestamp, information and address mask requests. */
function isQueryV4(type: number): boolean {
  return type === 8 || type === 13 || type === 15 || type === 17;
}

export class IcmpFloodDetector extends FloodDetector<FloodTarget> {
  constructor(
    private readonly cfg: VolumeFloodConfig,
    emitter: AnomalyEmitter,
  ) {
    super(cfg.maxTargets, cfg.minRate, emitter);
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    const proto = pkt.ipProto;
    if ((proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6) || pkt.laterFragment) return;
    const type = pkt.icmpType;
    const query = proto === IPPROTO_ICMP ? isQueryV4(type) : type === 128;
    if (!query) {
      if (type === (proto === IPPROTO_ICMP ? 0 : 129)) if (this.targets.size > 0) this.targets.get(p.srcKey)?.w.addAux(p.ts);
      return;
    }
    const t = this.target(p.dstKey, p);
    if (t === undefined) return;
    const rate = this.count(t, p);
    if (rate >= this.cfg.minRate && t.w.aux() <= this.cfg.maxReplyShare * t.w.packets()) this.start(t, p.ts);
  }

  protected newTarget(p: PacketFacts): FloodTarget {
    return { ip: p.dstIp(), key: 0, w: new RateWindow(), anomaly: null, flows: null };
  }

  private start(t: FloodTarget, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    // The figures that crossed the thresholds, as they were then (see syn-flood.ts).
    const replyShare = w.aux() / Math.max(1, w.packets());
    let sources = w.distinctSources();
    this.startFlood(t, 'ICMP_FLOOD', source, 0, now, () => {
      sources = Math.max(sources, w.distinctSources());
      return {
        severity: severityFromRatio(w.peak / cfg.minRate),
        evidence: { packetRate: Math.round(w.peak), minRate: cfg.minRate, replyShare: round3(replyShare), distinctSources: sources },
        summary: `ICMP flood on ${t.ip} ${fromWhom(source, sources)}, peaking at ${Math.round(w.peak)} requests/s.`,
      };
    });
  }
}
