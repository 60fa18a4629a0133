// ICMP flood against one host: echo requests (and other queries) at a high rate.
//
// Per target host: ICMP queries sent to it, over a sliding one-second window, and its echo replies
// (evidence only by default: an echo flood is answered, and `maxReplyShare` is 1). Errors
// (unreachable, time exceeded...) and echo replies to the host's own pings are not counted: they
// answer the host's own traffic.
import { IPPROTO_ICMP, IPPROTO_ICMPV6 } from '../decode/ip.js';
import type { VolumeFloodConfig } from './config.js';
import type { PacketFacts } from './facts.js';
import { severityFromRatio, type Anomaly, type AnomalyEmitter } from './lifecycle.js';
import { round3 } from './syn-flood.js';
import type { Detector } from './types.js';
import { RateWindow, makeRoom } from './window.js';

interface Target {
  ip: string;
  w: RateWindow;
  anomaly: Anomaly | null;
}

const TARGET_IDLE_US = 10e6;

/** ICMP (v4) queries: echo, timestamp, information and address mask requests. */
function isQueryV4(type: number): boolean {
  return type === 8 || type === 13 || type === 15 || type === 17;
}

export class IcmpFloodDetector implements Detector {
  private readonly targets = new Map<number, Target>();

  constructor(
    private readonly cfg: VolumeFloodConfig,
    private readonly emitter: AnomalyEmitter,
  ) {}

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    const proto = pkt.ipProto;
    if ((proto !== IPPROTO_ICMP && proto !== IPPROTO_ICMPV6) || pkt.laterFragment) return;
    const type = pkt.icmpType;
    const query = proto === IPPROTO_ICMP ? isQueryV4(type) : type === 128;
    if (!query) {
      if (type === (proto === IPPROTO_ICMP ? 0 : 129)) this.targets.get(p.srcKey)?.w.addAux(p.ts);
      return;
    }
    let t = this.targets.get(p.dstKey);
    if (t === undefined) {
      if (!makeRoom(this.targets, this.cfg.maxTargets, (v) => v.anomaly !== null)) return;
      t = { ip: p.dstIp(), w: new RateWindow(), anomaly: null };
      this.targets.set(p.dstKey, t);
    }
    const w = t.w;
    w.add(p);
    const rate = w.rate(p.ts);
    if (rate > w.peak) w.peak = rate;
    if (t.anomaly !== null) {
      if (rate >= this.cfg.minRate / 2) t.anomaly.touch(p.ts, p.bytes);
    } else if (rate >= this.cfg.minRate && w.aux() <= this.cfg.maxReplyShare * w.packets()) {
      this.start(t, p.ts);
    }
  }

  private start(t: Target, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    t.anomaly = this.emitter.start({
      kind: 'ICMP_FLOOD',
      source,
      targetIp: t.ip,
      targetPort: 0,
      startedAt: w.surgeStart(cfg.minRate / 4),
      now,
      packets: w.packets(),
      bytes: w.bytes(),
      view: () => ({
        severity: severityFromRatio(w.peak / cfg.minRate),
        evidence: {
          packetRate: Math.round(w.peak),
          minRate: cfg.minRate,
          replyShare: round3(w.aux() / Math.max(1, w.packets())),
          distinctSources: w.distinctSources(),
        },
        summary: `ICMP flood on ${t.ip} from ${source === 'distributed' ? `about ${w.distinctSources()} sources` : source}, peaking at ${Math.round(w.peak)} requests/s.`,
      }),
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
